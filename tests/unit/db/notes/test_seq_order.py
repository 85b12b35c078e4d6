"""Releasing change entries in sequence order, and telling dead numbers (seq_order)."""

import datetime

from db.notes.seq_order import VOID
from db.notes.seq_order import SeqReorderBuffer

T0 = datetime.datetime(2025, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def entry(seq, kind="created", taken=0.0):
    return {"id": seq, "type": kind, "taken_at": at(taken)}


def released(entries):
    return [e["id"] for e in entries]


def test_in_order_entries_pass_straight_through():
    buffer = SeqReorderBuffer(after=0)
    out = []
    for seq in (1, 2, 3):
        buffer.add(entry(seq))
        out += buffer.pop_ready()
    assert released(out) == [1, 2, 3]
    assert buffer.missing() is None and len(buffer) == 0


def test_a_later_entry_waits_for_the_missing_one():
    buffer = SeqReorderBuffer(after=0)
    buffer.add(entry(2))
    buffer.add(entry(3))
    assert buffer.pop_ready() == []
    assert buffer.missing() == (1, 1)
    buffer.add(entry(1))
    assert released(buffer.pop_ready()) == [1, 2, 3]


def test_voids_fill_gaps_and_are_not_released():
    buffer = SeqReorderBuffer(after=10)
    buffer.add(entry(13))
    buffer.add(entry(11, VOID))
    assert buffer.pop_ready() == []
    buffer.add(entry(12))
    assert released(buffer.pop_ready()) == [12, 13]


def test_old_and_repeated_entries_are_dropped():
    buffer = SeqReorderBuffer(after=5)
    buffer.add(entry(4))
    buffer.add(entry(5))
    buffer.add(entry(6))
    buffer.add(entry(6, "updated"))  # seen by the feed and by a read
    out = buffer.pop_ready()
    assert released(out) == [6] and out[0]["type"] == "created"
    buffer.add(entry(6))
    assert buffer.pop_ready() == []


def test_a_gap_is_dead_once_the_entry_after_it_is_older_than_the_lease():
    buffer = SeqReorderBuffer(after=0)
    buffer.add(entry(4, taken=10.0))
    assert buffer.dead_gaps(at(12.9), lease=3) == []  # 1..3 may still commit
    assert buffer.dead_gaps(at(13.1), lease=3) == [(1, 3, at(10.0))]


def test_every_dead_run_is_named_at_once():
    buffer = SeqReorderBuffer(after=0)
    for seq, taken in ((2, 1.0), (3, 1.0), (6, 2.0), (9, 50.0)):
        buffer.add(entry(seq, taken=taken))
    # 1 and 4..5 are long dead; 7..8 were taken just before 50 s: maybe in flight.
    assert buffer.dead_gaps(at(51.0), lease=3) == [(1, 1, at(1.0)), (4, 5, at(2.0))]


def test_a_counter_reading_bounds_numbers_whose_neighbour_is_recent():
    buffer = SeqReorderBuffer(after=0)
    buffer.observe_head(3, at(5.0))  # 1..3 were all taken by 5 s
    buffer.add(entry(4, taken=100.0))
    assert buffer.dead_gaps(at(100.5), lease=3) == [(1, 3, at(5.0))]


def test_a_counter_reading_below_the_gap_does_not_count():
    buffer = SeqReorderBuffer(after=0)
    buffer.observe_head(2, at(5.0))  # says nothing of 3
    buffer.add(entry(4, taken=100.0))
    assert buffer.dead_gaps(at(100.5), lease=3) == []
