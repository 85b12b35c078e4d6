"""RethinkDB plumbing: the URL, connecting to a cluster, bounded waits, schema.

Used by the RethinkDB notes store, ``python -m api init-db`` and the tests;
nothing here knows about notes. Design: docs/design/stores.md#rethinkdb
"""

import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Callable
from typing import Dict
from typing import Optional
from typing import Tuple

from rethinkdb import net
from rethinkdb import r
from rethinkdb.ast import ReQLDecoder
from rethinkdb.errors import ReqlAvailabilityError
from rethinkdb.errors import ReqlDriverError
from rethinkdb.errors import ReqlInternalError
from rethinkdb.errors import ReqlOpFailedError
from rethinkdb.errors import ReqlRuntimeError

log = logging.getLogger(__name__)

DEFAULT_PORT = 28015
DEFAULT_DB = "todo"

#: What RethinkDB accepts as a database or table name.
_NAME = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")

#: Errors that mean "the connection is broken": drop it and connect again
#: (ReqlTimeoutError and ReqlAuthError are ReqlDriverErrors; OSError covers
#: socket errors the driver lets through).
CONNECTION_ERRORS = (ReqlDriverError, OSError)

#: Errors that mean "the server cannot do this right now": the connection
#: errors, availability errors (a table without its primary replica during
#: an election, a write whose outcome is unknown), and internal errors, which
#: a server raises during an election when it cannot read a table's
#: configuration ("none of the servers were accessible").
DRIVER_ERRORS = (ReqlDriverError, ReqlAvailabilityError, ReqlInternalError, OSError)


@dataclasses.dataclass(frozen=True)
class RethinkTarget:
    """Where the servers are (``hosts``, in the order to try), the database, who."""

    hosts: Tuple[Tuple[str, int], ...]
    db: str
    user: str = "admin"
    password: str = ""
    #: PEM file of the CA that signed the servers' certificates: connect
    #: with TLS (None: plain TCP).
    ca_file: Optional[str] = None

    def describe(self) -> str:
        """The hosts and database (and CA file), without credentials (for logs)."""
        hosts = ",".join(_host_port(host, port) for host, port in self.hosts)
        tls = "" if self.ca_file is None else "?ca=" + self.ca_file
        return f"rethinkdb://{hosts}/{self.db}{tls}"

    def driver_options(self) -> Dict[str, Any]:
        """Keyword arguments of the driver's connect: who, and TLS when asked for."""
        options: Dict[str, Any] = {"user": self.user, "password": self.password}
        if self.ca_file is not None:
            # The driver verifies the chain and that the certificate names
            # the host as written in the URL.
            options["ssl"] = {"ca_certs": self.ca_file}
        return options


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_name(name: str, setting: str, what: str) -> str:
    """``name`` if RethinkDB accepts it as a database or table name; else ValueError."""
    if not _NAME.match(name):
        raise ValueError(
            f"{setting}: {what} {name!r} is not a valid RethinkDB name "
            "(1 to 64 of A-Z, a-z, 0-9, _ and -)"
        )
    return name


def parse_url(url: str, setting: str = "RETHINKDB_URL") -> RethinkTarget:
    """Parse a RETHINKDB_URL; ValueError naming ``setting`` (never the password).

    ``rethinkdb://h1:28015,h2:28015,h3:28015/todo``: one or more hosts, each
    with an optional port (default 28015; IPv6 in brackets), the database
    as the path (default ``todo``), optional ``user:password@``, and
    optional ``?ca=/path/ca.pem``: TLS, with the servers' certificates
    verified against that CA (the file must be readable PEM).
    """
    example = f"{setting} must look like rethinkdb://host:28015/db[?ca=FILE]"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "rethinkdb":
        raise ValueError(f"{example} (the scheme is not rethinkdb://)")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    hosts = tuple(_parse_host(item, example) for item in hostlist.split(","))
    db = urllib.parse.unquote(parts.path.strip("/")) or DEFAULT_DB
    if "/" in db or parts.fragment:
        raise ValueError(f"{example} (the path is one database name)")
    check_name(db, setting, "the database name")
    user, _, password = userinfo.partition(":")
    return RethinkTarget(
        hosts=hosts,
        db=db,
        user=urllib.parse.unquote(user) or "admin",
        password=urllib.parse.unquote(password),
        ca_file=_parse_options(parts.query, setting, example),
    )


def _parse_options(query: str, setting: str, example: str) -> Optional[str]:
    """The CA file of ``?ca=FILE``, checked; None without a query."""
    if not query:
        return None
    options = urllib.parse.parse_qsl(query, keep_blank_values=True)
    names = [name for name, _ in options]
    if names != ["ca"]:
        raise ValueError(f"{example} (the one parameter is ca, once)")
    ca_file = options[0][1]
    if not ca_file:
        raise ValueError(f"{example} (ca= names the CA's PEM file)")
    # The driver reads the file at each connect; reading it now makes a wrong
    # path or a file that is not PEM stop the start, not fail each request.
    try:
        ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError:
        reason = "no PEM certificate in it"
    except OSError as ex:  # PyPy leaves strerror empty: from errno
        reason = os.strerror(ex.errno) if ex.errno else str(ex)
    else:
        return ca_file
    raise ValueError(f"{setting}: the CA file {ca_file!r}: {reason}")


def _parse_host(item: str, example: str) -> Tuple[str, int]:
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port = item.partition(":")
    if not host:
        raise ValueError(f"{example} (a host is missing)")
    if port == "":
        return host, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{example} (the port of {host} is not a number 1-65535)")
    return host, int(port)


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

    def close(self):
        # The stock close logs an ERROR when the peer is gone already (a dead
        # server): expected here, and the caller reports the failure itself.
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


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
    """A driver Connection whose instances are :class:`_BoundedInstance`.

    ``broken``: set by a user that found the connection unusable, so that
    whoever holds it closes it instead of using it again.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(_BoundedInstance, *args, **kwargs)
        self.broken = False


class RawDecoder(ReQLDecoder):
    """Answers decoded by ``json.loads`` alone: pseudo-types (TIME) stay dicts.

    For a hot read, as ``query.run(conn, json_decoder=RawDecoder)``. The
    driver's decoder calls a hook on every object, and under PyPy that is
    most of a small read's decoding (about 18 against 1.3 us for a note);
    the reader converts the few pseudo-types it expects itself.
    """

    def decode(self, s, _w=None):
        return json.loads(s)


class Connector:
    """Opens connections to the first server of ``target.hosts`` that answers.

    After a failure (of a connect, or of a connection in use, reported with
    :meth:`failed`) the next attempt starts with the following host, so a
    dead server costs one failed connect, not one per request. Each connect
    waits at most ``timeout`` seconds per host, and every answer on the
    connection at most ``timeout`` seconds.
    """

    def __init__(self, target: RethinkTarget, timeout: float):
        self.target = target
        self.timeout = timeout
        self._first = 0  # index of the host to try first

    def connect(self):
        """A new :class:`BoundedConnection`; ReqlDriverError when no host answers."""
        hosts = self.target.hosts
        errors = []
        for step in range(len(hosts)):
            index = (self._first + step) % len(hosts)
            host, port = hosts[index]
            try:
                conn = r.make_connection(
                    BoundedConnection,
                    host=host,
                    port=port,
                    db=self.target.db,
                    timeout=self.timeout,
                    query_timeout=self.timeout,
                    **self.target.driver_options(),
                )
            except CONNECTION_ERRORS as ex:
                errors.append(f"{_host_port(host, port)}: {ex}{self._hint(ex)}")
                continue
            if step:
                log.info("connected to RethinkDB at %s", _host_port(host, port))
            self._first = index
            return conn
        self._first = (self._first + 1) % len(hosts)
        raise ReqlDriverError("no RethinkDB server answers (" + "; ".join(errors) + ")")

    def _hint(self, ex: Exception) -> str:
        # A server with driver TLS closes a plain connection at its first
        # bytes; the driver only says the connection is closed.
        if self.target.ca_file is None and "closed" in str(ex):
            return " (if the server requires TLS, add ?ca=FILE to the URL)"
        return ""

    def failed(self, conn) -> None:
        """The connection ``conn`` broke: close it; start with the next host."""
        close_quietly(conn)
        self._first = (self._first + 1) % len(self.target.hosts)


def close_quietly(conn) -> None:
    """Close ``conn`` without waiting and without raising."""
    try:
        conn.close(noreply_wait=False)
    except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone anyway
        log.debug("closing a RethinkDB connection failed", exc_info=True)


def is_missing_schema(ex: Exception) -> bool:
    """Whether ``ex`` says a database or table does not exist (init-db not run)."""
    return isinstance(ex, ReqlOpFailedError) and "does not exist" in str(ex)


#: A table's secondary indexes: name -> (function or None for the field of
#: that name, multi).
Indexes = Mapping[str, Tuple[Optional[Callable[[Any], Any]], bool]]


def ensure_tables(
    conn, db: str, tables: Mapping[str, Indexes], replicas: int = 1
) -> Sequence[str]:
    """Create database ``db``, ``tables`` and their indexes where missing.

    Tables get ``replicas`` replicas (existing ones are reconfigured to that
    number); the call returns once every table and index is ready. Two
    processes doing this at once can make RethinkDB create a name twice;
    duplicates are dropped again (keeping the lowest id, the same choice in
    every process) and the steps run again, before anything is written to
    the tables. Returns what it did, one line per step, for the caller to
    print.
    """
    for attempt in range(5):
        try:
            return _ensure_tables(conn, db, tables, replicas)
        except ReqlOpFailedError as ex:
            if "ambiguous" not in str(ex) or attempt == 4:
                raise
            log.warning("a concurrent schema creation made duplicates; again")
    raise AssertionError("unreachable")


def _ensure_tables(
    conn, db: str, tables: Mapping[str, Indexes], replicas: int
) -> Sequence[str]:
    done = []
    if db not in r.db_list().run(conn):
        _create(lambda: r.db_create(db).run(conn))
        done.append(f"created database {db}")
    _drop_duplicates(conn, "db_config", {"name": db})
    database = r.db(db)
    for name, indexes in tables.items():
        if name not in database.table_list().run(conn):
            _create(
                lambda name=name: database.table_create(name, replicas=replicas).run(
                    conn
                )
            )
            done.append(f"created table {db}.{name} ({replicas} replicas)")
        _drop_duplicates(conn, "table_config", {"db": db, "name": name})
        table = database.table(name)
        table.wait(wait_for="all_replicas_ready", timeout=60).run(conn)
        shards = table.config()["shards"].run(conn)
        if len(shards) != 1 or len(shards[0]["replicas"]) != replicas:
            table.reconfigure(shards=1, replicas=replicas).run(conn)
            done.append(f"reconfigured {db}.{name} to {replicas} replicas")
        existing = table.index_list().run(conn)
        for index, (function, multi) in indexes.items():
            if index not in existing:
                args = (index,) if function is None else (index, function)
                _create(
                    lambda table=table, args=args, multi=multi: table.index_create(
                        *args, multi=multi
                    ).run(conn)
                )
                done.append(f"created index {db}.{name}.{index}")
        table.index_wait().run(conn)
        table.wait(wait_for="all_replicas_ready", timeout=60).run(conn)
    return done


def _create(action: Callable[[], Any]) -> None:
    # Another process may have created it since we looked.
    try:
        action()
    except ReqlRuntimeError as ex:
        if "already exists" not in str(ex):
            raise


def _drop_duplicates(conn, system_table: str, match: Mapping[str, str]) -> None:
    """Keep one of the databases or tables named by ``match``: the lowest id."""
    ids = sorted(r.db("rethinkdb").table(system_table).filter(match)["id"].run(conn))
    for duplicate in ids[1:]:
        log.warning(
            "dropping a duplicate %s created concurrently: %s", match, duplicate
        )
        r.db("rethinkdb").table(system_table).get(duplicate).delete().run(conn)
