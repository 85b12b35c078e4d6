"""Slow clients on the push worker's port, in process (workers.push.gate): heads
read on one thread, a deadline, a cap per address; the rest is served."""

import json
import socket
import threading
import time

import pytest
import requests
from websockets.sync.client import connect

from tests.support.processes import wait_until
from workers.push.feed import EventFeed
from workers.push.gate import MAX_HEAD
from workers.push.sse import SseServer

PARTIAL = b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait"


@pytest.fixture
def serve(store):
    """Factory: the push worker's HTTP server (no keys: AUTH=off) with options."""
    servers = []

    def start(**options) -> SseServer:
        server = SseServer(
            "127.0.0.1:0",
            lambda: {"status": "ok"},
            keepalive=0.2,
            snapshot=lambda: {"seq": 0, "notes": [], "truncated": False},
            **options,
        )
        feed = EventFeed(store, 0)
        server.start(feed)
        servers.append((server, feed))
        return server

    yield start
    for server, feed in servers:
        feed.close()
        server.stop()


def url(server) -> str:
    host, port = server.address
    return f"http://{host}:{port}"


def half_open(server, count: int, source: str = "127.0.0.1"):
    """``count`` connections that send part of a request line, then nothing."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect(server.address)
        sock.sendall(PARTIAL)
        sockets.append(sock)
    return sockets


def closed_by_server(sock, timeout: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``timeout``."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_a_head_not_finished_in_time_is_closed(serve):
    server = serve(header_timeout=0.5)
    (sock,) = half_open(server, 1)
    began = time.monotonic()
    assert closed_by_server(sock, 10)
    assert 0.4 < time.monotonic() - began < 5
    wait_until(lambda: server.gate.held("127.0.0.1") == 0, timeout=5, what="released")
    sock.close()


def test_a_slow_but_timely_head_is_answered(serve):
    server = serve(header_timeout=3)
    with socket.create_connection(server.address) as sock:
        for part in (b"GET /snapshot HT", b"TP/1.1\r\nHost: local", b"host\r\n\r\n"):
            sock.sendall(part)
            time.sleep(0.2)
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert json.loads(body)["seq"] == 0


def test_300_half_open_sockets_hold_no_thread_and_slow_nobody(serve):
    server = serve(header_timeout=2.0)
    threads = threading.active_count()
    held = half_open(server, 300)
    try:
        wait_until(lambda: server.gate.pending == 300, timeout=10, what="300 held")
        assert threading.active_count() - threads < 5
        began = time.monotonic()
        answer = requests.get(url(server) + "/snapshot", timeout=10)
        assert answer.status_code == 200
        assert time.monotonic() - began < 2.0  # a functional bound, not a figure
        assert all(closed_by_server(sock, 10) for sock in held)
        wait_until(lambda: server.gate.pending == 0, timeout=5, what="all closed")
    finally:
        for sock in held:
            sock.close()


def test_an_address_holds_at_most_the_cap(serve):
    server = serve(header_timeout=1.0, max_per_client=3)
    held = half_open(server, 3)
    try:
        wait_until(lambda: server.gate.pending == 3, timeout=10, what="3 held")
        with socket.create_connection(server.address) as extra:
            extra.settimeout(10)
            answer = extra.recv(4096)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 429 Too Many Requests")
        assert b"Content-Type: application/problem+json" in head
        assert json.loads(body)["status"] == 429
        # Another address is not affected.
        (other,) = half_open(server, 1, source="127.0.0.2")
        wait_until(lambda: server.gate.pending == 4, timeout=10, what="4 held")
        other.close()
        # Once the held ones are closed, the address is served again.
        assert all(closed_by_server(sock, 10) for sock in held)
        wait_until(
            lambda: server.gate.held("127.0.0.1") == 0, timeout=5, what="released"
        )
        assert requests.get(url(server) + "/snapshot", timeout=10).status_code == 200
    finally:
        for sock in held:
            sock.close()


def test_streams_count_until_they_end(serve):
    server = serve(max_per_client=2)
    stream = requests.get(url(server) + "/events", stream=True, timeout=10)
    websocket = connect(
        f"ws://127.0.0.1:{server.address[1]}/ws", open_timeout=10, ping_interval=None
    )
    wait_until(lambda: server.gate.held("127.0.0.1") == 2, timeout=10, what="2 held")
    refused = requests.get(url(server) + "/snapshot", timeout=10)
    assert refused.status_code == 429
    stream.close()
    websocket.close()
    wait_until(lambda: server.gate.held("127.0.0.1") == 0, timeout=10, what="released")
    assert requests.get(url(server) + "/snapshot", timeout=10).status_code == 200


def test_a_head_over_the_limit_is_431(serve):
    server = serve()
    with socket.create_connection(server.address) as sock:
        sock.sendall(b"GET /snapshot HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD + 10))
        sock.settimeout(10)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    wait_until(lambda: server.gate.held("127.0.0.1") == 0, timeout=5, what="released")


@pytest.mark.parametrize("options", [{"header_timeout": 0}, {"max_per_client": -1}])
def test_nonsense_settings_are_refused(serve, options):
    with pytest.raises(ValueError):
        serve(**options)
