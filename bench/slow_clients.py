"""What the gevent worker class costs and buys against sync, with slow clients.

``python -m bench.slow_clients [--quick] --json bench/results/slow_clients.json``;
decision 2 (docs/decisions) says what it measures.
"""

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List

import requests

from bench import common
from bench import worker_classes

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


def probe(name: str, stack: common.Stack) -> dict:
    """Seconds per GET /health while slow clients are held (None: no answer)."""
    stop = threading.Event()
    held = hold_slow_clients(stack.port, SLOW, stop)
    timings = []
    try:
        time.sleep(1.0)  # every stalled client reaches a worker
        for _ in range(1 if name == "sync" else 20):
            started = time.monotonic()
            try:
                answer = requests.get(stack.url + "/health", timeout=PROBE_TIMEOUT)
                ok = answer.status_code == 200
            except requests.RequestException:
                ok = False
            timings.append(time.monotonic() - started if ok else None)
    finally:
        stop.set()
        for sock in held:
            sock.close()
    answered = [t for t in timings if t is not None]
    return {
        "requests": len(timings),
        "answered": len(answered),
        "first_s": timings[0],
        "median_s": common.percentile(answered, 50) if answered else None,
        "max_s": max(answered, default=None),
    }


def run(quick: bool) -> dict:
    """sync against gevent under PyPy, then each with slow clients held."""
    python = common.interpreter("pypy3")
    with tempfile.TemporaryDirectory(prefix="slow-clients-") as tmp:
        workdir = Path(tmp)
        database = workdir / "dataset.db"
        common.prepare_database(python, database)
        measurer = common.Measurer(
            workdir,
            warmup=2.0 if quick else 10.0,
            duration=3.0 if quick else 15.0,
            threads=2,
            server_warmup=2.0 if quick else 20.0,
        )
        results = worker_classes.compare(
            python,
            workdir,
            measurer,
            workers=5,
            database=database,
            classes=("sync", "gevent"),
            then=probe,
        )
    return {**results, "python": python}


if __name__ == "__main__":
    sys.exit(common.figure_main(__doc__, run))
