"""The SQL store's plumbing: engine, declarative base, sessions.

Tables live in the modules of the parts that own them and hang off
:class:`Base`; ``db.schema`` gathers them, and SQLite's particulars are in
:mod:`db.sqlite`. The read-only handles (:attr:`Database.read_engine`,
``Database.session(write=False)``) must not write: on SQLite they begin no
transaction, so a write through them would commit at once.
"""

import collections
import contextlib
import datetime
import os
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import Dict
from typing import Optional
from typing import Tuple

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy import orm

from db.errors import Unavailable
from db.sqlite import PYPY
from db.sqlite import WriterQueue
from db.sqlite import configure_engine


class Base(orm.DeclarativeBase):
    """Declarative base of every SQL table."""


# The PostgreSQL driver that works under each interpreter (see requirements.txt).
_PG_DRIVER = "psycopg2cffi" if PYPY else "psycopg"
#: Where a pooled connection keeps the cursor of :meth:`Database.fetch_all`.
_HOT_CURSOR = "fetch_all_cursor"
#: Read connections a SQLite :class:`Database` keeps out of its pool, at most.
HOT_CONNECTIONS = 4


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
    return configure_engine(sa_url, read_only)


class Query:
    """A SELECT compiled once per dialect and run on the driver's own cursor.

    For the hottest reads (:meth:`Database.fetch_all`): under PyPy,
    SQLAlchemy's connection, execution context and result cost more than the
    query itself (``GET /notes/{id}``: about 29 us in the store, 7 us on the
    driver). Rows are named tuples of the selected columns (``row``, whose
    fields are in the columns' order, or one made here); date-times come
    back as SQLAlchemy's results give them (SQLite keeps them as text).
    ``row=tuple``: the driver's own tuples, for a caller that makes its own
    rows from them (no date-time column).
    """

    def __init__(self, statement: sa.Select, row: Optional[type] = None):
        self.statement = statement
        columns = list(statement.selected_columns)
        self.row = row or collections.namedtuple(
            "Row", [column.key for column in columns]
        )
        self._datetimes = [
            index
            for index, column in enumerate(columns)
            if isinstance(column.type, sa.DateTime)
        ]
        if row is tuple and self._datetimes:
            raise ValueError("row=tuple would leave date-times as the driver's text")
        self._compiled: Dict[str, Tuple[str, Optional[tuple], dict]] = {}

    def compiled(self, dialect) -> Tuple[str, Optional[tuple], dict]:
        """The SQL text for ``dialect``, its parameters' order, their defaults."""
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            order = tuple(compiled.positiontup) if dialect.positional else None
            found = self._compiled[dialect.name] = (
                compiled.string,
                order,
                dict(compiled.params),
            )
        return found

    def make(self, values: tuple):
        """A row of the query from the driver's ``values``."""
        if self._datetimes:
            values = list(values)
            for index in self._datetimes:
                if isinstance(values[index], str):
                    values[index] = datetime.datetime.fromisoformat(values[index])
        return self.row._make(values)


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
            self._kept_size = HOT_CONNECTIONS
        else:  # one in-memory database is one connection's: share the engine
            self.read_engine = self.engine
            self.writers = None
            # PostgreSQL's pool pings each connection it hands out, which
            # spares a read on a connection a restart has closed.
            self._kept_size = 0
        # Connections of the read engine, checked out, for fetch_all. The
        # pool's check-out and check-in cost more than a hot read's own
        # statement (7% of a GET /notes/{id} in a PyPy worker), and a hot read
        # leaves nothing behind to reset: it runs outside any transaction and
        # reads its statement to the end. A list's pop and append are atomic,
        # so threads and greenlets take one each without a lock.
        self._kept: list = []
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

    def fetch_one(self, query: Query, params: Mapping[str, Any]):
        """The first row of ``query`` with ``params``, or None (hot reads)."""
        rows = self.fetch_all(query, params)
        return rows[0] if rows else None

    def fetch_all(self, query: Query, params: Mapping[str, Any]) -> list:
        """Every row of ``query`` with ``params`` (hot reads)."""
        sql, order, defaults = query.compiled(self.read_engine.dialect)
        values = {**defaults, **params}
        args = values if order is None else tuple(values[name] for name in order)
        dbapi = self.read_engine.dialect.loaded_dbapi
        try:
            try:
                raw = self._kept.pop()
            except IndexError:
                raw = self.read_engine.raw_connection()
            # One cursor per connection, kept: under PyPy a cursor has a
            # finalizer, so each new one lives on until a major collection.
            cursor = raw.info.get(_HOT_CURSOR)
            if cursor is None:
                cursor = raw.info[_HOT_CURSOR] = raw.cursor()
            try:
                cursor.execute(sql, args)
                # Every row: a statement left unfinished would keep its
                # read transaction, and this connection's snapshot, open.
                rows = cursor.fetchall()
            except BaseException:
                del raw.info[_HOT_CURSOR]
                cursor.close()
                raw.close()
                raise
        except (exc.OperationalError, dbapi.OperationalError) as ex:
            raise Unavailable("SQL database unavailable") from ex
        if len(self._kept) < self._kept_size:
            self._kept.append(raw)
        else:
            raw.close()
        if query.row is tuple:
            return rows
        return [query.make(row) for row in rows]

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
                connection.execute(sa.text("SELECT 1")).close()
        except exc.SQLAlchemyError as ex:
            raise Unavailable("SQL database unavailable") from ex

    def dispose(self) -> None:
        """Close pooled connections (after fork, or at shutdown)."""
        while self._kept:
            self._kept.pop().close()
        self.engine.dispose()
        if self.writers is not None:
            self.writers.close()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
