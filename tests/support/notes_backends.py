"""The notes stores the tests can run against: SQL always, RethinkDB when configured."""

import uuid
from collections.abc import Sequence

from rethinkdb import r

from core.settings import Settings
from db.notes.rethink import parse_url

#: Where the RethinkDB server for the tests is, if any (RETHINKDB_URL).
RETHINKDB_URL = Settings.from_env().rethinkdb_url
NO_RETHINKDB = (
    "RETHINKDB_URL is not set: no RethinkDB 2.4 server to run the RethinkDB store "
    "against (e.g. RETHINKDB_URL=rethinkdb://127.0.0.1:28015/test make test)"
)


def unique_table() -> str:
    """A table name of its own for one test, so tests never see each other's notes."""
    return f"notes_test_{uuid.uuid4().hex[:12]}"


def drop_tables(names: Sequence[str]) -> None:
    """Drop the tables a test's store created (notes, log, counter)."""
    target = parse_url(RETHINKDB_URL)
    with r.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        timeout=10,
    ) as conn:
        existing = r.db(target.db).table_list().run(conn)
        for name in names:
            if name in existing:
                r.db(target.db).table_drop(name).run(conn)
