"""Benchmark: notes on a real RethinkDB server, under PyPy and CPython.

``python -m bench.rethinkdb [--quick] [--python PATH ...]`` prints JSON.
It starts a RethinkDB 2.4.4 server from ``../shared/rethinkdb/start`` (or
``RETHINKDB_START``) on free ports in a temp folder, and for each
interpreter (by default ``.venv/pypy3`` and ``.venv/python3``) measures:

- ``get`` and ``post``: ``GET /notes/{id}`` and ``POST /notes`` through
  gunicorn (the default worker count) with wrk at 16 connections, after a
  warm-up that runs wrk in windows until the workers have served 5,000
  requests each on average and two windows in a row agree within 5% (the
  JIT has compiled the path; ``warmup`` lists the window rates);
- ``push``: POSTs sent at a fixed rate (100/s, then 500/s; open loop, 16
  client threads) while an SSE client follows the push worker's
  ``/events``; the time from each POST returning to its event arriving
  (p50, p99, max), and the rate achieved (below the asked one when the
  server cannot keep up);
- ``catch_up``: ``store.changes(since=0)`` in a fresh process of the
  interpreter, over 10,000 changes: on RethinkDB with 10% of the numbers
  taken by writers that died before committing (gaps, voided on the way),
  and on the embedded store (SQLite) for comparison.

Quick: short windows, 2 s of push at 50/s and 200/s, 2,000 changes. ``run(quick)``
returns the same dict (``bench/run.py`` lists it among the figures).
"""

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict
from typing import List
from typing import Optional

import requests
from rethinkdb import r

from bench import wrk
from bench.push import default_pythons
from bench.push import implementation
from bench.push import percentile_at
from bench.push import ratio_of
from bench.servers import get_json
from core.settings import default_workers
from db.notes.rethink import RethinkNotesStore
from db.notes.sql import SqlNotesStore
from db.rethink import Connector
from db.rethink import close_quietly
from db.rethink import parse_url
from db.schema import create_schema
from db.sql import Database
from tests.support.processes import Process
from tests.support.processes import free_port
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parent.parent
START = Path(
    os.environ.get("RETHINKDB_START") or ROOT.parent / "shared" / "rethinkdb" / "start"
)

SIZES = {
    True: {
        "window": 1.0,
        "max_windows": 6,
        "duration": 2.0,
        "per_worker": 0,
        "push_rates": (50, 200),
        "push_seconds": 2.0,
        "changes": 2000,
    },
    False: {
        "window": 3.0,
        "max_windows": 40,
        "duration": 10.0,
        "per_worker": 5000,
        "push_rates": (100, 500),
        "push_seconds": 10.0,
        "changes": 10000,
    },
}


class RethinkServer:
    """One RethinkDB server from the start script, in ``folder``, on free ports."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.pid: Optional[int] = None

    @property
    def url(self) -> str:
        return f"rethinkdb://127.0.0.1:{self.port}/bench"

    def start(self) -> "RethinkServer":
        out = subprocess.run(
            [
                str(START),
                str(self.folder / "rethinkdb"),
                str(self.port),
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        self.pid = int(out.stdout.split()[-1])
        return self

    def stop(self) -> None:
        if self.pid is None:
            return
        os.kill(self.pid, signal.SIGTERM)
        for _ in range(300):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)


class Stack:
    """Gunicorn and the push worker under ``python``, notes on ``rethinkdb_url``."""

    def __init__(self, python: str, folder: Path, rethinkdb_url: str, table: str):
        self.python = python
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.sse_url = f"http://127.0.0.1:{free_port()}"
        self.env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            LOG_LEVEL="warning",
            DATABASE_URL=f"sqlite:///{folder / 'api.db'}",
            RETHINKDB_URL=rethinkdb_url,
            RETHINKDB_TABLE=table,
            HOST="127.0.0.1",
            AUTH="off",  # trusted clients: the figures are of the paths
            PORT=self.api_url.rsplit(":", 1)[1],
            PUSH_PUB_ENDPOINT=f"tcp://127.0.0.1:{free_port()}",
            PUSH_SSE_BIND=self.sse_url[len("http://") :],
        )
        self.folder = folder
        self.gunicorn = Process(
            [python, "-m", "api", "serve"], self.env, folder / "gunicorn.log"
        )
        self.worker = Process(
            [python, "-m", "workers.push"], self.env, folder / "push.log"
        )

    def start(self) -> "Stack":
        subprocess.run(
            [self.python, "-m", "api", "init-db"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.gunicorn.start()
        wait_until(
            lambda: self.gunicorn.check() or get_json(self.api_url + "/health"),
            60,
            what="gunicorn",
        )
        self.worker.start()
        wait_until(
            lambda: self.worker.check() or get_json(self.sse_url + "/health"),
            60,
            what="push worker",
        )
        return self

    def stop(self) -> None:
        self.worker.stop()
        self.gunicorn.stop()


def _summary(result: dict) -> dict:
    return {
        "rps": round(result["rps"], 1),
        "p50_ms": round(result["latency_ms"]["p50"], 2),
        "p99_ms": round(result["latency_ms"]["p99"], 2),
        "errors": result["errors"]["total"],
    }


def measure_path(
    api_url: str,
    path: str,
    size: dict,
    workers: int,
    method: str = "GET",
    body=None,
    headers: Optional[Dict[str, str]] = None,
) -> dict:
    """Warm ``path`` up until its rate levels off, then measure it with wrk.

    Warm-up windows run until the workers have served ``per_worker``
    requests each on average and two windows in a row agree within 5%.
    """

    def drive(seconds: float) -> dict:
        return wrk.run(
            api_url,
            path,
            seconds=seconds,
            connections=16,
            method=method,
            body=body,
            headers={
                **(headers or {}),
                **({"Content-Type": "application/json"} if body else {}),
            },
        )

    rates: List[float] = []
    served = 0
    for _ in range(size["max_windows"]):
        window = drive(size["window"])
        rates.append(round(window["rps"], 1))
        served += window["requests"]
        if served < size["per_worker"] * workers or len(rates) < 3:
            continue  # too few requests per worker for the JIT yet
        if abs(rates[-1] - rates[-2]) <= 0.05 * rates[-2]:
            break
    result = _summary(drive(size["duration"]))
    result["warmup"] = rates
    result["leveled_off"] = len(rates) < size["max_windows"]
    return result


class SseTimer:
    """Follows ``/events`` on a raw socket; the arrival time of each note id."""

    def __init__(self, sse_url: str):
        host, port = sse_url[len("http://") :].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.sock.sendall(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.arrivals: Dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = b""
        self.sock.settimeout(0.5)
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            now = time.perf_counter()
            buffer += data
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                for line in frame.split(b"\n"):
                    if line.startswith(b"data: "):
                        event = json.loads(line[6:])
                        note = event["new_val"] or event["old_val"]
                        self.arrivals.setdefault(note["id"], now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def measure_push(stack: Stack, rate: float, seconds: float, threads: int = 16) -> dict:
    """POSTs due at ``rate`` per second; POST return -> SSE arrival, per note."""
    timer = SseTimer(stack.sse_url)
    time.sleep(0.5)  # the stream is open
    url = stack.api_url + "/notes"
    total = int(rate * seconds)
    returned: Dict[str, float] = {}
    errors: List[str] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def client(number: int) -> None:
        with requests.Session() as session:
            for i in range(number, total, threads):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                try:
                    response = session.post(
                        url, json={"title": f"push {i}", "body": "bench"}, timeout=30
                    )
                    done = time.perf_counter()
                    response.raise_for_status()
                except requests.RequestException as ex:
                    with lock:
                        errors.append(type(ex).__name__)
                    continue
                with lock:
                    returned[response.json()["id"]] = done

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    ended = time.perf_counter()
    try:
        wait_until(
            lambda: all(note_id in timer.arrivals for note_id in returned),
            60,
            what="every event",
        )
    finally:
        timer.close()
    ms = [max(0.0, timer.arrivals[n] - t) * 1000 for n, t in returned.items()]
    early = sum(1 for n, t in returned.items() if timer.arrivals[n] < t)
    return {
        "rate_asked": rate,
        "rate_done": round(len(returned) / (ended - start), 1),
        "notes": len(returned),
        "errors": len(errors),
        "p50_ms": round(percentile_at(ms, 0.5), 2),
        "p99_ms": round(percentile_at(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.mean(ms), 2),
        "arrived_before_post_returned": early,
    }


# Catch-up: runs in a child process under the measured interpreter.

_CATCH_UP = """
import json, sys, time
kind, count, url, table, database_url = sys.argv[1:6]
count = int(count)
if kind == "rethinkdb":
    from db.notes.rethink import RethinkNotesStore
    store = RethinkNotesStore.from_url(url, table=table, timeout=30)
else:
    from db.notes.sql import SqlNotesStore
    from db.sql import Database
    store = SqlNotesStore(Database(database_url))
started = time.perf_counter()
seen = 0
for change in store.changes(since=0, timeout=300):
    seen += 1
    if seen == count:
        break
seconds = time.perf_counter() - started
print(json.dumps({"changes": seen, "seconds": round(seconds, 3),
                  "per_s": round(seen / seconds, 1)}))
"""


def make_backlogs(rethinkdb_url: str, table: str, database_url: str, count: int):
    """``count`` changes on each store; on RethinkDB one dead number per ten.

    Written from this process with 8 threads (the embedded store: one).
    """
    first = RethinkNotesStore.from_url(rethinkdb_url, table=table, timeout=30)
    first.create_schema()

    def write(part: int) -> None:
        store = RethinkNotesStore.from_url(rethinkdb_url, table=table, timeout=30)
        for i in range(part, count, 8):
            if i % 10 == 0:  # a writer that dies after taking its number
                store._run(store.changelog.take_seq)
            store.create(f"backlog {i}", "bench")
        store.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first.close()
    database = Database(database_url)
    create_schema(database.engine)
    sql = SqlNotesStore(database)
    for i in range(count):
        sql.create(f"backlog {i}", "bench")
    database.dispose()
    time.sleep(
        first.changelog.lease + first.changelog.clock_margin
    )  # the dead numbers are dead


def copy_tables(rethinkdb_url: str, source: str, target: str) -> None:
    """A copy of the notes, log and counter tables of ``source`` (fresh gaps)."""
    RethinkNotesStore.from_url(rethinkdb_url, table=target).create_schema()
    parsed = parse_url(rethinkdb_url)
    conn = Connector(parsed, timeout=60).connect()
    try:
        pairs = zip(
            RethinkNotesStore.table_names_for(source),
            RethinkNotesStore.table_names_for(target),
        )
        for a, b in pairs:
            db = r.db(parsed.db)
            db.table(b).insert(db.table(a)).run(conn)
    finally:
        close_quietly(conn)


def measure_catch_up(
    python: str,
    kind: str,
    count: int,
    rethinkdb_url: str,
    table: str,
    database_url: str,
) -> dict:
    out = subprocess.run(
        [python, "-c", _CATCH_UP, kind, str(count), rethinkdb_url, table, database_url],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(python: str, server: RethinkServer, folder: Path, size: dict) -> dict:
    """Every figure for the server side running under ``python``."""
    impl = implementation(python)
    # Gunicorn's workers as the project starts them (WORKERS unset).
    workers = default_workers("PyPy" if impl == "pypy" else "CPython", os.cpu_count())
    stack = Stack(python, folder, server.url, f"notes_{impl}")
    try:
        stack.start()
        note = requests.post(
            stack.api_url + "/notes", json={"title": "bench", "body": "x"}, timeout=30
        ).json()
        body = json.dumps({"title": "bench", "body": "written by wrk"})
        result = {
            "get": measure_path(stack.api_url, f"/notes/{note['id']}", size, workers),
            "post": measure_path(stack.api_url, "/notes", size, workers, "POST", body),
            "push": [
                measure_push(stack, rate, size["push_seconds"])
                for rate in size["push_rates"]
            ],
        }
    finally:
        stack.stop()
    result["workers"] = workers
    return result


def run(
    quick: bool, pythons: Optional[List[str]] = None, sizes: Optional[dict] = None
) -> dict:
    """Measure under each interpreter; ratios PyPy/CPython when both ran.

    ``sizes`` replaces the quick or full sizes (:data:`SIZES`), for tests.
    """
    if not START.is_file():
        return {"available": False, "reason": f"no RethinkDB start script at {START}"}
    size = sizes or SIZES[quick]
    pythons = pythons or default_pythons()
    results: Dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rethinkdb-") as tmp:
        folder = Path(tmp)
        server = RethinkServer(folder).start()
        try:
            sqlite_url = f"sqlite:///{folder / 'backlog.db'}"
            make_backlogs(server.url, "backlog", sqlite_url, size["changes"])
            for python in pythons:
                impl = implementation(python)
                work = folder / impl
                work.mkdir()
                results[impl] = {
                    "python": python,
                    **measure(python, server, work, size),
                }
                copy_tables(server.url, "backlog", f"backlog_{impl}")
                results[impl]["catch_up"] = {
                    kind: measure_catch_up(
                        python,
                        kind,
                        size["changes"],
                        server.url,
                        f"backlog_{impl}",
                        sqlite_url,
                    )
                    for kind in ("rethinkdb", "sql")
                }
        finally:
            server.stop()
    out = {
        "benchmark": "rethinkdb",
        "server": "RethinkDB 2.4.4 (../shared/rethinkdb), one server, hard durability",
        "quick": quick,
        "client": platform.python_implementation(),
        "results": results,
    }
    if "pypy" in results and "cpython" in results:
        pypy, cpython = results["pypy"], results["cpython"]
        out["pypy_over_cpython"] = {
            "get_rps": ratio_of(pypy["get"]["rps"], cpython["get"]["rps"]),
            "post_rps": ratio_of(pypy["post"]["rps"], cpython["post"]["rps"]),
            "push_p99": [
                ratio_of(a["p99_ms"], b["p99_ms"])
                for a, b in zip(pypy["push"], cpython["push"])
            ],
        }
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rethinkdb", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument(
        "--python",
        action="append",
        metavar="PATH",
        help="interpreter of the API and the worker (repeatable)",
    )
    args = parser.parse_args(argv)
    json.dump(run(args.quick, args.python), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
