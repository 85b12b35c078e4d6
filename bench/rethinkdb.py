"""Notes on a real RethinkDB server, under PyPy and CPython (docs/performance)."""

import contextlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict
from typing import Optional

from bench import common
from bench import paths
from db.notes.rethink import RethinkNotesStore
from db.notes.sql import SqlNotesStore
from db.schema import create_schema
from db.sql import Database
from tests.support.rethinkdb_servers import START
from tests.support.rethinkdb_servers import Cluster
from tests.support.rethinkdb_servers import start_script

SIZES = {
    True: {"window": 1.0, "max_windows": 6, "duration": 2.0, "per_worker": 0},
    False: {"window": 3.0, "max_windows": 40, "duration": 10.0, "per_worker": 5000},
}
SIZES[True].update(push_rates=(50, 200), push_seconds=2.0, changes=2000)
SIZES[False].update(push_rates=(100, 500), push_seconds=10.0, changes=10000)
TARGETS = {"get": paths.BY_NAME["notes-get"], "post": paths.BY_NAME["notes-post"]}


def catch_up(kind: str, count: int, url: str, table: str, database_url: str) -> dict:
    """``count`` changes read from a store (run in a fresh process)."""
    if kind == "rethinkdb":
        store = RethinkNotesStore.from_url(url, table=table, timeout=30)
    else:
        store = SqlNotesStore(Database(database_url))
    changes = store.changes(since=0, timeout=300)
    started, seen = time.perf_counter(), 0
    for seen, _change in enumerate(changes, 1):
        if seen == count:
            break
    seconds = time.perf_counter() - started
    # Closing the stream waits for an emptying of the outboxes under way (one
    # write), no part of catching up: timed apart. (Unnamed, CPython would close it
    # at the break, inside the time; PyPy only when collected.)
    changes.close()
    closed = time.perf_counter() - started
    return {
        "changes": seen,
        "seconds": round(seconds, 3),
        "per_s": round(seen / seconds, 1),
        "closed_s": round(closed, 3),
    }


def make_backlogs(rethinkdb_url: str, table: str, database_url: str, count: int):
    """``count`` changes on each store; on RethinkDB one dead number in ten."""
    first = RethinkNotesStore.from_url(rethinkdb_url, table=table, timeout=30)
    first.create_schema()

    def write(part: int) -> None:
        store = RethinkNotesStore.from_url(rethinkdb_url, table=table, timeout=30)
        for i in range(part, count, 8):
            if i % 10 == 0:  # a writer that dies after taking its number
                store._run(store.changelog.take_seq)
            store.create(f"backlog {i}", "bench")
        store.close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))  # and raise what a writer raised
    first.close()
    database = Database(database_url)
    create_schema(database.engine)
    sql = SqlNotesStore(database)
    for i in range(count):
        sql.create(f"backlog {i}", "bench")
    database.dispose()
    # The dead numbers are dead once their lease is over.
    time.sleep(first.changelog.lease + first.changelog.clock_margin)


def _rates(measured: dict) -> dict:
    return {
        "rps": round(measured["rps"], 1),
        "p50_ms": round(measured["latency_ms"]["p50"], 2),
        "p99_ms": round(measured["latency_ms"]["p99"], 2),
        "errors": measured["errors"]["total"],
        "warmup": (measured["warmup"] or {}).get("slice_rps", []),
        "leveled_off": bool((measured["warmup"] or {}).get("plateau")),
        "gc": common.describe_gc(measured.get("gc")),
        # CPU per request of the API (gunicorn and the push worker) and of
        # the database server: what bounds the rates on a shared machine.
        "cpu_ms": _rounded(measured.get("cpu_ms_per_request")),
        "database_cpu_ms": _rounded(measured.get("database_cpu_ms_per_request")),
    }


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 3)


def measure(impl: str, python: str, server: Cluster, folder: Path, size: dict) -> dict:
    """Every figure for the server side under ``python`` (``impl``: its name)."""
    url = server.url
    workers = common.workers(python)
    env = {"RETHINKDB_URL": url, "RETHINKDB_TABLE": f"notes_{impl}"}
    measurer = common.Measurer(
        folder,
        warmup=size["window"] * size["max_windows"],
        warmup_slice=size["window"],
        duration=size["duration"],
        min_requests=size["per_worker"],
    )
    result = {}
    # The embedded store first, measured alike: the targets are RethinkDB's
    # figures over these, in one run.
    sqlite = {"RETHINKDB_URL": ""}
    with common.Stack(python, folder / "sqlite", env=sqlite) as stack:
        measured = measurer.measure_all(
            stack, TARGETS, f"{impl} sqlite", workers, every=True
        )
        result.update({f"sqlite_{k}": _rates(v) for k, v in measured.items()})
    pids = [each.pid for each in server.servers]
    with common.Stack(python, folder, env=env, push=True, database_pids=pids) as stack:
        measured = measurer.measure_all(stack, TARGETS, impl, workers, every=True)
        result.update({key: _rates(value) for key, value in measured.items()})
        result["over_sqlite"] = {
            name: common.ratio(result[name]["rps"], result[f"sqlite_{name}"]["rps"])
            for name in ("get", "post")
        }
        result["push"] = []
        for rate in size["push_rates"]:
            with contextlib.closing(common.Arrivals(stack, "sse")) as sse:
                seconds, channels = size["push_seconds"], {"sse": sse}
                timed = common.timed_writes(stack, folder, rate, seconds, channels, 30)
            delays = timed.pop("sse")
            result["push"].append({**timed, **delays})
    result["workers"] = workers
    return result


def run(quick: bool, sizes=None, pythons=None) -> dict:
    """Under each interpreter; PyPy/CPython ratios when both ran.

    ``sizes`` and ``pythons`` (``{name: interpreter}``) replace the defaults.
    """
    if start_script() is None:
        return {"available": False, "reason": f"no RethinkDB start script at {START}"}
    size = sizes or SIZES[quick]
    results: Dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rethinkdb-") as tmp:
        folder = Path(tmp)
        server = Cluster(folder, size=1).start()
        try:
            for impl, python in (pythons or common.interpreters()).items():
                (folder / impl).mkdir()
                measured = measure(impl, python, server, folder / impl, size)
                results[impl] = {"python": python, **measured}
                # A backlog each: catching up voids the dead numbers.
                table, sqlite_url = f"backlog_{impl}", f"sqlite:///{folder / impl}.db"
                make_backlogs(server.url, table, sqlite_url, size["changes"])
                backlog = (size["changes"], server.url, table, sqlite_url)
                results[impl]["catch_up"] = {
                    kind: common.run_in(
                        python, "bench.rethinkdb:catch_up", kind, *backlog
                    )
                    for kind in ("rethinkdb", "sql")
                }
        finally:
            server.stop()
    out = {
        "benchmark": "rethinkdb",
        "server": "RethinkDB 2.4.4 (../shared/rethinkdb), one server, hard durability",
        "results": results,
    }
    if {"pypy", "cpython"} <= set(results):
        pypy, cpython = results["pypy"], results["cpython"]
        out["pypy_over_cpython"] = {
            f"{path}_rps": common.ratio(pypy[path]["rps"], cpython[path]["rps"])
            for path in ("get", "post")
        }
        out["pypy_over_cpython"]["push_p99"] = [
            common.ratio(a["p99_ms"], b["p99_ms"])
            for a, b in zip(pypy["push"], cpython["push"])
        ]
    return out


if __name__ == "__main__":
    sys.exit(common.figure_main(__doc__, run))
