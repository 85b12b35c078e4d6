"""The push worker's own small HTTP server: note events as SSE and WebSocket.

``GET /events`` (SSE), ``GET /ws`` (handed to :mod:`workers.push.ws`), the live
page (``/``, ``/snapshot``), ``POST /stream-tickets``, ``/health`` and
``/metrics``; a thread per request, once :class:`workers.push.gate.Gate` has
read its head. Usage: docs/user/push.md; who may: docs/design/security.md.

Design: docs/design/push.md#the-http-server-and-the-websocket-hub
"""

import http.server
import io
import json
import logging
import re
import socket
import threading
import urllib.parse
from pathlib import Path
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Set
from typing import Tuple

from websockets.http11 import Request

from core.apikeys import ADMIN
from core.backoff import Backoff
from core.hosts import UNKNOWN_HOST
from core.hosts import AllowedHosts
from core.hosts import AllowedOrigins
from db.errors import Unavailable
from workers.push import metrics
from workers.push.access import Refused
from workers.push.access import StreamAccess
from workers.push.events import SSE_KEEPALIVE
from workers.push.events import parse_last_event_id
from workers.push.events import reset_event
from workers.push.events import sse_frame
from workers.push.events import sse_reset_frame
from workers.push.feed import EventFeed
from workers.push.feed import Resume
from workers.push.filters import EventFilter
from workers.push.gate import Gate
from workers.push.ws import WebSocketHub
from workers.push.ws import control_frame
from workers.push.ws import new_protocol

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
#: The live page and its files (``GET /``, ``/live.js``, ``/live.css``).
ASSETS = {
    "/": ("live.html", "text/html; charset=utf-8"),
    "/live.js": ("live.js", "text/javascript; charset=utf-8"),
    "/live.css": ("live.css", "text/css; charset=utf-8"),
}
#: The live page's policy: its own files, calls to this origin (WebSocket
#: included), no framing.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: The endpoints that need a ``read`` key or a ticket.
STREAMS = ("/events", "/ws", "/snapshot")
#: Every other answer is data, never a document to render or frame.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
#: Seconds a write to a client may block (an SSE client that stopped reading).
WRITE_TIMEOUT = 60.0
_TICKET_IN_LOG = re.compile(r"([?&]ticket=)[^&\s\"]*")


def mask_tickets(text: str) -> str:
    """``text`` with the value of every ``ticket=`` query parameter masked."""
    return _TICKET_IN_LOG.sub(r"\1***", text)


def parse_bind(bind: str) -> Tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) as ``(host, port)``; ValueError if not."""
    host, sep, port = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"PUSH_SSE_BIND must look like 127.0.0.1:8001, got {bind!r}")
    return host, int(port)


class _SocketWriter(io.BufferedIOBase):
    """``wfile``: every write goes out whole (``sendall``)."""

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._sock.sendall(data)
        return len(data)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # an open stream never keeps the process alive
    allow_reuse_address = True
    # Many clients may connect at once (the default backlog is 5).
    request_queue_size = 1024

    feed: EventFeed
    keepalive: float
    status: Callable[[], Dict[str, Any]]
    hub: WebSocketHub
    metrics: Optional[Callable[[], bytes]]
    snapshot: Optional[Callable[[], Dict[str, Any]]]
    assets: Dict[str, Tuple[bytes, str]]
    access: StreamAccess
    hosts: AllowedHosts
    origins: AllowedOrigins
    gate: Gate

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._handed_over: Set[socket.socket] = set()
        self._handed_over_lock = threading.Lock()
        self._heads: Dict[socket.socket, bytes] = {}
        self._addresses: Dict[socket.socket, Tuple] = {}

    def answer(self, request: socket.socket, address: Tuple, head: bytes) -> None:
        """Answer a connection whose head the gate has read, on a thread of its own."""
        self._heads[request] = head
        self._addresses[request] = address
        try:
            self.process_request(request, address)
        except BaseException:  # no thread to be had: the gate closes it
            self._heads.pop(request, None)
            self._addresses.pop(request, None)
            raise

    def take_head(self, request: socket.socket) -> bytes:
        return self._heads.pop(request)

    def hand_over(self, request: socket.socket) -> None:
        """``request``'s connection now belongs to the WebSocket hub (a dup of it)."""
        with self._handed_over_lock:
            self._handed_over.add(request)

    def shutdown_request(self, request) -> None:
        self._heads.pop(request, None)
        address = self._addresses.pop(request, None)
        with self._handed_over_lock:
            handed_over = request in self._handed_over
            self._handed_over.discard(request)
        if handed_over:
            # Close only this descriptor: shutdown() would end the connection
            # the hub now serves through its own descriptor (and releases).
            self.close_request(request)
            return
        super().shutdown_request(request)
        if address is not None:
            self.gate.release(address)

    def handle_error(self, request, client_address) -> None:
        log.exception("answering %s failed", client_address[0])


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    server_version = "push-worker"

    def setup(self) -> None:
        # The gate has read the head: parse it from memory, answer on the socket.
        self.connection = self.request
        self.connection.settimeout(WRITE_TIMEOUT)
        # Each event is a small write: with Nagle's algorithm on, it waits for
        # the client's (delayed) ACK of the previous one, up to 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile = io.BytesIO(self.server.take_head(self.request))
        self.wfile = _SocketWriter(self.connection)

    def version_string(self) -> str:
        """The ``Server`` header: no interpreter or version to look up flaws by."""
        return self.server_version

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/health":  # probes dial the address: any Host
            body = json.dumps(self.server.status()).encode()
            self._send(200, "application/json", body)
            return
        if url.path == "/ws":
            # WebSocket clients refuse an HTTP/1.0 answer, even an error; one
            # connection per WebSocket (errors close it too).
            self.protocol_version = "HTTP/1.1"
            self.close_connection = True
        try:
            self._get(url)
        except Refused as refusal:
            self._refused(refusal)

    def _get(self, url: urllib.parse.SplitResult) -> None:
        self._check_host()
        if url.path in STREAMS:
            params = urllib.parse.parse_qs(url.query)
            self._check_origin()
            key = self.server.access.check(
                self.headers.get("Authorization"), params.get("ticket", [""])[-1]
            )
            key_id = None if key is None else key.id
            if url.path == "/events":
                metrics.SSE_CLIENTS.inc()
                try:
                    self._events(params, key_id)
                finally:
                    metrics.SSE_CLIENTS.dec()
            elif url.path == "/ws":
                self._websocket(url, params, key_id)
            else:
                self._snapshot()
        elif url.path == "/metrics" and self.server.metrics is not None:
            self.server.access.check(self.headers.get("Authorization"), scope=ADMIN)
            self._send(200, metrics.CONTENT_TYPE, self.server.metrics())
        elif url.path in self.server.assets:
            body, content_type = self.server.assets[url.path]
            self._send(
                200,
                content_type,
                body,
                {"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
            )
        else:
            self._problem(404, "Not Found", "The event stream is GET /events.")

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        try:
            self._check_host()
            if urllib.parse.urlsplit(self.path).path != "/stream-tickets":
                self._refuse_method()
                return
            self._check_origin()
            answer = self.server.access.issue(self.headers.get("Authorization"))
        except Refused as refusal:
            self._refused(refusal)
            return
        self._send(
            200,
            "application/json",
            json.dumps(answer).encode(),
            {"Cache-Control": "no-store"},
        )

    def _refuse_method(self) -> None:
        self._problem(
            405,
            "Method Not Allowed",
            "Only GET is served here (and POST /stream-tickets).",
            {"Allow": "GET"},
        )

    do_PUT = do_PATCH = do_DELETE = _refuse_method  # noqa: N815

    # Who may ------------------------------------------------------------------

    def _check_host(self) -> None:
        """Refuse (400) a ``Host`` the worker is not known by (DNS rebinding)."""
        if not self.server.hosts.allows(self.headers.get("Host")):
            raise Refused(400, UNKNOWN_HOST)

    def _check_origin(self) -> None:
        """Refuse (403) a page of an origin that may not open streams."""
        origin = self.headers.get("Origin")
        if not self.server.origins.allows(origin, self.headers.get("Host")):
            log.info(
                "refused a page of origin %r from %s", origin, self.client_address[0]
            )
            raise Refused(
                403,
                "Pages of this origin may not open the push worker's streams "
                "(PUSH_ALLOWED_ORIGINS).",
            )

    def _still_allowed(self, key_id: Optional[int]) -> bool:
        return key_id is None or self.server.access.active(key_id)

    # Streams ------------------------------------------------------------------

    def _snapshot(self) -> None:
        if self.server.snapshot is None:
            self._problem(404, "Not Found", "This worker serves no snapshot.")
            return
        try:
            body = json.dumps(self.server.snapshot()).encode()
        except Unavailable:
            self._problem(503, "Service Unavailable", "notes store unavailable")
            return
        self._send(200, "application/json", body, {"Cache-Control": "no-store"})

    def _events(self, params: Dict[str, List[str]], key_id: Optional[int]) -> None:
        header = self.headers.get("Last-Event-ID")
        if header is None:
            header = params.get("last_event_id", [None])[0]
        resumed = self._resume(header)
        if resumed is None:
            return
        last_id, resume = resumed
        cursor = resume.cursor
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Accel-Buffering", "no")  # tell proxies not to buffer
        self.end_headers()
        log.info(
            "SSE client %s connected after event %d", self.client_address[0], cursor
        )
        try:
            self.wfile.write(b"retry: 3000\n: stream after %d\n\n" % cursor)
            if resume.reset:
                log.info(
                    "SSE client %s: Last-Event-ID %d: reset (%s)",
                    self.client_address[0],
                    last_id,
                    resume.why,
                )
                self.wfile.write(sse_reset_frame(last_id, cursor, resume.why))
            self._stream(self.server.feed, cursor, key_id)
        except OSError:  # the client went away (broken pipe, reset, timeout)
            pass
        log.info("SSE client %s gone", self.client_address[0])

    def _resume(self, header: Optional[str]) -> Optional[Tuple[Optional[int], Resume]]:
        """Where a client that sent ``header`` resumes; None after a 400 or 503."""
        try:
            last_id = parse_last_event_id(header)
        except ValueError as ex:
            self._problem(400, "Bad Request", str(ex))
            return None
        try:
            return last_id, self.server.feed.resume(last_id)
        except Unavailable:
            self._problem(503, "Service Unavailable", "The notes store is unavailable.")
            return None

    def _websocket(
        self,
        url: urllib.parse.SplitResult,
        params: Dict[str, List[str]],
        key_id: Optional[int],
    ) -> None:
        """``GET /ws``: check, answer the opening handshake, hand over to the hub."""
        header = self.headers.get("Last-Event-ID")
        if header is None:
            header = params.get("last_event_id", [None])[-1]
        try:
            event_filter = EventFilter.from_query(params)
        except ValueError as ex:
            self._problem(400, "Bad Request", str(ex))
            return
        protocol = new_protocol()
        # The protocol parses the request itself (http.server has read it, so
        # it is given again, without the ticket: the protocol may log it): its
        # parser must be past the handshake before the client's frames come.
        path = url.path
        query = [(k, v) for k, v in urllib.parse.parse_qsl(url.query) if k != "ticket"]
        if query:
            path += "?" + urllib.parse.urlencode(query)
        head = "".join(
            [f"GET {path} HTTP/1.1\r\n"]
            + [f"{name}: {value}\r\n" for name, value in self.headers.items()]
            + ["\r\n"]
        )
        protocol.receive_data(head.encode("latin-1", "replace"))
        events = protocol.events_received()
        if not events or not isinstance(events[0], Request):
            self._problem(400, "Bad Request", "Not a valid WebSocket opening request.")
            return
        response = protocol.accept(events[0])
        if response.status_code != 101:
            detail = response.body.decode("utf-8", "replace").strip()
            self._problem(
                response.status_code,
                response.reason_phrase,
                detail or "This is a WebSocket endpoint.",
                {"Upgrade": "websocket"} if response.status_code == 426 else None,
            )
            return
        resumed = self._resume(header)
        if resumed is None:
            return
        last_id, resume = resumed
        greeting = control_frame(
            {"type": "stream", "after": resume.cursor, **event_filter.describe()}
        )
        if resume.reset:
            log.info(
                "WebSocket client %s: last_event_id %d: reset (%s)",
                self.client_address[0],
                last_id,
                resume.why,
            )
            greeting += control_frame(reset_event(last_id, resume.cursor, resume.why))
        protocol.send_response(response)
        self.wfile.write(b"".join(protocol.data_to_send()))
        # The hub gets a descriptor of its own; this thread's one is closed
        # by the server when the handler returns (see _Server.shutdown_request).
        theirs = self.connection.dup()
        self.server.hand_over(self.connection)
        self.close_connection = True
        address = self.client_address
        self.server.hub.adopt(
            theirs,
            protocol,
            resume.cursor,
            event_filter,
            greeting,
            key_id=key_id,
            early=self.rfile.read(),  # frames sent right behind the head
            on_close=lambda: self.server.gate.release(address),
        )

    def _stream(self, feed: EventFeed, cursor: int, key_id: Optional[int]) -> None:
        backoff = Backoff()
        while not feed.closed:
            if not self._still_allowed(key_id):
                log.info("SSE client %s: its key is revoked", self.client_address[0])
                self.wfile.write(b": the API key is revoked\n\n")
                return
            try:
                events = feed.read(cursor, limit=500, timeout=self.server.keepalive)
            except Unavailable:
                delay = backoff.failure()
                self.wfile.write(b": notes store unavailable, retrying\n\n")
                if feed.wait_closed(delay):
                    return
                continue
            backoff.success()
            if events:
                self.wfile.write(b"".join(sse_frame(event) for event in events))
                cursor = events[-1]["id"]
            elif not feed.closed:
                self.wfile.write(SSE_KEEPALIVE)

    # Answers ------------------------------------------------------------------

    def _send(
        self,
        status: int,
        content_type: str,
        body: bytes,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        headers = {
            "Content-Security-Policy": DATA_POLICY,
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        }
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _problem(
        self,
        status: int,
        title: str,
        detail: str,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        body = {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
        }
        self._send(
            status, "application/problem+json", json.dumps(body).encode(), headers
        )

    def _refused(self, refusal: Refused) -> None:
        title = http.HTTPStatus(refusal.status).phrase
        self._problem(refusal.status, title, refusal.detail, refusal.headers)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - base signature
        log.debug("%s %s", self.address_string(), mask_tickets(format % args))


class SseServer:
    """Serves ``GET /events`` on ``bind`` (bound at construction, served from start).

    Also ``GET /ws``, the WebSocket, whose clients ``hub`` serves; the live
    page; ``POST /stream-tickets``.

    Args:
        bind: ``host:port``; port 0 picks a free one (see :attr:`address`).
        status: Returns the JSON document ``GET /health`` answers.
        metrics: Returns the Prometheus text ``GET /metrics`` answers (None: 404).
        snapshot: Returns what ``GET /snapshot`` answers (None: 404); may raise
            Unavailable (503).
        keepalive: Seconds of silence before a keep-alive comment.
        hub: The WebSocket clients' hub (default: one with its defaults).
        access: Who may stream (default: everyone, as with ``AUTH=off``).
        hosts: The ``Host`` headers answered (default: the loopback names).
        origins: The pages that may open streams (default: the worker's own).
        header_timeout: Seconds a client has to send its request head.
        max_per_client: Connections one client address may hold; 0: no cap.
    """

    def __init__(
        self,
        bind: str,
        status: Callable[[], Dict[str, Any]],
        keepalive: float = 15.0,
        hub: Optional[WebSocketHub] = None,
        metrics: Optional[Callable[[], bytes]] = None,
        snapshot: Optional[Callable[[], Dict[str, Any]]] = None,
        access: Optional[StreamAccess] = None,
        hosts: Optional[AllowedHosts] = None,
        origins: Optional[AllowedOrigins] = None,
        header_timeout: float = 5.0,
        max_per_client: int = 0,
    ):
        host, port = parse_bind(bind)
        server_class = _Server6 if ":" in host else _Server
        server = self._server = server_class((host, port), _Handler)  # OSError if taken
        try:
            server.gate = Gate(
                server.socket, server.answer, header_timeout, max_per_client
            )
        except ValueError:
            server.server_close()
            raise
        server.keepalive = keepalive
        server.status = status
        server.metrics = metrics
        server.snapshot = snapshot
        server.access = access or StreamAccess(None, lambda: b"")
        server.hosts = hosts or AllowedHosts("")
        server.origins = origins or AllowedOrigins("")
        server.assets = {
            path: ((_HERE / name).read_bytes(), content_type)
            for path, (name, content_type) in ASSETS.items()
        }
        self.hub = server.hub = hub or WebSocketHub()
        if server.access.enabled:
            self.hub.key_active = server.access.active
        self._thread = threading.Thread(
            target=server.gate.serve, name="sse", daemon=True
        )

    @property
    def address(self) -> Tuple[str, int]:
        """The ``(host, port)`` the server listens on."""
        return self._server.server_address[:2]

    @property
    def gate(self) -> Gate:
        """The front door: request heads being read, connections per address."""
        return self._server.gate

    def start(self, feed: EventFeed) -> None:
        """Serve the events of ``feed`` in a background thread."""
        self._server.feed = feed
        self.hub.start(feed)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting connections; open streams end when the feed closes.

        WebSocket clients get a close frame (1001, going away).
        """
        self._server.gate.stop()
        if self._thread.is_alive():
            self._thread.join(5)
        self._server.server_close()
        self.hub.stop()
