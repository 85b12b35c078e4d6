"""The notes stores the tests run against: SQL always, RethinkDB when configured.

``RETHINKDB_URL`` points the RethinkDB tests at a server (one or a cluster);
without it they skip, with the reason. ``TEST_REQUIRE_RETHINKDB=1`` (CI sets
it) turns that skip into a failure, so a CI run cannot pass without them.

The RethinkDB tables are made once per test session, by the same
``create_schema`` that ``python -m api init-db`` runs, under a name of the
session's own (so two sessions can share a server), and emptied before each
test that uses them: a test starts from an empty store, numbered from 1.

Fixtures (registered by ``tests/conftest.py``):

- ``rethinkdb_table``: the emptied session table (skips without a server);
- ``notes_backend``: parametrized over ``sql`` and ``rethinkdb``: which store,
  as settings overrides (unit tests) and environment (real processes).
"""

import dataclasses
import os
import uuid
from typing import Dict
from typing import Optional

import pytest
from rethinkdb import r

from core.settings import Settings
from db.notes.rethink import RethinkNotesStore
from db.rethink import Connector
from db.rethink import close_quietly
from db.rethink import parse_url

#: Where the RethinkDB server for the tests is, if any: RETHINKDB_URL, which
#: tests/conftest.py moves to TEST_RETHINKDB_URL so that the processes the
#: tests start see it only when handed it (pytest-xdist's workers read it there).
RETHINKDB_URL = Settings.from_env(
    {
        "RETHINKDB_URL": os.environ.get("TEST_RETHINKDB_URL")
        or os.environ.get("RETHINKDB_URL", "")
    }
).rethinkdb_url
#: Whether a RethinkDB test may skip (TEST_REQUIRE_RETHINKDB=1: it fails instead).
REQUIRED = os.environ.get("TEST_REQUIRE_RETHINKDB", "") not in ("", "0")
NO_RETHINKDB = (
    "RETHINKDB_URL is not set: no RethinkDB 2.4 server to run the RethinkDB store "
    "against (e.g. RETHINKDB_URL=rethinkdb://127.0.0.1:28015/test make test)"
)


def skip_or_fail(reason: str) -> None:
    """Skip a RethinkDB test with ``reason``, or fail it when they are required."""
    if REQUIRED:
        pytest.fail(f"TEST_REQUIRE_RETHINKDB is set, but: {reason}", pytrace=False)
    pytest.skip(reason)


def require_rethinkdb() -> str:
    """RETHINKDB_URL, or skip (fail when required) without it."""
    if not RETHINKDB_URL:
        skip_or_fail(NO_RETHINKDB)
    return RETHINKDB_URL


def empty_tables(url: str, table: str) -> None:
    """Delete every document of the notes, log and counter tables of ``table``."""
    target = parse_url(url)
    conn = Connector(target, timeout=10).connect()
    try:
        for name in RethinkNotesStore.table_names_for(table):
            r.db(target.db).table(name).delete(durability="soft").run(conn)
    finally:
        close_quietly(conn)


def drop_tables(url: str, table: str) -> None:
    """Drop the notes, log and counter tables of ``table`` where they exist."""
    target = parse_url(url)
    conn = Connector(target, timeout=10).connect()
    try:
        existing = r.db(target.db).table_list().run(conn)
        for name in RethinkNotesStore.table_names_for(table):
            if name in existing:
                r.db(target.db).table_drop(name).run(conn)
    finally:
        close_quietly(conn)


@pytest.fixture(scope="session")
def _rethinkdb_session_table():
    url = require_rethinkdb()
    table = f"notes_test_{uuid.uuid4().hex[:10]}"
    RethinkNotesStore.from_url(url, table=table, timeout=30).create_schema()
    yield table
    drop_tables(url, table)


@pytest.fixture
def rethinkdb_table(_rethinkdb_session_table) -> str:
    """The session's RethinkDB notes table, emptied for this test."""
    empty_tables(RETHINKDB_URL, _rethinkdb_session_table)
    return _rethinkdb_session_table


@dataclasses.dataclass(frozen=True)
class NotesBackend:
    """A notes store for a test: settings overrides and a child environment."""

    name: str
    rethinkdb_url: Optional[str] = None
    rethinkdb_table: str = "notes"

    @property
    def overrides(self) -> Dict[str, object]:
        """Keyword overrides of :class:`core.settings.Settings`."""
        if self.rethinkdb_url is None:
            return {"rethinkdb_url": None}
        return {
            "rethinkdb_url": self.rethinkdb_url,
            "rethinkdb_table": self.rethinkdb_table,
        }

    @property
    def env(self) -> Dict[str, str]:
        """Environment variables of a process using this store."""
        if self.rethinkdb_url is None:
            return {"RETHINKDB_URL": ""}
        return {
            "RETHINKDB_URL": self.rethinkdb_url,
            "RETHINKDB_TABLE": self.rethinkdb_table,
        }


@pytest.fixture(params=["sql", "rethinkdb"])
def notes_backend(request) -> NotesBackend:
    """Each notes store in turn (RethinkDB: emptied session tables)."""
    if request.param == "sql":
        return NotesBackend("sql")
    table = request.getfixturevalue("rethinkdb_table")
    return NotesBackend("rethinkdb", RETHINKDB_URL, table)
