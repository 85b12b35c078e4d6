"""The worker classes' socket reader and settled config, with gunicorn's parser."""

import socket

import pytest
from gunicorn.config import Config
from gunicorn.http import errors
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from api.server import BufferUnreader
from api.server import Settled
from api.server import SettledConfig


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


def test_a_settled_config_answers_as_its_config_does():
    config = Config()
    config.set("limit_request_line", 100)
    config.set("keepalive", 7)
    settled = SettledConfig(config)
    assert (settled.limit_request_line, settled.keepalive) == (100, 7)
    assert "limit_request_line" in vars(settled)  # read once, not per request
    for name in [*config.settings, "is_ssl", "sendfile", "worker_class_str"]:
        assert getattr(settled, name) == getattr(config, name), name


def test_gunicorns_parser_keeps_the_limits_of_a_settled_config():
    config = Config()
    config.set("limit_request_line", 20)
    client, server = socket.socketpair()
    with client, server:
        client.sendall(b"GET /" + b"a" * 40 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(errors.LimitRequestLine):
            next(RequestParser(SettledConfig(config), server, ("127.0.0.1", 1)))


class _Base:
    def init_process(self):
        self.started = True


class _SettledWorker(Settled, _Base):
    def __init__(self, cfg):
        self.cfg = cfg


def test_a_settled_worker_copies_one_environ_base_per_request(monkeypatch):
    # Restored after the test: init_process replaces both module names.
    monkeypatch.setattr(wsgi, "base_environ", wsgi.base_environ)
    monkeypatch.setattr("gunicorn.http.parser.SocketUnreader", BufferUnreader)
    worker = _SettledWorker(Config())
    worker.init_process()
    assert worker.started and isinstance(worker.cfg, SettledConfig)
    first, second = wsgi.base_environ(worker.cfg), wsgi.base_environ(worker.cfg)
    assert first == second and first is not second
    first["wsgi.multithread"] = True
    assert wsgi.base_environ(worker.cfg)["wsgi.multithread"] is False
