"""The real server under hostile clients: slow ones, malformed HTTP, many writers.

Gunicorn runs with the project's gunicorn.conf.py (the gevent worker class).
"""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bench.worker_classes import hold_slow_clients
from tests.support.live import LiveServer

SLOW_CLIENTS = 48


def _connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _exchange(server, raw: bytes) -> tuple:
    """Send ``raw``; the status, headers and body of the answer."""
    with _connect(server) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def test_slow_and_stalled_clients_do_not_freeze_the_api(live_server):
    server = live_server(workers=2)
    stop = threading.Event()
    # Half send headers one byte every 0.2 s (slowloris), half stall a body.
    held = hold_slow_clients(server.port, SLOW_CLIENTS, stop)
    try:
        time.sleep(1.0)  # every slow client is in a worker by now
        timings = []
        for _ in range(20):
            started = time.monotonic()
            answer = requests.get(server.url + "/health", timeout=10)
            timings.append(time.monotonic() - started)
            assert answer.status_code == 200
        note = requests.post(server.url + "/notes", json={"title": "x"}, timeout=10)
        assert note.status_code == 201
    finally:
        stop.set()
        for sock in held:
            sock.close()
    timings.sort()
    print(
        f"\n/health with {SLOW_CLIENTS} slow clients held: "
        f"median {timings[len(timings) // 2] * 1000:.1f} ms, "
        f"max {timings[-1] * 1000:.1f} ms"
    )


def test_a_stalled_body_is_cut_off_by_the_read_timeout(live_server):
    # Gunicorn's `timeout` is also the gevent worker's client read limit: a
    # short one shows that a stalled client gets its answer and is closed.
    server = live_server(env={"GUNICORN_CMD_ARGS": "--timeout 3"})
    with _connect(server) as sock:
        sock.sendall(
            b"POST /notes HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"ti'
        )
        sock.settimeout(60)
        started = time.monotonic()
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 400"), data[:200]
    assert time.monotonic() - started < 59


REFUSALS = [
    # (what, raw request, status)
    (
        "request line too long",
        # Over gunicorn's 4094, under what it reads at once (else the
        # unread rest resets the connection before the answer is read).
        b"GET /" + b"a" * 4200 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
        414,
    ),
    (
        "Content-Length beside chunked",
        b"POST /notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "negative length",
        b"POST /notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
        400,
    ),
    (
        "two lengths",
        b"POST /notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n"
        b"Content-Length: 2\r\n\r\nab",
        400,
    ),
    (
        "a bad header name",
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nBad Name: y\r\n\r\n",
        400,
    ),
    ("a bad method", b"G(T /health HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    ("a bad version", b"GET /health HTTP/9.9\r\nHost: localhost\r\n\r\n", 400),
    (
        "an unsupported transfer coding",
        b"POST /notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: foo\r\n\r\n",
        501,
    ),
    (
        "too many headers",
        b"GET /health HTTP/1.1\r\nHost: localhost\r\n"
        + b"".join(b"X-%d: y\r\n" % n for n in range(200))
        + b"\r\n",
        431,
    ),
]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refusals")
    server = LiveServer(folder, {"DATABASE_URL": f"sqlite:///{folder / 'db.sqlite'}"})
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("what, raw, status", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_gunicorns_own_refusals_are_problem_json(shared_server, what, raw, status):
    got, headers, body = _exchange(shared_server, raw)
    assert got == status, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status and problem["type"] == "about:blank"
    assert problem["detail"]


def test_a_refused_body_is_not_read_and_the_connection_closes(shared_server):
    # 413 before reading: the connection closes at once rather than gunicorn
    # reading (and waiting for) ten megabytes to reach a next request, which
    # it gives up only after `keepalive` (5 s) of silence.
    with _connect(shared_server) as sock:
        sock.settimeout(3)
        sock.sendall(
            b"POST /notes HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json"
            b"\r\nContent-Length: 10000000\r\n\r\n{"
        )
        data = b""
        while True:
            chunk = sock.recv(65536)  # a socket.timeout fails the test
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 413")


def test_a_malformed_chunked_body_is_a_400_problem(shared_server):
    got, headers, body = _exchange(
        shared_server,
        b"POST /notes HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )
    assert got == 400
    assert headers["content-type"] == "application/problem+json"
    assert "could not be read" in json.loads(body)["detail"]


def test_64_concurrent_writers_get_no_503(live_server):
    # SQLite, several gunicorn workers: every write transaction begins
    # IMMEDIATE (db/sql.py), so none fails upgrading a read lock to a write.
    server = live_server(workers=4)
    session_local = threading.local()
    sessions = []
    barrier = threading.Barrier(64)

    def write(n):
        session = getattr(session_local, "session", None)
        if session is None:
            session = session_local.session = requests.Session()
            sessions.append(session)
        if n < 64:
            barrier.wait(30)
        statuses = []
        note = session.post(server.url + "/notes", json={"title": f"n{n}"}, timeout=60)
        statuses.append(note.status_code)
        if note.status_code == 201:
            statuses.append(
                session.patch(
                    server.url + "/notes/" + note.json()["id"],
                    json={"body": "b"},
                    timeout=60,
                ).status_code
            )
        statuses.append(
            session.post(
                server.url + "/links", json={"url": f"example.com/{n}"}, timeout=60
            ).status_code
        )
        return statuses

    try:
        with ThreadPoolExecutor(64) as pool:
            results = list(pool.map(write, range(256)))
    finally:
        for session in sessions:
            session.close()
    counts = {}
    for statuses in results:
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
    assert counts == {201: 512, 200: 256}, counts


def _responses_in(data: bytes) -> int:
    return data.count(b"HTTP/1.1 200")


def test_a_busy_keep_alive_connection_does_not_starve_another(live_server):
    # 2,000 pipelined requests on one connection are always ready to read, so
    # without a yield between requests its greenlet would serve all of them
    # before the other connection's one request (api/server_gevent.py).
    server = live_server(workers=1)
    busy, other = _connect(server), _connect(server)
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    busy.sendall(request * 2000)
    other.sendall(request)
    answer = other.recv(65536)
    busy.settimeout(0)
    served = b""
    try:
        while True:
            chunk = busy.recv(1 << 20)
            if not chunk:
                break
            served += chunk
    except BlockingIOError:
        pass
    assert answer.startswith(b"HTTP/1.1 200")
    assert _responses_in(served) < 1000, _responses_in(served)
    busy.settimeout(10)
    while _responses_in(served) < 2000:  # and the busy one is served in full
        served += busy.recv(1 << 20)
    busy.close()
    other.close()
