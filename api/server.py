"""Gunicorn worker classes of this API: gunicorn's own, with four changes.

Refused requests are answered as problem+json, an app's ``Connection: close``
closes the connection, clients are read into a buffer per connection, and the
gevent worker (:mod:`api.server_gevent`) bounds every read from a client;
``gunicorn.conf.py`` picks one by ``WORKER_CLASS``.

Design: docs/design/serving.md
"""

import datetime
import http

from gunicorn.http import errors
from gunicorn.http import parser
from gunicorn.http import wsgi
from gunicorn.http.unreader import SocketUnreader
from gunicorn.http.wsgi import Response
from gunicorn.http.wsgi import default_environ
from gunicorn.util import write_nonblock
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker
from gunicorn.workers.sync import SyncWorker as _SyncWorker

from core import wire

#: Gunicorn's refusals whose status is not 400.
_STATUSES = (
    (errors.LimitRequestLine, 414),  # gunicorn says 400; RFC 9110 has a status
    (errors.LimitRequestHeaders, 431),
    (errors.UnsupportedTransferCoding, 501),
    (errors.ForbiddenProxyRequest, 403),
    (errors.ConfigurationProblem, 500),
)


def problem_response(status: int, detail: str) -> bytes:
    """A complete HTTP/1.1 answer: a problem body, and the connection closes."""
    phrase = http.HTTPStatus(status).phrase
    body = wire.encode(
        {"type": "about:blank", "title": phrase, "status": status, "detail": detail}
    )
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def closes_connection(headers) -> bool:
    """Whether an app's answer says ``Connection: close``."""
    return any(
        name.lower() == "connection" and value.strip().lower() == "close"
        for name, value in headers
    )


def honour_connection_close(app):
    """``app``, its ``Connection: close`` answers closing the connection."""

    def wrapped(environ, start_response):
        def start(status, headers, exc_info=None):
            if closes_connection(headers):
                # Gunicorn's start_response is a method of its Response.
                response = getattr(start_response, "__self__", None)
                if hasattr(response, "force_close"):
                    response.force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


class HonourConnectionClose:
    """Worker mixin: the app's ``Connection: close`` answers close the connection."""

    def load_wsgi(self):
        """Load the app, wrapped by :func:`honour_connection_close`."""
        super().load_wsgi()
        self.wsgi = honour_connection_close(self.wsgi)


class BufferUnreader(SocketUnreader):
    """Gunicorn's reader of a client's socket, reading into one buffer per connection.

    Under PyPy, each ``socket.recv(n)`` costs about 4n bytes of young objects,
    even when it finds nothing to read: gunicorn's 8 KB reads were about 9 KB
    of the 70 KB a ``GET /health`` allocated, and young objects set how often
    the garbage collector pauses a worker. ``recv_into`` a buffer kept for the
    connection allocates only the bytes read.
    """

    def __init__(self, sock, max_chunk: int = 8192):
        super().__init__(sock, max_chunk)
        self._buffer = memoryview(bytearray(max_chunk))

    def chunk(self) -> bytes:
        return bytes(self._buffer[: self.sock.recv_into(self._buffer)])


class SettledConfig:
    """A worker's gunicorn settings, each read once.

    Gunicorn's Config answers every read of a setting through ``__getattr__``
    and the setting's object; its parser and workers read about twenty per
    request (4% of a ``GET /health`` in a PyPy worker). A worker's settings
    do not change once it has forked, so their values are plain attributes
    here. Config's properties that requests read are kept too; anything else
    is asked of the Config itself.
    """

    _REQUEST_PROPERTIES = ("is_ssl", "sendfile")

    def __init__(self, config):
        self._config = config
        for name, setting in config.settings.items():
            if not isinstance(getattr(type(config), name, None), property):
                self.__dict__[name] = setting.get()
        for name in self._REQUEST_PROPERTIES:
            self.__dict__[name] = getattr(config, name)

    def __getattr__(self, name):
        return getattr(self._config, name)


#: Gunicorn's own, kept: a worker replaces the module's with its copies.
_base_environ = wsgi.base_environ


class Settled:
    """Worker mixin: what gunicorn works out alike for every request, worked out once.

    The settings (:class:`SettledConfig`); the environ's constant part, whose
    ``wsgi.errors`` stream gunicorn builds per request by looking its logger
    up under a lock (4% of a ``GET /health``); and the socket reader,
    :class:`BufferUnreader`.
    """

    def init_process(self):
        """Settle the config and the readers, then run the worker."""
        self.cfg = SettledConfig(self.cfg)
        base = _base_environ(self.cfg)
        # Module names every worker class reads from when a request comes.
        wsgi.base_environ = lambda cfg: dict(base)
        parser.SocketUnreader = BufferUnreader
        super().init_process()


class ProblemErrors:
    """Worker mixin: gunicorn's own error answers as problem+json."""

    def handle_error(self, req, client, addr, exc):
        """Log as gunicorn does, then answer with a problem instead of HTML."""
        started = datetime.datetime.now()
        addr = addr or ("", -1)  # a unix socket
        if isinstance(exc, errors.ParseException) and not isinstance(
            exc, errors.ConfigurationProblem
        ):
            status = next((s for kind, s in _STATUSES if isinstance(exc, kind)), 400)
            detail = f"The request is not valid HTTP: {exc}"
            self.log.warning("Invalid request from ip=%s: %s", addr[0], exc)
            if req is None:
                req = getattr(exc, "req", None)  # for the access log
        else:
            self.log.exception(
                "Error handling request %s", getattr(req, "uri", "(no URI read)")
            )
            status, detail = 500, "An internal error occurred; it has been logged."
        answer = problem_response(status, detail)
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
            resp = Response(req, client, self.cfg)
            resp.status = f"{status} {http.HTTPStatus(status).phrase}"
            resp.response_length = len(answer)
            self.log.access(resp, req, environ, datetime.datetime.now() - started)
        try:
            write_nonblock(client, answer)
        except Exception:  # the client is gone; nothing more to say
            self.log.debug("Failed to send error message.")


class SyncWorker(ProblemErrors, Settled, HonourConnectionClose, _SyncWorker):
    """Gunicorn's sync worker (one request at a time), problem+json errors."""


class ThreadWorker(ProblemErrors, Settled, HonourConnectionClose, _ThreadWorker):
    """Gunicorn's gthread worker, problem+json errors."""
