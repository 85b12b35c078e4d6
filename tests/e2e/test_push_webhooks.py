"""End to end: note changes reach webhook subscriptions through the real push
worker, each subscription in order, a silent one delaying nobody, across kill -9."""

import json
import time

import requests

from core.signatures import standard_verify
from tests.support.live import wait_until
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
