"""Request-wide middleware: the client's address, request ids, allowed hosts,
the body size limit, JSON-only writes."""

import functools
import io
import itertools
import logging
import os

import falcon

from core.hosts import UNKNOWN_HOST
from core.hosts import AllowedHosts as HostRule
from core.logs import request_id_var
from core.proxies import TrustedProxies
from web.errors import Problem

_WRITE_METHODS = frozenset(("POST", "PUT", "PATCH"))
#: Media types parsed as JSON (registered with the app's media handlers).
JSON_MEDIA_TYPES = ("application/json", "application/merge-patch+json")
_MAX_REQUEST_ID = 200

log = logging.getLogger(__name__)


class _IdSource:
    """Request ids: 32 hex digits, a random prefix per process and a counter.

    Unique across processes (the prefix is drawn again in a forked child) and
    within one; uuid4 would read os.urandom on every request, about 10 us
    under PyPy.
    """

    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        # %-formatting: faster than an f-string's format spec under PyPy.
        return "%s%016x" % (self._prefix, next(self._counter))  # noqa: UP031


_ids = _IdSource()


#: Where :class:`ClientAddress` keeps the connection's own address.
PEER_ENVIRON_KEY = "api.peer_addr"


class ClientAddress:
    """``REMOTE_ADDR`` becomes the client's address behind trusted proxies.

    The rule is :meth:`core.proxies.TrustedProxies.client`
    (``TRUSTED_PROXIES``). Rewriting the WSGI variable makes every reader of
    the client's address agree: ``req.remote_addr`` (rate limits, visits)
    and gunicorn's access log, which reads this environ after the response.
    The connection's own address stays in ``environ["api.peer_addr"]``.
    """

    def __init__(self, trusted: TrustedProxies):
        self._trusted = trusted

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        peer = req.env.get("REMOTE_ADDR", "")
        client = self._trusted.client(peer, req.get_header("X-Forwarded-For"))
        req.env[PEER_ENVIRON_KEY] = peer
        req.env["REMOTE_ADDR"] = client


class RequestId:
    """Echo ``X-Request-ID`` when sent (and sane), generate one otherwise."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        rid = req.get_header("X-Request-ID")
        if not rid or len(rid) > _MAX_REQUEST_ID or not rid.isprintable():
            rid = _ids.next()
        req.context.request_id = rid
        request_id_var.set(rid)
        resp.set_header("X-Request-ID", rid)


class AllowedHosts:
    """Answer only requests whose ``Host`` the server is known by (else 400).

    The rule is :class:`core.hosts.AllowedHosts` (``ALLOWED_HOSTS``): it
    keeps pages of other sites from reaching the API through a DNS name
    they point at it (DNS rebinding). ``/health`` and ``/ready`` answer any
    Host: orchestrators probe a container by its address, and the probes
    tell nothing.
    """

    _PROBES = frozenset(("/health", "/ready"))

    def __init__(self, rule: HostRule):
        self._rule = rule

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._rule.allows(req.get_header("Host")) or req.path in self._PROBES:
            return
        raise Problem(400, UNKNOWN_HOST)


class _GuardedInput:
    """The server's request body stream; a failure to read it is a 400.

    The server raises its own errors from ``read`` (gunicorn: a malformed
    chunk size, a missing chunk terminator; a socket timeout or reset): they
    are the client's doing, not the app's, so they end as a 400 problem
    rather than a 500.
    """

    def __init__(self, stream):
        self._stream = stream

    def _guard(self, method, *args):
        try:
            return method(*args)
        except (falcon.HTTPError, falcon.HTTPStatus):
            raise
        except Exception as ex:
            log.info("request body unreadable: %s: %s", type(ex).__name__, ex)
            raise Problem(
                400,
                "The request body could not be read (malformed chunked encoding, "
                "or the connection failed).",
                headers={"Connection": "close"},
            ) from None

    def read(self, size=-1):
        return self._guard(self._stream.read, size)

    def readline(self, size=-1):
        return self._guard(self._stream.readline, size)

    def readlines(self, hint=-1):
        return self._guard(self._stream.readlines, hint)

    def __iter__(self):
        return iter(self.readline, b"")


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413 before reading them.

    A declared Content-Length over the limit is refused at once. A body sent
    without one (chunked) is read at most ``max_bytes + 1`` bytes far; if it
    fits it is handed on as if it had been sent with a Content-Length, since
    Falcon only reads bodies of declared length. A body the server fails to
    read is a 400 (:class:`_GuardedInput`).
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.env["wsgi.input"] = req.stream = _GuardedInput(req.stream)
        length = req.content_length
        if length is not None:
            if length > self.max_bytes:
                self._refuse(req)
            return
        if "chunked" not in (req.get_header("Transfer-Encoding") or "").lower():
            return
        data = req.stream.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            self._refuse(req)
        req.env["CONTENT_LENGTH"] = str(len(data))
        req.env["wsgi.input"] = req.stream = io.BytesIO(data)

    def _refuse(self, req: falcon.Request) -> None:
        # The rest of the body stays unread, so the connection cannot be reused.
        raise Problem(
            413,
            f"The request body is larger than {self.max_bytes} bytes.",
            headers={"Connection": "close"},
        )


@functools.cache
def _handles(resource_class: type, method: str) -> bool:
    """Whether the class has a responder for ``method`` (with or without suffix)."""
    prefix = "on_" + method.lower()
    return any(
        name == prefix or name.startswith(prefix + "_") for name in dir(resource_class)
    )


class RequireJSON:
    """Writes with a body must say ``Content-Type: application/json`` (else 415).

    Resources that take other media (signed webhooks read raw bytes) opt out
    with a class attribute ``accepts_any_media = True``.
    """

    def process_resource(self, req, resp, resource, params) -> None:
        if req.method not in _WRITE_METHODS or getattr(
            resource, "accepts_any_media", False
        ):
            return
        if not _handles(type(resource), req.method):
            return  # Falcon answers 405; the media type is beside the point
        if not req.content_length:
            return  # no body: the responder's validation says what is missing
        media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
        if media_type not in JSON_MEDIA_TYPES:
            raise Problem(
                415,
                "Send the body as JSON with 'Content-Type: application/json'.",
            )
