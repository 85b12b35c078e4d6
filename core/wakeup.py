"""Commit notifications: a writer nudges a follower so it reads at once.

One empty UDP datagram to ``PUSH_WAKE_ADDRESS`` per committed note write says
"look now"; a lost one costs a delay up to the follower's poll, never a
change. A send is one non-blocking ``sendto``, safe from any thread and across
``fork``. Design: docs/design/change-stream.md
"""

import logging
import os
import select
import socket
from typing import Optional
from typing import Tuple

log = logging.getLogger(__name__)


def parse_address(text: str) -> Optional[Tuple[str, int]]:
    """``"127.0.0.1:5557"`` -> ``("127.0.0.1", 5557)``; empty -> None (no wake-ups).

    Raises:
        ValueError: not ``host:port`` with a port in 1..65535.
    """
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"PUSH_WAKE_ADDRESS must be host:port, not {text!r}")
    return host.strip("[]"), int(port)


class Notifier:
    """Sends wake-ups to ``address`` (``host:port``); never raises, never blocks."""

    def __init__(self, address: str):
        self.address = parse_address(address)
        self._socket: Optional[socket.socket] = None
        self._pid = 0

    def notify(self) -> None:
        """Tell the follower there is something new to read."""
        if self.address is None:
            return
        try:
            if self._pid != os.getpid():  # made after a fork, in the process using it
                self._socket = socket.socket(
                    _family(self.address[0]), socket.SOCK_DGRAM
                )
                self._socket.setblocking(False)
                self._pid = os.getpid()
            self._socket.sendto(b"", self.address)
        except OSError as ex:  # the follower polls anyway: a lost nudge is a delay
            log.debug("wake-up to %s not sent: %s", self.address, ex)

    def close(self) -> None:
        """Release the socket (it is made again on the next notify)."""
        if self._socket is not None:
            self._socket.close()
        self._socket, self._pid = None, 0


class Listener:
    """Receives wake-ups on ``address``; :meth:`wait` returns early when one came.

    Raises:
        OSError: the address cannot be bound (in use, not local).
    """

    def __init__(self, address: str):
        parsed = parse_address(address)
        if parsed is None:
            raise ValueError("a Listener needs an address")
        self._socket = socket.socket(_family(parsed[0]), socket.SOCK_DGRAM)
        try:
            self._socket.bind(parsed)
        except OSError:
            self._socket.close()
            raise
        self._socket.setblocking(False)
        self.address = self._socket.getsockname()[:2]
        # poll, not select: select fails on a descriptor numbered 1024 or more.
        self._poll = select.poll()
        self._poll.register(self._socket, select.POLLIN)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True if a wake-up came (all are consumed)."""
        if not self._poll.poll(max(timeout, 0.0) * 1000):
            return False
        self._drain()
        return True

    def _drain(self) -> None:
        # Many commits may have nudged meanwhile: one read of the log serves all.
        while True:
            try:
                self._socket.recv(1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return

    def close(self) -> None:
        """Stop listening."""
        self._socket.close()


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
