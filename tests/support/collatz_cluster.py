"""A real collatz broker and workers as child processes, on free local ports.

``make_cluster`` is a fixture (tests/e2e/conftest.py imports it): clusters of
a test's own, stopped after it.
"""

import json
import sys
from pathlib import Path
from typing import Optional

import pytest
import zmq

from core.settings import Settings
from gateways import curve
from tests.support.live import child_env
from tests.support.processes import Process
from tests.support.processes import free_ports
from tests.support.processes import wait_until

#: Short heartbeats so that a dead worker is noticed within a second.
HEARTBEAT = ["--heartbeat", "0.25", "--liveness", "4"]


class Cluster:
    """A broker and workers as child processes, and REQ clients to talk to it.

    With ``keys`` (a folder made by ``python -m api zmq-keys``) every
    process, and the REQ clients, use CURVE.
    """

    def __init__(
        self, folder: Path, timeout: float = 60.0, keys: Optional[Path] = None
    ):
        self.folder = folder
        frontend, backend = free_ports(2)
        self.frontend = f"tcp://127.0.0.1:{frontend}"
        self.backend = f"tcp://127.0.0.1:{backend}"
        self.env = {
            "COLLATZ_FRONTEND": self.frontend,
            "COLLATZ_BACKEND": self.backend,
            "COLLATZ_TIMEOUT": str(timeout),
            "ZMQ_KEYS_DIR": str(keys or ""),
        }
        #: The API's keys, for the tests' own clients (None without CURVE).
        self.keys = curve.client_keys(Settings.from_env(self.env), curve.API)
        self.broker = None
        self.workers = []
        self._processes = []
        self._context = zmq.Context()

    def _spawn(self, name: str, module: str, env: Optional[dict] = None) -> Process:
        process = Process(
            [sys.executable, "-m", module] + HEARTBEAT,
            child_env(self.folder, dict(self.env, **(env or {}))),
            self.folder / f"{name}-{len(self._processes)}.log",
        )
        process.start()
        self._processes.append(process)
        return process

    def start_broker(self) -> Process:
        broker = self.broker = self._spawn("broker", "workers.collatz.broker")
        # A broker that exits (an address taken) fails at once, with its log.
        wait_until(
            lambda: broker.check() or self.stats() is not None,
            what="broker answering",
        )
        return broker

    def start_worker(self, wait: bool = True, env: Optional[dict] = None) -> Process:
        count = len([w for w in self.workers if w.proc.poll() is None])
        worker = self._spawn("worker", "workers.collatz.worker", env)
        self.workers.append(worker)
        if wait:
            wait_until(
                lambda: (self.stats() or {}).get("workers") == count + 1,
                what="worker joining",
            )
        return worker

    def send(self, *frames: bytes) -> zmq.Socket:
        """A new REQ socket that has sent ``frames``."""
        sock = self._context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            self.keys.apply(sock)
        sock.connect(self.frontend)
        sock.send_multipart(list(frames))
        return sock

    @staticmethod
    def receive(sock: zmq.Socket, timeout: float = 30.0) -> list:
        try:
            if not sock.poll(timeout * 1000):
                raise TimeoutError(f"no reply within {timeout}s")
            return sock.recv_multipart()
        finally:
            sock.close()

    def ask(self, text: bytes, timeout: float = 30.0) -> bytes:
        """The seed's protocol: one frame out, one frame back."""
        reply = self.receive(self.send(text), timeout)
        assert len(reply) == 1
        return reply[0]

    def stats(self):
        """The broker's PONG statistics, or None when it does not answer quickly."""
        try:
            reply = self.receive(self.send(b"CZ1", b"PING"), timeout=0.5)
        except TimeoutError:
            return None
        assert reply[:2] == [b"CZ1", b"PONG"]
        return json.loads(reply[2])

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        self._context.destroy(linger=0)


@pytest.fixture
def make_cluster(tmp_path):
    """Factory: a cluster of one's own (for tests that kill its processes)."""
    clusters = []

    def make(**kwargs) -> Cluster:
        cluster = Cluster(tmp_path, **kwargs)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()
