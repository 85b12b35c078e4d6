"""LISTEN/NOTIFY wake-ups: a commit wakes a listener, a rollback does not, a
dropped connection costs a read, never an error. On a real PostgreSQL
(``TEST_DATABASE_URL``), under whichever driver this interpreter uses."""

import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from db.notes.sql import SqlNotesStore
from db.pg_wakeups import DELIVERIES_CHANNEL
from db.pg_wakeups import PgWakeups
from db.pg_wakeups import is_postgresql
from db.sql import Database
from db.webhooks import WebhookStore
from tests.support import live
from tests.support.processes import free_port

needs_postgresql = pytest.mark.skipif(
    not live.TEST_DATABASE_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)"
)


@pytest.fixture
def channel() -> str:
    """A channel of this test alone: tests in parallel share the database."""
    return "test_" + uuid.uuid4().hex


def notify(database: Database, channel: str, times: int = 1) -> None:
    with database.write() as connection:
        for _ in range(times):
            connection.execute(sa.text(f"NOTIFY {channel}"))


def listening(url: str, channel: str) -> PgWakeups:
    """A listener that has done its LISTEN (its first wait connects)."""
    wakeups = PgWakeups(url, channel)
    assert wakeups.wait(0) is True  # connected: "read the log once"
    assert wakeups.wait(0) is False
    return wakeups


def test_is_postgresql_whatever_the_driver():
    assert is_postgresql("postgresql://u@h/db")
    assert is_postgresql("postgresql+psycopg://u@h/db")
    assert not is_postgresql("sqlite:///x.db")


@needs_postgresql
def test_a_commit_wakes_the_listener_at_once_and_once(database, database_url, channel):
    wakeups = listening(database_url, channel)
    try:
        notify(database, channel, times=3)  # one transaction
        notify(database, channel)  # another
        started = time.monotonic()
        assert wakeups.wait(5) is True
        assert time.monotonic() - started < 1
        # Everything that came is consumed by that one wake-up.
        time.sleep(0.05)
        wakeups.wait(0)
        assert wakeups.wait(0.2) is False
    finally:
        wakeups.close()


@needs_postgresql
def test_a_rolled_back_write_wakes_nobody(database, database_url, channel):
    wakeups = listening(database_url, channel)
    try:
        with pytest.raises(RuntimeError):
            with database.write() as connection:
                connection.execute(sa.text(f"NOTIFY {channel}"))
                raise RuntimeError("rolled back")
        started = time.monotonic()
        assert wakeups.wait(0.3) is False
        assert time.monotonic() - started >= 0.25  # it waited, it did not spin
    finally:
        wakeups.close()


@needs_postgresql
def test_the_notes_store_announces_each_write_on_commit(database, database_url):
    store = SqlNotesStore(database)
    wakeups = listening(database_url, "notes_changes")
    try:
        note = store.create("title", "body")
        assert wakeups.wait(5) is True
        store.patch(note.id, {"title": "changed"})
        assert wakeups.wait(5) is True
        store.delete(note.id)
        assert wakeups.wait(5) is True
    finally:
        wakeups.close()


@needs_postgresql
def test_the_webhook_store_announces_a_delivery_to_handle_on_commit(
    database, database_url
):
    wakeups = listening(database_url, DELIVERIES_CHANNEL)
    try:
        WebhookStore(database).receive("gh", "1", "push", {}, handled=True)
        assert wakeups.wait(5) is True
    finally:
        wakeups.close()


@needs_postgresql
def test_the_store_follows_the_log_when_notified_not_when_it_polls(
    database, database_url
):
    writer = SqlNotesStore(database)
    wakeups = PgWakeups(database_url)
    reader = SqlNotesStore(database, poll_interval=30.0, wakeups=wakeups)
    try:
        changes = reader.changes(since=0, timeout=10)
        writer.create("first", "")
        assert next(changes).new.title == "first"
        # Written once the reader waits (it listens by then), from elsewhere.
        later = threading.Timer(0.5, writer.create, ("second", ""))
        later.start()
        started = time.monotonic()
        assert next(changes).new.title == "second"
        assert time.monotonic() - started < 2  # far below the 30 s poll
        later.join()
    finally:
        wakeups.close()


@needs_postgresql
def test_a_dropped_connection_costs_a_read_then_it_listens_again(
    database, database_url, channel
):
    wakeups = PgWakeups(database_url, channel, retry=0.1)
    try:
        assert wakeups.wait(0) is True
        with database.write() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query = :listen"
                ),
                {"listen": f"LISTEN {channel}"},
            )
        # Its loss is seen as "read the log", not raised.
        deadline = time.monotonic() + 5
        while not wakeups.wait(0.1):
            assert time.monotonic() < deadline, "the dropped connection went unseen"
        # Then it listens again, and is woken again.
        deadline = time.monotonic() + 5
        while not wakeups.wait(0.1):
            assert time.monotonic() < deadline, "it never listened again"
        notify(database, channel)
        assert wakeups.wait(5) is True
    finally:
        wakeups.close()


def test_a_server_out_of_reach_means_waiting_out_the_timeout(caplog):
    # Nothing listens on a fresh free port: the connection is refused.
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    wakeups = PgWakeups(url, retry=0.2)
    try:
        for _ in range(3):
            started = time.monotonic()
            assert wakeups.wait(0.1) is False
            assert 0.09 <= time.monotonic() - started < 1
    finally:
        wakeups.close()
    # Said once, not at every attempt.
    assert len([r for r in caplog.records if r.name == "db.pg_wakeups"]) == 1


def test_a_channel_is_a_plain_name():
    with pytest.raises(ValueError, match="not a channel name"):
        PgWakeups("postgresql://db/app", "notes; DROP TABLE notes")
