"""Publish the feed's events on a ZeroMQ PUB socket, in order; checkpoint them.

An XPUB socket, so that after a restart the publisher can wait up to ``grace``
seconds for a first subscriber before the catch-up; its cursor is the
worker's checkpoint. Design: docs/design/push.md#the-pub-socket
"""

import logging
import threading
import time
from typing import Optional
from typing import Set

import zmq

from core.backoff import Backoff
from core.settings import Settings
from db.errors import Unavailable
from gateways import curve
from workers.push.checkpointer import Checkpointer
from workers.push.events import zmq_frames
from workers.push.feed import EventFeed

log = logging.getLogger(__name__)


def pub_keys(settings: Settings) -> Optional[curve.ServerKeys]:
    """The PUB socket's CURVE keys, or None (curve.CurveError: see server_keys)."""
    endpoints = {"PUSH_PUB_ENDPOINT": settings.push_pub_endpoint}
    return curve.server_keys(settings, curve.PUB, endpoints)


class Publisher:
    """Sends every event of a feed on an XPUB socket bound to ``endpoint``.

    Args:
        endpoint: A ZeroMQ endpoint to bind (``tcp://127.0.0.1:5556``).
        grace: Seconds to wait at start for a first subscriber.
        hwm: Messages queued for a slow subscriber before ZeroMQ drops more.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        grace: float = 2.0,
        hwm: int = 100000,
        context: Optional[zmq.Context] = None,
    ):
        self.endpoint = endpoint
        self._grace = grace
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.XPUB)
        self._socket.setsockopt(zmq.SNDHWM, hwm)
        self._socket.setsockopt(zmq.LINGER, 1000)
        self._feed: Optional[EventFeed] = None
        self._checkpointer: Optional[Checkpointer] = None
        self._lock = threading.Lock()
        self._topics: Set[bytes] = set()
        self._finishing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._gate: Optional[curve.Gate] = None
        self.sent = 0

    def bind(self, keys: Optional[curve.ServerKeys] = None) -> None:
        """Bind the socket, a CURVE server with ``keys``.

        Raises zmq.ZMQError if the address is taken, curve.CurveError if the
        admitted keys cannot be read.
        """
        if keys is not None:
            self._gate = curve.Gate(self._context, keys)
            self._gate.guard(self._socket, curve.SUBSCRIBER.admitted_by)
        self._socket.bind(self.endpoint)
        log.info(
            "PUB socket on %s (%s)",
            self.endpoint,
            "no CURVE" if keys is None else f"CURVE keys in {keys.folder}",
        )

    def start(self, feed: EventFeed, checkpointer: Checkpointer) -> None:
        """Send the events of ``feed`` after the checkpointer's position, in a thread.

        The checkpointer is told the position after every send (it saves it).
        """
        self._feed = feed
        self._checkpointer = checkpointer
        self._thread.start()

    def close(self) -> None:
        """Close the socket of a publisher that was never started."""
        if not self._thread.is_alive() and self._feed is None:
            self._close_socket()

    def _close_socket(self) -> None:
        self._socket.close()
        if self._gate is not None:
            self._gate.stop()
            self._gate = None

    @property
    def topics(self) -> Set[bytes]:
        """The topics at least one SUB client subscribes to."""
        with self._lock:
            return set(self._topics)

    def finish(self, timeout: float = 10.0) -> None:
        """Send what the feed holds, then stop and close the socket."""
        self._finishing.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("publisher did not finish within %.0fs", timeout)

    def _run(self) -> None:
        try:
            self._wait_for_subscriber()
            self._forward()
        finally:
            self._close_socket()

    def _wait_for_subscriber(self) -> None:
        deadline = time.monotonic() + self._grace
        while not self._topics and not self._finishing.is_set():
            wait = deadline - time.monotonic()
            if wait <= 0:
                log.info("no SUB client after %.1fs; publishing anyway", self._grace)
                return
            if self._socket.poll(min(wait, 0.1) * 1000, zmq.POLLIN):
                self._read_subscriptions()

    def _forward(self) -> None:
        cursor = self._checkpointer.position
        backoff = Backoff()
        while True:
            if self._finishing.is_set() and cursor >= self._feed.head:
                return
            try:
                events = self._feed.read(cursor, limit=500, timeout=0.2)
            except Unavailable:
                delay = backoff.failure()
                log.warning(
                    "catching up from the store failed; retrying in %.1fs", delay
                )
                if self._finishing.wait(delay):
                    return
                continue
            backoff.success()
            for event in events:
                self._socket.send_multipart(zmq_frames(event))
                cursor = event["id"]
            if events:
                self.sent += len(events)
                self._checkpointer.advance(cursor)
            elif self._feed.closed:
                return
            self._read_subscriptions()

    def _read_subscriptions(self) -> None:
        """Take the messages XPUB queued: ``\\x01topic`` (subscribe), ``\\x00topic``."""
        while True:
            try:
                message = self._socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not message:
                continue
            topic = message[1:]
            with self._lock:
                if message[0] == 1:
                    self._topics.add(topic)
                    log.info("SUB client subscribed to %r", topic)
                elif message[0] == 0:
                    self._topics.discard(topic)
                    log.info("no SUB client subscribes to %r any more", topic)
