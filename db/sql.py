"""The SQL store's plumbing: engine, declarative base, sessions.

Tables live in the modules of the parts that own them (``db/links.py``, ...);
they all hang off :class:`Base`, and ``db.schema`` gathers them.

SQLite transactions. The driver's own transaction handling is switched off
(it began a transaction only before the first INSERT/UPDATE/DELETE) and
every transaction of :attr:`Database.engine` begins where SQLAlchemy begins
it, with ``BEGIN IMMEDIATE`` (the dialect :class:`ImmediateSQLiteDialect`):
it takes the database's write lock at once, waiting up to the busy timeout
for it. In WAL mode a deferred transaction that has read and then writes
cannot wait for the lock: if another writer holds it, or committed since
the read, SQLite fails at once with "database is locked". The read-only
handles, :attr:`Database.read_engine` (an engine of its own on SQLite) and
``Database.session(write=False)``, begin no transaction: each statement
reads the latest committed data on its own, as the driver did, and never
queues for the write lock. Writing through them is a bug (the write would
commit at once); anything not marked read-only is a write. (A dialect
rather than a ``begin`` event listener: any engine event makes SQLAlchemy
dispatch events around every statement, a cost the hot paths notice.)

Writers queue in turn (:class:`WriterQueue`). SQLite's own wait for the
write lock (the busy timeout) sleeps 1, 2, 5, ... up to 100 ms between
tries, and under the gevent worker that sleep stops every request of the
process; a writer that lost a few tries could wait 100 ms while the other
process took the lock again and again (POST /notes p99 120-190 ms with two
workers, bench/run.py). So every write of :class:`Database` on a SQLite
file first takes a lock of its process, then ``flock`` on a file beside
the database, which the kernel hands on as soon as the holder lets go.
SQLite's lock still guards the data; the queue only decides who asks next.
"""

import contextlib
import fcntl
import os
import platform
import sqlite3
import threading
from collections.abc import Iterator
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc
from sqlalchemy import orm
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from db.errors import Unavailable


class ImmediateSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite whose transactions begin with ``BEGIN IMMEDIATE`` (write engines)."""

    supports_statement_cache = True

    def do_begin(self, dbapi_connection) -> None:
        dbapi_connection.execute("BEGIN IMMEDIATE")


_IMMEDIATE = "sqlite+pysqlite_immediate"
registry.register("sqlite.pysqlite_immediate", __name__, "ImmediateSQLiteDialect")


_PYPY = platform.python_implementation() == "PyPy"


class _PyPySQLiteConnection(sqlite3.Connection):
    """PyPy's SQLite connection without its list of every cursor it made.

    PyPy's sqlite3 (pure Python) keeps a weak reference to each cursor and,
    every 200 cursors, walks the list to drop the dead ones. A cursor has a
    ``__del__``, so it dies only in a major collection: with the server's
    64 MB nursery the list reached 300,000 entries, and the walk cost up to
    20 us per query (SQLAlchemy makes a cursor per statement). The list only
    serves to make a cursor fetched from after a rollback raise; CPython 3.11
    dropped that check (bpo-44092), and SQLAlchemy never fetches after its
    transaction ends.
    """

    def _remember_cursor(self, cursor) -> None:
        pass


#: sqlite3.connect arguments of every SQLite engine.
_SQLITE_CONNECT = {"timeout": 30}
if _PYPY:
    _SQLITE_CONNECT["factory"] = _PyPySQLiteConnection


class Base(orm.DeclarativeBase):
    """Declarative base of every SQL table."""


# The PostgreSQL driver that works under each interpreter (see requirements.txt).
_PG_DRIVER = "psycopg2cffi" if _PYPY else "psycopg"


def make_engine(url: str, read_only: bool = False) -> sa.Engine:
    """An engine for ``url``; SQLite files get their folder, WAL and foreign keys.

    A plain ``postgresql://`` URL gets the driver that works under this
    interpreter. On SQLite its transactions begin IMMEDIATE; ``read_only``:
    no transactions at all (for statements that only read).
    """
    sa_url = sa.engine.make_url(url)
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername=f"postgresql+{_PG_DRIVER}")
    if sa_url.get_backend_name() != "sqlite":
        return sa.create_engine(sa_url, pool_pre_ping=True)
    if sa_url.drivername in ("sqlite", "sqlite+pysqlite") and not read_only:
        sa_url = sa_url.set(drivername=_IMMEDIATE)
    engine = sa.create_engine(sa_url, connect_args=_SQLITE_CONNECT)
    if sa_url.database and sa_url.database != ":memory:":
        folder = os.path.dirname(os.path.abspath(sa_url.database))
        event.listen(engine, "do_connect", lambda *args: _make_folder(folder))
    event.listen(engine, "connect", _sqlite_pragmas)
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


class Database:
    """The SQL store handle the resources share: engines and session factories.

    ``engine`` and ``session()`` are for writes (on SQLite their transactions
    begin IMMEDIATE); ``read_engine`` and ``session(write=False)`` are for
    work that only reads (on SQLite it never queues for the write lock; an
    engine of its own there, the same engine elsewhere).
    """

    def __init__(self, url: str):
        self.engine = make_engine(url)
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database not in (
            None,
            "",
            ":memory:",
        ):
            self.read_engine = make_engine(url, read_only=True)
            self.writers: Optional[WriterQueue] = WriterQueue(
                os.path.abspath(database) + "-writers"
            )
        else:  # one in-memory database is one connection's: share the engine
            self.read_engine = self.engine
            self.writers = None
        self.sessionmaker = orm.sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessionmaker = orm.sessionmaker(
            self.read_engine, expire_on_commit=False
        )

    @contextlib.contextmanager
    def session(self, write: bool = True) -> Iterator[orm.Session]:
        """A session that commits on success, rolls back on error, always closes.

        Args:
            write: False for a session that only reads: on SQLite it then
                does not take the write lock (see the module's docstring).
        """
        factory = self.sessionmaker if write else self._read_sessionmaker
        with self._turn(write), factory() as session:
            try:
                yield session
                session.commit()
            except exc.OperationalError as ex:
                session.rollback()
                raise Unavailable("SQL database unavailable") from ex
            except BaseException:
                session.rollback()
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A Core connection for statements that only read (hot paths)."""
        try:
            with self.read_engine.connect() as connection:
                yield connection
        except exc.OperationalError as ex:
            raise Unavailable("SQL database unavailable") from ex

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A Core connection in a write transaction (hot paths).

        Commits on success, rolls back on error. Keep it short: on SQLite it
        holds the database's write lock from its first statement to the end.
        """
        try:
            with self._turn(True), self.engine.begin() as connection:
                yield connection
        except exc.OperationalError as ex:
            raise Unavailable("SQL database unavailable") from ex

    def _turn(self, write: bool):
        if write and self.writers is not None:
            return self.writers.turn()
        return contextlib.nullcontext()

    def ping(self) -> None:
        """Raise Unavailable unless the database answers ``SELECT 1``."""
        try:
            with self.read_engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except exc.SQLAlchemyError as ex:
            raise Unavailable("SQL database unavailable") from ex

    def dispose(self) -> None:
        """Close pooled connections (after fork, or at shutdown)."""
        self.engine.dispose()
        if self.writers is not None:
            self.writers.close()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
