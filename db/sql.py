"""The SQL store's plumbing: engine, declarative base, sessions.

Tables live in the modules of the parts that own them (``db/links.py``, ...);
they all hang off :class:`Base`, and ``db.schema`` gathers them.
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


class Database:
    """The SQL store handle the resources share: an engine and a session factory."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessionmaker = orm.sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[orm.Session]:
        """A session that commits on success, rolls back on error, always closes."""
        with self.sessionmaker() as session:
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
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except exc.SQLAlchemyError as ex:
            raise Unavailable("SQL database unavailable") from ex

    def dispose(self) -> None:
        """Close pooled connections (after fork, or at shutdown)."""
        self.engine.dispose()
