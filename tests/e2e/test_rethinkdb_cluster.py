"""End to end on RethinkDB servers of our own that die under writes.

Three servers from ``../shared/rethinkdb/start`` (tests.support.rethinkdb_servers),
tables made by ``python -m api init-db`` with ``RETHINKDB_REPLICAS=3``,
gunicorn and the push worker given all three hosts. While writes go on,
``kill -9`` of the server holding the notes table's primary replica:
writes answer 503 while RethinkDB elects a new primary, then succeed
again; the push worker goes on streaming; no acknowledged write is
missing from the stream. And a lone server killed and started again:
the writes it had acknowledged but not flushed to disk (the soft log
entries) are rebuilt from the note documents, so nothing is missing then
either.
"""

import subprocess
import sys
import time

import pytest

from tests.support.live import ROOT
from tests.support.live import child_env
from tests.support.notes_backends import skip_or_fail
from tests.support.push_clients import SseCollector
from tests.support.rethinkdb_servers import START
from tests.support.rethinkdb_servers import Cluster
from tests.support.rethinkdb_servers import start_script
from tests.support.write_load import WriteLoad
from tests.support.write_load import in_order
from tests.support.write_load import missing

pytestmark = pytest.mark.rethinkdb_cluster

#: Longest the writes may fail in a row around the kill (seconds). RethinkDB
#: elects a new primary in about 2-3 s here; reconnecting adds little.
OUTAGE_LIMIT = 10.0


@pytest.fixture
def make_cluster(tmp_path):
    """Factory: RethinkDB servers of our own (skip or fail without the start script)."""
    if start_script() is None:
        skip_or_fail(f"no RethinkDB start script at {START} (set RETHINKDB_START)")
    made = []

    def make(size: int) -> Cluster:
        made.append(Cluster(tmp_path / "rethinkdb", size=size))
        return made[-1].start()

    yield make
    for cluster in made:
        cluster.stop()


def init_db(tmp_path, env: dict) -> str:
    """``python -m api init-db`` with ``env``; its log."""
    init = subprocess.run(
        [sys.executable, "-m", "api", "init-db"],
        cwd=ROOT,
        env=child_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert init.returncode == 0, init.stderr
    return init.stderr


def outage(answers, since: float):
    """``(first, last)`` times of the failed writes after ``since``; None if none."""
    failed = [at for at, status in answers if at >= since and status not in (200, 201)]
    return (failed[0], failed[-1]) if failed else None


def test_killing_the_primary_costs_an_election_of_503s_and_no_acked_write(
    tmp_path, make_cluster, live_server, push_worker
):
    cluster = make_cluster(3)
    env = {
        "RETHINKDB_URL": cluster.url,
        "RETHINKDB_TABLE": "notes",
        "RETHINKDB_REPLICAS": "3",
        "RETHINKDB_TIMEOUT": "3",
    }
    assert "(3 replicas)" in init_db(tmp_path, env)
    # The doomed server first in the URL: every process starts connected to
    # it, so its death also makes them move to another host.
    primary = cluster.primary_of("test", "notes")
    env["RETHINKDB_URL"] = cluster.url_with_first(primary)

    server = live_server(env=env, workers=3)
    worker = push_worker(env)
    stream = SseCollector(
        worker.sse_url + "/events", last_event_id=0, headers=worker.auth()
    )
    load = WriteLoad(server.url, threads=3, pause=0.02).start()
    try:
        time.sleep(3)  # steady writes first
        assert cluster.primary_of("test", "notes") is primary
        killed_at = time.monotonic()
        cluster.kill(primary)
        time.sleep(13)  # writes go on through the election and after it
    finally:
        load.stop()
    try:
        events = stream.wait_for(
            lambda got: not missing(load.acked, got),
            "every acknowledged write",
            timeout=90,
        )
    finally:
        stream.close()

    window = outage(load.answers, killed_at)
    print(
        f"writes failed from {window and window[0] - killed_at} s to "
        f"{window and window[1] - killed_at} s after the kill"
    )
    statuses = {status for at, status in load.answers if at >= killed_at}
    # Failed writes answer 503 (a request cut by the dying connection also
    # answers 503: the store turns it into "notes store unavailable").
    assert statuses <= {200, 201, 503}, statuses
    if window is not None:
        assert window[1] - killed_at < OUTAGE_LIMIT, window[1] - killed_at
    after = [s for at, s in load.answers if at > killed_at + OUTAGE_LIMIT]
    assert after and all(s in (200, 201) for s in after)
    # The push worker kept streaming: writes from after the election arrived.
    late = list(load.acked)[-10:]
    assert late and not missing(late, events)
    assert in_order(events)
    assert worker.proc.poll() is None


def test_a_lone_server_killed_and_restarted_loses_no_acked_write(
    tmp_path, make_cluster, live_server, push_worker
):
    cluster = make_cluster(1)
    env = {"RETHINKDB_URL": cluster.url, "RETHINKDB_TIMEOUT": "3"}
    init_db(tmp_path, env)
    server = live_server(env=env, workers=3)
    worker = push_worker(env)
    stream = SseCollector(
        worker.sse_url + "/events", last_event_id=0, headers=worker.auth()
    )
    load = WriteLoad(server.url, threads=3, pause=0.02).start()
    try:
        time.sleep(3)
        (rethinkdb,) = cluster.servers
        cluster.kill(rethinkdb)  # soft writes not on disk yet are lost
        time.sleep(1)
        cluster.restart(rethinkdb)
        time.sleep(6)
    finally:
        load.stop()
    try:
        events = stream.wait_for(
            lambda got: not missing(load.acked, got),
            "every acknowledged write",
            timeout=90,
        )
    finally:
        stream.close()
    assert {status for _, status in load.answers} <= {0, 200, 201, 503}
    assert load.answers[-1][1] in (200, 201)
    assert in_order(events)
    assert worker.proc.poll() is None
