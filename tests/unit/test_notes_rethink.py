"""The RethinkDB store where no server is needed: its URL, and a server that is down.

The driver really connects in these tests: to a port nothing listens on,
and to a socket that accepts connections but never answers.
"""

import socket
import time

import pytest

from db.errors import Unavailable
from db.notes.rethink import RethinkNotesStore
from db.notes.rethink import RethinkTarget
from db.notes.rethink import parse_url
from tests.support.live import free_port


@pytest.mark.parametrize(
    "url, target",
    [
        ("rethinkdb://db.local:28015/todo", RethinkTarget("db.local", 28015, "todo")),
        ("rethinkdb://127.0.0.1/notes", RethinkTarget("127.0.0.1", 28015, "notes")),
        ("rethinkdb://db", RethinkTarget("db", 28015, "todo")),
        (
            "rethinkdb://ann:s%40cret@db:29015/todo",
            RethinkTarget("db", 29015, "todo", user="ann", password="s@cret"),
        ),
    ],
)
def test_parse_url(url, target):
    assert parse_url(url) == target


@pytest.mark.parametrize(
    "url",
    [
        "http://db:28015/todo",
        "rethinkdb:///todo",
        "rethinkdb://db:port/todo",
        "rethinkdb://db:28015/a/b",
        "rethinkdb://ann:hunter2@db:x/todo",
    ],
)
def test_bad_urls_are_refused_without_echoing_secrets(url):
    with pytest.raises(ValueError) as caught:
        parse_url(url)
    assert "hunter2" not in str(caught.value)


@pytest.fixture
def closed_port_url():
    """A RethinkDB URL on a local port nothing listens on."""
    return f"rethinkdb://127.0.0.1:{free_port()}/todo"


@pytest.fixture
def silent_server_url():
    """A RethinkDB URL on a socket that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"rethinkdb://127.0.0.1:{listener.getsockname()[1]}/todo"


def test_unreachable_server_is_unavailable(closed_port_url):
    store = RethinkNotesStore.from_url(closed_port_url, timeout=2)
    for call in (
        store.ping,
        lambda: store.get("0" * 32),
        lambda: store.list_page(5),
        lambda: store.create("t", "b"),
    ):
        with pytest.raises(Unavailable) as caught:
            call()
        assert caught.value.detail == "notes store unavailable"
    with pytest.raises(Unavailable):
        next(store.changes(since=0, timeout=1))


def test_silent_server_times_out_instead_of_hanging(silent_server_url):
    store = RethinkNotesStore.from_url(silent_server_url, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        store.ping()
    with pytest.raises(Unavailable):
        next(store.changes(since=0))
    # Two calls, each bounded by the 0.5 s timeout; far below this bound.
    assert time.monotonic() - started < 10


def test_api_answers_503_problem_and_ready_names_notes(make_client, closed_port_url):
    client = make_client(rethinkdb_url=closed_port_url, rethinkdb_timeout=1.0)
    for result in (
        client.simulate_post("/notes", json={"title": "t"}),
        client.simulate_get("/notes"),
        client.simulate_get("/notes/" + "0" * 32),
    ):
        assert result.status_code == 503
        assert result.headers["content-type"] == "application/problem+json"
        assert result.json["detail"] == "notes store unavailable"
    ready = client.simulate_get("/ready")
    assert ready.status_code == 503
    assert ready.json["backends"]["sql"] == "ok"
    assert ready.json["backends"]["notes"] == "down"


def test_client_errors_are_answered_before_the_store_is_asked(
    make_client, closed_port_url
):
    client = make_client(rethinkdb_url=closed_port_url, rethinkdb_timeout=1.0)
    assert client.simulate_post("/notes", json={"title": ""}).status_code == 422
    assert client.simulate_get("/notes/not-an-id").status_code == 404
