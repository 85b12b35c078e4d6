"""Retention as the push worker's readers see it: a reset, never a silent gap.

Each test writes notes, prunes the oldest ones from the log, then resumes a
reader from before the floor: SSE with ``Last-Event-ID``, the WebSocket with
``?last_event_id``, a webhook subscription from its cursor, and the feed a
lagging reader reads. On every notes store available (RethinkDB when
RETHINKDB_URL is set). Then the pruner itself: rounds, batches, settings.
"""

import dataclasses
import datetime
import json
import time
from typing import List

import pytest
from websockets.sync.client import connect

from core.clock import utc_now
from db.checkpoints import CheckpointStore
from db.notes.rethink import RethinkNotesStore
from db.notes.sql import SqlNotesStore
from db.schema import create_schema
from db.sql import Database
from db.stores import open_stores
from tests.support.processes import wait_until
from tests.support.push_clients import take_sse_events
from workers.push.events import RESET
from workers.push.fanout import SubscriptionWorker
from workers.push.feed import EventFeed
from workers.push.retention import Pruner
from workers.push.retention import Task
from workers.push.retention import check
from workers.push.retention import tasks
from workers.push.sse import SseServer
from workers.webhooks.sender import DeliveryResult

#: Notes written before the cutoff (pruned) and after it (kept).
OLD, NEW = 4, 2
FLOOR = OLD


@pytest.fixture
def database(database_url):
    database = Database(database_url)
    create_schema(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def store(notes_backend, database):
    """A fresh store of each kind (RethinkDB: a short lease, so it may prune now)."""
    if notes_backend.name == "sql":
        yield SqlNotesStore(database, poll_interval=0.02)
        return
    rethink = RethinkNotesStore.from_url(
        notes_backend.rethinkdb_url,
        table=notes_backend.rethinkdb_table,
        timeout=10,
        poll_interval=0.05,
        lease=0.2,
        clock_margin=0.1,
    )
    yield rethink
    rethink.close()


@pytest.fixture
def pruned(store):
    """Notes 1..6 written, 1..4 pruned from the log: the store."""
    for i in range(OLD):
        store.create(f"old{i}", "")
    time.sleep(0.4)  # past the RethinkDB store's lease (see the store fixture)
    cutoff = utc_now()
    for i in range(NEW):
        store.create(f"new{i}", "")
    assert store.prune_log(cutoff, 100) == OLD
    assert store.log_floor() == FLOOR
    return store


@pytest.fixture
def server(pruned):
    """The push worker's HTTP server on a feed that starts at the store's head."""
    feed = EventFeed(pruned, pruned.last_seq())
    server = SseServer("127.0.0.1:0", lambda: {"status": "ok"}, keepalive=0.2)
    server.start(feed)
    yield server
    feed.close()
    server.stop()


def kept_titles(events):
    return [event["new_val"]["title"] for event in events]


def assert_reset(reset, last_id):
    assert reset["type"] == RESET and reset["id"] == FLOOR
    assert (reset["last_event_id"], reset["restart_after"]) == (last_id, FLOOR)
    assert "older than the change log keeps" in reset["reason"]


def test_sse_resuming_before_the_floor_gets_a_reset_then_what_is_kept(server):
    host, port = server.address
    got = take_sse_events(
        f"http://{host}:{port}/events", 1 + NEW, {"Last-Event-ID": "2"}
    )
    reset, *events = got
    assert reset["event"] == "reset" and reset["id"] == str(FLOOR)
    assert_reset(reset["data"], 2)
    assert [e["data"]["id"] for e in events] == [5, 6]
    assert kept_titles(e["data"] for e in events) == ["new0", "new1"]


def test_sse_resuming_at_the_floor_or_with_0_gets_no_reset(server):
    host, port = server.address
    for last_id in (str(FLOOR), "0"):
        got = take_sse_events(
            f"http://{host}:{port}/events", NEW, {"Last-Event-ID": last_id}
        )
        assert [e["event"] for e in got] == ["note.created"] * NEW


def test_websocket_resuming_before_the_floor_gets_a_reset(server):
    host, port = server.address
    with connect(
        f"ws://{host}:{port}/ws?last_event_id=1&subscribe=note.deleted",
        open_timeout=10,
        close_timeout=2,
        ping_interval=None,
    ) as client:
        stream, reset = (json.loads(client.recv(timeout=10)) for _ in range(2))
        assert stream["type"] == "stream" and stream["after"] == FLOOR
        assert_reset(reset, 1)  # whatever the filter


def test_a_lagging_reader_meets_the_pruning_as_a_reset_event(pruned):
    feed = EventFeed(pruned, pruned.last_seq(), capacity=1)
    try:
        reset, *rest = feed.read(1, timeout=5)
        assert_reset(reset, 1)
        assert rest == []
        assert [e["id"] for e in feed.read(reset["id"], timeout=5)] == [5, 6]
        assert feed.event(3, timeout=5) is None  # replays of pruned events fail
        assert feed.event(5, timeout=5)["id"] == 5
    finally:
        feed.close()


@dataclasses.dataclass
class Subscription:
    id: int
    events: List[str]

    def wants(self, event_type):
        return event_type in self.events


class Sender:
    """Records what it is asked to deliver; every delivery succeeds."""

    def __init__(self, delivered):
        self.delivered = delivered

    def deliver(self, subscription, event, replay=False):  # noqa: ARG002
        self.delivered.append(event)
        return DeliveryResult(delivered=True, attempts=1, status_code=200)

    def close(self):
        pass


def test_a_webhook_subscription_behind_the_floor_is_delivered_a_reset(pruned, database):
    feed = EventFeed(pruned, pruned.last_seq())
    delivered = []
    cursors = CheckpointStore(database)
    worker = SubscriptionWorker(
        Subscription(7, ["note.created"]),
        2,
        feed,
        cursors,
        lambda sleep: Sender(delivered),  # noqa: ARG005
    )
    worker.start()
    try:
        wait_until(lambda: len(delivered) >= 1 + NEW, timeout=15, what="deliveries")
    finally:
        worker.stop()
        feed.close()
        worker.join(10)
    reset, *events = delivered
    assert_reset(reset, 2)
    assert [e["id"] for e in events] == [5, 6]
    assert cursors.load("webhook:7") == 6


def test_a_reset_reaches_a_subscription_that_wants_none_of_the_skipped(
    pruned, database
):
    feed = EventFeed(pruned, pruned.last_seq())
    delivered = []
    worker = SubscriptionWorker(
        Subscription(8, ["note.deleted"]),
        1,
        feed,
        CheckpointStore(database),
        lambda sleep: Sender(delivered),  # noqa: ARG005
    )
    worker.start()
    try:
        wait_until(lambda: worker.cursor == 6, timeout=15, what="the cursor at 6")
    finally:
        worker.stop()
        feed.close()
        worker.join(10)
    assert [e["type"] for e in delivered] == [RESET]


# The pruner -------------------------------------------------------------------


class Table:
    """A table of ``rows`` ages (seconds) that a task prunes, for the pruner."""

    def __init__(self, ages, now):
        self.times = sorted(now - datetime.timedelta(seconds=a) for a in ages)
        self.calls = []

    def prune(self, before, limit):
        self.calls.append(limit)
        old = [t for t in self.times if t < before][:limit]
        self.times = self.times[len(old) :]
        return len(old)


def test_a_round_prunes_each_table_in_batches_until_a_short_one():
    now = utc_now()
    log_table = Table([10, 20, 30, 40, 50, 1], now)
    visits = Table([100, 1], now)
    pruner = Pruner(
        [Task("log", log_table.prune, 5.0), Task("visits", visits.prune, 500.0)],
        interval=60,
        batch=2,
        pause=0,
        clock=lambda: now,
    )
    assert pruner.round() == {"log": 5, "visits": 0}
    assert log_table.calls == [2, 2, 2] and len(log_table.times) == 1
    assert len(visits.times) == 2


def test_a_failing_table_does_not_stop_the_others():
    now = utc_now()
    visits = Table([100], now)

    def broken(before, limit):
        raise RuntimeError("database down")

    pruner = Pruner(
        [Task("log", broken, 1.0), Task("visits", visits.prune, 1.0)],
        interval=60,
        batch=10,
        clock=lambda: now,
    )
    assert pruner.round() == {"log": 0, "visits": 1}


def test_the_settings_choose_the_tables_and_0_keeps_forever(settings, database):
    stores = open_stores(settings)
    try:
        assert [(t.name, t.keep) for t in tasks(settings, stores)] == [
            ("notes change log", 7 * 86400.0),
            ("inbound webhook deliveries", 30 * 86400.0),
            ("outbound webhook attempts", 30 * 86400.0),
            ("link visits", 90 * 86400.0),
        ]
        forever = dataclasses.replace(
            settings,
            notes_log_retention_days=0.0,
            visit_retention_days=0.0,
            webhook_retention_days=0.0001,  # shorter than the replay window
        )
        assert [(t.name, t.keep) for t in tasks(forever, stores)] == [
            ("inbound webhook deliveries", settings.webhook_replay_window),
            ("outbound webhook attempts", 0.0001 * 86400),
        ]
    finally:
        stores.close()


@pytest.mark.parametrize(
    "field, value",
    [
        ("notes_log_retention_days", -1.0),
        ("visit_retention_days", -0.5),
        ("retention_interval", 0.0),
        ("retention_batch", 0),
        ("retention_batch", 10001),
    ],
)
def test_bad_retention_settings_are_refused(settings, field, value):
    with pytest.raises(ValueError):
        check(dataclasses.replace(settings, **{field: value}))
