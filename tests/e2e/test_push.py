"""End to end: notes changed over HTTP (real gunicorn) reach the real push worker's
subscribers (ZeroMQ SUB, SSE), in order, across kill -9 and restarts, on each
notes store; the ZeroMQ ones without CURVE and with it."""

import re

import pytest
import requests

from core.settings import Settings
from gateways import curve
from tests.support.push_clients import Notes
from tests.support.push_clients import first_of_each
from tests.support.push_clients import summary
from tests.support.push_clients import take_sse_events


@pytest.fixture(params=["plain", "curve"])
def pub_curve(request, tmp_path):
    """``(env, keys)``: the push worker's environment and the SUB clients' keys,
    without CURVE, then with keys made by ``python -m api zmq-keys``."""
    if request.param == "plain":
        return {}, None
    env = {"ZMQ_KEYS_DIR": str(tmp_path / "keys")}
    curve.make_keys(tmp_path / "keys")
    return env, curve.client_keys(Settings.from_env(env), curve.SUBSCRIBER)


def test_sub_clients_get_every_change_in_order_with_old_and_new_values(
    live_server, push_worker, subscribers, notes_backend, pub_curve
):
    env, keys = pub_curve
    notes = Notes(live_server(env=notes_backend.env).url)
    worker = push_worker({**notes_backend.env, **env})
    everything = subscribers(worker.pub_endpoint, keys=keys)
    deletes = subscribers(worker.pub_endpoint, b"note.deleted", keys)
    worker.wait_subscribed("note.")
    worker.wait_subscribed("note.deleted")

    first = notes.create("first", "one")
    patched = notes.patch(first["id"], body="two")
    replaced = notes.put(first["id"], "first, renamed", "three")
    notes.delete(first["id"])
    second = notes.create("second")

    events = everything.wait_for(lambda got: len(got) >= 5, "five events")
    assert len(events) == 5
    assert [e["type"] for e in events] == [
        "note.created",
        "note.updated",
        "note.updated",
        "note.deleted",
        "note.created",
    ]
    assert everything.topics == [e["type"].encode() for e in events]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [(e["old_val"], e["new_val"]) for e in events] == [
        (None, first),
        (first, patched),
        (patched, replaced),
        (replaced, None),
        (None, second),
    ]
    for event in events:
        assert set(event) == {"id", "type", "old_val", "new_val", "ts"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["ts"])

    deleted = deletes.wait_for(lambda got: len(got) >= 1, "the delete")
    assert deleted == [events[3]]
    assert "Traceback" not in worker.log()


def test_kill_9_then_restart_delivers_what_changed_meanwhile_in_order(
    live_server, push_worker, subscribers, notes_backend, pub_curve
):
    env, keys = pub_curve
    notes = Notes(live_server(env=notes_backend.env).url)
    worker = push_worker({**notes_backend.env, **env})
    sub = subscribers(worker.pub_endpoint, keys=keys)
    worker.wait_subscribed("note.")
    a, b = notes.create("a"), notes.create("b")
    before = sub.wait_for(lambda got: len(got) >= 2, "the first two events")

    worker.kill()
    c = notes.create("c")
    a2 = notes.patch(a["id"], title="a2")
    notes.delete(b["id"])
    worker.start()  # the SUB socket reconnects by itself

    sub.wait_for(lambda got: len(first_of_each(got)) >= 5, "all five changes")
    unique = first_of_each(sub.events)
    assert summary(unique) == [
        ("note.created", "a"),
        ("note.created", "b"),
        ("note.created", "c"),
        ("note.updated", "a2"),
        ("note.deleted", "b"),
    ]
    assert unique[:2] == before[:2]  # ids and contents kept across the restart
    assert [e["id"] for e in unique] == sorted(e["id"] for e in unique)
    assert unique[2]["new_val"] == c and unique[3]["new_val"] == a2
    # At least once and in order: each run of the worker sends in order; the
    # restart may step back once, to repeat what came after its checkpoint.
    ids = [e["id"] for e in sub.events]
    assert len([i for i in range(1, len(ids)) if ids[i] <= ids[i - 1]]) <= 1


def test_sigterm_saves_the_checkpoint_so_a_restart_repeats_nothing(
    live_server, push_worker, subscribers, notes_backend
):
    notes = Notes(live_server(env=notes_backend.env).url)
    worker = push_worker(notes_backend.env)
    sub = subscribers(worker.pub_endpoint)
    worker.wait_subscribed("note.")
    for title in ("x", "y", "z"):
        notes.create(title)
    last = sub.wait_for(lambda got: len(got) >= 3, "three events")[-1]

    worker.stop()
    assert worker.proc.returncode == 0
    assert f"stopped; checkpoint {last['id']}" in worker.log()

    worker.start()
    assert worker.health()["checkpoint"] == last["id"]
    fresh = notes.create("after the restart")
    sub.wait_for(lambda got: len(got) >= 4, "the next event")
    assert [e["id"] for e in sub.events] == sorted({e["id"] for e in sub.events})
    assert sub.events[3]["new_val"] == fresh


def test_sse_resumes_after_last_event_id_from_the_log_then_goes_live(
    live_server, push_worker, notes_backend
):
    notes = Notes(live_server(env=notes_backend.env).url)
    worker = push_worker(notes_backend.env)
    made = [notes.create(f"n{i}") for i in range(3)]
    worker.wait_head(3)  # a fresh database numbers the changes 1, 2, 3
    # A restart empties the worker's memory: the replays below read the log.
    worker.stop()
    worker.start()
    assert worker.health()["checkpoint"] == 3
    events_url = worker.sse_url + "/events"

    replayed = take_sse_events(events_url, 3, {"Last-Event-ID": "0", **worker.auth()})
    assert [e["data"]["new_val"] for e in replayed] == made
    assert [e["event"] for e in replayed] == ["note.created"] * 3
    assert [int(e["id"]) for e in replayed] == [e["data"]["id"] for e in replayed]

    first_id = replayed[0]["id"]
    resumed = take_sse_events(
        events_url + f"?last_event_id={first_id}",
        3,
        worker.auth(),
        on_open=lambda: notes.create("live"),
    )
    assert [e["data"]["id"] for e in resumed[:2]] == [
        e["data"]["id"] for e in replayed[1:]
    ]
    assert resumed[2]["data"]["new_val"]["title"] == "live"

    bad = requests.get(
        events_url, headers={"Last-Event-ID": "soon", **worker.auth()}, timeout=10
    )
    assert bad.status_code == 400
    assert bad.headers["Content-Type"] == "application/problem+json"
