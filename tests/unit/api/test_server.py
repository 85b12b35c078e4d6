"""The worker classes' socket reader: gunicorn's requests, read into one buffer."""

import socket

from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from api.server import BufferUnreader


def test_chunks_are_the_bytes_sent_and_empty_at_the_end():
    client, server = socket.socketpair()
    with client, server:
        reader = BufferUnreader(server, max_chunk=4)
        client.sendall(b"abcdef")
        assert reader.chunk() == b"abcd"
        assert reader.chunk() == b"ef"
        client.shutdown(socket.SHUT_WR)
        assert reader.chunk() == b""


def test_a_chunk_does_not_change_when_the_buffer_is_reused():
    client, server = socket.socketpair()
    with client, server:
        reader = BufferUnreader(server, max_chunk=8)
        client.sendall(b"first")
        first = reader.chunk()
        client.sendall(b"second")
        assert (first, reader.chunk()) == (b"first", b"second")


def test_gunicorns_parser_reads_requests_through_it(monkeypatch):
    monkeypatch.setattr("gunicorn.http.parser.SocketUnreader", BufferUnreader)
    client, server = socket.socketpair()
    with client, server:
        client.sendall(
            b"POST /notes HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        parser = RequestParser(Config(), server, ("127.0.0.1", 1))
        assert isinstance(parser.unreader, BufferUnreader)
        first = next(parser)
        assert (first.method, first.path, first.body.read()) == (
            "POST",
            "/notes",
            b"hello",
        )
        second = next(parser)
        assert (second.method, second.path) == ("GET", "/health")
