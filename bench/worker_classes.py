"""Gunicorn worker classes under PyPy, with and without keep-alive, and slow clients.

The sync worker closes every connection; "close" sends ``Connection: close``
to every class, as many load balancers and short-lived clients do.
``python -m bench.worker_classes [--quick] --json bench/results/slow_clients.json``
measures sync against gevent with slow clients held, as decision 2 says.
"""

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List
from typing import Sequence

import requests

from bench import common
from bench import paths

#: name -> environment; gthread's thread count is what the default would use.
CLASSES = {
    "sync": {"WORKER_CLASS": "sync", "THREADS": "1"},
    "gthread": {"WORKER_CLASS": "gthread", "THREADS": "4"},
    "gevent": {"WORKER_CLASS": "gevent", "THREADS": "1"},
}
KEEPALIVE = {"keep-alive": {}, "close": {"Connection": "close"}}
TARGETS = (paths.BY_NAME["health"], paths.BY_NAME["notes-get"])
SLOW = 48
#: Longest wait for one /health while slow clients are held (sync: the timeout).
PROBE_TIMEOUT = 90.0


def compare(
    python: str,
    workdir: Path,
    measurer: common.Measurer,
    *,
    workers: int,
    database: Path,
    classes: Sequence[str] = tuple(CLASSES),
    then=None,
) -> dict:
    """Every class x connection mode x target, as rows.

    ``then(name, stack)`` runs on each class's stack after its rows; what it
    returns is kept under ``after``.
    """
    rows, missing, after = [], {}, {}
    for name in classes:
        env = dict(CLASSES[name], WORKERS=str(workers))
        stack = common.Stack(
            python, workdir / f"class-{name}", env=env, database=database
        )
        reason = common.import_error(python, "gevent") if name == "gevent" else None
        if reason:
            reason = f"gevent does not import ({reason}); make bench installs it"
        else:
            try:
                stack.start()
            except common.StartError as ex:
                reason = f"gunicorn did not start: {str(ex)[-500:]}"
        if reason:
            missing[name] = common.unavailable(reason, name)["reason"]
            continue
        try:
            for target in TARGETS:
                path = target.prepare(paths.Api(stack.url))
                for mode, headers in KEEPALIVE.items():
                    result = measurer.measure(
                        stack.url,
                        target,
                        path,
                        headers=headers,
                        label=f"{name}/{mode}",
                        stack=stack,
                        workers=workers,
                    )
                    row = {"worker_class": name, "connection": mode, **result}
                    row.update(threads=int(CLASSES[name]["THREADS"]))
                    rows.append(dict(row, target=target.name, label=target.label))
            if then is not None:
                after[name] = then(name, stack)
        finally:
            stack.stop()
    return {
        "rows": rows,
        "not_available": missing,
        **({"after": after} if then else {}),
    }


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


def slow_clients(quick: bool) -> dict:
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
        results = compare(
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
    sys.exit(common.figure_main(__doc__, slow_clients))
