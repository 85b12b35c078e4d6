"""Smoke test of bench.rethinkdb: it starts a server and the stack, and measures."""

import shutil
import sys

import pytest

from bench import rethinkdb
from tests.support.notes_backends import skip_or_fail
from tests.support.rethinkdb_servers import START
from tests.support.rethinkdb_servers import start_script

pytestmark = pytest.mark.rethinkdb_cluster

TINY = {
    "window": 1.0,
    "max_windows": 3,
    "duration": 1.0,
    "per_worker": 0,
    "push_rates": (20,),
    "push_seconds": 1.0,
    "changes": 40,
}


def test_run_returns_every_figure():
    if start_script() is None:
        skip_or_fail(f"no RethinkDB start script at {START} (set RETHINKDB_START)")
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (make bench installs it)")
    result = rethinkdb.run(True, sizes=TINY, pythons={"this": sys.executable})
    figures = result["results"]["this"]
    for path in ("get", "post", "sqlite_get", "sqlite_post"):
        assert figures[path]["rps"] > 0 and figures[path]["errors"] == 0
        assert len(figures[path]["warmup"]) >= 1
    for path in ("get", "post"):
        assert figures["over_sqlite"][path] > 0
        # Both sides of a request's CPU: the database server's is only
        # measured on RethinkDB, the embedded store has none of its own.
        assert figures[path]["cpu_ms"] > 0 and figures[path]["database_cpu_ms"] > 0
        assert figures[f"sqlite_{path}"]["database_cpu_ms"] is None
    (push,) = figures["push"]
    # k6 starts one iteration at 0 s and every 1/rate s to the end, inclusive.
    assert push["created"] == push["sent"] >= 20 and push["failed"] == 0
    assert push["events"] == push["created"] and push["missing"] == 0
    assert 0 <= push["p50_ms"] <= push["max_ms"]
    for store in ("rethinkdb", "sql"):
        caught_up = figures["catch_up"][store]
        assert caught_up["changes"] == 40
        assert 0 < caught_up["seconds"] <= caught_up["closed_s"]
