"""The whole system as many machines, one of each part killed with -9 under writes.

``make test-cluster`` runs this (``TEST_CLUSTER=1``): three API nodes, two
push workers, two webhook runners, the collatz broker and two workers, each
in a network namespace of its own, on PostgreSQL and a three-server
RethinkDB cluster (tests.support.cluster_system). The test is the load
balancer: it sends the writes to the nodes in turn, and a request a node
refuses to connect goes to the next one.

While notes are written and patched through all three nodes, inbound
webhooks arrive and collatz questions are asked, it kills one at a time an
API node, a push worker, a webhook runner, the RethinkDB server with the
notes table's primary, and a collatz worker; the killed processes are
started again, as a supervisor would. Then each test checks one promise,
and the figures (p99 of the writes in each kill window, seconds of failed
writes, duplicates, push latency) are printed and written to
``var/cluster-report.md``.

Without ``TEST_CLUSTER`` the module skips; with it, a missing prerequisite
(root, ``ip``, the RethinkDB server) fails it.
"""

import http.client
import itertools
import json
import os
import random
import threading
import time
import urllib.parse
import uuid
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

import pytest
import requests
import urllib3

from core import signatures
from core.collatz import longest_upto
from tests.support import netns
from tests.support.cluster_system import API_NODES
from tests.support.cluster_system import PUSH_WORKERS
from tests.support.cluster_system import System
from tests.support.processes import ROOT
from tests.support.processes import wait_until
from tests.support.push_clients import SseCollector
from tests.support.rethinkdb_servers import START
from tests.support.rethinkdb_servers import server_binary
from tests.support.webhook_receiver import Receiver
from tests.support.write_load import WriteLoad
from tests.support.write_load import in_order
from tests.support.write_load import missing
from tests.support.write_load import percentile

pytestmark = pytest.mark.cluster

ENABLED = os.environ.get("TEST_CLUSTER", "") not in ("", "0")
SECRET = "cluster-secret"
SETTINGS = {
    "AUTH": "off",
    "RATE_LIMIT": "5/minute",
    "WEBHOOK_SOURCES": json.dumps({"github": {"scheme": "github", "secret": SECRET}}),
    # A claim of a killed runner is taken again within the test.
    "WEBHOOK_LEASE": "5",
    "COLLATZ_TIMEOUT": "10",
    # The test asks more often than a client may (60/minute by default).
    "COLLATZ_RATE_LIMIT": "1000/second",
    "LOG_LEVEL": "warning",
}
#: Seconds of writes observed after each kill.
WINDOW = 6.0
#: Longest run of failed writes a kill may cause (an election is 2-3 s).
OUTAGE_LIMIT = 10.0
#: The push latency figure: writes, and their pace.
LATENCY_WRITES = 400
LATENCY_RATE = 200.0
REPORT = ROOT / "var" / "cluster-report.md"


def _why_not() -> Optional[str]:
    reason = netns.unavailable()
    if reason is None and server_binary() is None:
        reason = f"no RethinkDB server beside {START} (set RETHINKDB_START)"
    return reason


@pytest.fixture(scope="module", autouse=True)
def required():
    if not ENABLED:
        pytest.skip("the cluster system test runs with make test-cluster")
    reason = _why_not()
    if reason is not None:
        pytest.fail(f"TEST_CLUSTER is set, but {reason}", pytrace=False)


class Report:
    """Lines of the report, printed and written at the end of the module."""

    def __init__(self):
        self.rows: List[Tuple[str, str]] = []

    def add(self, what: str, figure: str) -> None:
        self.rows.append((what, figure))

    def text(self) -> str:
        lines = ["| what | measured |", "|---|---|"]
        lines += [f"| {what} | {figure} |" for what, figure in self.rows]
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def report():
    made = Report()
    yield made
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(made.text())
    print(f"\n\nThe cluster under kill -9 ({REPORT}):\n\n{made.text()}")


@pytest.fixture(scope="module")
def system(tmp_path_factory, required):  # noqa: ARG001 (skips or fails first)
    made = System(tmp_path_factory.mktemp("cluster"), SETTINGS)
    try:
        made.start()
        yield made
    finally:
        made.close()


def _refused(error: requests.ConnectionError) -> bool:
    """Whether the connection was refused (the request never reached a node)."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


class Balancer:
    """The load balancer: the API nodes in turn, those that refused left out.

    A request whose connection is refused (a dead node) goes to the next
    node, and the node is out until :meth:`restore` (its health check passed
    again); one cut mid-way is not sent again (it may have been applied).
    """

    def __init__(self, nodes: List[str]):
        self.nodes = nodes
        self.down: set = set()
        self._turn = itertools.count()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        first = next(self._turn)
        for step in range(len(self.nodes)):
            node = self.nodes[(first + step) % len(self.nodes)]
            if node in self.down:
                continue
            try:
                return requests.request(method, node + path, **kwargs)
            except requests.ConnectionError as error:
                if not _refused(error):
                    raise
                self.down.add(node)
        raise requests.ConnectionError("no node accepts connections")

    def restore(self, node: str) -> None:
        self.down.discard(node)


class RoundRobinLoad(WriteLoad):
    """:class:`WriteLoad` through a :class:`Balancer`.

    ``timings`` holds ``(start, seconds, status)`` of every request (status
    0: no answer).
    """

    def __init__(self, balancer: Balancer, threads: int, pause: float):
        super().__init__("", threads, pause)
        self.balancer = balancer
        self.timings: List[Tuple[float, float, int]] = []

    def _send(self, method: str, url: str, body: dict) -> Optional[dict]:
        start = time.monotonic()
        try:
            response = self.balancer.request(method, url, json=body, timeout=15)
            status = response.status_code
        except requests.RequestException:
            status, response = 0, None
        now = time.monotonic()
        with self._lock:
            self.answers.append((now, status))
            self.timings.append((start, now - start, status))
        return response.json() if status in (200, 201) else None


class Background(threading.Thread):
    """``step(n)`` every ``pause`` seconds in a thread until stopped."""

    def __init__(self, step, pause: float):
        super().__init__(daemon=True)
        self._step = step
        self._pause = pause
        self._halt = threading.Event()

    def run(self) -> None:
        for n in itertools.count():
            if self._halt.is_set():
                return
            self._step(n)
            self._halt.wait(self._pause)

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


class Outcome:
    """What the run under kills recorded, for the checks."""

    def __init__(self):
        self.load: Optional[RoundRobinLoad] = None
        self.streams: Dict[str, List[dict]] = {}
        self.hooks: List[Tuple[str, dict]] = []  # (path, event) per POST received
        self.subscriptions: List[str] = []  # their receiver paths
        self.pings: List[str] = []  # delivery ids answered 202
        self.collatz: List[Tuple[int, int, Optional[dict]]] = []  # n, status, body
        self.kills: List[Tuple[str, float]] = []  # what, when


def _ping(balancer: Balancer, outcome: Outcome, n: int) -> None:
    """One signed GitHub ping, through the balancer."""
    delivery = f"ping-{uuid.uuid4().hex}"
    body = json.dumps({"zen": "Keep it logically awesome.", "n": n}).encode()
    try:
        answer = balancer.request(
            "POST",
            "/webhooks/github",
            data=body,
            timeout=10,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": signatures.github_sign(SECRET, body),
            },
        )
    except requests.RequestException:
        return
    if answer.status_code == 202:
        outcome.pings.append(delivery)


def _ask_collatz(balancer: Balancer, outcome: Outcome, n: int) -> None:
    """One ``/collatz?n=`` through the balancer."""
    limit = random.randint(1000, 30000)
    try:
        answer = balancer.request("GET", "/collatz", params={"n": limit}, timeout=15)
    except requests.RequestException:
        outcome.collatz.append((limit, 0, None))
        return
    body = answer.json() if answer.status_code == 200 else None
    outcome.collatz.append((limit, answer.status_code, body))


@pytest.fixture(scope="module")
def run(system: System, report: Report) -> Outcome:
    """The writes, webhooks and collatz questions while one of each part dies."""
    outcome = Outcome()
    nodes = [system.url(name) for name in API_NODES]
    with Receiver([200], host=system.network.host) as receiver:
        for number in (1, 2):
            path = f"/hook/{number}"
            created = requests.post(
                nodes[number] + "/subscriptions",
                json={"url": receiver.url + f"/{number}", "events": ["note.*"]},
                timeout=10,
            )
            assert created.status_code == 201, created.text
            outcome.subscriptions.append(path)

        # Each subscription is delivered by the push worker that claimed it.
        def delivering() -> set:
            found = set()
            for name in PUSH_WORKERS:
                health = requests.get(system.url(name) + "/health", timeout=5)
                found.update(health.json().get("webhooks", ()))
            return found

        wait_until(
            lambda: len(delivering()) == 2,
            timeout=60,
            what="both subscriptions delivered",
        )
        streams = {
            name: SseCollector(system.url(name) + "/events", last_event_id=0)
            for name in PUSH_WORKERS
        }
        balancer = Balancer(nodes)
        load = RoundRobinLoad(balancer, threads=3, pause=0.02)
        outcome.load = load
        helpers = [
            Background(lambda n: _ping(balancer, outcome, n), 0.1),
            Background(lambda n: _ask_collatz(balancer, outcome, n), 0.2),
        ]
        try:
            load.start()
            for helper in helpers:
                helper.start()
            time.sleep(WINDOW)  # steady first
            primary = system.rethinkdb.primary_of("test", "notes")
            events = [
                ("kill -9 API node api3", lambda: system.kill("api3"), "api3"),
                ("kill -9 push worker push2", lambda: system.kill("push2"), "push2"),
                (
                    "kill -9 webhook runner runner1",
                    lambda: system.kill("runner1"),
                    "runner1",
                ),
                (
                    "kill -9 RethinkDB primary of notes",
                    lambda: system.rethinkdb.kill(primary),
                    None,
                ),
                (
                    "kill -9 collatz worker collatz1",
                    lambda: system.kill("collatz1"),
                    None,
                ),
                # Back, it takes the primary role again: another handover.
                (
                    "that RethinkDB server started again",
                    lambda: system.rethinkdb.restart(primary),
                    None,
                ),
            ]
            for what, act, restart in events:
                outcome.kills.append((what, time.monotonic()))
                act()
                time.sleep(WINDOW)
                if restart is not None:
                    system.restart(restart)
                    balancer.restore(system.url(restart))
                    time.sleep(1)
        finally:
            load.stop()
            for helper in helpers:
                helper.stop()
        try:
            for name, stream in streams.items():
                outcome.streams[name] = stream.wait_for(
                    lambda got: not missing(load.acked, got),
                    f"every acknowledged write at {name}",
                    timeout=120,
                )

            def all_hooks() -> bool:
                events = _hooks(receiver)
                return all(
                    not missing(load.acked, [e for p, e in events if p == path])
                    for path in outcome.subscriptions
                )

            wait_until(all_hooks, timeout=120, what="every event at both subscriptions")
            outcome.hooks = _hooks(receiver)
        finally:
            for stream in streams.values():
                stream.close()
    _report_kills(outcome, report)
    return outcome


def _windows(outcome: Outcome) -> List[Tuple[str, float, float]]:
    """Each kill, when it was, and when the next one was (or the writes ended)."""
    ends = [at for _, at in outcome.kills[1:]] + [float("inf")]
    return [(what, at, end) for (what, at), end in zip(outcome.kills, ends)]


def _hooks(receiver: Receiver) -> List[Tuple[str, dict]]:
    return [(r.path, json.loads(r.body)) for r in list(receiver.requests)]


def _report_kills(outcome: Outcome, report: Report) -> None:
    load = outcome.load
    assert load is not None
    seconds = load.timings[-1][0] - load.timings[0][0]
    report.add(
        "writes (notes POST + PATCH, 3 nodes in turn)",
        f"{len(load.timings)} sent in {seconds:.0f} s, {len(load.acked)} acknowledged",
    )
    steady = [("no kill (the first seconds)", load.timings[0][0])]
    for what, at in steady + outcome.kills:
        during = sorted(
            seconds * 1000
            for start, seconds, _ in load.timings
            if at <= start < at + WINDOW
        )
        unavailable = [
            start + seconds
            for start, seconds, status in load.timings
            if at <= start < at + WINDOW and status == 503
        ]
        cut = [
            start
            for start, _, status in load.timings
            if at <= start < at + WINDOW and status == 0
        ]
        span = (unavailable[-1] - unavailable[0]) if unavailable else 0.0
        report.add(
            f"{what}: the writes of the next {WINDOW:.0f} s",
            f"{len(during)} writes, p99 {percentile(during or [0.0], 99):.0f} ms; "
            f"{len(unavailable)} × 503 over {span:.1f} s; {len(cut)} cut "
            "(no answer)",
        )


def test_every_acknowledged_note_reaches_both_push_workers_in_seq_order(run):
    for name in PUSH_WORKERS:
        events = run.streams[name]
        assert not missing(run.load.acked, events), name
        assert in_order(events), name


def test_writes_fail_only_with_503_and_only_for_a_few_seconds_per_kill(run):
    statuses = {status for _, _, status in run.load.timings}
    # 0: a request cut by the node killed under it.
    assert statuses <= {0, 200, 201, 503}, statuses
    for what, at, until in _windows(run):
        failed = [
            start
            for start, _, status in run.load.timings
            if at <= start < until and status not in (200, 201)
        ]
        if failed:
            assert failed[-1] - at < OUTAGE_LIMIT, what
    last = run.load.timings[-20:]
    assert all(status in (200, 201) for _, _, status in last)


def test_every_subscription_gets_every_event_at_least_once(run, report):
    acked = list(run.load.acked)
    for path in run.subscriptions:
        events = [event for at, event in run.hooks if at == path]
        assert not missing(acked, events), path
        ids = [event["id"] for event in events]
        report.add(
            f"outbound webhooks, subscription {path[-1]}",
            f"{len(set(ids))} events, {len(ids) - len(set(ids))} delivered twice "
            f"or more (of {len(ids)} POSTs)",
        )


def test_every_received_webhook_is_handled(system, run, report):
    node = system.url("api1")

    def handled() -> Optional[Dict[str, dict]]:
        found, cursor = {}, None
        while True:
            params = {"limit": 200, "source": "github"}
            if cursor:
                params["cursor"] = cursor
            page = requests.get(
                node + "/webhooks/deliveries", params=params, timeout=10
            )
            assert page.status_code == 200, page.text
            body = page.json()
            found.update((item["id"], item) for item in body["items"])
            cursor = (
                body.get("next")
                and urllib.parse.parse_qs(urllib.parse.urlsplit(body["next"]).query)[
                    "cursor"
                ][0]
            )
            if not cursor:
                break
        done = all(found.get(d, {}).get("status") == "processed" for d in run.pings)
        return found if done else None

    found = wait_until(handled, timeout=60, what="every received webhook handled")
    again = sum(found[d]["attempts"] - 1 for d in run.pings)
    report.add(
        "inbound webhooks (2 runners)",
        f"{len(run.pings)} received, all handled, {again} handled again",
    )


def _call(
    method: str, url: str, body: Optional[dict] = None, source: Optional[str] = None
) -> Tuple[int, Optional[dict]]:
    """One request from the address ``source`` of this host; status and JSON."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname,
        parts.port,
        timeout=15,
        source_address=(source, 0) if source else None,
    )
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        data = json.dumps(body) if body is not None else None
        connection.request(method, parts.path or "/", body=data, headers=headers)
        answer = connection.getresponse()
        text = answer.read()
        kind = answer.getheader("Content-Type") or ""
        return answer.status, json.loads(text) if "json" in kind and text else None
    finally:
        connection.close()


@pytest.fixture(scope="module")
def client(system) -> str:
    """An address of this host of the checks' own, for the per-client rate limit."""
    return system.network.add_host_address()


def test_a_write_on_one_node_is_read_at_once_on_the_others(system, run, client):
    nodes = [system.url(name) for name in API_NODES]
    for writer, reader in itertools.permutations(nodes, 2):
        status, note = _call("POST", writer + "/notes", {"title": "seen?"})
        assert status == 201
        status, read = _call("GET", f"{reader}/notes/{note['id']}")
        assert status == 200 and read == note
    status, link = _call(
        "POST", nodes[0] + "/links", {"url": "https://example.com/a"}, client
    )
    assert status == 201, link
    for reader in nodes[1:]:
        assert _call("GET", f"{reader}/links/{link['code']}")[0] == 200


def test_the_rate_limit_is_per_client_across_all_nodes(system, run, report):
    source = system.network.add_host_address()
    nodes = [system.url(name) for name in API_NODES]
    statuses = [
        _call(
            "POST", nodes[n % 3] + "/links", {"url": f"https://example.com/{n}"}, source
        )[0]
        for n in range(15)
    ]
    assert statuses.count(201) == 5 and statuses.count(429) == 10, statuses
    report.add(
        "RATE_LIMIT=5/minute, 15 POST /links over 3 nodes", "5 created, 10 × 429"
    )


def test_max_visits_stays_exact_across_nodes(system, run, client, report):
    nodes = [system.url(name) for name in API_NODES]
    status, link = _call(
        "POST",
        nodes[1] + "/links",
        {"url": "https://example.com/limited", "max_visits": 10},
        client,
    )
    assert status == 201, link
    answers: List[int] = []

    def visit(n: int) -> None:
        answers.append(_call("GET", f"{nodes[n % 3]}/{link['code']}")[0])

    threads = [threading.Thread(target=visit, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [302] * 10 + [410] * 20, answers
    status, seen = _call("GET", f"{nodes[2]}/links/{link['code']}")
    assert seen["visits"] == 10
    report.add("max_visits=10, 30 visits at once over 3 nodes", "10 × 302, 20 × 410")


def test_collatz_answers_stay_correct(run, report):
    answered = [(n, body) for n, status, body in run.collatz if status == 200]
    assert answered
    for n, body in answered:
        number, length = longest_upto(n)
        assert (body["number"], body["length"]) == (number, length), n
    others = [status for _, status, _ in run.collatz if status != 200]
    report.add(
        "collatz (/collatz?n=, a worker killed)",
        f"{len(answered)} answers, all correct; {len(others)} not 200 ({others})",
    )


def test_push_latency_from_a_write_on_one_node_to_a_worker_elsewhere(system, report):
    """POST on api1 -> the event at each push worker's SSE stream, at 200 writes/s."""
    node = system.url("api1")
    streams = {
        name: SseCollector(
            system.url(name) + "/events",
            last_event_id=requests.get(system.url(name) + "/health", timeout=5).json()[
                "head"
            ],
        )
        for name in PUSH_WORKERS
    }
    sent: Dict[str, float] = {}
    returned: Dict[str, float] = {}
    lock = threading.Lock()
    # Enough writers in flight for the rate at the writes' latency here.
    threads = 40
    pace = threads / LATENCY_RATE

    def write(number: int) -> None:
        session = requests.Session()
        start = time.monotonic()
        try:
            for n in range(LATENCY_WRITES // threads):
                delay = start + n * pace - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                began = time.monotonic()
                answer = session.post(node + "/notes", json={"title": "t"}, timeout=10)
                assert answer.status_code == 201, answer.text
                with lock:
                    sent[answer.json()["id"]] = began
                    returned[answer.json()["id"]] = time.monotonic()
        finally:
            session.close()

    try:
        time.sleep(1)  # the streams connected
        began = time.monotonic()
        writers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(120)
        rate = len(returned) / (time.monotonic() - began)
        assert len(returned) == LATENCY_WRITES
        for name, stream in streams.items():
            stream.wait_for(
                lambda got: (
                    {e["new_val"]["id"] for e in got if e["type"] == "note.created"}
                    >= set(returned)
                ),
                f"every write at {name}",
            )
            arrived = {}
            for event, at in zip(list(stream.events), list(stream.arrivals)):
                if event["type"] == "note.created":
                    arrived.setdefault(event["new_val"]["id"], at)
            # From the POST's answer (negative: the event beat the answer to
            # this client), and from the POST's start.
            after = sorted((arrived[i] - t) * 1000 for i, t in returned.items())
            whole = sorted((arrived[i] - t) * 1000 for i, t in sent.items())
            report.add(
                f"POST on api1 -> SSE at {name}, {rate:.0f} writes/s",
                f"after the answer: p50 {percentile(after, 50):.1f} ms, "
                f"p99 {percentile(after, 99):.1f} ms; from the request: "
                f"p50 {percentile(whole, 50):.1f} ms, "
                f"p99 {percentile(whole, 99):.1f} ms",
            )
    finally:
        for stream in streams.values():
            stream.close()
