"""End to end: the push worker's port keeps to its rules with real processes.

A ticket from the API opens the worker's streams (one secret, shared through
the SQL database) and ``python -m api keys revoke`` ends it; both ports
refuse a foreign ``Host``; ``/ws`` refuses a foreign ``Origin``; 300
half-open sockets hold no thread and slow nobody, and are closed after
``PUSH_HEADER_TIMEOUT``; one address holds at most
``PUSH_MAX_CONNECTIONS_PER_CLIENT`` connections.
"""

import json
import socket
import subprocess
import sys
import time

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.live import ROOT
from tests.support.live import child_env
from tests.support.live import make_key
from tests.support.processes import wait_until
from tests.support.push_clients import sse_events

PARTIAL = b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait"


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def ws_url(worker, query=""):
    return worker.sse_url.replace("http://", "ws://") + "/ws" + query


def ws_connect(url, **kwargs):
    return connect(url, open_timeout=10, close_timeout=2, ping_interval=None, **kwargs)


def test_a_ticket_from_the_api_opens_the_workers_streams_until_revoked(
    live_server, push_worker, tmp_path
):
    api = live_server(env={"AUTH": "on"})
    worker = push_worker()
    writer = bearer(make_key(tmp_path, "write", name="writer"))
    reader = bearer(make_key(tmp_path, "read", name="viewer"))
    for path in ("/events", "/snapshot"):
        refused = requests.get(worker.sse_url + path, timeout=10)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")

    answer = requests.post(api.url + "/stream-tickets", headers=reader, timeout=10)
    assert answer.status_code == 200
    ticket = answer.json()["ticket"]
    snapshot = requests.get(f"{worker.sse_url}/snapshot?ticket={ticket}", timeout=10)
    assert snapshot.status_code == 200
    with ws_connect(ws_url(worker, f"?ticket={ticket}")) as client:
        assert json.loads(client.recv(timeout=10))["type"] == "stream"

    stream = sse_events(f"{worker.sse_url}/events?ticket={ticket}")
    assert next(stream)["comment"].startswith("stream after")

    def write():
        made = requests.post(
            api.url + "/notes",
            json={"title": "t", "body": ""},
            headers=writer,
            timeout=10,
        )
        assert made.status_code == 201

    write()
    assert json.loads(next(f for f in stream if "data" in f)["data"])["type"] == (
        "note.created"
    )

    revoked = subprocess.run(
        [sys.executable, "-m", "api", "keys", "revoke", "viewer"],
        cwd=ROOT,
        env=child_env(tmp_path, {}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert revoked.returncode == 0, revoked.stderr
    wait_until(
        lambda: (
            requests.get(
                f"{worker.sse_url}/snapshot?ticket={ticket}", timeout=10
            ).status_code
            == 401
        ),
        timeout=10,
        what="the revoked key's ticket refused",
    )
    # The open stream ends too: a change wakes it, and it finds the key gone.
    write()
    began = time.monotonic()
    frames = list(stream)
    assert frames[-1] == {"comment": "the API key is revoked"}
    assert time.monotonic() - began < 5
    assert "Traceback" not in worker.log()


def test_both_ports_answer_only_their_names_and_pages_only_their_origin(
    live_server, push_worker
):
    names = {"ALLOWED_HOSTS": "push.example.test"}
    api = live_server(env=names)
    worker = push_worker(names)
    auth = worker.auth()
    for base, path in ((api.url, "/notes"), (worker.sse_url, "/snapshot")):
        foreign = requests.get(
            base + path, headers={"Host": "evil.example", **auth}, timeout=10
        )
        assert foreign.status_code == 400, base
        assert foreign.headers["Content-Type"] == "application/problem+json"
        assert "ALLOWED_HOSTS" in foreign.json()["detail"]
        named = requests.get(
            base + path, headers={"Host": "push.example.test:8443", **auth}, timeout=10
        )
        assert named.status_code == 200, base
        # The healthchecks of compose and podman dial 127.0.0.1; probes of
        # orchestrators dial the container's address.
        for host in ("127.0.0.1", "10.1.2.3:8000"):
            probe = requests.get(base + "/health", headers={"Host": host}, timeout=10)
            assert probe.status_code == 200, (base, host)

    own = worker.sse_url
    with ws_connect(ws_url(worker), origin=own, additional_headers=auth) as client:
        assert json.loads(client.recv(timeout=10))["type"] == "stream"
    with pytest.raises(InvalidStatus) as caught:
        ws_connect(
            ws_url(worker), origin="https://evil.example", additional_headers=auth
        )
    assert caught.value.response.status_code == 403

    page = requests.get(worker.sse_url + "/", timeout=10)
    assert page.headers["Server"] == "push-worker"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line")


def half_open(address, count: int, source: str = "127.0.0.1"):
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect(address)
        sock.sendall(PARTIAL)
        sockets.append(sock)
    return sockets


def closed_by_server(sock, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def address_of(worker):
    host, port = worker.sse_url[len("http://") :].split(":")
    return host, int(port)


def test_300_half_open_sockets_hold_no_thread_and_do_not_slow_snapshot(push_worker):
    worker = push_worker(
        {"PUSH_HEADER_TIMEOUT": "2", "PUSH_MAX_CONNECTIONS_PER_CLIENT": "1000"}
    )
    auth = worker.auth()
    assert requests.get(worker.sse_url + "/snapshot", headers=auth, timeout=10).ok
    threads = threads_of(worker.proc.pid)
    held = half_open(address_of(worker), 300)
    try:
        began = time.monotonic()
        answer = requests.get(worker.sse_url + "/snapshot", headers=auth, timeout=10)
        took = time.monotonic() - began
        assert answer.status_code == 200
        assert took < 2.0, took  # a functional bound, not a benchmark
        assert threads_of(worker.proc.pid) - threads < 10
        began = time.monotonic()
        assert all(closed_by_server(sock, 15) for sock in held)
        assert time.monotonic() - began < 10
    finally:
        for sock in held:
            sock.close()


def test_one_address_holds_at_most_the_cap(push_worker):
    worker = push_worker({"PUSH_HEADER_TIMEOUT": "3"})  # the default cap, 64
    held = half_open(address_of(worker), 64, source="127.0.0.2")
    try:
        extra = socket.create_connection(
            address_of(worker), timeout=10, source_address=("127.0.0.2", 0)
        )
        with extra:
            answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 429 Too Many Requests")
        # Other addresses are served meanwhile.
        snapshot = requests.get(
            worker.sse_url + "/snapshot", headers=worker.auth(), timeout=10
        )
        assert snapshot.status_code == 200
    finally:
        for sock in held:
            sock.close()
