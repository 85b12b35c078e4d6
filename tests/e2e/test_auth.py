"""End to end: keys through gunicorn; revocation reaches every worker; no open start."""

import subprocess
import sys
import time

from tests.support.live import child_env
from tests.support.live import make_key
from tests.support.pinned import connections_to_every_worker
from tests.support.pinned import worker_pids
from tests.support.processes import free_port

ENV = {"AUTH": "on", "GUNICORN_CMD_ARGS": "--keep-alive 300"}


def test_a_revoked_key_stops_working_on_every_worker(live_server, tmp_path):
    key = make_key(tmp_path, "write", name="ci")
    server = live_server(env=ENV, workers=2)
    connections = connections_to_every_worker(server, key)
    try:
        for connection in connections:
            connection.json("POST", "/notes", {"title": "by ci"}, 201)
            assert connection.call("GET", "/metrics")[0] == 403  # admin only
        revoked = subprocess.run(
            [sys.executable, "-m", "api", "keys", "revoke", "ci"],
            env=child_env(tmp_path, {}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert revoked.returncode == 0, revoked.stderr
        start = time.monotonic()
        workers = worker_pids(server)
        refused = set()
        while refused != workers and time.monotonic() - start < 10:
            for connection in connections:
                status, headers, _ = connection.call("GET", "/notes")
                if status == 401:
                    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
                    refused.add(connection.worker)
            time.sleep(0.05)
        # Each worker trusts what it read of a key for a second at most.
        assert refused == workers
        assert time.monotonic() - start < 5
    finally:
        for connection in connections:
            connection.close()


def test_a_server_beyond_loopback_without_a_key_refuses_to_start(tmp_path):
    env = child_env(tmp_path, {"HOST": "0.0.0.0", "PORT": str(free_port())})
    started = subprocess.run(
        [sys.executable, "-m", "api", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode != 0
    assert "no API key exists" in started.stdout + started.stderr
