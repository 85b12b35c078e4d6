"""Pruning visits and webhook deliveries: only old rows go, statistics stay."""

import datetime

import pytest
import sqlalchemy as sa

from db.link_tables import Visit
from db.links import LinkStore
from db.retention import prune_attempts
from db.retention import prune_inbound_deliveries
from db.retention import prune_visits
from db.schema import create_schema
from db.sql import Database
from db.subscriptions import AttemptRow
from db.subscriptions import ReplayRow
from db.subscriptions import SubscriptionStore
from db.webhooks import STATUSES
from db.webhooks import InboundDelivery

UTC = datetime.timezone.utc
START = datetime.datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime.datetime):
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def database(settings):
    database = Database(settings.database_url)
    create_schema(database.engine)
    yield database
    database.dispose()


def prune_all(prune, database, before, batch):
    """Call ``prune`` until a batch comes back short; the counts of each call."""
    counts = [prune(database, before, batch)]
    while counts[-1] == batch:
        counts.append(prune(database, before, batch))
    return counts


def stats(client, code):
    result = client.simulate_get(
        f"/links/{code}/stats",
        query_string="interval=day&since=2025-02-27T00:00:00Z"
        "&until=2025-03-10T00:00:00Z&top=10",
    )
    assert result.status_code == 200, result.text
    return result.json


def test_pruned_visits_leave_the_statistics_as_they_were(client, database):
    clock = Clock(START)
    store = LinkStore(database, "salt", clock=clock, flush_interval=600)
    try:
        code = store.create("https://example.com/").code
        counted = store.create("https://example.org/", max_visits=100).code
        for day in range(6):  # 3 visits a day to each, from two referrers
            for n in range(3):
                clock.now = START + day * DAY + datetime.timedelta(minutes=n)
                referrer = "https://a.example/" if n else "https://b.example/"
                store.visit(code, referrer, "curl/8", "192.0.2.1")
                store.visit(counted, referrer, "curl/8", "192.0.2.1")
            store.recorder.flush()  # as its thread does, every second
    finally:
        store.close()
    before = [stats(client, code), stats(client, counted)]
    assert before[0]["total"] == before[1]["total"] == 18

    counts = prune_all(prune_visits, database, START + 4 * DAY, batch=5)

    assert sum(counts) == 24 and max(counts) == 5  # 4 days x 3 x 2 links
    with database.read() as connection:
        kept = connection.execute(sa.select(Visit.visited_at)).scalars().all()
    assert len(kept) == 12
    assert min(kept) >= (START + 4 * DAY).replace(tzinfo=None)
    assert [stats(client, code), stats(client, counted)] == before
    for link in (code, counted):
        assert client.simulate_get(f"/links/{link}").json["visits"] == 18


def test_only_finished_inbound_deliveries_older_than_the_cutoff_go(database):
    cutoff = datetime.datetime(2025, 3, 10)
    with database.session() as session:
        for n, status in enumerate(STATUSES * 2):
            old = n < len(STATUSES)
            session.add(
                InboundDelivery(
                    source="github",
                    delivery_id=f"d{n}",
                    event="push",
                    payload={},
                    received_at=cutoff - (DAY if old else -DAY),
                    status=status,
                    attempts=1,
                )
            )
    assert prune_all(prune_inbound_deliveries, database, cutoff, batch=2) == [2, 1]
    with database.read() as connection:
        left = connection.execute(
            sa.select(InboundDelivery.delivery_id, InboundDelivery.status)
        ).all()
    gone = {
        f"d{n}"
        for n, s in enumerate(STATUSES)
        if s in ("processed", "ignored", "failed")
    }
    assert {d for d, _ in left} == {f"d{n}" for n in range(2 * len(STATUSES))} - gone
    assert {s for d, s in left if d in ("d0", "d1")} == {"pending", "processing"}


def test_old_attempts_go_unless_a_replay_waits_for_their_delivery(database):
    subscription = SubscriptionStore(database).create(
        "https://hooks.example/", ["note.*"], "s" * 32
    )
    cutoff = datetime.datetime(2025, 3, 10)
    with database.session() as session:
        for n in range(6):  # events 1..6, one attempt each, the first 4 old
            session.add(
                AttemptRow(
                    subscription_id=subscription.id,
                    event_id=str(n + 1),
                    event_type="note.created",
                    attempt=1,
                    at=cutoff + (n - 4) * DAY,
                    status_code=200,
                    latency_ms=1.0,
                    delivered=True,
                )
            )
        session.add(
            ReplayRow(
                subscription_id=subscription.id,
                event_id="2",
                event_type="note.created",
                requested_at=cutoff,
            )
        )
    assert prune_attempts(database, cutoff, 100) == 3
    with database.read() as connection:
        left = connection.execute(sa.select(AttemptRow.event_id)).scalars().all()
    assert sorted(left) == ["2", "5", "6"]
