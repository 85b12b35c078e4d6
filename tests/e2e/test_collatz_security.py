"""End to end: the collatz broker against workers and clients it must not trust.

Workers that take ranges and never answer, or answer lies, do not keep a
real worker from answering, and a lie is never cached. With CURVE keys, a
worker or an API without the key gets nothing; a broker bound beyond
loopback without keys does not start.
"""

import platform
import sys
import time

import pytest
import requests

from core import collatz as collatz_core
from gateways import curve
from tests.support.collatz_cluster import HEARTBEAT
from tests.support.fake_workers import FakeWorkers
from tests.support.live import child_env
from tests.support.processes import Process
from tests.support.processes import free_port
from tests.support.processes import wait_until

# The audit's request under PyPy; a third of its work under CPython.
N = 10_000_000 if platform.python_implementation() == "PyPy" else 3_000_000


def _workers(cluster) -> int:
    return (cluster.stats() or {}).get("workers", -1)


@pytest.mark.parametrize("mode", ["silent", "liar"])
def test_16_fake_workers_do_not_keep_one_real_worker_from_answering(
    live_server, make_cluster, mode
):
    cluster = make_cluster(timeout=30)  # COLLATZ_TIMEOUT's default
    cluster.start_broker()
    fakes = FakeWorkers(cluster.backend, 16, mode).start()
    try:
        wait_until(lambda: _workers(cluster) == 16, what="16 fakes joined")
        # The real worker joins last: the fakes are first in line for ranges.
        cluster.start_worker(wait=False)
        wait_until(lambda: _workers(cluster) >= 17, what="the real worker")
        server = live_server(env=cluster.env)
        started = time.monotonic()
        answer = requests.get(server.url + "/collatz", params={"n": N}, timeout=60)
        took = time.monotonic() - started
        print(f"\n16 {mode} fakes and 1 real worker: n={N} answered in {took:.1f} s")
        assert answer.status_code == 200, answer.text
        number, length = collatz_core.longest_upto(N)
        assert answer.json() == {"n": N, "number": number, "length": length}
        assert took < 30
        assert fakes.taken >= 16  # the fakes were given ranges
        log = cluster.broker.log()
        if mode == "liar":
            assert fakes.lies == fakes.taken
            assert "bad result from worker" in log and "4242 with 99999 terms" in log
            assert "dropped: sent a bad result" in log
        else:
            assert "giving it to 2 more" in log
        # What the broker cached is the checked answer.
        assert f"job n={N} done: {number} with {length} terms" in log
        again = requests.get(server.url + "/collatz", params={"n": N}, timeout=60)
        assert again.json() == answer.json()
    finally:
        fakes.stop()


# -- CURVE --------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path):
    folder = tmp_path / "keys"
    curve.make_keys(folder)
    return folder


@pytest.fixture
def other_keys(tmp_path):
    """Keys of another deployment: the servers' public keys are not ours."""
    folder = tmp_path / "other-keys"
    curve.make_keys(folder)
    return folder


@pytest.fixture
def stranger_keys(keys, other_keys):
    """Client keys of their own, with our servers' public keys (which are no
    secret): the handshake reaches the broker's ZAP handler, which refuses."""
    for server in (curve.BROKER, curve.PUB):
        public = f"{server}.key"
        (other_keys / public).write_bytes((keys / public).read_bytes())
    return other_keys


def test_a_worker_without_the_key_never_gets_a_task(
    tmp_path, make_cluster, keys, stranger_keys
):
    cluster = make_cluster(timeout=60, keys=keys)
    cluster.start_broker()
    lost = tmp_path / "lost"  # another deployment's keys, servers' included
    curve.make_keys(lost)
    outsiders = [
        cluster.start_worker(wait=False, env={"ZMQ_KEYS_DIR": folder})
        for folder in ("", str(lost), str(stranger_keys))
    ]
    request = cluster.send(b"1000")
    wait_until(
        lambda: "refused a ZeroMQ client on collatz-workers" in cluster.broker.log(),
        what="the stranger's key refused",
    )
    time.sleep(2)  # heartbeats of 0.25 s: both had time to join, if they could
    assert cluster.stats()["workers"] == 0
    assert request.poll(0) == 0  # no answer: no worker took the range
    for worker in outsiders:
        assert "range " not in worker.log()  # what a worker logs per range
    cluster.start_worker(wait=False)
    assert cluster.receive(request) == [b"871 179"]
    assert cluster.stats()["workers"] == 1


def test_an_api_without_the_key_gets_nothing_and_answers_503(
    live_server, make_cluster, keys, stranger_keys
):
    cluster = make_cluster(keys=keys)
    cluster.start_broker()
    cluster.start_worker()
    for folder in ("", str(stranger_keys)):
        env = dict(cluster.env, ZMQ_KEYS_DIR=folder, COLLATZ_TIMEOUT="2")
        server = live_server(env=env)
        started = time.monotonic()
        answer = requests.get(server.url + "/collatz", params={"n": 1000}, timeout=30)
        assert answer.status_code == 503
        assert time.monotonic() - started < 2 + 3
        assert "did not answer within 2 s" in answer.json()["detail"]
        ready = requests.get(server.url + "/ready", timeout=30).json()
        assert ready["backends"]["collatz"] == "down"
    log = cluster.broker.log()
    assert "refused a ZeroMQ client on collatz-clients" in log
    # The same broker answers the API that has the key.
    server = live_server(env=cluster.env)
    answer = requests.get(server.url + "/collatz", params={"n": 1000}, timeout=30)
    assert answer.json() == {"n": 1000, "number": 871, "length": 179}


def _broker(tmp_path, env) -> Process:
    process = Process(
        [sys.executable, "-m", "workers.collatz.broker"] + HEARTBEAT,
        child_env(tmp_path, env),
        tmp_path / f"broker-{free_port()}.log",
    )
    process.start()
    return process


def test_a_broker_beyond_loopback_needs_keys_or_zmq_auth_off(
    tmp_path, make_cluster, keys
):
    frontend = f"tcp://127.0.0.1:{free_port()}"
    backend_port = free_port()
    env = {
        "COLLATZ_FRONTEND": frontend,
        "COLLATZ_BACKEND": f"tcp://*:{backend_port}",
        "ZMQ_KEYS_DIR": "",
    }
    refused = _broker(tmp_path, env)
    assert refused.proc.wait(30) == 2
    assert (
        f"collatz broker cannot start: COLLATZ_BACKEND=tcp://*:{backend_port} "
        "is beyond loopback and ZMQ_KEYS_DIR is empty"
    ) in refused.log()

    # With keys it binds every interface, and keyed workers join.
    cluster = make_cluster(keys=keys)
    cluster.env["COLLATZ_FRONTEND"] = cluster.frontend
    cluster.env["COLLATZ_BACKEND"] = f"tcp://*:{backend_port}"
    cluster.start_broker()
    cluster.start_worker(env={"COLLATZ_BACKEND": f"tcp://127.0.0.1:{backend_port}"})
    assert cluster.ask(b"1000") == b"871 179"
    assert "CURVE keys in" in cluster.broker.log()

    # ZMQ_AUTH=off: on a trusted network, the operator's word.
    trusted = make_cluster()
    trusted.env.update({"COLLATZ_BACKEND": f"tcp://*:{free_port()}", "ZMQ_AUTH": "off"})
    trusted.start_broker()
    assert "no CURVE" in trusted.broker.log()
