"""Smoke test of bench.rethinkdb: it starts a server and the stack, and measures."""

import sys

import pytest

from bench import rethinkdb
from bench.wrk import WrkError
from bench.wrk import wrk_binary
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


def test_run_returns_every_figure(monkeypatch):
    if start_script() is None:
        skip_or_fail(f"no RethinkDB start script at {START} (set RETHINKDB_START)")
    try:
        wrk_binary()
    except WrkError as ex:
        pytest.skip(str(ex))
    monkeypatch.setattr(rethinkdb, "START", START)
    result = rethinkdb.run(True, [sys.executable], sizes=TINY)
    (figures,) = result["results"].values()
    for path in ("get", "post"):
        assert figures[path]["rps"] > 0 and figures[path]["errors"] == 0
        assert len(figures[path]["warmup"]) >= 3
    (push,) = figures["push"]
    assert push["notes"] == 20 and push["errors"] == 0
    assert 0 <= push["p50_ms"] <= push["max_ms"]
    for store in ("rethinkdb", "sql"):
        assert figures["catch_up"][store]["changes"] == 40
