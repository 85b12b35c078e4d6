"""The SQL store's plumbing: engine, declarative base, sessions.

Tables live in the modules of the parts that own them (``db/links.py``, ...);
they all hang off :class:`Base`, and ``db.schema`` gathers them.

SQLite transactions. The driver's own transaction handling is switched off
(it began a transaction only before the first INSERT/UPDATE/DELETE) and
every transaction begins where SQLAlchemy begins it, with ``BEGIN
IMMEDIATE``: it takes the database's write lock at once, waiting up to the
busy timeout for it. In WAL mode a deferred transaction that has read and
then writes cannot wait for the lock: if another writer holds it, or
committed since the read, SQLite fails at once with "database is locked".
The read-only handles, :attr:`Database.read_engine` and
``Database.session(write=False)``, begin no transaction on SQLite: each
statement reads the latest committed data on its own, as the driver did,
and never queues for the write lock. Writing through them is a bug (the
write would commit at once); anything not marked read-only is a write.
"""

import contextlib
import os
import platform
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc
from sqlalchemy import orm

from db.errors import Unavailable

#: Execution option of the read-only handles: no transaction on SQLite.
SQLITE_READ_ONLY = "sqlite_read_only"


class Base(orm.DeclarativeBase):
    """Declarative base of every SQL table."""


# The PostgreSQL driver that works under each interpreter (see requirements.txt).
_PG_DRIVER = "psycopg2cffi" if platform.python_implementation() == "PyPy" else "psycopg"


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get their folder, WAL and foreign keys.

    A plain ``postgresql://`` URL gets the driver that works under this interpreter.
    """
    sa_url = sa.engine.make_url(url)
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername=f"postgresql+{_PG_DRIVER}")
    if sa_url.get_backend_name() != "sqlite":
        return sa.create_engine(sa_url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})
    if sa_url.database and sa_url.database != ":memory:":
        folder = os.path.dirname(os.path.abspath(sa_url.database))
        event.listen(engine, "do_connect", lambda *args: _make_folder(folder))
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
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
    # No implicit BEGIN from the driver: _sqlite_begin starts each transaction.
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: sa.Connection) -> None:
    if not connection.get_execution_options().get(SQLITE_READ_ONLY):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The SQL store handle the resources share: engines and session factories.

    ``engine`` and ``session()`` are for writes (on SQLite their transactions
    begin IMMEDIATE); ``read_engine`` and ``session(write=False)`` are for
    work that only reads (on SQLite it never queues for the write lock). Both
    share one connection pool.
    """

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.read_engine = self.engine.execution_options(**{SQLITE_READ_ONLY: True})
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
        with factory() as session:
            try:
                yield session
                session.commit()
            except exc.OperationalError as ex:
                session.rollback()
                raise Unavailable("SQL database unavailable") from ex
            except BaseException:
                session.rollback()
                raise

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
