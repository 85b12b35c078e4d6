"""The API's client of the collatz broker: one request, one deadline.

A ZeroMQ context per process (made after gunicorn's fork), a pool of REQ
sockets (one per request at a time), and a socket that misses its deadline is
closed and replaced: the lazy pirate pattern. Under gevent the context is
``zmq.green``'s. Design: docs/design/collatz.md#the-apis-client
"""

import json
import os
import sys
import threading
import time
from typing import List
from typing import Optional
from typing import Tuple

import zmq

from core.settings import Settings
from db.errors import Unavailable
from gateways import collatz_protocol as proto
from gateways import curve

#: Longest a readiness ping waits, whatever the request timeout.
PING_TIMEOUT = 1.0


class CollatzClient:
    """Asks the broker at ``endpoint`` for the longest chain in 1..n.

    Args:
        endpoint: The broker's frontend endpoint (``COLLATZ_FRONTEND``).
        timeout: Seconds to wait for an answer before raising Unavailable.
        keys: CURVE keys to connect with (None: no CURVE).
    """

    def __init__(
        self, endpoint: str, timeout: float, keys: Optional[curve.ClientKeys] = None
    ):
        self.endpoint = endpoint
        self.timeout = timeout
        self.keys = keys
        self._pid: Optional[int] = None
        self._context: Optional[zmq.Context] = None
        self._idle: List[zmq.Socket] = []
        self._lock = threading.Lock()
        # Contexts and sockets inherited through fork are never touched again:
        # closing them in the child is unsafe, so they are kept from the collector.
        self._inherited = []

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        endpoint: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> "CollatzClient":
        """The API's client: ``COLLATZ_FRONTEND``, ``COLLATZ_TIMEOUT``, its keys.

        Raises curve.CurveError when CURVE is on and a key file is missing.
        """
        return cls(
            endpoint or settings.collatz_frontend,
            settings.collatz_timeout if timeout is None else timeout,
            curve.client_keys(settings, curve.API),
        )

    def longest(self, n: int) -> Tuple[int, int]:
        """``(start, length)`` of the longest chain in 1..n; Unavailable on timeout."""
        # The broker gets a slightly shorter deadline so that its own, clearer
        # error arrives before this side gives up.
        margin = min(0.2, self.timeout / 10)
        deadline_ms = max(1, int((self.timeout - margin) * 1000))
        request = [proto.API, proto.LONGEST] + proto.numbers(n, deadline_ms)
        reply = self._request(request, self.timeout)
        if reply is None:
            raise Unavailable(
                f"The collatz broker did not answer within {self.timeout:g} s."
            )
        if len(reply) == 4 and reply[:2] == [proto.API, proto.OK]:
            try:
                return proto.number(reply[2]), proto.number(reply[3])
            except ValueError:
                pass  # malformed, below
        elif len(reply) == 4 and reply[:2] == [proto.API, proto.ERR]:
            reason = reply[3].decode("ascii", "replace")
            raise Unavailable(f"The collatz workers could not answer: {reason}.")
        raise Unavailable("The collatz broker sent a malformed reply.")

    def ping(self) -> dict:
        """The broker's statistics; Unavailable when it is silent or has no worker."""
        stats = self.stats()
        if not stats.get("workers"):
            raise Unavailable("No collatz worker is connected to the broker.")
        return stats

    def stats(self) -> dict:
        """The broker's statistics (workers, queue, ...); Unavailable if silent."""
        reply = self._request([proto.API, proto.PING], min(PING_TIMEOUT, self.timeout))
        if reply is None:
            raise Unavailable("The collatz broker does not answer.")
        if len(reply) != 3 or reply[:2] != [proto.API, proto.PONG]:
            raise Unavailable("The collatz broker sent a malformed reply.")
        try:
            stats = json.loads(reply[2])
        except ValueError:
            raise Unavailable("The collatz broker sent a malformed reply.") from None
        if not isinstance(stats, dict):
            raise Unavailable("The collatz broker sent a malformed reply.")
        return stats

    def _request(self, frames, timeout: float) -> Optional[list]:
        deadline = time.monotonic() + timeout
        sock = self._socket()
        try:
            # A REQ socket's send waits for a peer, and a refused CURVE
            # handshake takes the peer away: sending has the same deadline.
            if _wait(sock, zmq.POLLOUT, deadline):
                sock.send_multipart(frames, zmq.NOBLOCK)
                if _wait(sock, zmq.POLLIN, deadline):
                    reply = sock.recv_multipart()
                    self._give_back(sock)
                    return reply
        except zmq.Again:
            pass  # the peer went between the poll and the send
        except BaseException:
            sock.close(linger=0)
            raise
        # No answer: a REQ socket cannot send again before it receives, and a
        # late answer must not be taken for the next request's.
        sock.close(linger=0)
        return None

    def _socket(self) -> zmq.Socket:
        pid = os.getpid()
        with self._lock:
            if self._pid != pid:
                if self._context is not None:
                    self._inherited.append((self._context, self._idle))
                self._context, self._pid = _context_class()(), pid
                self._idle = []
            if self._idle:
                return self._idle.pop()
            context = self._context
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            self.keys.apply(sock)
        sock.connect(self.endpoint)
        return sock

    def _give_back(self, sock: zmq.Socket) -> None:
        with self._lock:
            if self._pid == os.getpid() and self._context is not None:
                self._idle.append(sock)
                return
        sock.close(linger=0)

    def close(self) -> None:
        """Close this process's context and its sockets (tests, shutdown)."""
        with self._lock:
            if self._context is not None and self._pid == os.getpid():
                self._context.destroy(linger=0)
            self._context, self._pid = None, None
            self._idle = []


def _wait(sock: zmq.Socket, event: int, deadline: float) -> bool:
    """Whether ``sock`` is ready for ``event`` before ``deadline`` (monotonic)."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if sock.poll(left * 1000, event):
            return True


def _context_class() -> type:
    """``zmq.green.Context`` when gevent has patched this process, else zmq's."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        from zmq import green

        return green.Context
    return zmq.Context
