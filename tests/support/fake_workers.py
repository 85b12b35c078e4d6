"""Collatz workers that cheat, for tests: they take ranges and never answer right.

All of them run in one thread, each on a DEALER socket of its own, speaking
the worker protocol (gateways/collatz_protocol.py):

- ``silent``: READY, then heartbeats; a range it takes is never answered.
- ``liar``: answers every range with the audit's ``RESULT <id> 4242 99999``;
  when the broker stops talking to it, it reconnects as a new worker and
  lies again.
"""

import threading
import time
from typing import List
from typing import Optional

import zmq

from gateways import collatz_protocol as proto
from gateways import curve

MODES = ("silent", "liar")


class FakeWorkers:
    """``count`` fake workers of one ``mode`` on the broker's backend ``endpoint``."""

    def __init__(
        self,
        endpoint: str,
        count: int,
        mode: str,
        heartbeat: float = 0.25,
        liveness: int = 4,
        keys: Optional[curve.ClientKeys] = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.endpoint = endpoint
        self.count = count
        self.mode = mode
        self.heartbeat = heartbeat
        self.liveness = liveness
        self.keys = keys
        #: Ranges the broker handed to a fake, and lies told about them.
        self.taken = 0
        self.lies = 0
        self.reconnects = 0
        self._context = zmq.Context()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "FakeWorkers":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._context.destroy(linger=0)

    def _connect(self) -> zmq.Socket:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            self.keys.apply(sock)
        sock.connect(self.endpoint)
        sock.send(proto.READY)
        return sock

    def _run(self) -> None:
        sockets: List[zmq.Socket] = [self._connect() for _ in range(self.count)]
        heard = [time.monotonic()] * self.count
        next_beat = time.monotonic() + self.heartbeat
        while not self._stop.is_set():
            poller = zmq.Poller()
            for sock in sockets:
                poller.register(sock, zmq.POLLIN)
            ready = dict(poller.poll(self.heartbeat * 1000 / 4))
            now = time.monotonic()
            for i, sock in enumerate(sockets):
                if sock in ready:
                    heard[i] = now
                    self._on_message(sock, sock.recv_multipart())
                elif self.mode == "liar" and now - heard[i] > (
                    self.heartbeat * self.liveness
                ):
                    # Dropped: back as a new worker, as a real one would come.
                    sock.close()
                    sockets[i], heard[i] = self._connect(), now
                    self.reconnects += 1
            if now >= next_beat:
                for sock in sockets:
                    sock.send(proto.HEARTBEAT)
                next_beat = now + self.heartbeat
        for sock in sockets:
            sock.close()

    def _on_message(self, sock: zmq.Socket, frames: List[bytes]) -> None:
        if frames[0] != proto.TASK:
            return
        self.taken += 1
        if self.mode == "liar":
            sock.send_multipart([proto.RESULT, frames[1], b"4242", b"99999"])
            self.lies += 1
