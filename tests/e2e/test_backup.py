"""End to end: a backup taken under steady writes restores every earlier write.

Notes are POSTed and PATCHed without pause through a live server while
``python -m api backup`` runs; the backup is restored into an empty system
(a new SQLite file, a new PostgreSQL database, a new RethinkDB database)
and a server started on it must answer every write acknowledged before the
backup began. SQL: the SQLite file of the test, or with TEST_DATABASE_URL
its PostgreSQL schema; RethinkDB: with RETHINKDB_URL (else skipped).
"""

import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path
from typing import List
from typing import Tuple

import pytest
import requests
import sqlalchemy as sa
from rethinkdb import r

from db.notes.rethink import RethinkNotesStore
from db.notes.rethink_log import COUNTER_ID
from db.rethink import Connector
from db.rethink import close_quietly
from db.rethink import parse_url
from db.sql import make_engine
from tests.support import live
from tests.support.notes_backends import RETHINKDB_URL
from tests.support.write_load import WriteLoad

#: Acknowledged writes to have before the backup starts.
BEFORE = 40


def cli(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """``python -m api ARGS`` in the test's environment, ``env`` on top."""
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=live.ROOT,
        env=live.child_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def backup_under_writes(
    url: str, tmp_path: Path, env: dict, store: str, to: Path
) -> List[Tuple[str, str, str]]:
    """Run ``backup STORE`` while notes are written; the writes acked before it."""
    load = WriteLoad(url, threads=3).start()
    try:
        live.wait_until(
            lambda: len(load.acked) >= BEFORE, what=f"{BEFORE} acknowledged writes"
        )
        before = list(load.acked)
        done = cli(tmp_path, env, "backup", store, "--to", str(to))
        after = len(load.acked)
    finally:
        load.stop()
    assert done.returncode == 0, done.stderr
    assert f"to {to}" in done.stdout
    # The load ran on while the backup did (it took a process's start at least).
    assert after > len(before)
    return before


def missing_after_restore(url: str, before) -> List[str]:
    """The writes of ``before`` that the server at ``url`` does not show."""
    created, patched = {}, {}
    for kind, note_id, body in before:
        (created if kind == "note.created" else patched)[note_id] = body
    missing = []
    with requests.Session() as session:
        for note_id, body in created.items():
            answer = session.get(f"{url}/notes/{note_id}", timeout=10)
            if answer.status_code != 200:
                missing.append(f"{note_id}: {answer.status_code}")
                continue
            got = answer.json()["body"]
            # A patch acknowledged after the backup began may be in it too.
            allowed = {patched[note_id]} if note_id in patched else {body}
            allowed.add(patched.get(note_id, body + " patched"))
            if got not in allowed:
                missing.append(f"{note_id}: body {got!r}, expected {allowed}")
    return missing


def writes_on(url: str) -> None:
    """The restored system takes a new note and reads it back."""
    answer = requests.post(f"{url}/notes", json={"title": "t", "body": "new"})
    assert answer.status_code == 201, answer.text
    note_id = answer.json()["id"]
    assert requests.get(f"{url}/notes/{note_id}").json()["body"] == "new"


@pytest.fixture
def empty_sql_url(tmp_path):
    """A SQL database with nothing in it: a new SQLite file, or PostgreSQL database.

    PostgreSQL: the test's URL (its schema, as search_path) on a new database,
    dropped afterwards.
    """
    if not live.TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"restore_{uuid.uuid4().hex[:12]}"
    engine = make_engine(live.TEST_DATABASE_URL)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(live.database_url(tmp_path)).set(database=name)
    yield url.render_as_string(hide_password=False)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    engine.dispose()


def test_sql_backup_under_writes_restores_every_earlier_write(
    live_server, tmp_path, empty_sql_url
):
    server = live_server()
    backup = tmp_path / "sql.backup"
    before = backup_under_writes(server.url, tmp_path, {}, "sql", backup)
    server.stop()

    done = cli(
        tmp_path,
        {"DATABASE_URL": empty_sql_url},
        "restore",
        "sql",
        "--from",
        str(backup),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"restored {backup} into ")
    restored = live_server(env={"DATABASE_URL": empty_sql_url})
    assert missing_after_restore(restored.url, before) == []
    writes_on(restored.url)


def test_restore_refuses_a_store_with_data_unless_forced(live_server, tmp_path):
    server = live_server()
    requests.post(f"{server.url}/notes", json={"title": "t", "body": "b"})
    backup = tmp_path / "sql.backup"
    assert cli(tmp_path, {}, "backup", "sql", "--to", str(backup)).returncode == 0

    refused = cli(tmp_path, {}, "restore", "sql", "--from", str(backup))
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    server.stop()
    forced = cli(tmp_path, {}, "restore", "sql", "--from", str(backup), "--force")
    assert forced.returncode == 0, forced.stderr
    assert ", replacing " in forced.stdout


def _with_db(url: str, db: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + db))


def _drop_db(url: str) -> None:
    target = parse_url(url)
    conn = Connector(target, timeout=10).connect()
    try:
        if target.db in r.db_list().run(conn):
            r.db_drop(target.db).run(conn)
    finally:
        close_quietly(conn)


def _counter_and_highest(url: str, table: str) -> Tuple[int, int]:
    """The counter's value, and the highest number the notes and log hold."""
    target = parse_url(url)
    notes, changes, counter = (
        r.db(target.db).table(name) for name in RethinkNotesStore.table_names_for(table)
    )
    conn = Connector(target, timeout=10).connect()
    try:
        value = counter.get(COUNTER_ID)["value"].run(conn)
        highest = max(notes["seq"].max().run(conn), changes["id"].max().run(conn))
        return value, highest
    finally:
        close_quietly(conn)


def test_rethinkdb_backup_under_writes_restores_every_earlier_write(
    live_server, tmp_path, rethinkdb_table
):
    env = {"RETHINKDB_URL": RETHINKDB_URL, "RETHINKDB_TABLE": rethinkdb_table}
    server = live_server(env=env)
    backup = tmp_path / "notes.tar.gz"
    before = backup_under_writes(server.url, tmp_path, env, "rethinkdb", backup)
    server.stop()
    fresh_url = _with_db(RETHINKDB_URL, f"restore_{uuid.uuid4().hex[:12]}")
    fresh = {"RETHINKDB_URL": fresh_url, "RETHINKDB_TABLE": rethinkdb_table}
    try:
        done = cli(tmp_path, fresh, "restore", "rethinkdb", "--from", str(backup))

        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"restored {backup} ")
        value, highest = _counter_and_highest(fresh_url, rethinkdb_table)
        assert value >= highest  # new writes get numbers no change has
        restored = live_server(env=fresh)
        assert missing_after_restore(restored.url, before) == []
        writes_on(restored.url)
        restored.stop()
    finally:
        _drop_db(fresh_url)
