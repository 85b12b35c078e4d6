"""Commit announcements through PostgreSQL: NOTIFY on write, LISTEN in the follower.

The stores run ``NOTIFY`` in each write's transaction, so PostgreSQL delivers
it on commit (never for a rollback) to listeners on any machine; a
:class:`PgWakeups` LISTENs on a connection of its own. A notification only
says "look now": the follower reads the log itself, and a lost one costs up
to its fallback poll. Design: docs/design/change-stream.md
"""

import logging
import select
import time
from typing import Optional
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import exc

from db.sql import make_engine

log = logging.getLogger(__name__)

#: The channel the notes store's commits are announced on.
CHANNEL = "notes_changes"
#: Run in a write's transaction: delivered on commit, dropped on rollback.
#: Several in one transaction reach a listener once.
NOTIFY = sa.text(f"NOTIFY {CHANNEL}")
#: The channel new inbound webhook deliveries are announced on (the runners').
DELIVERIES_CHANNEL = "webhook_deliveries"
NOTIFY_DELIVERIES = sa.text(f"NOTIFY {DELIVERIES_CHANNEL}")

#: Seconds between two attempts to listen again after the connection failed.
RETRY_INTERVAL = 1.0


def is_postgresql(url: str) -> bool:
    """True if ``url`` names a PostgreSQL database (whatever its driver)."""
    return sa.engine.make_url(url).get_backend_name() == "postgresql"


class _Listening(Protocol):
    def wait(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


class PgWakeups:
    """Waits for a NOTIFY on ``channel``: the push worker's and runners' ``Wakeups``.

    It connects on the first :meth:`wait` (in the thread that waits), not
    when it is made. While the server cannot be reached,
    :meth:`wait` sleeps its timeout and tries again every ``retry``
    seconds; the first wait after it listens again returns True, since
    commits may have gone unannounced meanwhile.

    Args:
        url: A PostgreSQL URL (``DATABASE_URL``).
        channel: What to LISTEN on.
        retry: Seconds between attempts to connect again.
    """

    def __init__(self, url: str, channel: str = CHANNEL, retry: float = RETRY_INTERVAL):
        # LISTEN takes a name, not a bind parameter: only a plain identifier.
        if not channel.isidentifier():
            raise ValueError(f"not a channel name: {channel!r}")
        self._engine = make_engine(url)
        self._channel = channel
        self._retry = retry
        self._listening: Optional[_Listening] = None
        self._next_attempt = 0.0
        self._down = False
        dbapi = self._engine.dialect.loaded_dbapi
        self._errors = (dbapi.Error, exc.SQLAlchemyError, OSError)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True once a commit was announced."""
        timeout = max(timeout, 0.0)
        if self._listening is None:
            if time.monotonic() >= self._next_attempt:
                try:
                    self._listening = _listener(self._engine, self._channel)
                except self._errors as ex:
                    self._failed("cannot LISTEN", ex)
                else:
                    self._down = False
                    return True  # commits before the LISTEN were not announced
            time.sleep(timeout)
            return False
        try:
            return self._listening.wait(timeout)
        except self._errors as ex:
            self._failed("the LISTEN connection failed", ex)
            return True  # what it was about to say is lost: read the log

    def _failed(self, what: str, ex: BaseException) -> None:
        # Once per outage: a server that stays down is reported by the store.
        level = logging.DEBUG if self._down else logging.WARNING
        self._down = True
        log.log(
            level,
            "%s on %s (%s): polling only, listening again in %.0f s",
            what,
            self._channel,
            ex,
            self._retry,
        )
        self._next_attempt = time.monotonic() + self._retry
        self._drop()

    def _drop(self) -> None:
        if self._listening is not None:
            try:
                self._listening.close()
            except self._errors:
                pass
            self._listening = None

    def close(self) -> None:
        """Stop listening and close the connection."""
        self._drop()
        self._engine.dispose()


def _listener(engine: sa.Engine, channel: str) -> _Listening:
    """A connection of its own, out of the engine's pool, LISTENing on ``channel``.

    Each interpreter has its own driver (:func:`db.sql.make_engine`): psycopg2cffi
    under PyPy (``poll()`` and ``notifies``), psycopg 3 under CPython
    (``notifies()``).
    """
    raw = engine.raw_connection()
    raw.detach()  # kept for good, in autocommit: never back in the pool
    connection = raw.dbapi_connection
    try:
        connection.rollback()  # the pool's pre-ping may have begun a transaction
        connection.autocommit = True
        cursor = connection.cursor()
        try:
            cursor.execute(f"LISTEN {channel}")
        finally:
            cursor.close()
    except BaseException:
        connection.close()
        raise
    if engine.dialect.driver == "psycopg":
        return _Psycopg3(connection)
    return _Psycopg2(connection)


class _Psycopg2:
    """psycopg2's API (psycopg2cffi): wait on the socket, ``poll()``, ``notifies``."""

    def __init__(self, connection):
        self._connection = connection
        # poll, not select: select fails on a descriptor numbered 1024 or more.
        self._poll = select.poll()
        self._poll.register(connection.fileno(), select.POLLIN)

    def wait(self, timeout: float) -> bool:
        if not self._connection.notifies and self._poll.poll(timeout * 1000):
            self._connection.poll()  # reads what came, raises if the server left
        if not self._connection.notifies:
            return False
        del self._connection.notifies[:]  # one read of the log serves them all
        return True

    def close(self) -> None:
        self._connection.close()


class _Psycopg3:
    """psycopg 3's API: the ``notifies()`` generator, with a timeout."""

    def __init__(self, connection):
        self._connection = connection

    def wait(self, timeout: float) -> bool:
        came = list(self._connection.notifies(timeout=timeout, stop_after=1))
        if came:  # and the others already received: one read of the log serves all
            for _ in self._connection.notifies(timeout=0):
                pass
        return bool(came)

    def close(self) -> None:
        self._connection.close()
