"""The push worker's own small HTTP server: note events as SSE and WebSocket.

- ``GET /events``: ``text/event-stream``, one event per change (``id:`` the
  seq, ``event:`` the type, ``data:`` the event as JSON), a keep-alive
  comment when nothing happened for ``keepalive`` seconds. Without
  ``Last-Event-ID`` the stream starts with the next change; with it (or
  ``?last_event_id=N``, for clients that cannot set headers) it first
  replays every change after N from the store's log, then goes live. A
  browser's ``EventSource`` sends the header by itself when it reconnects.
  An N ahead of the stream (a database that was reset) gets a ``reset``
  event, then every change the log holds (``EventFeed.resume``).
- ``GET /ws``: the same events over a WebSocket (RFC 6455), one text frame
  each; ``?last_event_id=N`` resumes as SSE does. This server completes the
  opening handshake and hands the socket to :mod:`workers.push.ws`, whose
  one event loop serves every WebSocket client.
- ``GET /``: the live page (``live.html``): the current notes, each change
  applied as it comes, and the connection's state; same origin, so no CORS.
- ``GET /snapshot``: what the page starts from, ``{"seq", "notes"}``: the
  newest notes and the seq of the stream they were read after.
- ``GET /health``: the worker's state as JSON.
- ``GET /metrics``: the worker's Prometheus metrics (workers/push/metrics.py).

Plain ``http.server`` with a thread per connection: SSE clients are few
(dashboards, tools), and each one mostly waits on the feed.

Over 300 lines: one small HTTP server serves every push endpoint of the worker
(SSE, the WebSocket upgrade, /metrics, /snapshot, the live page); they share
the request parsing and the resume rules.
"""

import http.server
import json
import logging
import socket
import threading
import urllib.parse
from pathlib import Path
from typing import Any
from typing import Callable
from typing import Dict
from typing import Optional
from typing import Set
from typing import Tuple

from websockets.http11 import Request

from core.backoff import Backoff
from db.errors import Unavailable
from workers.push import metrics
from workers.push.events import SSE_KEEPALIVE
from workers.push.events import parse_last_event_id
from workers.push.events import reset_data
from workers.push.events import sse_frame
from workers.push.events import sse_reset_frame
from workers.push.feed import EventFeed
from workers.push.feed import Resume
from workers.push.filters import EventFilter
from workers.push.ws import WebSocketHub
from workers.push.ws import control_frame
from workers.push.ws import new_protocol

log = logging.getLogger(__name__)

#: The live page (``GET /``): a static file beside this module.
PAGE_PATH = Path(__file__).resolve().with_name("live.html")


def parse_bind(bind: str) -> Tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) as ``(host, port)``; ValueError if not."""
    host, sep, port = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"PUSH_SSE_BIND must look like 127.0.0.1:8001, got {bind!r}")
    return host, int(port)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # an open stream never keeps the process alive
    allow_reuse_address = True
    # Many WebSocket clients may connect at once (the default backlog is 5).
    request_queue_size = 1024

    feed: EventFeed
    keepalive: float
    status: Callable[[], Dict[str, Any]]
    hub: WebSocketHub
    metrics: Optional[Callable[[], bytes]]
    snapshot: Optional[Callable[[], Dict[str, Any]]]
    page: bytes

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._handed_over: Set[socket.socket] = set()
        self._handed_over_lock = threading.Lock()

    def hand_over(self, request: socket.socket) -> None:
        """``request``'s connection now belongs to the WebSocket hub (a dup of it)."""
        with self._handed_over_lock:
            self._handed_over.add(request)

    def shutdown_request(self, request) -> None:
        with self._handed_over_lock:
            handed_over = request in self._handed_over
            self._handed_over.discard(request)
        if handed_over:
            # Close only this descriptor: shutdown() would end the connection
            # the hub now serves through its own descriptor.
            self.close_request(request)
        else:
            super().shutdown_request(request)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    # Each event is a small write: with Nagle's algorithm on, it waits for
    # the client's (delayed) ACK of the previous one, up to 40 ms.
    disable_nagle_algorithm = True
    server: _Server
    server_version = "push-worker"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/events":
            metrics.SSE_CLIENTS.inc()
            try:
                self._events(url.query)
            finally:
                metrics.SSE_CLIENTS.dec()
        elif url.path == "/metrics" and self.server.metrics is not None:
            self._send(200, metrics.CONTENT_TYPE, self.server.metrics())
        elif url.path == "/ws":
            self._websocket(url.query)
        elif url.path == "/health":
            body = json.dumps(self.server.status()).encode()
            self._send(200, "application/json", body)
        elif url.path == "/":
            self._send(200, "text/html; charset=utf-8", self.server.page)
        elif url.path == "/snapshot" and self.server.snapshot is not None:
            try:
                body = json.dumps(self.server.snapshot()).encode()
            except Unavailable:
                self._problem(503, "Service Unavailable", "notes store unavailable")
                return
            self._send(200, "application/json", body, {"Cache-Control": "no-store"})
        else:
            self._problem(404, "Not Found", "The event stream is GET /events.")

    def _refuse_method(self) -> None:
        self._problem(
            405, "Method Not Allowed", "Only GET is served here.", {"Allow": "GET"}
        )

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse_method  # noqa: N815

    def _events(self, query: str) -> None:
        header = self.headers.get("Last-Event-ID")
        if header is None:
            header = urllib.parse.parse_qs(query).get("last_event_id", [None])[0]
        try:
            last_id = parse_last_event_id(header)
        except ValueError as ex:
            self._problem(400, "Bad Request", str(ex))
            return
        feed = self.server.feed
        try:
            resume = feed.resume(last_id)
        except Unavailable:
            self._problem(503, "Service Unavailable", "The notes store is unavailable.")
            return
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
                    "SSE client %s: Last-Event-ID %d is ahead of the stream; reset",
                    self.client_address[0],
                    last_id,
                )
                self.wfile.write(sse_reset_frame(last_id, cursor))
            self._stream(feed, cursor)
        except OSError:  # the client went away (broken pipe, reset)
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

    def _websocket(self, query: str) -> None:
        """``GET /ws``: check, answer the opening handshake, hand over to the hub."""
        # WebSocket clients refuse an HTTP/1.0 answer, even an error; one
        # connection per WebSocket (errors close it too).
        self.protocol_version = "HTTP/1.1"
        self.close_connection = True
        params = urllib.parse.parse_qs(query)
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
        # it is given again): its parser must be past the handshake before
        # the client's frames come.
        head = "".join(
            [f"GET {self.path} HTTP/1.1\r\n"]
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
                "WebSocket client %s: last_event_id %d is ahead of the stream; reset",
                self.client_address[0],
                last_id,
            )
            greeting += control_frame(
                {"type": "reset", **reset_data(last_id, resume.cursor)}
            )
        protocol.send_response(response)
        self.wfile.write(b"".join(protocol.data_to_send()))
        # The hub gets a descriptor of its own; this thread's one is closed
        # by the server when the handler returns (see _Server.shutdown_request).
        self.server.hand_over(self.connection)
        self.close_connection = True
        self.server.hub.adopt(
            self.connection.dup(), protocol, resume.cursor, event_filter, greeting
        )

    def _stream(self, feed: EventFeed, cursor: int) -> None:
        backoff = Backoff()
        while not feed.closed:
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

    def _send(
        self,
        status: int,
        content_type: str,
        body: bytes,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
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

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - base signature
        log.debug("%s %s", self.address_string(), format % args)


class SseServer:
    """Serves ``GET /events`` on ``bind`` (bound at construction, served from start).

    Also ``GET /ws``, the WebSocket, whose clients ``hub`` serves.

    Args:
        bind: ``host:port``; port 0 picks a free one (see :attr:`address`).
        status: Returns the JSON document ``GET /health`` answers.
        metrics: Returns the Prometheus text ``GET /metrics`` answers (None: 404).
        snapshot: Returns what ``GET /snapshot`` answers (None: 404); may raise
            Unavailable (503).
        keepalive: Seconds of silence before a keep-alive comment.
        hub: The WebSocket clients' hub (default: one with its defaults).
    """

    def __init__(
        self,
        bind: str,
        status: Callable[[], Dict[str, Any]],
        keepalive: float = 15.0,
        hub: Optional[WebSocketHub] = None,
        metrics: Optional[Callable[[], bytes]] = None,
        snapshot: Optional[Callable[[], Dict[str, Any]]] = None,
    ):
        host, port = parse_bind(bind)
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), _Handler)  # OSError if taken
        self._server.keepalive = keepalive
        self._server.status = status
        self._server.metrics = metrics
        self._server.snapshot = snapshot
        self._server.page = PAGE_PATH.read_bytes()
        self.hub = self._server.hub = hub or WebSocketHub()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="sse",
            daemon=True,
        )

    @property
    def address(self) -> Tuple[str, int]:
        """The ``(host, port)`` the server listens on."""
        return self._server.server_address[:2]

    def start(self, feed: EventFeed) -> None:
        """Serve the events of ``feed`` in a background thread."""
        self._server.feed = feed
        self.hub.start(feed)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting connections; open streams end when the feed closes.

        WebSocket clients get a close frame (1001, going away).
        """
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self.hub.stop()
