"""End to end: a real collatz broker and workers (and gunicorn) on free local ports.

The Cluster helper is tests/support/collatz_cluster.py; the checks of
workers and of keys are in test_collatz_security.py.
"""

import os
import platform
import re
import signal
import time

import pytest
import requests

from core import collatz as collatz_core
from db.errors import Unavailable
from gateways import curve
from gateways.collatz import CollatzClient
from tests.support.collatz_cluster import Cluster
from tests.support.processes import Process
from tests.support.processes import free_port
from tests.support.processes import wait_until

# A request that keeps a worker busy for a while under this interpreter, and
# its answer (the 3 * 10**6 one is checked in tests/unit/core/test_collatz.py;
# both agree with bench/collatz.c).
if platform.python_implementation() == "PyPy":
    LONG_N, LONG_ANSWER = 30_000_000, (15733191, 705)
else:
    LONG_N, LONG_ANSWER = 3_000_000, (2298025, 560)


@pytest.fixture(scope="module", params=["plain", "curve"])
def cluster(request, tmp_path_factory):
    """A broker and two workers shared by the tests that do not break them:
    without CURVE, then with it."""
    folder = tmp_path_factory.mktemp("collatz")
    keys = None
    if request.param == "curve":
        keys = folder / "keys"
        curve.make_keys(keys)
    cluster = Cluster(folder, keys=keys)
    try:
        cluster.start_broker()
        cluster.start_worker()
        cluster.start_worker()
        yield cluster
    finally:
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
    client = CollatzClient(cluster.frontend, 10, cluster.keys)
    try:
        assert client.longest(1000) == (871, 179)
        assert client.ping()["workers"] == 2
    finally:
        client.close()


def test_client_works_on_both_sides_of_a_fork(cluster):
    client = CollatzClient(cluster.frontend, 10, cluster.keys)
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


@pytest.mark.parametrize("with_keys", [False, True])
def test_broker_and_worker_stop_cleanly_on_sigterm(make_cluster, tmp_path, with_keys):
    keys = None
    if with_keys:
        keys = tmp_path / "keys"
        curve.make_keys(keys)
    cluster = make_cluster(keys=keys)
    broker = cluster.start_broker()
    worker = cluster.start_worker()
    for process in (worker, broker):
        process.stop(signal.SIGTERM)
        assert process.proc.returncode == 0, process.log()
    assert "collatz worker stopping" in worker.log()
    assert "collatz broker stopping" in broker.log()
