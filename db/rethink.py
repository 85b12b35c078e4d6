"""RethinkDB connection plumbing: the URL, bounded connections, driver errors.

Used by the RethinkDB notes store (``db.notes.rethink``) and by the tests
that set up and tear down its tables. Nothing here knows about notes.
"""

import dataclasses
import logging
import time
import urllib.parse
from typing import Optional

from rethinkdb import net
from rethinkdb.errors import ReqlAvailabilityError
from rethinkdb.errors import ReqlDriverError

log = logging.getLogger(__name__)

DEFAULT_PORT = 28015
DEFAULT_DB = "todo"

#: Errors that mean "the server cannot be used right now" (ReqlTimeoutError
#: and ReqlAuthError are ReqlDriverErrors, ReqlOpFailedError an availability
#: error; OSError covers socket errors the driver lets through).
DRIVER_ERRORS = (ReqlDriverError, ReqlAvailabilityError, OSError)


@dataclasses.dataclass(frozen=True)
class RethinkTarget:
    """Where the server is, parsed from ``rethinkdb://[user[:password]@]host[:port]/db``."""

    host: str
    port: int
    db: str
    user: str = "admin"
    password: str = ""


def parse_url(url: str) -> RethinkTarget:
    """Parse a RETHINKDB_URL; ValueError (without the password) when it is not one."""
    parts = urllib.parse.urlsplit(url)
    problem = "RETHINKDB_URL must look like rethinkdb://host:28015/db"
    if parts.scheme != "rethinkdb" or not parts.hostname:
        raise ValueError(problem)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(problem) from None
    db = parts.path.strip("/") or DEFAULT_DB
    if "/" in db:
        raise ValueError(problem)
    return RethinkTarget(
        host=parts.hostname,
        port=port,
        db=urllib.parse.unquote(db),
        user=urllib.parse.unquote(parts.username or "") or "admin",
        password=urllib.parse.unquote(parts.password or ""),
    )


class _SocketWrapper(net.SocketWrapper):
    """The driver's socket, forgetting a timed-out partial read once it is used.

    On a read timeout the driver keeps the bytes read so far in
    ``_read_buffer`` and prepends them to the next read, but never clears
    them, so every later read would start with them again. Changefeed polls
    (``cursor.next(wait=...)``) time out routinely.
    """

    def recvall(self, length, deadline):
        data = super().recvall(length, deadline)
        self._read_buffer = None
        return data


class _BoundedInstance(net.ConnectionInstance):
    """The driver's connection with a deadline on every read that has none.

    The stock driver waits for a query's answer forever; a server that
    accepted the connection and then stalled would hang the worker. Cursor
    reads with an explicit wait (``cursor.next(wait=...)``) keep theirs.
    """

    def __init__(self, parent, query_timeout: Optional[float] = None):
        super().__init__(parent)
        self._query_timeout = query_timeout

    def connect(self, timeout):
        self._socket = _SocketWrapper(self, timeout)
        return self._parent

    def _read_response(self, query, deadline=None):
        if deadline is None and self._query_timeout is not None:
            deadline = time.time() + self._query_timeout
        return super()._read_response(query, deadline)


class BoundedConnection(net.Connection):
    """A driver Connection whose instances are :class:`_BoundedInstance`."""

    def __init__(self, *args, **kwargs):
        super().__init__(_BoundedInstance, *args, **kwargs)


def close_quietly(conn) -> None:
    try:
        conn.close(noreply_wait=False)
    except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone anyway
        log.debug("closing a RethinkDB connection failed", exc_info=True)
