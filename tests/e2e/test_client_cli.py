"""``fpa``, the command of the Python client package, against real processes.

The command is the one the wheel installs (tests/support/clients.py), run
under the CPython that built it, with ``API_URL``, ``API_KEY`` and
``STREAM_URL`` set as a user would. It always runs under CPython, whatever
serves, and only talks HTTP: it runs once, against the PyPy server on
SQLite (``ONCE``).
"""

import json
import queue
import subprocess
import threading
import urllib.parse

import requests

from tests.support.clients import ONCE
from tests.support.live import make_key
from tests.support.processes import free_port

pytestmark = ONCE


def test_every_command_against_the_api_and_the_push_worker(
    python_client, live_server, push_worker, tmp_path
):
    """One server and one push worker for all (each start costs seconds)."""
    writer, reader = make_key(tmp_path, "write"), make_key(tmp_path, "read")
    server = live_server(env={"AUTH": "on"}, workers=1)
    worker = push_worker({"AUTH": "on"})
    settings = {"API_URL": server.url, "STREAM_URL": worker.sse_url}

    def fpa(*args, key=writer, **kwargs):
        return python_client.fpa(*args, API_KEY=key, **settings, **kwargs)

    notes = notes_and_links(fpa, server.url, reader)
    follow(python_client, worker, settings, reader, fpa, notes)
    assert "Traceback" not in server.log()


def notes_and_links(fpa, base_url: str, reader: str) -> list:
    """Create, get and list notes, shorten a URL, and the refusals; the notes."""

    def answer(*args, **kwargs) -> list:
        run = fpa(*args, **kwargs)
        assert run.returncode == 0, run.stderr
        return [json.loads(line) for line in run.stdout.splitlines()]

    (first,) = answer("notes", "create", "Groceries", "milk, eggs")
    assert (first["title"], first["body"]) == ("Groceries", "milk, eggs")
    (second,) = answer("notes", "create", "Letter", "-", input="Dear Ann,\n")
    assert second["body"] == "Dear Ann,\n"
    assert answer("notes", "get", first["id"], key=reader) == [first]

    page = fpa("notes", "list", "--limit", "1", key=reader)
    assert [json.loads(line) for line in page.stdout.splitlines()] == [second]
    assert "more with --all (next: /notes?limit=1&cursor=" in page.stderr
    assert answer("notes", "list", "--all", "--limit", "1") == [second, first]

    url = "https://example.com/spring?ref=mail"
    short = fpa("shorten", url, "--alias", "spring", "--max-visits", "5")
    assert short.returncode == 0, short.stderr
    code = urllib.parse.urlsplit(short.stdout.strip()).path.lstrip("/")
    assert code == "spring"
    followed = requests.get(f"{base_url}/{code}", allow_redirects=False)
    assert (followed.status_code, followed.headers["Location"]) == (302, url)

    refused = fpa("notes", "create", "Nope", key=reader)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("fpa: 403 Forbidden: "), refused.stderr
    anonymous = fpa("notes", "get", first["id"], key="")
    assert anonymous.returncode == 1
    assert anonymous.stderr.startswith("fpa: 401 Unauthorized: ")
    assert anonymous.stderr.rstrip().endswith("(set API_KEY)")
    missing = fpa("notes", "get", "0" * 32, key=reader)
    assert missing.stderr.startswith("fpa: 404 Not Found: ")
    invalid = fpa("shorten", "ftp://example.com/file")
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("fpa: 422 ") and '"url"' in invalid.stderr
    return [first, second]


def follow(python_client, worker, settings: dict, reader: str, fpa, notes) -> None:
    """The changes from the log, then live, then again after a worker restart."""

    def create(title: str) -> str:
        run = fpa("notes", "create", title)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)["id"]

    ids = [note["id"] for note in notes]
    follower = subprocess.Popen(
        [str(python_client.site / "bin" / "fpa"), "follow", "--after", "0"]
        + ["--count", str(len(ids) + 2)],
        env=python_client.env(API_KEY=reader, **settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = queue.Queue()
    reader_thread = threading.Thread(
        target=lambda: [lines.put(line) for line in follower.stdout], daemon=True
    )
    reader_thread.start()
    try:
        events = [json.loads(lines.get(timeout=30)) for _ in ids]  # from the log
        ids.append(create("while following"))
        events.append(json.loads(lines.get(timeout=30)))  # live
        worker.stop()
        worker.start()
        ids.append(create("after the restart"))
        events.append(json.loads(lines.get(timeout=60)))  # after reconnecting
        assert follower.wait(timeout=30) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        reader_thread.join(timeout=10)
        follower.stdout.close()
        stderr = follower.stderr.read()
        follower.stderr.close()
    assert [event["type"] for event in events] == ["note.created"] * len(ids)
    assert [event["new_val"]["id"] for event in events] == ids
    assert [event["id"] for event in events] == sorted({e["id"] for e in events})
    assert "the stream was lost" in stderr, stderr

    # An id ahead of the stream (a log that is gone): a reset, then the log.
    ahead = fpa("follow", "--after", "999", "--count", "1", key=reader)
    assert ahead.returncode == 0, ahead.stderr
    assert json.loads(ahead.stdout)["new_val"]["id"] == ids[0]
    assert "fpa: the stream starts over: " in ahead.stderr


def test_follow_without_a_reachable_stream_is_an_error(python_client):
    run = python_client.fpa(
        "follow", STREAM_URL=f"http://127.0.0.1:{free_port()}", API_KEY=""
    )
    assert run.returncode == 1
    assert run.stderr.startswith("fpa: http://127.0.0.1:"), run.stderr
    assert "/events" in run.stderr
