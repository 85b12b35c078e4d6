"""End to end: the real push worker prunes; readers behind the floor get a reset.

A gunicorn and a push worker whose retention is two seconds, pruning every
0.3 s: the notes change log on each notes store, and the raw visits of a
short link, whose statistics stay.
"""

import requests

from tests.support.processes import wait_until
from tests.support.push_clients import Notes
from tests.support.push_clients import take_sse_events

SECONDS = 2.0
RETENTION = {
    "NOTES_LOG_RETENTION_DAYS": str(SECONDS / 86400),
    "VISIT_RETENTION_DAYS": str(SECONDS / 86400),
    "RETENTION_INTERVAL": "0.3",
    "RETENTION_BATCH": "2",
}


def test_an_old_last_event_id_gets_a_reset_once_the_worker_pruned(
    live_server, push_worker, notes_backend
):
    notes = Notes(live_server(env=notes_backend.env).url)
    worker = push_worker({**notes_backend.env, **RETENTION})
    made = [notes.create(f"n{i}") for i in range(5)]
    worker.wait_head(5)
    # A restart empties the worker's memory (which would still serve them):
    # resumes now read the log.
    worker.stop()
    worker.start()
    events_url = worker.sse_url + "/events"

    def first_event_after_1():
        return take_sse_events(events_url, 1, {"Last-Event-ID": "1", **worker.auth()})[
            0
        ]

    # Every entry but the newest goes once two seconds old.
    reset = wait_until(
        lambda: (lambda e: e if e["data"].get("restart_after") == 4 else None)(
            first_event_after_1()
        ),
        timeout=30,
        what="the log pruned up to 4",
    )
    assert reset["event"] == "reset" and reset["id"] == "4"
    assert reset["data"]["last_event_id"] == 1

    # From the reset on: what the log kept, then the live change, no gap
    # (the pruner may take 5 once 6 is written: then a second reset says so).
    got = take_sse_events(
        events_url,
        3,
        {"Last-Event-ID": "1", **worker.auth()},
        on_open=lambda: made.append(notes.create("live")),
    )
    assert got[0]["event"] == "reset"
    floor = [e for e in got if e["event"] == "reset"][-1]["data"]["restart_after"]
    kept = [e for e in got if e["event"] != "reset"]
    assert [e["data"]["id"] for e in kept] == list(range(floor + 1, 7))
    assert made[-1] in [e["data"]["new_val"] for e in kept]


def test_pruned_visits_leave_the_link_statistics_as_they_were(live_server, push_worker):
    server = live_server(env={"VISIT_FLUSH_INTERVAL": "0"})
    worker = push_worker(RETENTION)
    link = requests.post(
        server.url + "/links", json={"url": "https://example.com/"}, timeout=10
    ).json()
    for _ in range(4):
        followed = requests.get(
            f"{server.url}/{link['code']}", allow_redirects=False, timeout=10
        )
        assert followed.status_code in (301, 302, 307, 308)
    stats_url = f"{server.url}/links/{link['code']}/stats?interval=day"
    before = requests.get(stats_url, timeout=10).json()
    assert before["total"] == 4

    def raw_visits():
        answer = requests.get(
            f"{server.url}/links/{link['code']}/visits", timeout=10
        ).json()
        return answer["items"]

    wait_until(lambda: raw_visits() == [], timeout=30, what="the visits pruned")
    assert worker.health()["status"] == "ok"
    assert requests.get(stats_url, timeout=10).json() == before
    assert (
        requests.get(f"{server.url}/links/{link['code']}", timeout=10).json()["visits"]
        == 4
    )
