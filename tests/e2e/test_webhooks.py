"""End to end: real gunicorn receives, the real runner process handles."""

import collections
import concurrent.futures
import json
import signal
import sys
import threading

import requests

from core import signatures
from tests.support.live import child_env
from tests.support.processes import Process
from tests.support.processes import wait_until

SECRET = "e2e-secret"
ENV = {
    "WEBHOOK_SOURCES": json.dumps({"github": {"scheme": "github", "secret": SECRET}}),
    "WEBHOOK_POLL_INTERVAL": "0.05",
}


def post_ping(url: str, delivery: str, body: bytes = b"") -> requests.Response:
    # One body per delivery unless given: the same body under a new id is a
    # replay (409).
    body = (
        body
        or json.dumps(
            {"zen": "Design for failure.", "hook_id": 7, "delivery": delivery}
        ).encode()
    )
    return requests.post(
        url + "/webhooks/github",
        data=body,
        timeout=5,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signatures.github_sign(SECRET, body),
        },
    )


def statuses(url: str) -> dict:
    items = requests.get(url + "/webhooks/deliveries", timeout=5).json()["items"]
    return {item["id"]: item for item in items}


def test_deliveries_wait_for_the_runner_and_are_handled_when_it_runs(
    live_server, tmp_path
):
    server = live_server(env=ENV)
    # The runner is not running yet: the delivery is accepted and kept.
    assert post_ping(server.url, "before").status_code == 202
    assert statuses(server.url)["before"]["status"] == "pending"

    runner = Process(
        [sys.executable, "-m", "workers.webhooks.runner"],
        child_env(tmp_path, ENV),
        tmp_path / "runner.log",
    )
    runner.start()
    try:
        wait_until(
            lambda: statuses(server.url)["before"]["status"] == "processed",
            timeout=30,
            what="pending delivery handled\n" + str(runner.log_path),
        )
        assert post_ping(server.url, "after").status_code == 202
        done = wait_until(
            lambda: (
                statuses(server.url)["after"]["status"] == "processed"
                and statuses(server.url)
            ),
            timeout=30,
            what="live delivery handled",
        )
        assert done["after"]["outcome"] == {"pong": True, "hook_id": 7}
        assert post_ping(server.url, "after").status_code == 200
    finally:
        runner.stop(signal.SIGTERM)
    assert runner.proc.returncode == 0
    assert "webhook handler runner stopped" in runner.log()
    assert "Traceback" not in runner.log() + server.log()


def test_of_twelve_copies_at_once_through_two_workers_exactly_one_runs(live_server):
    server = live_server(env=ENV, workers=2)
    body = json.dumps({"zen": "Captured once.", "hook_id": 7}).encode()
    start = threading.Barrier(12)

    def send(number):
        start.wait(timeout=10)
        return post_ping(server.url, f"copy-{number}", body)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, range(12)))
    assert collections.Counter(a.status_code for a in answers) == {202: 1, 409: 11}
    (stored,) = statuses(server.url)
    assert {a.json().get("replay_of") for a in answers} == {None, stored}
