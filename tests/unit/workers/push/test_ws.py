"""The push worker's WebSocket, in process, with real clients (websockets' own).

The worker is the HTTP server of ``workers.push.sse`` on a feed over a real
store; the events are published by the test (store changes, or synthetic
events where only the bytes matter).
"""

import base64
import contextlib
import json
import os
import socket

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from core import wire
from core.notes import event_json
from tests.support.processes import wait_until
from tests.support.push_clients import sse_events
from workers.push.feed import EventFeed
from workers.push.sse import SseServer
from workers.push.ws import WebSocketHub


class Worker:
    """A feed, and the push worker's HTTP server on it (SSE and WebSocket)."""

    def __init__(self, store, start=0, hub=None, capacity=10000):
        self.store = store
        self.feed = EventFeed(store, start, capacity)
        self.hub = hub or WebSocketHub()
        self.server = SseServer(
            "127.0.0.1:0", lambda: {"status": "ok"}, keepalive=0.2, hub=self.hub
        )
        self.server.start(self.feed)
        host, port = self.server.address
        self.url = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{port}/ws"
        self.clients = []

    def change(self, title="n", kind="create", note_id=None):
        """Make one change in the store and publish it; its event."""
        if kind == "create":
            self.store.create(title, "")
        elif kind == "patch":
            self.store.patch(note_id, {"title": title})
        else:
            self.store.delete(note_id)
        changes = self.store.changes(since=self.feed.head, timeout=10)
        with contextlib.closing(changes):
            event = event_json(next(changes))
        self.feed.publish(event)
        return event

    def connect(self, query=""):
        # No client keepalive: its thread and close() would both join the
        # reader thread, which PyPy 3.9's threading can fail at (the server
        # pings; the client still answers them).
        client = connect(
            self.ws_url + query, open_timeout=10, close_timeout=2, ping_interval=None
        )
        self.clients.append(client)
        return client

    def close(self):
        for client in self.clients:
            client.close()
        self.feed.close()
        self.server.stop()


@pytest.fixture
def worker(store):
    worker = Worker(store)
    yield worker
    worker.close()


def receive(client, count=1):
    """The next ``count`` messages, decoded."""
    return [json.loads(client.recv(timeout=10)) for _ in range(count)]


def test_events_arrive_in_order_as_the_same_json_as_sse(worker):
    client = worker.connect()
    assert receive(client) == [
        {"type": "stream", "after": 0, "subscribe": None, "note_id": None}
    ]
    made = [worker.change(f"n{i}") for i in range(3)]
    texts = [client.recv(timeout=10) for _ in range(3)]
    assert [json.loads(text) for text in texts] == made
    # Byte for byte the data of the SSE frames for the same events.
    data = []
    frames = sse_events(worker.url + "/events", {"Last-Event-ID": "0"})
    with contextlib.closing(frames):
        for frame in frames:
            if "data" in frame:
                data.append(frame["data"])
            if len(data) == 3:
                break
    assert data == texts
    assert texts[0].encode() == wire.encode(made[0])


def test_a_client_resumes_after_last_event_id(worker):
    made = [worker.change(f"n{i}") for i in range(4)]
    client = worker.connect("?last_event_id=1")
    assert receive(client)[0] == {
        "type": "stream",
        "after": 1,
        "subscribe": None,
        "note_id": None,
    }
    assert receive(client, 3) == made[1:]
    later = worker.change("live")
    assert receive(client) == [later]


def test_a_resume_from_the_log_then_live_has_no_gap_nor_duplicate(store):
    # Memory holds 2 events: the first 40 come from the store's log.
    worker = Worker(store, capacity=2)
    try:
        made = [worker.change(f"n{i}") for i in range(42)]
        client = worker.connect("?last_event_id=0")
        receive(client)  # stream
        more = [worker.change(f"m{i}") for i in range(5)]
        got = receive(client, 47)
        assert [e["id"] for e in got] == list(range(1, 48))
        assert got == made + more
    finally:
        worker.close()


def test_an_id_ahead_of_the_stream_resets(worker):
    made = [worker.change(f"n{i}") for i in range(2)]
    client = worker.connect("?last_event_id=50")
    stream, reset = receive(client, 2)
    assert stream["type"] == "stream" and stream["after"] == 0
    assert reset["type"] == "reset"
    assert (reset["last_event_id"], reset["restart_after"]) == (50, 0)
    assert receive(client, 2) == made


def test_a_bad_last_event_id_is_a_400_problem(worker):
    with pytest.raises(InvalidStatus) as caught:
        worker.connect("?last_event_id=abc")
    response = caught.value.response
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert json.loads(response.body)["status"] == 400


def test_a_plain_get_is_told_to_upgrade(worker):
    answer = requests.get(worker.ws_url.replace("ws:", "http:"), timeout=10)
    assert answer.status_code == 426
    assert answer.headers["Upgrade"] == "websocket"
    assert answer.json()["title"] == "Upgrade Required"


def test_a_client_filters_by_type_and_note(worker):
    client = worker.connect()
    receive(client)
    client.send(json.dumps({"subscribe": ["note.deleted", "note.updated"]}))
    assert receive(client) == [
        {
            "type": "subscribed",
            "subscribe": ["note.deleted", "note.updated"],
            "note_id": None,
        }
    ]
    created = worker.change("a")
    note_id = created["new_val"]["id"]
    other = worker.change("b")["new_val"]["id"]
    client.send(json.dumps({"note_id": note_id}))
    assert receive(client)[0]["note_id"] == note_id
    worker.change("b2", "patch", other)
    patched = worker.change("a2", "patch", note_id)
    deleted = worker.change(kind="delete", note_id=note_id)
    assert receive(client, 2) == [patched, deleted]


def test_a_filter_in_the_query_applies_from_the_first_event(worker):
    created = worker.change("a")
    client = worker.connect("?last_event_id=0&subscribe=note.deleted")
    assert receive(client)[0]["subscribe"] == ["note.deleted"]
    worker.change("b")
    deleted = worker.change(kind="delete", note_id=created["new_val"]["id"])
    assert receive(client) == [deleted]


@pytest.mark.parametrize(
    "message, words",
    [
        ("not json", "JSON"),
        ('{"subscribe": ["note.exploded"]}', "note.exploded"),
        ('{"note_id": "abc"}', "note_id"),
        ('{"types": ["*"]}', "types"),
        ("[1, 2]", "object"),
    ],
)
def test_a_bad_message_gets_an_error_and_the_stream_goes_on(worker, message, words):
    client = worker.connect()
    receive(client)
    client.send(message)
    error = receive(client)[0]
    assert error["type"] == "error" and words in error["detail"]
    made = worker.change("still here")
    assert receive(client) == [made]


def test_a_bad_filter_in_the_query_is_400(worker):
    with pytest.raises(InvalidStatus) as caught:
        worker.connect("?subscribe=note.nope")
    assert caught.value.response.status_code == 400


def raw_client(worker, query="", receive_buffer=None):
    """A socket that completes the handshake and then reads nothing at all."""
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    host, port = worker.server.address
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws{query} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def test_a_client_that_stops_reading_is_dropped_and_holds_up_nobody(store):
    worker = Worker(store, hub=WebSocketHub(max_buffer=64 * 1024))
    try:
        stalled = raw_client(worker, receive_buffer=4096)
        reader = worker.connect()
        receive(reader)
        wait_until(lambda: worker.hub.clients == 2, timeout=10, what="two clients")
        body = {"id": "0" * 32, "title": "t", "body": "x" * 20000}
        for number in range(1, 401):  # 8 MB in all
            worker.feed.publish(
                {
                    "id": number,
                    "type": "note.created",
                    "old_val": None,
                    "new_val": body,
                    "ts": "2030-01-01T00:00:00.000Z",
                }
            )
            if number % 50 == 0:  # the reader keeps up
                assert [e["id"] for e in receive(reader, 50)] == list(
                    range(number - 49, number + 1)
                )
        wait_until(lambda: worker.hub.dropped == 1, timeout=10, what="a drop")
        assert worker.hub.clients == 1
        stalled.close()
    finally:
        worker.close()


def test_a_client_that_answers_no_ping_is_dropped(store):
    worker = Worker(store, hub=WebSocketHub(ping_interval=0.1, ping_timeout=0.3))
    try:
        silent = raw_client(worker)
        answering = worker.connect()  # websockets answers pings by itself
        wait_until(lambda: worker.hub.dropped == 1, timeout=10, what="a drop")
        wait_until(lambda: worker.hub.clients == 1, timeout=10, what="one left")
        receive(answering)
        made = worker.change("after")
        assert receive(answering) == [made]
        silent.close()
    finally:
        worker.close()


def test_stopping_the_server_closes_clients_with_1001(store):
    worker = Worker(store)
    client = worker.connect()
    receive(client)
    worker.feed.close()
    worker.server.stop()
    with pytest.raises(ConnectionClosed) as caught:
        client.recv(timeout=10)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
    client.close()


def test_the_metrics_count_websocket_clients_and_drops():
    from workers.push import metrics

    text = metrics.exposition(lambda: {"ws_clients": 2, "ws_dropped": 1}).decode()
    lines = text.splitlines()
    assert "push_websocket_clients 2.0" in lines
    assert "push_websocket_dropped_total 1.0" in lines
