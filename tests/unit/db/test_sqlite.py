"""SQLite transactions: writes begin IMMEDIATE, reads never take the write lock."""

import datetime
import multiprocessing
import platform
import sqlite3
import threading

import pytest
import sqlalchemy as sa

from db.errors import Unavailable
from db.sql import _HOT_CURSOR
from db.sql import HOT_CONNECTIONS
from db.sql import Database
from db.sql import Query
from db.sqlite import WriterQueue
from web.metrics import backend_of


@pytest.fixture
def database(tmp_path):
    """A SQLite file whatever TEST_DATABASE_URL says: its locks are under test."""
    database = Database(f"sqlite:///{tmp_path / 'tx.db'}")
    with database.engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE counter (n INTEGER)"))
        connection.execute(sa.text("INSERT INTO counter VALUES (0)"))
    yield database
    database.dispose()


def _write_lock_free(database: Database) -> bool:
    """Whether another connection can take the write lock right now."""
    other = sqlite3.connect(database.engine.url.database, timeout=0)
    other.isolation_level = None
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as ex:
        assert "locked" in str(ex)
        return False
    finally:
        other.close()


def test_a_write_session_holds_the_write_lock_from_its_first_statement(database):
    with database.session() as session:
        session.execute(sa.text("SELECT n FROM counter")).scalar_one()
        assert not _write_lock_free(database)
    assert _write_lock_free(database)


def test_a_core_write_transaction_holds_the_write_lock(database):
    with database.engine.begin() as connection:
        connection.execute(sa.text("SELECT n FROM counter")).scalar_one()
        assert not _write_lock_free(database)


def test_reads_do_not_take_the_write_lock(database):
    with database.session(write=False) as session:
        assert session.execute(sa.text("SELECT n FROM counter")).scalar_one() == 0
        assert _write_lock_free(database)
    with database.read_engine.connect() as connection:
        connection.execute(sa.text("SELECT n FROM counter")).scalar_one()
        assert _write_lock_free(database)


def test_a_read_session_sees_each_committed_write(database):
    with database.session(write=False) as session:
        with database.session() as writer:
            writer.execute(sa.text("UPDATE counter SET n = n + 1"))
        assert session.execute(sa.text("SELECT n FROM counter")).scalar_one() == 1


def test_concurrent_read_then_write_transactions_neither_fail_nor_lose_updates(
    database,
):
    # Each transaction reads the counter, then writes it back plus one: with a
    # deferred BEGIN, two of them upgrading at once fail ("database is
    # locked") or, without a transaction, overwrite each other.
    threads, rounds = 8, 25
    errors = []

    def work():
        try:
            for _ in range(rounds):
                with database.session() as session:
                    n = session.execute(sa.text("SELECT n FROM counter")).scalar_one()
                    session.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})
        except Exception as ex:  # noqa: BLE001 - reported by the assertion below
            errors.append(ex)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    with database.session(write=False) as session:
        count = session.execute(sa.text("SELECT n FROM counter")).scalar_one()
    assert count == threads * rounds


def _hold_turn(path: str, held, release) -> None:
    with WriterQueue(path).turn():
        held.set()
        release.wait(10)


def test_writers_of_two_processes_take_turns(tmp_path):
    path = str(tmp_path / "tx.db-writers")
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    other = context.Process(target=_hold_turn, args=(path, held, release))
    other.start()
    try:
        assert held.wait(10)
        got = threading.Event()

        def mine():
            with WriterQueue(path).turn():
                got.set()

        waiter = threading.Thread(target=mine)
        waiter.start()
        assert not got.wait(0.3)  # the other process has the turn
        release.set()
        assert got.wait(10)  # handed on as soon as it lets go
        waiter.join(10)
    finally:
        release.set()
        other.join(10)


def test_a_write_inside_a_write_of_the_same_thread_takes_its_turn_once(database):
    with database.write() as outer:
        outer.execute(sa.text("UPDATE counter SET n = n + 1"))
        with database.writers.turn():  # would wait for itself if taken twice
            pass
    with database.read() as connection:
        assert connection.execute(sa.text("SELECT n FROM counter")).scalar() == 1


def test_in_memory_databases_have_no_writer_queue():
    assert Database("sqlite://").writers is None


def test_dispose_closes_the_lock_file_and_the_next_write_opens_it(database):
    with database.write() as connection:
        connection.execute(sa.text("UPDATE counter SET n = n + 1"))
    database.dispose()
    assert database.writers._fd is None
    with database.write() as connection:
        connection.execute(sa.text("UPDATE counter SET n = n + 1"))
    with database.read() as connection:
        assert connection.execute(sa.text("SELECT n FROM counter")).scalar() == 2


@pytest.mark.skipif(
    platform.python_implementation() != "PyPy", reason="PyPy's own sqlite3 module"
)
def test_pypy_connections_keep_no_list_of_their_cursors(database):
    # PyPy's sqlite3 would list a weak reference to each of the 500 cursors
    # (they die only in a major collection) and walk the list every 200.
    for engine in (database.engine, database.read_engine):
        with engine.connect() as connection:
            for _ in range(500):
                connection.execute(sa.text("SELECT n FROM counter")).scalar_one()
            dbapi_connection = connection.connection.dbapi_connection
            assert dbapi_connection._Connection__cursors == []
    with database.engine.begin() as connection:  # a write still commits
        connection.execute(sa.text("UPDATE counter SET n = n + 1"))
    with database.read_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT n FROM counter")).scalar_one() == 1


@pytest.mark.parametrize("write", [False, True])
def test_a_statement_left_open_is_closed_and_reported_at_check_in(
    database, statements_left_open, write
):
    # Rows enough that the SELECT is still running after its first row.
    with database.engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO counter VALUES (1), (2)"))
    engine = database.engine if write else database.read_engine
    with engine.begin() if write else engine.connect() as connection:
        left = connection.execute(sa.text("SELECT n FROM counter"))
        assert left.fetchone() is not None
    with database.engine.begin() as connection:
        connection.execute(sa.text("UPDATE counter SET n = n + 10"))
    # The next read on the pooled connection sees that write, under PyPy
    # too (it would see the snapshot of the unread SELECT).
    with engine.connect() as connection:
        total = connection.execute(sa.text("SELECT sum(n) FROM counter")).scalar()
    assert total == 33
    assert statements_left_open.take() == [
        "1 statement(s) left open on a pooled SQLite connection, closed now: "
        "SELECT n FROM counter"
    ]
    del left


def test_reads_that_finish_their_results_leave_nothing_open(
    database, statements_left_open
):
    with database.read() as connection:
        connection.execute(sa.text("SELECT n FROM counter")).first()
        connection.execute(sa.text("SELECT n FROM counter")).all()
        list(connection.execute(sa.text("SELECT n FROM counter")))
    database.ping()
    with database.session(write=False) as session:
        session.execute(sa.text("SELECT n FROM counter")).scalar_one()
    with database.read_engine.connect() as connection:
        cursors = connection.connection.dbapi_connection.open_cursors
        assert cursors == set()
    assert statements_left_open.take() == []


def test_a_query_on_the_driver_reads_what_sqlalchemy_reads(database_url):
    database = Database(database_url)
    table = sa.Table(
        "when",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("name", sa.String(10)),
    )
    table.create(database.engine)
    at = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)
    with database.write() as connection:
        connection.execute(sa.insert(table), {"id": 1, "at": at, "name": "a"})
    statement = sa.select(table.c.at, table.c.name).where(
        table.c.id == sa.bindparam("row_id"), table.c.name != "z"
    )
    with database.read() as connection:
        expected = connection.execute(statement, {"row_id": 1}).one()
    row = database.fetch_one(Query(statement), {"row_id": 1})
    assert (row.at, row.name) == tuple(expected)
    assert database.fetch_one(Query(statement), {"row_id": 2}) is None
    names = Query(sa.select(table.c.id, table.c.name), row=tuple)
    assert database.fetch_all(names, {}) == [(1, "a")]
    with pytest.raises(ValueError, match="date-times"):
        Query(statement, row=tuple)
    table.drop(database.engine)
    database.dispose()


def test_hot_reads_keep_one_connection_and_cursor_and_no_snapshot(
    database, statements_left_open
):
    checkouts = []
    sa.event.listen(database.read_engine, "checkout", lambda *_: checkouts.append(1))
    counter = sa.table("counter", sa.column("n"))
    query = Query(sa.select(counter.c.n).order_by(counter.c.n.desc()))
    with database.engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO counter VALUES (1), (2)"))
    cursors = set()
    for first in (2, 12, 22):
        assert database.fetch_one(query, {}).n == first  # the first of 3 rows
        cursors.update(raw.info[_HOT_CURSOR] for raw in database._kept)
        # Seen by the next read: no statement of this one holds its snapshot.
        with database.engine.begin() as connection:
            connection.execute(sa.text("UPDATE counter SET n = n + 10"))
    assert (len(checkouts), len(cursors)) == (1, 1)
    checkins = []
    sa.event.listen(database.read_engine, "checkin", lambda *_: checkins.append(1))
    database.dispose()
    assert checkins == [1]  # the kept connection went back, to be closed
    assert statements_left_open.take() == []


def test_hot_reads_of_many_threads_keep_a_few_connections(database):
    query = Query(sa.select(sa.table("counter", sa.column("n")).c.n))
    seen = []

    def read() -> None:
        seen.extend(database.fetch_one(query, {}).n for _ in range(300))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [0] * 2400
    assert 1 <= len(database._kept) <= HOT_CONNECTIONS


def test_a_hot_read_that_fails_does_not_spoil_the_next(database):
    missing = Query(sa.select(sa.table("missing", sa.column("n")).c.n))
    with pytest.raises(Unavailable):
        database.fetch_one(missing, {})
    counter = sa.table("counter", sa.column("n"))
    assert database.fetch_one(Query(sa.select(counter.c.n)), {}).n == 0


def test_a_query_on_a_database_that_cannot_open_is_unavailable(tmp_path):
    (tmp_path / "a-file").write_text("")  # where the folder should be
    database = Database(f"sqlite:///{tmp_path / 'a-file' / 'x.db'}")
    query = Query(sa.select(sa.literal(1).label("one")))
    with pytest.raises(Unavailable) as caught:
        database.fetch_one(query, {})
    database.dispose()
    assert backend_of(caught.value) == "sql"  # its label in store_errors_total


def test_finished_statements_hand_their_cursor_to_the_next(database):
    with database.engine.connect() as connection:
        dbapi_connection = connection.connection.dbapi_connection
        cursors = set()
        for _ in range(20):
            with connection.begin():  # BEGIN IMMEDIATE, an UPDATE, a SELECT
                connection.execute(sa.text("UPDATE counter SET n = n + 1"))
                connection.execute(sa.text("SELECT n FROM counter")).all()
            cursors.update(dbapi_connection.spare_cursors)
        assert len(cursors) <= 2
        assert dbapi_connection.open_cursors == set()
    with database.read_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT n FROM counter")).scalar() == 20


def test_a_cursor_closed_mid_statement_is_not_handed_out_again(database):
    with database.engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO counter VALUES (1), (2)"))
    with database.read_engine.connect() as connection:
        dbapi_connection = connection.connection.dbapi_connection
        result = connection.execute(sa.text("SELECT n FROM counter"))
        cursor = result.cursor
        assert result.first() is not None  # closes it, with rows left to read
        assert cursor not in dbapi_connection.spare_cursors
        with database.engine.begin() as writer:
            writer.execute(sa.text("UPDATE counter SET n = n + 10"))
        # No statement of the first read holds its snapshot.
        assert connection.execute(sa.text("SELECT sum(n) FROM counter")).scalar() == 33


def test_a_cursor_closed_twice_is_handed_out_once(database):
    raw = database.engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("UPDATE counter SET n = 1")
    cursor.close()
    cursor.close()
    first, second = raw.cursor(), raw.cursor()
    assert first is cursor and second is not cursor
    raw.close()
