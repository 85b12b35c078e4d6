"""End to end: real gunicorn under this interpreter, called over HTTP."""

import requests


def test_gunicorn_serves_health_and_the_error_contract(live_server):
    server = live_server(env={"MAX_BODY_BYTES": "1000"})

    health = requests.get(
        server.url + "/health", headers={"X-Request-ID": "e2e-1"}, timeout=5
    )
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["X-Request-ID"] == "e2e-1"

    missing = requests.get(server.url + "/nope", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"

    spec = requests.get(server.url + "/openapi.json", timeout=5)
    assert spec.json()["openapi"].startswith("3.")


def test_chunked_body_over_limit_is_413(live_server):
    server = live_server(env={"MAX_BODY_BYTES": "1000"})

    def chunks():  # no Content-Length: requests sends it chunked
        for _ in range(100):
            yield b"x" * 100

    result = requests.post(
        server.url + "/health",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert result.status_code == 413
    assert result.headers["Content-Type"] == "application/problem+json"
    assert "Traceback" not in server.log()
