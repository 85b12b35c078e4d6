"""Rate limits: the shared token buckets in the SQL database."""

import re
import threading

import pytest

from core.ratelimit import Rate
from db.ratelimit import RateLimitRow
from db.ratelimit import RateLimitStore
from db.ratelimit import bucket_key


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_quota_then_refills(database):
    clock = Clock()
    store = RateLimitStore(database, clock)
    rate = Rate(3, 60)  # a token every 20 s
    decisions = [store.take("a", rate) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[3].retry_after == pytest.approx(20.0)
    clock.now += 19.9
    assert not store.take("a", rate).allowed
    clock.now += 0.1
    refilled = store.take("a", rate)
    assert refilled.allowed and refilled.remaining == 0
    assert store.take("b", rate).remaining == 2  # another client, another bucket
    clock.now += 3600
    assert store.take("a", rate).remaining == 2  # never more than the quota


def test_concurrent_takes_never_exceed_the_quota(database):
    store = RateLimitStore(database)
    rate = Rate(10, 3600)
    allowed = []
    barrier = threading.Barrier(8)

    def client():
        barrier.wait()
        for _ in range(5):
            allowed.append(store.take("shared", rate).allowed)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 40 and allowed.count(True) == 10


def test_full_buckets_are_pruned(database):
    clock = Clock()
    store = RateLimitStore(database, clock, prune_every=0)
    rate = Rate(5, 60)
    for client in ("a", "b", "c"):
        store.take(client, rate)
    clock.now += 61
    store.take("d", rate)
    with database.session(write=False) as session:
        keys = [row.key for row in session.query(RateLimitRow)]
    assert keys == ["d"]


def test_bucket_keys_are_hashes_of_policy_and_client():
    key = bucket_key("links", "addr:192.0.2.1")
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert key != bucket_key("writes", "addr:192.0.2.1")
    assert "192.0.2.1" not in key
