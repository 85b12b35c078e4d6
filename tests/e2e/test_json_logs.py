"""End to end: with LOG_FORMAT=json every line of gunicorn and the app is JSON."""

import json

import requests


def test_every_line_parses_and_access_lines_carry_route_and_status(live_server):
    server = live_server(
        env={
            "LOG_FORMAT": "json",
            "ACCESS_LOG": "-",
            "COLLATZ_FRONTEND": "tcp://127.0.0.1:9",
            "COLLATZ_TIMEOUT": "0.3",
        }
    )
    missing = requests.get(
        server.url + "/notes/0123456789abcdef0123456789abcdef",
        headers={"X-Request-ID": "json-404"},
        timeout=5,
    )
    assert missing.status_code == 404
    down = requests.get(
        server.url + "/collatz?n=10", headers={"X-Request-ID": "json-503"}, timeout=5
    )
    assert down.status_code == 503
    server.stop()

    lines = [line for line in server.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, or it fails here
    for record in records:
        assert {"time", "level", "logger", "message", "request_id"} <= set(record)
        assert record["time"].endswith("Z")

    access = [r for r in records if r["logger"] == "gunicorn.access"]
    by_id = {r["request_id"]: r for r in access}
    assert by_id["json-404"]["route"] == "/notes/{note_id}"
    assert by_id["json-404"]["status"] == 404
    assert by_id["json-404"]["method"] == "GET"
    assert by_id["json-503"]["route"] == "/collatz"
    assert by_id["json-503"]["status"] == 503
    # The app's own line about the 503 carries the same request id.
    app_lines = [r for r in records if r["logger"] == "web.errors"]
    assert any(
        r["request_id"] == "json-503" and r["level"] == "warning" for r in app_lines
    )
    assert any(r["logger"] == "gunicorn.error" for r in records)  # Booting worker...
