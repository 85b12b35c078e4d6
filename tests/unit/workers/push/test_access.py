"""Who may use the push worker's HTTP port, in process: keys, tickets, Origin,
Host, and the headers of its answers (workers.push.access, workers.push.sse).
"""

import json
import logging
import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from core import tickets
from db.keys import KeyCache
from db.keys import KeyStore
from db.notes.sql import SqlNotesStore
from db.server_secrets import ServerSecrets
from tests.support.processes import wait_until
from tests.support.push_clients import sse_events
from workers.push.access import StreamAccess
from workers.push.feed import EventFeed
from workers.push.sse import SseServer
from workers.push.sse import mask_tickets
from workers.push.ws import WebSocketHub

STREAMS = ("/events", "/snapshot", "/ws")


class Clock:
    """Wall-clock seconds the test moves."""

    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Port:
    """The push worker's HTTP server on a store, with the API's keys checked."""

    def __init__(self, database, auth=True):
        self.keys = KeyStore(database)
        self.secrets = ServerSecrets(database)
        self.clock = Clock()
        self.access = StreamAccess(
            KeyCache(self.keys, ttl=0.05) if auth else None,
            lambda: self.secrets.get(tickets.SECRET_NAME),
            clock=self.clock,
        )
        self.store = SqlNotesStore(database, poll_interval=0.02)
        self.feed = EventFeed(self.store, 0)
        self.server = SseServer(
            "127.0.0.1:0",
            lambda: {"status": "ok"},
            keepalive=0.2,
            hub=WebSocketHub(recheck_interval=0.1),
            metrics=lambda: b"push_events_total 0\n",
            snapshot=lambda: {"seq": 0, "notes": [], "truncated": False},
            access=self.access,
        )
        self.server.start(self.feed)
        host, port = self.server.address
        self.url = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{port}/ws"

    def key(self, scope="read", name=None):
        return self.keys.create(name or f"k{time.monotonic_ns()}", scope)[1]

    def ticket(self, key):
        answer = requests.post(
            self.url + "/stream-tickets",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["ticket"]

    def close(self):
        self.feed.close()
        self.server.stop()


@pytest.fixture
def port(database):
    port = Port(database)
    yield port
    port.close()


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def assert_refused(answer, status, error=None):
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["detail"]
    if status == 401:
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="push"')
        assert (f'error="{error}"' in challenge) if error else "error" not in challenge
    return body


def ws_connect(url, **kwargs):
    return connect(url, open_timeout=10, close_timeout=2, ping_interval=None, **kwargs)


def test_every_stream_needs_a_key(port):
    for path in STREAMS:
        answer = requests.get(port.url + path, timeout=10)
        detail = assert_refused(answer, 401)["detail"]
        assert "read" in detail and "ticket" in detail
        unknown = requests.get(port.url + path, headers=bearer("fpa_x"), timeout=10)
        assert_refused(unknown, 401, "invalid_token")
    with pytest.raises(InvalidStatus) as caught:
        ws_connect(port.ws_url)
    assert caught.value.response.status_code == 401


def test_a_read_key_opens_every_stream(port):
    key = port.key("read")
    snapshot = requests.get(port.url + "/snapshot", headers=bearer(key), timeout=10)
    assert snapshot.status_code == 200 and snapshot.json()["notes"] == []
    frames = sse_events(port.url + "/events", bearer(key))
    assert next(frames) == {"comment": "stream after 0"}
    frames.close()
    with ws_connect(port.ws_url, additional_headers=bearer(key)) as client:
        assert json.loads(client.recv(timeout=10))["type"] == "stream"


def test_metrics_need_an_admin_key_and_take_no_ticket(port):
    read, admin = port.key("read"), port.key("admin")
    assert_refused(requests.get(port.url + "/metrics", timeout=10), 401)
    answer = requests.get(port.url + "/metrics", headers=bearer(read), timeout=10)
    assert_refused(answer, 403)
    assert 'scope="admin"' in answer.headers["WWW-Authenticate"]
    ticket = port.ticket(admin)
    by_ticket = requests.get(f"{port.url}/metrics?ticket={ticket}", timeout=10)
    assert_refused(by_ticket, 401)
    answer = requests.get(port.url + "/metrics", headers=bearer(admin), timeout=10)
    assert answer.status_code == 200 and "push_events_total" in answer.text


def test_a_ticket_opens_every_stream_until_it_expires(port):
    ticket = port.ticket(port.key("read"))
    query = f"?ticket={ticket}"
    assert requests.get(port.url + "/snapshot" + query, timeout=10).status_code == 200
    frames = sse_events(port.url + "/events" + query)
    assert next(frames) == {"comment": "stream after 0"}
    frames.close()
    with ws_connect(port.ws_url + query) as client:
        assert json.loads(client.recv(timeout=10))["type"] == "stream"
    port.clock.now += tickets.TTL_SECONDS
    for path in STREAMS:
        answer = requests.get(port.url + path + query, timeout=10)
        assert (
            "POST /stream-tickets"
            in assert_refused(answer, 401, "invalid_token")["detail"]
        )


def test_a_forged_ticket_opens_nothing(port):
    ticket = port.ticket(port.key("read"))
    version, key_id, expires, signature = ticket.split(".")
    forged = ".".join((version, key_id, str(int(expires) + 3600), signature))
    for bad in (forged, "st1.1.1.x", ticket + "0"):
        answer = requests.get(port.url + f"/snapshot?ticket={bad}", timeout=10)
        assert_refused(answer, 401, "invalid_token")
    signed_elsewhere = tickets.issue(b"another secret" * 3, int(key_id), time.time())
    answer = requests.get(port.url + f"/snapshot?ticket={signed_elsewhere}", timeout=10)
    assert_refused(answer, 401, "invalid_token")


def test_tickets_are_issued_for_a_valid_key_only(port):
    assert_refused(requests.post(port.url + "/stream-tickets", timeout=10), 401)
    answer = requests.post(
        port.url + "/stream-tickets", headers=bearer("fpa_" + "0" * 38), timeout=10
    )
    assert_refused(answer, 401, "invalid_token")
    answer = requests.post(
        port.url + "/stream-tickets", headers=bearer(port.key("read")), timeout=10
    )
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.json()["expires_in"] == tickets.TTL_SECONDS


def test_revoking_a_key_ends_its_tickets_and_its_open_streams(port):
    key = port.key("read", name="leaving")
    other = port.key("read", name="staying")
    ticket = port.ticket(key)
    sse = sse_events(f"{port.url}/events?ticket={ticket}")
    assert next(sse) == {"comment": "stream after 0"}
    revoked_ws = ws_connect(f"{port.ws_url}?ticket={ticket}")
    kept_ws = ws_connect(port.ws_url, additional_headers=bearer(other))
    for client in (revoked_ws, kept_ws):
        assert json.loads(client.recv(timeout=10))["type"] == "stream"

    port.keys.revoke("leaving")
    wait_until(
        lambda: (
            requests.get(f"{port.url}/snapshot?ticket={ticket}", timeout=10).status_code
            == 401
        ),
        timeout=10,
        what="the ticket refused",
    )
    rest = list(sse)  # the stream ends, saying why
    assert {"comment": "the API key is revoked"} in rest
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            revoked_ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1008
    kept_ws.send(json.dumps({"subscribe": ["note.created"]}))
    assert json.loads(kept_ws.recv(timeout=10))["type"] == "subscribed"
    kept_ws.close()
    revoked_ws.close()


def test_pages_of_other_origins_open_no_stream(port):
    key = port.key("read")
    own = port.url
    with ws_connect(port.ws_url, origin=own, additional_headers=bearer(key)) as client:
        assert json.loads(client.recv(timeout=10))["type"] == "stream"
    with pytest.raises(InvalidStatus) as caught:
        ws_connect(
            port.ws_url, origin="http://evil.example", additional_headers=bearer(key)
        )
    assert caught.value.response.status_code == 403
    evil = {"Origin": "http://evil.example", **bearer(key)}
    for path in ("/events", "/snapshot"):
        answer = requests.get(port.url + path, headers=evil, timeout=10)
        assert_refused(answer, 403)
    answer = requests.post(port.url + "/stream-tickets", headers=evil, timeout=10)
    assert_refused(answer, 403)
    # Another port of the same host is another origin (the API's /docs).
    other_port = {"Origin": "http://127.0.0.1:1", **bearer(key)}
    answer = requests.get(port.url + "/snapshot", headers=other_port, timeout=10)
    assert_refused(answer, 403)


def test_a_host_the_worker_is_not_known_by_gets_400_except_on_health(port):
    key = port.key("read")
    for path in ("/", "/snapshot", "/events", "/live.js"):
        answer = requests.get(
            port.url + path, headers={"Host": "evil.example", **bearer(key)}, timeout=10
        )
        assert "ALLOWED_HOSTS" in assert_refused(answer, 400)["detail"]
    answer = requests.get(
        port.url + "/health", headers={"Host": "10.0.0.1"}, timeout=10
    )
    assert answer.status_code == 200
    _, number = port.server.address
    for host in ("localhost", f"localhost:{number}", f"[::1]:{number}"):
        answer = requests.get(port.url + "/", headers={"Host": host}, timeout=10)
        assert answer.status_code == 200, host


def test_answers_name_no_interpreter_and_carry_a_policy(port):
    page = requests.get(port.url + "/", timeout=10)
    assert page.headers["Server"] == "push-worker"
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    for path in ("/", "/live.js", "/live.css", "/health", "/snapshot"):
        answer = requests.get(port.url + path, timeout=10)
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert "Python" not in answer.headers["Server"]
    assert "<script>" not in page.text and "<style>" not in page.text


def test_tickets_never_reach_the_log(port, caplog):
    ticket = port.ticket(port.key("read"))
    with caplog.at_level(logging.DEBUG, logger="workers.push.sse"):
        requests.get(f"{port.url}/snapshot?ticket={ticket}&x=1", timeout=10)
        requests.get(f"{port.url}/snapshot?ticket={ticket}", timeout=10)
    assert "/snapshot?ticket=*** HTTP" in caplog.text
    assert ticket not in caplog.text and ticket.split(".")[-1] not in caplog.text
    assert mask_tickets('"GET /ws?a=1&ticket=abc.def&b=2 HTTP/1.1"') == (
        '"GET /ws?a=1&ticket=***&b=2 HTTP/1.1"'
    )


def test_with_auth_off_nothing_is_asked(database):
    port = Port(database, auth=False)
    try:
        assert requests.get(port.url + "/snapshot", timeout=10).status_code == 200
        assert requests.get(port.url + "/metrics", timeout=10).status_code == 200
        answer = requests.post(port.url + "/stream-tickets", timeout=10)
        assert answer.status_code == 200
        assert answer.json()["ticket"].startswith("st1.0.")
        with ws_connect(port.ws_url) as client:
            assert json.loads(client.recv(timeout=10))["type"] == "stream"
        # The browser checks stay on: they do not depend on keys.
        evil = requests.get(
            port.url + "/snapshot",
            headers={"Origin": "http://evil.example"},
            timeout=10,
        )
        assert_refused(evil, 403)
    finally:
        port.close()
