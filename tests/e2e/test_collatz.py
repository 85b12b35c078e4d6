"""End to end: a real collatz broker and workers (and gunicorn) on free local ports.

Over 300 lines: the Cluster helper (broker, workers, gunicorn on free ports)
and the failure cases it stages (a worker killed mid-job, a broker restart,
heartbeats) belong together.
"""

import json
import os
import platform
import re
import signal
import sys
import time
from pathlib import Path

import pytest
import requests
import zmq

from core import collatz as collatz_core
from db.errors import Unavailable
from tests.support.live import Process
from tests.support.live import child_env
from tests.support.live import free_port
from tests.support.live import wait_until
from workers.collatz.client import CollatzClient

# Short heartbeats so that a dead worker is noticed within a second.
HEARTBEAT = ["--heartbeat", "0.25", "--liveness", "4"]
# A request that keeps a worker busy for a while under this interpreter, and
# its answer (the 3 * 10**6 one is checked in tests/unit/test_collatz_maths.py;
# both agree with bench/collatz.c).
if platform.python_implementation() == "PyPy":
    LONG_N, LONG_ANSWER = 30_000_000, (15733191, 705)
else:
    LONG_N, LONG_ANSWER = 3_000_000, (2298025, 560)


class Cluster:
    """A broker and workers as child processes, and REQ clients to talk to it."""

    def __init__(self, folder: Path, timeout: float = 60.0):
        self.folder = folder
        self.frontend = f"tcp://127.0.0.1:{free_port()}"
        self.backend = f"tcp://127.0.0.1:{free_port()}"
        self.env = {
            "COLLATZ_FRONTEND": self.frontend,
            "COLLATZ_BACKEND": self.backend,
            "COLLATZ_TIMEOUT": str(timeout),
        }
        self.broker = None
        self.workers = []
        self._processes = []
        self._context = zmq.Context()

    def _spawn(self, name: str, module: str) -> Process:
        process = Process(
            [sys.executable, "-m", module] + HEARTBEAT,
            child_env(self.folder, self.env),
            self.folder / f"{name}-{len(self._processes)}.log",
        )
        process.start()
        self._processes.append(process)
        return process

    def start_broker(self) -> Process:
        self.broker = self._spawn("broker", "workers.collatz.broker")
        wait_until(lambda: self.stats() is not None, what="broker answering")
        return self.broker

    def start_worker(self, wait: bool = True) -> Process:
        count = len([w for w in self.workers if w.proc.poll() is None])
        worker = self._spawn("worker", "workers.collatz.worker")
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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A broker and two workers shared by the tests that do not break them."""
    cluster = Cluster(tmp_path_factory.mktemp("collatz"))
    try:
        cluster.start_broker()
        cluster.start_worker()
        cluster.start_worker()
        yield cluster
    finally:
        cluster.stop()


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


# -- the seed's REQ text protocol ------------------------------------------------


@pytest.mark.parametrize(
    "n, reply",
    [(b"1000", b"871 179"), (b"1", b"1 1"), (b"10", b"9 20"), (b" 27\n", b"27 112")],
)
def test_text_protocol_answers(cluster, n, reply):
    assert cluster.ask(n) == reply


@pytest.mark.parametrize(
    "n", [b"0", b"-5", b"abc", b"1.5", b"", b"100000001", "\u0661\u0662".encode()]
)
def test_text_protocol_errors_are_text(cluster, n):
    assert cluster.ask(n) == b"error: n must be a whole number from 1 to 100000000"


def test_text_protocol_wants_one_frame(cluster):
    reply = cluster.receive(cluster.send(b"10", b"20"))
    assert reply == [b"error: send one frame: the number n"]


def test_large_n_is_split_merged_and_cached(cluster):
    assert cluster.ask(b"1000000") == b"837799 525"
    ranges = re.findall(r"job n=1000000: (\d+) range", cluster.broker.log())
    assert len(ranges) == 1 and int(ranges[0]) > 1
    assert cluster.ask(b"1000000") == b"837799 525"
    # Answered from the cache: no second job.
    assert len(re.findall(r"job n=1000000:", cluster.broker.log())) == 1


def test_concurrent_requests_for_one_n_share_one_job(cluster):
    sockets = [cluster.send(b"777777") for _ in range(3)]
    expected = b"%d %d" % collatz_core.longest_upto(777777)
    assert [cluster.receive(sock) for sock in sockets] == [[expected]] * 3
    assert len(re.findall(r"job n=777777:", cluster.broker.log())) == 1


def test_api_protocol(cluster):
    reply = cluster.receive(cluster.send(b"CZ1", b"LONGEST", b"1000", b"5000"))
    assert reply == [b"CZ1", b"OK", b"871", b"179"]
    reply = cluster.receive(cluster.send(b"CZ1", b"LONGEST", b"0"))
    assert reply[:3] == [b"CZ1", b"ERR", b"invalid"]
    assert cluster.stats()["workers"] == 2


# -- the API's client ----------------------------------------------------------------


def test_client_asks_and_pings(cluster):
    client = CollatzClient(cluster.frontend, timeout=10)
    try:
        assert client.longest(1000) == (871, 179)
        assert client.ping()["workers"] == 2
    finally:
        client.close()


def test_client_works_on_both_sides_of_a_fork(cluster):
    client = CollatzClient(cluster.frontend, timeout=10)
    try:
        assert client.longest(1000) == (871, 179)
        pid = os.fork()
        if pid == 0:  # the child: a context of its own, made on first use
            try:
                answer = client.longest(2000)
                code = 0 if answer == collatz_core.longest_upto(2000) else 1
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert client.longest(1000) == (871, 179)
    finally:
        client.close()


def test_client_ping_is_unavailable_without_workers_or_broker(make_cluster):
    cluster = make_cluster()
    cluster.start_broker()
    client = CollatzClient(cluster.frontend, timeout=10)
    nowhere = CollatzClient(f"tcp://127.0.0.1:{free_port()}", timeout=10)
    try:
        with pytest.raises(Unavailable, match="No collatz worker"):
            client.ping()
        started = time.monotonic()
        with pytest.raises(Unavailable, match="does not answer"):
            nowhere.ping()
        assert time.monotonic() - started < 5
    finally:
        client.close()
        nowhere.close()


# -- HTTP through gunicorn ---------------------------------------------------------


def test_http_endpoint_through_gunicorn(live_server, cluster):
    server = live_server(env=cluster.env)
    result = requests.get(server.url + "/collatz", params={"n": 1000}, timeout=30)
    assert result.status_code == 200
    assert result.json() == {"n": 1000, "number": 871, "length": 179}
    result = requests.get(server.url + "/collatz", params={"n": 10**6}, timeout=30)
    assert result.json() == {"n": 10**6, "number": 837799, "length": 525}
    result = requests.get(server.url + "/collatz", params={"n": 0}, timeout=30)
    assert result.status_code == 422
    assert result.headers["Content-Type"] == "application/problem+json"
    chain = requests.get(server.url + "/collatz/13?sequence=true", timeout=30).json()
    assert chain["sequence"] == [13, 40, 20, 10, 5, 16, 8, 4, 2, 1]
    ready = requests.get(server.url + "/ready", timeout=30)
    assert ready.status_code == 200
    assert ready.json()["backends"] == {"sql": "ok", "notes": "ok", "collatz": "ok"}


def test_http_is_503_when_no_worker_runs(live_server, make_cluster):
    cluster = make_cluster()
    cluster.start_broker()
    server = live_server(env=dict(cluster.env, COLLATZ_TIMEOUT="1"))
    started = time.monotonic()
    result = requests.get(server.url + "/collatz", params={"n": 1000}, timeout=30)
    assert time.monotonic() - started < 10
    assert result.status_code == 503
    assert result.headers["Content-Type"] == "application/problem+json"
    assert "no collatz worker finished n=1000 in time" in result.json()["detail"]
    ready = requests.get(server.url + "/ready", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["backends"]["collatz"] == "down"


# -- failures ----------------------------------------------------------------------


def _kill_while_busy(cluster: Cluster, worker: Process) -> None:
    wait_until(lambda: (cluster.stats() or {}).get("busy") == 1, what="worker busy")
    worker.stop(signal.SIGKILL)


def test_worker_killed_mid_request_is_replaced(make_cluster):
    cluster = make_cluster(timeout=300)
    cluster.start_broker()
    doomed = cluster.start_worker()
    request = cluster.send(str(LONG_N).encode())
    _kill_while_busy(cluster, doomed)
    cluster.start_worker(wait=False)
    assert cluster.receive(request, timeout=300) == [b"%d %d" % LONG_ANSWER]
    log = cluster.broker.log()
    # A killed process's connection closes, so the next heartbeat to it fails.
    assert "dropped: unreachable" in log or "dropped: heartbeat expired" in log
    assert re.search(rf"re-queued range \d+\.\.\d+ of n={LONG_N}", log)


def test_frozen_worker_is_dropped_when_its_heartbeats_stop(make_cluster):
    cluster = make_cluster(timeout=300)
    cluster.start_broker()
    frozen = cluster.start_worker()
    request = cluster.send(str(LONG_N).encode())
    wait_until(lambda: (cluster.stats() or {}).get("busy") == 1, what="worker busy")
    # Stopped, not killed: its connection stays open and only silence tells.
    frozen.proc.send_signal(signal.SIGSTOP)
    try:
        cluster.start_worker(wait=False)
        assert cluster.receive(request, timeout=300) == [b"%d %d" % LONG_ANSWER]
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
    log = cluster.broker.log()
    assert "dropped: heartbeat expired" in log
    assert re.search(rf"re-queued range \d+\.\.\d+ of n={LONG_N}", log)


def test_request_fails_within_the_deadline_when_its_worker_dies(make_cluster):
    cluster = make_cluster(timeout=3)
    cluster.start_broker()
    doomed = cluster.start_worker()
    sent = time.monotonic()
    request = cluster.send(str(LONG_N).encode())
    _kill_while_busy(cluster, doomed)
    reply = cluster.receive(request, timeout=30)
    assert time.monotonic() - sent < 3 + 5
    assert reply == [
        b"error: no collatz worker finished n=%d in time "
        b"(0 worker(s) connected)" % LONG_N
    ]


def test_workers_come_back_after_a_broker_restart(make_cluster):
    cluster = make_cluster()
    cluster.start_broker()
    cluster.start_worker()
    assert cluster.ask(b"1000") == b"871 179"
    cluster.broker.stop()
    cluster.start_broker()
    wait_until(lambda: (cluster.stats() or {}).get("workers") == 1, what="worker back")
    assert cluster.ask(b"1000") == b"871 179"


def test_broker_and_worker_stop_cleanly_on_sigterm(make_cluster):
    cluster = make_cluster()
    broker = cluster.start_broker()
    worker = cluster.start_worker()
    for process in (worker, broker):
        process.stop(signal.SIGTERM)
        assert process.proc.returncode == 0, process.log()
    assert "collatz worker stopping" in worker.log()
    assert "collatz broker stopping" in broker.log()
