"""End to end on PostgreSQL: the push worker is woken by NOTIFY, from any API node.

No commit datagram anywhere (``PUSH_WAKE_ADDRESS=""``) and a fallback poll
of 30 s: only the database's notifications can bring an event within the
bound. Two API servers stand for two nodes. With ``WAKEUP_FIGURES=1`` the
latency test prints POST-return -> SUB-event latencies over 200 writes, with
LISTEN and without it: polling every 0.05 s (nothing to listen on), and
every 1 s (a worker whose API nodes send their datagrams elsewhere).
"""

import json
import os
import threading
import time
from typing import Dict
from typing import List

import pytest
import requests
import zmq

from tests.support import live
from tests.support.processes import free_udp_port
from tests.support.write_load import percentile

pytestmark = pytest.mark.skipif(
    not live.TEST_DATABASE_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)"
)

#: Far below the fallback poll: only a notification explains an event this soon.
POLL = "30"
BOUND = 1.0
WRITES = 200
#: Seconds between two POSTs: 200 writes a second at most.
PACE = 1 / 200

NO_DATAGRAM = {"PUSH_WAKE_ADDRESS": ""}


class Arrivals:
    """A SUB socket in a thread of its own: when each note's creation arrived."""

    def __init__(self, subscriber):
        self._socket = subscriber.socket
        self.at: Dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._socket.poll(50):
                while True:
                    try:
                        _, body = self._socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    now = time.monotonic()
                    event = json.loads(body)
                    self.at[event["new_val"]["id"]] = now

    def wait(self, ids: List[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(i in self.at for i in ids):
            assert time.monotonic() < deadline, (
                f"{len([i for i in ids if i not in self.at])} events never came"
            )
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def write(nodes, count: int, pace: float) -> Dict[str, float]:
    """``count`` POSTs spread over ``nodes`` in turn: note id -> when it returned."""
    sessions = [requests.Session() for _ in nodes]
    returned = {}
    start = time.monotonic()
    try:
        for n in range(count):
            delay = start + n * pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            node = n % len(nodes)
            response = sessions[node].post(
                nodes[node].url + "/notes", json={"title": f"n{n}"}, timeout=10
            )
            assert response.status_code == 201, response.text
            returned[response.json()["id"]] = time.monotonic()
    finally:
        for session in sessions:
            session.close()
    return returned


def latencies(
    live_server, push_worker, subscribers, worker_env, count, pace
) -> List[float]:
    nodes = [live_server(env=NO_DATAGRAM), live_server(env=NO_DATAGRAM)]
    worker = push_worker({**NO_DATAGRAM, **worker_env})
    arrivals = Arrivals(subscribers(worker.pub_endpoint, b"note.created"))
    worker.wait_subscribed("note.created")
    try:
        returned = write(nodes, count, pace)
        arrivals.wait(list(returned), timeout=60)
    finally:
        arrivals.close()
    assert "Traceback" not in worker.log()
    # Negative when the event beat the HTTP answer to the client.
    return sorted(max(arrivals.at[i] - t, 0.0) for i, t in returned.items())


def test_writes_on_either_node_reach_the_worker_through_notify_alone(
    live_server, push_worker, subscribers
):
    found = latencies(
        live_server,
        push_worker,
        subscribers,
        {"PUSH_POLL_INTERVAL": POLL},
        count=20,
        pace=0.05,
    )
    assert found[-1] < BOUND, found


#: The worker's environment in each mode of the figures.
MODES = {
    # NOTIFY alone: no datagram, a 30 s fallback poll.
    "notify": {"PG_LISTEN": "on", "PUSH_POLL_INTERVAL": POLL},
    # Nothing to listen on: the worker polls every 0.05 s.
    "poll-50ms": {"PG_LISTEN": "off"},
}


@pytest.mark.skipif(not os.environ.get("WAKEUP_FIGURES"), reason="WAKEUP_FIGURES")
@pytest.mark.parametrize("mode", [*MODES, "other-node"])
def test_latency_figures(live_server, push_worker, subscribers, mode):
    if mode == "other-node":
        # Without NOTIFY, a worker on another machine than the API: it listens
        # for datagrams the API sends elsewhere, so it polls every 1 s.
        env = {"PG_LISTEN": "off", "PUSH_WAKE_ADDRESS": f"127.0.0.1:{free_udp_port()}"}
    else:
        env = MODES[mode]
    found = latencies(live_server, push_worker, subscribers, env, WRITES, PACE)
    ms = [f * 1000 for f in found]
    print(
        f"\n{mode}: {len(ms)} writes, "
        f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
        f"max {ms[-1]:.1f} ms"
    )
    if mode == "notify":
        assert found[-1] < BOUND
