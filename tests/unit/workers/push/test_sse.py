"""The push worker's SSE server, in process, on a feed over a real store."""

import contextlib
import threading

import pytest
import requests

from core.notes import event_json
from tests.support.push_clients import sse_events
from tests.support.push_clients import take_sse_events
from workers.push.feed import EventFeed
from workers.push.sse import SseServer
from workers.push.sse import parse_bind


class Worker:
    """A feed plus the SSE server on it, fed by the test."""

    def __init__(self, store, start=0):
        self.store = store
        self.feed = EventFeed(store, start)
        self.server = SseServer("127.0.0.1:0", lambda: {"status": "ok"}, keepalive=0.2)
        self.server.start(self.feed)
        host, port = self.server.address
        self.url = f"http://{host}:{port}"

    def change(self, title):
        """Create a note and publish its change."""
        self.store.create(title, "")
        changes = self.store.changes(since=self.feed.head, timeout=10)
        with contextlib.closing(changes):
            change = next(changes)
        self.feed.publish(event_json(change))
        return event_json(change)

    def close(self):
        self.feed.close()
        self.server.stop()


@pytest.fixture
def worker(store):
    worker = Worker(store)
    yield worker
    worker.close()


def test_without_last_event_id_the_stream_starts_with_the_next_change(worker):
    worker.change("old")
    got = take_sse_events(
        worker.url + "/events", 1, on_open=lambda: worker.change("new")
    )
    assert got[0]["data"]["new_val"]["title"] == "new"
    assert got[0]["id"] == str(got[0]["data"]["id"])
    assert got[0]["event"] == "note.created"


def test_keep_alive_comments_while_nothing_happens(worker):
    frames = sse_events(worker.url + "/events")
    first, second, third = next(frames), next(frames), next(frames)
    frames.close()
    assert first == {"comment": "stream after 0"}
    assert second == {"retry": "3000"}
    assert third == {"comment": "keep-alive"}


def test_last_event_id_replays_then_follows(worker):
    made = [worker.change(f"n{i}") for i in range(3)]
    got = take_sse_events(
        worker.url + "/events",
        3,
        {"Last-Event-ID": "1"},
        on_open=lambda: made.append(worker.change("live")),
    )
    assert [e["data"] for e in got] == made[1:]


def test_last_event_id_from_before_the_worker_started_reads_the_log(store):
    for i in range(3):
        store.create(f"before {i}", "")
    worker = Worker(store, start=3)  # a restarted worker: memory is empty
    try:
        got = take_sse_events(worker.url + "/events?last_event_id=0", 3)
        assert [e["data"]["new_val"]["title"] for e in got] == [
            "before 0",
            "before 1",
            "before 2",
        ]
    finally:
        worker.close()


def test_the_header_wins_over_the_query(worker):
    made = [worker.change(f"n{i}") for i in range(3)]
    got = take_sse_events(
        worker.url + "/events?last_event_id=0", 1, {"Last-Event-ID": "2"}
    )
    assert got[0]["data"] == made[2]


@pytest.mark.parametrize(
    "headers, query", [({"Last-Event-ID": "x"}, ""), ({}, "?last_event_id=-3")]
)
def test_a_bad_last_event_id_is_a_400_problem(worker, headers, query):
    response = requests.get(worker.url + "/events" + query, headers=headers, timeout=10)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 400


def test_other_paths_and_methods(worker):
    assert requests.get(worker.url + "/nope", timeout=10).status_code == 404
    post = requests.post(worker.url + "/events", timeout=10)
    assert post.status_code == 405 and post.headers["Allow"] == "GET"
    page = requests.get(worker.url + "/", timeout=10)
    assert page.status_code == 200 and '<script src="/live.js"' in page.text
    script = requests.get(worker.url + "/live.js", timeout=10)
    assert script.status_code == 200 and "EventSource" in script.text
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert requests.get(worker.url + "/health", timeout=10).json() == {"status": "ok"}


def test_closing_the_feed_ends_open_streams(worker):
    ended = threading.Event()

    def read():
        for _ in sse_events(worker.url + "/events"):
            worker.feed.close()
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ended.wait(30)


@pytest.mark.parametrize(
    "bind, parsed",
    [
        ("127.0.0.1:8001", ("127.0.0.1", 8001)),
        ("[::1]:8001", ("::1", 8001)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_parse_bind(bind, parsed):
    assert parse_bind(bind) == parsed


@pytest.mark.parametrize("bind", ["8001", ":8001", "host:", "host:http", "h:70000"])
def test_parse_bind_refuses(bind):
    with pytest.raises(ValueError):
        parse_bind(bind)


@pytest.mark.parametrize("ahead", ["50", "9999999999999999999"])
def test_a_last_event_id_ahead_of_the_stream_resets_and_replays_the_log(worker, ahead):
    # The client saw events of a log that is gone (a database reset): it gets
    # a reset event, then every change the log holds, then the live ones.
    made = [worker.change(f"n{i}") for i in range(3)]
    got = take_sse_events(
        worker.url + "/events",
        5,
        {"Last-Event-ID": ahead},
        on_open=lambda: made.append(worker.change("live")),
    )
    reset, *events = got
    assert reset["event"] == "reset" and reset["id"] == "0"
    assert reset["data"]["last_event_id"] == int(ahead)
    assert reset["data"]["restart_after"] == 0
    assert [e["data"] for e in events] == made


def test_an_id_the_store_has_but_the_feed_not_yet_is_no_reset(store):
    # A restarted worker still catching up: the client's id is real.
    for i in range(3):
        store.create(f"n{i}", "")
    worker = Worker(store, start=0)
    try:
        assert worker.feed.resume(3).reset is False
        assert worker.feed.resume(4).reset is True
        assert worker.feed.resume(None).cursor == 0
    finally:
        worker.close()
