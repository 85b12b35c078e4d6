"""The push worker's WebSocket clients, all served by one asyncio loop.

``sse.py`` completes the opening handshake and hands the socket to the
:class:`WebSocketHub`; a pump thread passes the feed's events to the loop in
batches, each frame built once and written to every client that wants it.

Design: docs/design/push.md#the-http-server-and-the-websocket-hub
"""

import asyncio
import concurrent.futures
import logging
import socket
import threading
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Set
from typing import Tuple

from websockets.frames import Frame
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from core import wire
from core.backoff import Backoff
from db.errors import Unavailable
from workers.push.events import Event
from workers.push.feed import EventFeed
from workers.push.filters import EventFilter

log = logging.getLogger(__name__)

#: Largest message a client may send (a filter is far smaller); larger: 1009.
MAX_MESSAGE = 4096
#: Bytes queued for one client before it is dropped as too slow.
MAX_BUFFER = 1 << 20
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0
#: Seconds a client has to answer our close frame before the socket is closed.
CLOSE_TIMEOUT = 5.0
#: Seconds between two checks that the clients' keys are still active.
RECHECK_INTERVAL = 5.0

#: An event and its frame, as the loop hands them to each client.
Framed = Tuple[Event, bytes]


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame: what a server sends for a message."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


def control_frame(message: dict) -> bytes:
    """A frame of the hub's own (``stream``, ``reset``, ``subscribed``, ``error``)."""
    return text_frame(wire.encode(message))


def new_protocol() -> ServerProtocol:
    """The sans-I/O protocol of one connection; no extension (no compression),
    so every client can be sent the same frame bytes."""
    return ServerProtocol(max_size=MAX_MESSAGE, extensions=None)


class _Client(asyncio.Protocol):
    """One WebSocket connection on the hub's loop (every method runs there)."""

    def __init__(
        self,
        hub: "WebSocketHub",
        protocol: ServerProtocol,
        cursor: int,
        event_filter: EventFilter,
        greeting: bytes,
        peer: str,
        key_id: Optional[int] = None,
        early: bytes = b"",
        on_close: Optional[Callable[[], None]] = None,
    ):
        self.hub = hub
        self.protocol = protocol
        self.cursor = cursor
        self.filter = event_filter
        self.greeting = greeting
        self.peer = peer
        self.key_id = key_id
        self.early = early
        self.on_close = on_close
        self.transport: Optional[asyncio.Transport] = None
        self.closed = False
        self.ping_at: Optional[float] = None
        self._writable = asyncio.Event()
        self._writable.set()

    # asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.greeting)
        self.hub._joined(self)
        if self.early:
            self.data_received(self.early)

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for frame in self.protocol.events_received():
            if frame.opcode is Opcode.TEXT:
                self._message(frame.data)
            elif frame.opcode is Opcode.BINARY:
                self._reply({"type": "error", "detail": "Send text frames of JSON."})
            elif frame.opcode is Opcode.PONG:
                self.ping_at = None
        self._flush()

    def eof_received(self) -> bool:
        self.protocol.receive_eof()
        self._flush()
        return False  # let asyncio close the transport

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        self._writable.set()
        self.hub._left(self)
        if self.on_close is not None:
            self.on_close()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # Sending -----------------------------------------------------------------

    @property
    def open(self) -> bool:
        return not self.closed and self.protocol.state is State.OPEN

    def send_events(self, batch: List[Framed]) -> None:
        """Send the events of ``batch`` after the cursor that the filter wants."""
        if not self.open:
            return
        chunks = []
        for event, frame in batch:
            if event["id"] <= self.cursor:
                continue
            self.cursor = event["id"]
            if self.filter.wants(event):
                chunks.append(frame)
        if not chunks:
            return
        self.transport.write(b"".join(chunks) if len(chunks) > 1 else chunks[0])
        if self.transport.get_write_buffer_size() > self.hub.max_buffer:
            self.drop(f"too slow: more than {self.hub.max_buffer} bytes queued")

    async def writable(self) -> None:
        """Until the socket has drained below asyncio's high-water mark."""
        await self._writable.wait()

    def ping(self, now: float) -> None:
        """Ping, or drop the client if the last ping is unanswered for too long."""
        if not self.open:
            return
        if self.ping_at is not None:
            if now - self.ping_at > self.hub.ping_timeout:
                self.drop(f"no pong within {self.hub.ping_timeout:.0f} s")
            return
        self.ping_at = now
        self.protocol.send_ping(b"%d" % int(now))
        self._flush()

    def drop(self, reason: str) -> None:
        """Abort the connection now (what is queued is thrown away)."""
        log.info("WebSocket client %s dropped: %s", self.peer, reason)
        self.hub.dropped += 1
        self.closed = True
        self.transport.abort()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the socket closes soon in any case."""
        if not self.open:
            return
        self.protocol.send_close(code, reason)
        self._flush()

    def _reply(self, message: dict) -> None:
        if self.open:
            self.transport.write(control_frame(message))

    def _message(self, data: bytes) -> None:
        try:
            message = wire.loads(data)
        except ValueError:
            self._reply({"type": "error", "detail": "The message is not valid JSON."})
            return
        try:
            self.filter = self.filter.updated(message)
        except ValueError as ex:
            self._reply({"type": "error", "detail": str(ex)})
            return
        self._reply({"type": "subscribed", **self.filter.describe()})

    def _flush(self) -> None:
        """Write what the protocol has to send (pongs, close frames); close after."""
        if self.transport is None or self.transport.is_closing():
            return
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            else:  # the protocol is done with the connection: close it
                self.transport.close()
                return
        if self.protocol.close_expected():
            self.hub.loop.call_later(CLOSE_TIMEOUT, self._give_up)

    def _give_up(self) -> None:
        if not self.closed:
            self.transport.abort()


class WebSocketHub:
    """Every WebSocket client of the push worker, on one asyncio loop.

    Args:
        max_buffer: Bytes queued for a client before it is dropped.
        ping_interval: Seconds between two pings of a client.
        ping_timeout: Seconds a client has to answer a ping.
        recheck_interval: Seconds between two checks of the clients' keys.
    """

    #: ``key_active(key_id)``: whether a client's key may still stream (None:
    #: keys are not checked). Set by the HTTP server that checks them.
    key_active: Optional[Callable[[int], bool]] = None

    def __init__(
        self,
        max_buffer: int = MAX_BUFFER,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
        recheck_interval: float = RECHECK_INTERVAL,
    ):
        self.max_buffer = max_buffer
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.recheck_interval = recheck_interval
        self.loop = asyncio.new_event_loop()
        self.head = 0
        self.dropped = 0
        self._feed: Optional[EventFeed] = None
        self._clients: Set[_Client] = set()
        self._live: Set[_Client] = set()
        self._stopping = threading.Event()
        # Set when the loop has sent the last batch the pump handed over.
        self._sent = threading.Event()
        self._sent.set()
        self._reader = concurrent.futures.ThreadPoolExecutor(
            4, thread_name_prefix="ws-catch-up"
        )
        self._thread = threading.Thread(target=self._run, name="ws", daemon=True)
        self._pump = threading.Thread(
            target=self._pump_feed, name="ws-pump", daemon=True
        )

    @property
    def clients(self) -> int:
        """How many WebSocket clients are connected."""
        return len(self._clients)

    def start(self, feed: EventFeed) -> None:
        """Serve the events of ``feed`` from now on."""
        self._feed = feed
        self.head = feed.head
        self._thread.start()
        self._pump.start()

    def stop(self) -> None:
        """Close every client (1001) and stop the loop and the pump."""
        self._stopping.set()
        if self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._close_all(), self.loop)
            try:
                done.result(5)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        self._reader.shutdown(wait=False)

    def adopt(
        self,
        sock: socket.socket,
        protocol: ServerProtocol,
        cursor: int,
        event_filter: EventFilter,
        greeting: bytes,
        key_id: Optional[int] = None,
        early: bytes = b"",
        on_close: Optional[Callable[[], None]] = None,
    ) -> None:
        """Serve a connection whose opening handshake is done (any thread).

        The hub owns ``sock`` from now on; the stream starts after ``cursor``
        with ``greeting`` (the hub's first frames). ``key_id``: the key the
        client came with (None: none checked); ``early``: bytes the client
        sent right behind its opening request; ``on_close``: called once
        when the connection is closed, whatever the reason.
        """
        try:
            host, port = sock.getpeername()[:2]
            peer = f"{host}:{port}"
        except OSError:
            peer = "?"
        args = (protocol, cursor, event_filter, greeting, peer, key_id, early, on_close)
        if self._stopping.is_set() or not self._thread.is_alive():
            sock.close()
            if on_close is not None:
                on_close()
            return
        asyncio.run_coroutine_threadsafe(self._connect(sock, args), self.loop)

    async def _connect(self, sock: socket.socket, args: tuple) -> None:
        # Made here: on Python 3.9 an asyncio.Event binds to the current loop.
        client = _Client(self, *args)
        try:
            await self.loop.connect_accepted_socket(lambda: client, sock=sock)
        except OSError as ex:
            log.info(
                "WebSocket client %s lost before it was served: %s", client.peer, ex
            )
            sock.close()
            if client.on_close is not None:
                client.on_close()

    # On the loop -------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.create_task(self._pinger())
        if self.key_active is not None:
            self.loop.create_task(self._rechecker())
        try:
            self.loop.run_forever()
        finally:
            for client in list(self._clients):
                if client.transport is not None:
                    client.transport.abort()
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            self.loop.run_until_complete(
                asyncio.gather(*tasks, asyncio.sleep(0), return_exceptions=True)
            )
            self.loop.close()

    def _joined(self, client: _Client) -> None:
        self._clients.add(client)
        log.info(
            "WebSocket client %s connected after event %d", client.peer, client.cursor
        )
        if client.cursor >= self.head:
            self._live.add(client)
        else:
            self.loop.create_task(self._catch_up(client))

    def _left(self, client: _Client) -> None:
        self._clients.discard(client)
        self._live.discard(client)
        log.info("WebSocket client %s gone", client.peer)

    def _dispatch(self, batch: List[Framed]) -> None:
        try:
            self.head = batch[-1][0]["id"]
            for client in list(self._live):
                client.send_events(batch)
        finally:
            self._sent.set()

    async def _catch_up(self, client: _Client) -> None:
        """Send a client what it missed, then make it live (see the docstring)."""
        backoff = Backoff()
        while client.open:
            if client.cursor >= self.head:
                self._live.add(client)
                return
            try:
                events = await self.loop.run_in_executor(
                    self._reader, self._feed.read, client.cursor, 500, 1.0
                )
            except Unavailable:
                await asyncio.sleep(backoff.failure())
                continue
            backoff.success()
            if events:
                client.send_events(_framed(events))
                await client.writable()

    async def _pinger(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            now = self.loop.time()
            for client in list(self._clients):
                client.ping(now)

    async def _rechecker(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_interval)
            key_ids = {c.key_id for c in self._clients if c.key_id is not None}
            if not key_ids:
                continue
            try:
                active = await self.loop.run_in_executor(
                    self._reader, self._active_keys, key_ids
                )
            except Exception:  # a bug: keep the clients, try again next time
                log.exception("checking the WebSocket clients' keys failed")
                continue
            for client in list(self._clients):
                if client.key_id is not None and not active.get(client.key_id, True):
                    log.info("WebSocket client %s: its key is revoked", client.peer)
                    client.close(1008, "the API key is revoked")

    def _active_keys(self, key_ids: Set[int]) -> Dict[int, bool]:
        return {key_id: self.key_active(key_id) for key_id in key_ids}

    async def _close_all(self) -> None:
        for client in list(self._clients):
            client.close(1001, "the push worker is stopping")

    # The pump thread ---------------------------------------------------------

    def _pump_feed(self) -> None:
        """Read the feed and hand each batch, framed, to the loop, in order."""
        feed = self._feed
        cursor = self.head
        backoff = Backoff()
        while not self._stopping.is_set() and not feed.closed:
            # One batch in the loop at a time: what the feed gets while the
            # loop sends it is read after, as one batch.
            if not self._sent.wait(0.5):
                continue
            try:
                events = feed.read(cursor, limit=500, timeout=1.0)
            except Unavailable:
                if feed.wait_closed(backoff.failure()):
                    return
                continue
            backoff.success()
            if events:
                cursor = events[-1]["id"]
                framed = _framed(events)
                self._sent.clear()
                try:
                    self.loop.call_soon_threadsafe(self._dispatch, framed)
                except RuntimeError:  # the loop is closed: stopping
                    return


def _framed(events: List[Any]) -> List[Framed]:
    return [(event, text_frame(wire.encode(event))) for event in events]
