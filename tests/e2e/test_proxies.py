"""End to end: behind a trusted proxy, clients are told apart by X-Forwarded-For."""

import requests


def _shorten(server, forwarded_for: str) -> int:
    return requests.post(
        server.url + "/links",
        json={"url": "example.com"},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    ).status_code


def test_trusted_proxies_give_each_forwarded_client_its_bucket(live_server):
    server = live_server(
        env={
            "TRUSTED_PROXIES": "127.0.0.1",
            "RATE_LIMIT": "1/hour",
            "ACCESS_LOG": "-",
        }
    )
    assert _shorten(server, "198.51.100.1") == 201
    assert _shorten(server, "198.51.100.2") == 201
    assert _shorten(server, "198.51.100.1") == 429
    assert _shorten(server, "203.0.113.7, 198.51.100.2") == 429
    server.stop()
    lines = [line for line in server.log().splitlines() if '"POST /links' in line]
    # gunicorn's access log names the client, not the proxy that sent it
    # (two workers write it: in any order).
    assert sorted(line.split(" ", 1)[0] for line in lines) == [
        "198.51.100.1",
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.2",
    ], lines


def test_without_trusted_proxies_the_header_is_ignored(live_server):
    server = live_server(env={"RATE_LIMIT": "1/hour", "ACCESS_LOG": "-"})
    assert _shorten(server, "198.51.100.1") == 201
    assert _shorten(server, "198.51.100.2") == 429
    server.stop()
    lines = [line for line in server.log().splitlines() if '"POST /links' in line]
    assert [line.split(" ", 1)[0] for line in lines] == ["127.0.0.1"] * 2, lines
