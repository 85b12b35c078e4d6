"""The push worker's front door: every request head is read on one thread.

One selector thread accepts every connection and reads its head, with a
deadline (``header_timeout``), a size cap (:data:`MAX_HEAD`, else 431) and a
cap per client address (``max_per_client``, else 429), then passes it to
``hand_over``; a connection counts until :meth:`Gate.release` closes it.

Design: docs/design/security.md#the-push-workers-port-streams-origin-host-slow-clients
"""

import collections
import json
import logging
import selectors
import socket
import threading
import time
from typing import Callable
from typing import Dict
from typing import Tuple

log = logging.getLogger(__name__)

#: Largest request head read (request line and headers).
MAX_HEAD = 16 * 1024
#: Connections accepted per turn of the loop, so that heads get read too.
_ACCEPT_BATCH = 64
#: Longest wait of the selector: how soon a stop is seen without a wake-up.
_TICK = 0.5

HandOver = Callable[[socket.socket, Tuple, bytes], None]


def _refusal(status: int, title: str, detail: str) -> bytes:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Pending:
    __slots__ = ("address", "deadline", "head")

    def __init__(self, address: Tuple, deadline: float):
        self.address = address
        self.deadline = deadline
        self.head = bytearray()


class Gate:
    """Accepts on ``listener`` and reads request heads until :meth:`stop`.

    Args:
        listener: A listening socket (made non-blocking here).
        hand_over: Called (on the gate's thread) with each complete head;
            it must not block.
        header_timeout: Seconds from the connect to the end of the head.
        max_per_client: Connections one address may hold; 0: no cap.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        listener: socket.socket,
        hand_over: HandOver,
        header_timeout: float = 5.0,
        max_per_client: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if header_timeout <= 0:
            raise ValueError("PUSH_HEADER_TIMEOUT must be more than 0")
        if max_per_client < 0:
            raise ValueError("PUSH_MAX_CONNECTIONS_PER_CLIENT must be 0 or more")
        self._listener = listener
        self._hand_over = hand_over
        self.header_timeout = header_timeout
        self.max_per_client = max_per_client
        self._clock = clock
        listener.setblocking(False)
        # In accept order, which is deadline order: the oldest expire first.
        self._pending: collections.OrderedDict[socket.socket, _Pending] = (
            collections.OrderedDict()
        )
        self._held: Dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)

    @property
    def pending(self) -> int:
        """Connections whose head is being read."""
        return len(self._pending)

    def held(self, host: str) -> int:
        """Connections the address ``host`` holds."""
        with self._lock:
            return self._held.get(host, 0)

    def serve(self) -> None:
        """Accept and read heads until :meth:`stop` (run it on a thread of its own)."""
        try:
            while not self._stopping.is_set():
                for key, _ in self._selector.select(self._wait()):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_reader:
                        self._drain_wake_ups()
                    else:
                        self._read(key.fileobj)
                self._expire()
        finally:
            for sock in list(self._pending):
                self._drop(sock)
            self._selector.close()
            self._wake_reader.close()
            self._wake_writer.close()

    def stop(self) -> None:
        """End :meth:`serve` soon (any thread)."""
        self._stopping.set()
        try:
            self._wake_writer.send(b"x")
        except OSError:  # closed already, or its buffer is full: it wakes anyway
            pass

    def release(self, address: Tuple) -> None:
        """A connection handed over from ``address`` is closed (any thread)."""
        host = address[0]
        with self._lock:
            left = self._held.get(host, 0) - 1
            if left > 0:
                self._held[host] = left
            else:
                self._held.pop(host, None)

    def _wait(self) -> float:
        if not self._pending:
            return _TICK
        first = next(iter(self._pending.values()))
        return min(_TICK, max(0.0, first.deadline - self._clock()))

    def _drain_wake_ups(self) -> None:
        try:
            while self._wake_reader.recv(64):
                pass
        except OSError:
            pass

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, address = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as ex:  # out of descriptors: let some close first
                log.warning("cannot accept a connection: %s", ex)
                self._stopping.wait(0.1)
                return
            host = address[0]
            with self._lock:
                held = self._held.get(host, 0)
                refused = 0 < self.max_per_client <= held
                if not refused:
                    self._held[host] = held + 1
            if refused:
                log.debug(
                    "refused a connection from %s: it holds %d already", host, held
                )
                self._refuse(
                    sock,
                    429,
                    "Too Many Requests",
                    f"This address holds {held} connections already "
                    "(PUSH_MAX_CONNECTIONS_PER_CLIENT).",
                )
                continue
            sock.setblocking(False)
            self._pending[sock] = _Pending(address, self._clock() + self.header_timeout)
            self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, sock: socket.socket) -> None:
        pending = self._pending.get(sock)
        if pending is None:
            return
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client gave up
            self._drop(sock)
            return
        pending.head += data
        # A blank line ends the head (CRLF, or a bare LF as http.server takes).
        start = max(0, len(pending.head) - len(data) - 3)
        ended = (
            pending.head.find(b"\n\r\n", start) >= 0
            or pending.head.find(b"\n\n", start) >= 0
        )
        if not ended:
            if len(pending.head) > MAX_HEAD:
                self._forget(sock)
                self.release(pending.address)
                self._refuse(
                    sock,
                    431,
                    "Request Header Fields Too Large",
                    f"The request line and headers are over {MAX_HEAD} bytes.",
                )
            return
        self._forget(sock)
        try:
            sock.setblocking(True)
            self._hand_over(sock, pending.address, bytes(pending.head))
        except Exception:  # a bug, or a socket that died meanwhile: not the loop
            log.exception("handing over a connection from %s failed", pending.address)
            sock.close()
            self.release(pending.address)

    def _expire(self) -> None:
        now = self._clock()
        while self._pending:
            sock, pending = next(iter(self._pending.items()))
            if pending.deadline > now:
                return
            log.debug(
                "closed a connection from %s: no complete request head within %.1fs",
                pending.address[0],
                self.header_timeout,
            )
            self._drop(sock)

    def _forget(self, sock: socket.socket) -> None:
        del self._pending[sock]
        self._selector.unregister(sock)

    def _drop(self, sock: socket.socket) -> None:
        pending = self._pending[sock]
        self._forget(sock)
        sock.close()
        self.release(pending.address)

    @staticmethod
    def _refuse(sock: socket.socket, status: int, title: str, detail: str) -> None:
        """Answer ``status`` if the socket takes it at once, then close."""
        try:
            sock.setblocking(False)
            sock.send(_refusal(status, title, detail))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()
