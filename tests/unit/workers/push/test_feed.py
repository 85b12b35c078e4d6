"""The worker's in-memory feed: readers with their own cursors, replay from the log."""

import contextlib
import threading

import pytest

from core.notes import event_json
from tests.support.processes import wait_until
from workers.push.feed import EventFeed


def logged_events(store, count):
    """Make ``count`` changes; their events, read back from the log."""
    for i in range(count):
        store.create(f"n{i}", "")
    changes = store.changes(since=0, timeout=10)
    with contextlib.closing(changes):
        return [event_json(next(changes)) for _ in range(count)]


def test_a_reader_gets_what_is_published_after_its_cursor(store):
    events = logged_events(store, 3)
    feed = EventFeed(store, start=0)
    for event in events:
        feed.publish(event)
    assert feed.head == 3
    assert feed.read(0) == events
    assert feed.read(1) == events[1:]
    assert feed.read(1, limit=1) == events[1:2]
    assert feed.read(3, timeout=0.05) == []


def test_a_waiting_reader_wakes_up_for_the_next_event(store):
    events = logged_events(store, 1)
    feed = EventFeed(store, start=0)
    got = []
    reader = threading.Thread(target=lambda: got.extend(feed.read(0, timeout=30)))
    reader.start()
    feed.publish(events[0])
    reader.join(30)
    assert got == events


def test_close_wakes_readers_with_nothing(store):
    feed = EventFeed(store, start=0)
    got = [None]
    reader = threading.Thread(target=lambda: got.__setitem__(0, feed.read(0)))
    reader.start()
    feed.close()
    reader.join(30)
    assert got == [[]] and feed.closed


def test_events_must_come_in_order(store):
    events = logged_events(store, 2)
    feed = EventFeed(store, start=0)
    feed.publish(events[1])
    with pytest.raises(ValueError):
        feed.publish(events[0])


def test_a_reader_behind_memory_gets_the_rest_from_the_log_without_gaps(store):
    events = logged_events(store, 6)
    feed = EventFeed(store, start=0, capacity=2)
    for event in events:
        feed.publish(event)  # only the last two stay in memory
    got, cursor = [], 0
    while len(got) < 6:
        batch = feed.read(cursor, limit=3, timeout=5)
        assert batch, f"nothing after {cursor}"
        got.extend(batch)
        cursor = batch[-1]["id"]
    assert got == events


def test_a_reader_behind_the_start_replays_the_log(store):
    events = logged_events(store, 4)
    feed = EventFeed(store, start=3)  # a restarted worker, checkpoint 3
    assert feed.read(1, timeout=5) == events[1:3]
    feed.publish(events[3])
    assert feed.read(3) == events[3:]


def test_one_event_by_id_from_memory_or_the_log(store):
    events = logged_events(store, 5)
    feed = EventFeed(store, start=0, capacity=2)
    for event in events:
        feed.publish(event)  # 4 and 5 stay in memory; 1..3 only in the log
    assert feed.event(5) == events[4]
    assert feed.event(2) == events[1]
    assert feed.event(6) is None  # not read yet
    assert feed.event(0) is None


def test_a_reader_that_waits_while_memory_overflows_loses_nothing(store):
    # The reader waits at the head; three events come (capacity 2) before it
    # wakes: the first of them is only in the log by then.
    events = logged_events(store, 4)
    feed = EventFeed(store, start=0, capacity=2)
    feed.publish(events[0])
    got = []
    reader = threading.Thread(target=lambda: got.extend(feed.read(1, timeout=30)))
    reader.start()
    wait_until(lambda: feed._changed._waiters, timeout=10)  # it is waiting
    with feed._changed:  # it wakes only when all three are in
        for event in events[1:]:
            feed.publish(event)
    reader.join(30)
    assert got and got[0] == events[1]
