"""SQLite under the SQL store: its dialect, connections, pragmas and writers' queue.

Write transactions begin ``IMMEDIATE`` (:class:`ImmediateSQLiteDialect`),
read-only engines begin none, a connection closes its open statements at
check-in (:class:`SQLiteConnection`), and writers take turns through a
process lock and ``flock`` (:class:`WriterQueue`).

Design: docs/design/stores.md#sqlite
"""

import contextlib
import fcntl
import logging
import os
import platform
import sqlite3
import threading
from collections.abc import Iterator
from typing import List
from typing import Optional
from typing import Set

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

log = logging.getLogger(__name__)

PYPY = platform.python_implementation() == "PyPy"


class ImmediateSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite whose transactions begin with ``BEGIN IMMEDIATE`` (write engines)."""

    supports_statement_cache = True

    def do_begin(self, dbapi_connection) -> None:
        dbapi_connection.execute("BEGIN IMMEDIATE").close()


_IMMEDIATE = "sqlite+pysqlite_immediate"
registry.register("sqlite.pysqlite_immediate", __name__, "ImmediateSQLiteDialect")


class SQLiteConnection(sqlite3.Connection):
    """A SQLite connection that knows which of its cursors are still open.

    A SELECT that was neither read to its end nor closed keeps its statement
    running, and a running statement holds the connection's read snapshot:
    every later read on that pooled connection sees the database as it was
    then. CPython frees such a cursor at once (reference counting), PyPy
    only in a major collection, so under PyPy one unread ``SELECT`` made a
    worker answer 404 for everything written after it. The pool closes what
    is still open when a connection comes back (:func:`_close_left_open`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.open_cursors: Set[_Cursor] = set()
        # Cursors closed with their statements finished, handed out again:
        # under PyPy a cursor has a finalizer, so each new one would outlive
        # the young generation and wait for a major collection.
        self.spare_cursors: List[_Cursor] = []

    def cursor(self, factory=None):
        if factory is None and self.spare_cursors:
            return self.spare_cursors.pop()
        return super().cursor(_Cursor if factory is None else factory)

    if PYPY:

        def _remember_cursor(self, cursor) -> None:
            # PyPy's own list of every cursor: a weak reference to each,
            # walked every 200 cursors to drop the dead ones. A cursor has a
            # ``__del__``, so it dies only in a major collection: with the
            # server's 64 MB nursery the list reached 300,000 entries and the
            # walk cost up to 20 us per query. It only serves to make a
            # cursor fetched from after a rollback raise, a check CPython
            # 3.11 dropped too (bpo-44092); ``open_cursors`` holds the ones
            # that matter.
            pass


class _Cursor(sqlite3.Cursor):
    """A cursor in its connection's ``open_cursors`` from each ``execute`` until
    it is closed or its statement finished: rows all fetched, or none to read
    (the driver then resets the statement, which gives back its snapshot).

    Closed with its statement finished, it is kept for the connection's next
    ``cursor()``; a statement still running is closed for real.
    """

    sql = None

    def execute(self, sql, parameters=()):
        self.sql = sql  # named in the report if it is left open
        self.connection.open_cursors.add(self)
        super().execute(sql, parameters)
        if self.description is None:
            self.connection.open_cursors.discard(self)
        return self

    def executemany(self, sql, seq_of_parameters):
        self.sql = sql
        self.connection.open_cursors.add(self)
        super().executemany(sql, seq_of_parameters)
        self.connection.open_cursors.discard(self)
        return self

    def fetchone(self):
        row = super().fetchone()
        if row is None:
            self.connection.open_cursors.discard(self)
        return row

    def fetchall(self):
        rows = super().fetchall()
        self.connection.open_cursors.discard(self)
        return rows

    def close(self) -> None:
        connection = self.connection
        spares = connection.spare_cursors
        if self in spares:
            return
        if self in connection.open_cursors or len(spares) >= _SPARE_CURSORS:
            connection.open_cursors.discard(self)
            super().close()
        else:
            spares.append(self)


#: Finished cursors a connection keeps for reuse; more are closed for real.
_SPARE_CURSORS = 4


def _close_left_open(dbapi_connection, connection_record) -> None:
    """Pool check-in: close the statements still open, and report them.

    Closing them gives the connection back its fresh snapshot; an open
    statement is still a bug of the code that ran it (a result neither
    read to its end nor closed), so it is logged as an error, which fails
    the tests.
    """
    cursors = getattr(dbapi_connection, "open_cursors", None)
    if not cursors:
        return
    statements = sorted(str(cursor.sql) for cursor in cursors)
    for cursor in list(cursors):
        cursor.close()
    log.error(
        "%d statement(s) left open on a pooled SQLite connection, closed now: %s",
        len(statements),
        "; ".join(statements),
    )


#: sqlite3.connect arguments of every SQLite engine.
_SQLITE_CONNECT = {"timeout": 30, "factory": SQLiteConnection}


def configure_engine(url: sa.URL, read_only: bool) -> sa.Engine:
    """An engine for the SQLite ``url``: WAL, foreign keys, open statements closed.

    Its transactions begin IMMEDIATE; ``read_only``: no transactions at all
    (for statements that only read).
    """
    if url.drivername in ("sqlite", "sqlite+pysqlite") and not read_only:
        url = url.set(drivername=_IMMEDIATE)
    engine = sa.create_engine(url, connect_args=_SQLITE_CONNECT)
    if url.database and url.database != ":memory:":
        folder = os.path.dirname(os.path.abspath(url.database))
        event.listen(engine, "do_connect", lambda *args: _make_folder(folder))
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "checkin", _close_left_open)
    return engine


def _make_folder(folder: str) -> None:
    # On first connect, not at engine creation: building the app has no side
    # effects. A folder that cannot be made shows up as a failed connect.
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        pass


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    # WAL lets readers run while one writer commits; foreign keys are off by
    # default in SQLite; a busy timeout makes writers queue instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # No implicit BEGIN from the driver: the dialect's do_begin starts each
    # transaction (none on the read-only engine).
    dbapi_connection.isolation_level = None


class WriterQueue:
    """One writer at a time across the processes of one SQLite file, in turn.

    A lock of the process (threads; greenlets under gevent, whose threading
    locks it patches), then ``flock`` on ``path``, opened once per process
    (a descriptor inherited across fork would share its lock). The
    ``flock`` wait blocks the process, as SQLite's busy wait did, but only
    for the other process's transaction, which writes keep short. Nested
    writes of one thread take it once. A file that cannot be opened (a
    read-only folder) leaves only SQLite's own wait.
    """

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: Optional[int] = None
        self._pid: Optional[int] = None

    def _file(self) -> Optional[int]:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                self._fd = None
        return self._fd

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn to write for the ``with`` block."""
        with self._lock:
            fd = self._file() if self._depth == 0 else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this process's lock file (opened again by the next write)."""
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = self._pid = None
