"""What the gevent worker class costs and buys against sync.

For each class (sync, gevent) under one interpreter, in one run:

- throughput: ``GET /health`` and ``GET /notes/{id}`` with wrk at 16
  connections, with keep-alive and with ``Connection: close``, after a
  warm-up (the harness's Measurer: requests/s, p50/p99, server CPU/request);
- slow clients: ``SLOW`` connections that stall (half announce
  ``Content-Length: 100`` and send 4 bytes, half trickle their headers a byte
  at a time), then the latency of ``GET /health`` while they are held.

    python -m bench.slow_clients [--python .venv/pypy3/bin/python] [--quick]

Prints a table and writes JSON to ``bench/results/slow_clients.json``. Take
the shared lock first on a shared machine (``flock /tmp/heavy.lock ...``).
"""

import argparse
import json
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import List
from typing import Optional

import requests

from bench import dataset
from bench import paths
from bench.measure import Measurer
from bench.measure import Settings
from bench.servers import ROOT
from bench.servers import Stack
from bench.worker_classes import KEEPALIVE
from bench.worker_classes import SLOTS
from bench.worker_classes import _prepare

CLASSES = ("sync", "gevent")
SLOW = 48
#: Longest wait for one /health while slow clients are held (sync: the timeout).
PROBE_TIMEOUT = 90.0


def hold_slow_clients(
    port: int, count: int, stop: threading.Event
) -> List[socket.socket]:
    """Open ``count`` stalled connections; they stay open until ``stop``."""
    held = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        held.append(sock)
        if n % 2:
            sock.sendall(
                b"POST /notes HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json"
                b'\r\nContent-Length: 100\r\n\r\n{"ti'
            )
        else:
            threading.Thread(target=_trickle, args=(sock, stop), daemon=True).start()
    return held


def _trickle(sock: socket.socket, stop: threading.Event) -> None:
    for byte in b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 4000:
        if stop.wait(0.2):
            return
        try:
            sock.send(bytes([byte]))
        except OSError:
            return


def probe(url: str, count: int) -> dict:
    """Latency of ``count`` GET /health (seconds; None when none came in time)."""
    timings: List[Optional[float]] = []
    for _ in range(count):
        started = time.monotonic()
        try:
            ok = requests.get(url + "/health", timeout=PROBE_TIMEOUT).status_code == 200
        except requests.RequestException:
            ok = False
        timings.append(time.monotonic() - started if ok else None)
    answered = sorted(t for t in timings if t is not None)
    return {
        "requests": count,
        "answered": len(answered),
        "first_s": timings[0],
        "median_s": answered[len(answered) // 2] if answered else None,
        "max_s": answered[-1] if answered else None,
    }


def run(python: str, quick: bool = False) -> dict:
    """Measure every class; the results as a dict (also printed)."""
    settings = Settings(
        warmup=2.0 if quick else 10.0,
        duration=3.0 if quick else 15.0,
        connections=16,
        threads=2,
        server_warmup=2.0 if quick else 20.0,
    )
    results = {"python": python, "settings": settings.__dict__, "classes": {}}
    with tempfile.TemporaryDirectory(prefix="slow-clients-") as tmp:
        workdir = Path(tmp)
        database, _ = dataset.prepare(python, workdir / "dataset")
        measurer = Measurer(settings, workdir)
        for name in CLASSES:
            print(f"{name}:", flush=True)
            stack = Stack(
                python,
                workdir / name,
                database=database,
                env={"WORKER_CLASS": name, "THREADS": "1", "WORKERS": "5"},
            )
            stack.start()
            rows = []
            try:
                for alternatives in SLOTS:
                    target, path = _prepare(paths.Api(stack.url), alternatives)
                    for mode, headers in KEEPALIVE.items():
                        result = measurer.measure(
                            stack.url,
                            target,
                            path,
                            headers=headers,
                            label=f"{name}/{mode}",
                            cpu_seconds=stack.cpu_seconds,
                        )
                        rows.append(
                            {"target": target.name, "connection": mode, **result}
                        )
                stop = threading.Event()
                held = hold_slow_clients(stack.port, SLOW, stop)
                try:
                    time.sleep(1.0)  # every stalled client reaches a worker
                    slow = probe(stack.url, 1 if name == "sync" else 20)
                finally:
                    stop.set()
                    for sock in held:
                        sock.close()
                print(f"  /health with {SLOW} slow clients held: {slow}", flush=True)
            finally:
                stack.stop()
            results["classes"][name] = {"throughput": rows, "slow_clients": slow}
    results["ratios"] = _ratios(results["classes"])
    return results


def _ratios(classes: dict) -> dict:
    """gevent / sync requests per second, per target and connection mode."""
    out = {}
    sync = {(r["target"], r["connection"]): r for r in classes["sync"]["throughput"]}
    for row in classes["gevent"]["throughput"]:
        base = sync.get((row["target"], row["connection"]))
        if base and base.get("rps"):
            out[f"{row['target']}/{row['connection']}"] = round(
                row["rps"] / base["rps"], 2
            )
    return out


def main(argv=None) -> int:
    """Command line: run, print the ratios, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=str(ROOT / ".venv/pypy3/bin/python"))
    parser.add_argument("--quick", action="store_true", help="short warm-up and runs")
    parser.add_argument("--json", default=str(ROOT / "bench/results/slow_clients.json"))
    args = parser.parse_args(argv)
    results = run(str(Path(args.python).absolute()), args.quick)
    print("gevent/sync requests per second:", results["ratios"])
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
