"""End to end: note changes reach webhook subscriptions through the real push
worker, each subscription in order, a silent one delaying nobody, across kill -9."""

import datetime
import json
import time

import requests

from core.signatures import standard_verify
from tests.support.processes import wait_until
from tests.support.push_clients import Notes
from tests.support.push_clients import first_of_each
from tests.support.push_clients import summary
from tests.support.webhook_receiver import Receiver

ALL = ["note.created", "note.updated", "note.deleted"]
# Longer than the test: the silent endpoint holds its first delivery throughout.
# The receivers listen on 127.0.0.1, which subscriptions may not target by default.
ENV = {"SUBSCRIPTION_TIMEOUT": "60", "ALLOWED_PRIVATE_TARGETS": "127.0.0.1"}


def subscribe(api_url: str, url: str, events=ALL) -> dict:
    response = requests.post(
        api_url + "/subscriptions", json={"url": url, "events": events}, timeout=10
    )
    assert response.status_code == 201, response.text
    return response.json()


def received(receiver: Receiver, path: str, secret: str) -> list:
    """The events POSTed to ``path``, in arrival order, each signature checked."""
    events = []
    for request in list(receiver.requests):
        if request.path != path:
            continue
        standard_verify(secret, request.body, request.headers, now=time.time())
        event = json.loads(request.body)
        assert request.headers["webhook-id"] == str(event["id"])
        events.append(event)
    return events


def wait_received(receiver: Receiver, path: str, secret: str, count: int) -> list:
    """Until ``path`` got ``count`` distinct events; everything it got."""

    def enough():
        events = received(receiver, path, secret)
        return events if len(first_of_each(events)) >= count else None

    return wait_until(enough, timeout=30, what=f"{count} events at {path}")


def test_each_subscription_gets_its_changes_in_order_and_a_silent_one_delays_nobody(
    live_server, push_worker
):
    server = live_server(env=ENV)
    notes = Notes(server.url)
    with Receiver([200]) as fast, Receiver(["hang"]) as silent:
        subscribe(server.url, silent.url)  # first: one sender for all would stick here
        everything = subscribe(server.url, fast.url)
        deletes = subscribe(server.url, fast.url + "/deletes", ["note.deleted"])
        worker = push_worker(ENV)
        worker.wait_webhooks(3)

        note = notes.create("hooked", "one")
        patched = notes.patch(note["id"], body="two")
        notes.delete(note["id"])

        got = wait_received(fast, "/hook", everything["secret"], 3)
        assert [(e["type"], e["old_val"], e["new_val"]) for e in got] == [
            ("note.created", None, note),
            ("note.updated", note, patched),
            ("note.deleted", patched, None),
        ]
        only_deletes = wait_received(fast, "/hook/deletes", deletes["secret"], 1)
        assert only_deletes == [got[2]]
        # Meanwhile the silent endpoint still holds the first event.
        assert [json.loads(r.body) for r in silent.requests] == [got[0]]


def test_a_subscription_resumes_from_its_own_cursor_after_kill_9(
    live_server, push_worker
):
    server = live_server(env=ENV)
    notes = Notes(server.url)
    with Receiver([200]) as endpoint:
        sub = subscribe(server.url, endpoint.url)
        worker = push_worker(ENV)
        worker.wait_webhooks(1)
        a = notes.create("a")
        wait_received(endpoint, "/hook", sub["secret"], 1)

        worker.kill()
        notes.create("b")
        notes.patch(a["id"], title="a2")
        worker.start()

        events = wait_received(endpoint, "/hook", sub["secret"], 3)
        assert summary(first_of_each(events)) == [
            ("note.created", "a"),
            ("note.created", "b"),
            ("note.updated", "a2"),
        ]
        ids = [e["id"] for e in events]
        assert len([i for i in range(1, len(ids)) if ids[i] <= ids[i - 1]]) <= 1


def test_failed_deliveries_are_replayed_with_their_event_ids(live_server, push_worker):
    env = {**ENV, "SUBSCRIPTION_MAX_ATTEMPTS": "1"}
    server = live_server(env=env)
    notes = Notes(server.url)
    # The endpoint fails the first two deliveries, then answers 200.
    with Receiver([500, 500, 200]) as endpoint:
        sub = subscribe(server.url, endpoint.url)
        worker = push_worker(env)
        worker.wait_webhooks(1)
        a = notes.create("a")
        b = notes.create("b")
        log_url = f"{server.url}/subscriptions/{sub['id']}/deliveries"

        def log():
            return requests.get(log_url, timeout=10).json()["items"]

        wait_until(lambda: len(log()) == 2, timeout=30, what="two failed deliveries")
        first = received(endpoint, "/hook", sub["secret"])
        assert [e["new_val"]["id"] for e in first] == [a["id"], b["id"]]

        response = requests.post(
            f"{server.url}/subscriptions/{sub['id']}/replay",
            json={"since": "2000-01-01T00:00:00Z", "only_failed": True},
            timeout=10,
        )
        assert response.status_code == 422  # more than 30 days
        since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
            hours=1
        )
        response = requests.post(
            f"{server.url}/subscriptions/{sub['id']}/replay",
            json={"since": since.isoformat(), "only_failed": True},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        assert response.json()["queued"] == 2

        wait_until(lambda: len(endpoint.requests) == 4, timeout=30, what="replays")
        everything = received(endpoint, "/hook", sub["secret"])
        assert everything[2:] == everything[:2]  # same events, same webhook-ids
        wait_until(lambda: len(log()) == 4, timeout=30, what="replays in the log")
        attempts = log()
        replays = [x for x in attempts if x["replay"]]
        assert sorted(x["event_id"] for x in replays) == sorted(
            str(e["id"]) for e in first
        )
        assert all(x["delivered"] for x in replays)
        assert not any(
            x["delivered"] or x["replay"] for x in attempts if x not in replays
        )
        # Nothing failed is left to replay now.
        again = requests.post(
            f"{server.url}/subscriptions/{sub['id']}/replay",
            json={"since": since.isoformat(), "only_failed": True},
            timeout=10,
        )
        assert again.json()["queued"] == 0
