"""The gevent worker's response: its head leaves with the body, in one send."""

import email.utils
import types

from gunicorn.config import Config

from api.server_gevent import OneSendResponse
from api.server_gevent import _Date


class Socket:
    """Records each ``send`` and ``sendall``; ``send`` takes at most ``limit`` bytes."""

    def __init__(self, limit=None):
        self.sends = []
        self.limit = limit

    def send(self, data: bytes) -> int:
        data = bytes(data[: self.limit])
        self.sends.append(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


def response(method="GET", limit=None):
    request = types.SimpleNamespace(
        version=(1, 1), method=method, headers=[], should_close=lambda: False
    )
    sock = Socket(limit)
    return OneSendResponse(request, sock, Config()), sock


def test_an_answer_with_a_body_leaves_in_one_send():
    resp, sock = response()
    resp.start_response("200 OK", [("Content-Length", "7")])
    resp.write(b'{"a":1}')
    resp.close()
    assert len(sock.sends) == 1
    head, body = sock.sends[0].split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 7" in head and b"\r\nDate: " in head
    assert body == b'{"a":1}'


def test_what_one_send_leaves_is_sent_after_it():
    resp, sock = response(limit=10)
    resp.start_response("200 OK", [("Content-Length", "7")])
    resp.write(b'{"a":1}')
    resp.close()
    assert len(sock.sends) == 2 and len(sock.sends[0]) == 10
    assert b"".join(sock.sends).endswith(b'\r\n\r\n{"a":1}')


def test_an_answer_without_a_body_sends_its_head_at_close():
    resp, sock = response()
    resp.start_response("304 Not Modified", [("ETag", '"1"')])
    resp.close()
    assert len(sock.sends) == 1 and sock.sends[0].endswith(b'ETag: "1"\r\n\r\n')


def test_no_more_than_the_declared_length_is_sent():
    resp, sock = response()
    resp.start_response("200 OK", [("Content-Length", "3")])
    resp.write(b"abcdef")
    resp.write(b"gh")
    resp.close()
    assert b"".join(sock.sends).endswith(b"\r\n\r\nabc")


def test_a_stream_without_a_length_sends_its_head_then_chunks():
    resp, sock = response()
    resp.start_response("200 OK", [("Content-Type", "text/csv")])
    resp.write(b"a,b\n")
    resp.write(b"c,d\n")
    resp.close()
    head, *chunks = sock.sends
    assert b"Transfer-Encoding: chunked" in head and head.endswith(b"\r\n\r\n")
    assert b"".join(chunks) == b"4\r\na,b\n\r\n4\r\nc,d\n\r\n0\r\n\r\n"


def test_the_date_is_the_http_date_of_this_second(monkeypatch):
    monkeypatch.setattr("time.time", lambda: 1_700_000_000.4)
    assert _Date.now() == email.utils.formatdate(1_700_000_000, usegmt=True)
    assert _Date.now() == "Tue, 14 Nov 2023 22:13:20 GMT"
