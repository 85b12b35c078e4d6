"""Releasing change-log entries in sequence order (db.seq_order)."""

from db.notes.seq_order import VOID
from db.notes.seq_order import SeqReorderBuffer


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def entry(seq, kind="created"):
    return {"id": seq, "type": kind}


def released(entries):
    return [e["id"] for e in entries]


def test_in_order_entries_pass_straight_through():
    buffer = SeqReorderBuffer(after=0, gap_timeout=5)
    out = []
    for seq in (1, 2, 3):
        buffer.add(entry(seq))
        out += buffer.pop_ready()
    assert released(out) == [1, 2, 3]
    assert buffer.missing() is None


def test_a_later_entry_waits_for_the_missing_one():
    buffer = SeqReorderBuffer(after=0, gap_timeout=5)
    buffer.add(entry(2))
    buffer.add(entry(3))
    assert buffer.pop_ready() == []
    assert buffer.missing() == (1, 1)
    buffer.add(entry(1))
    assert released(buffer.pop_ready()) == [1, 2, 3]


def test_voids_fill_gaps_and_are_not_released():
    buffer = SeqReorderBuffer(after=10, gap_timeout=5)
    buffer.add(entry(13))
    buffer.add(entry(11, VOID))
    assert buffer.pop_ready() == []
    buffer.add(entry(12))
    assert released(buffer.pop_ready()) == [12, 13]


def test_old_and_repeated_entries_are_dropped():
    buffer = SeqReorderBuffer(after=5, gap_timeout=5)
    buffer.add(entry(4))
    buffer.add(entry(5))
    buffer.add(entry(6))
    buffer.add(entry(6, "updated"))  # seen by the feed and by the catch-up read
    out = buffer.pop_ready()
    assert released(out) == [6] and out[0]["type"] == "created"
    buffer.add(entry(6))
    assert buffer.pop_ready() == []


def test_a_gap_is_skipped_only_after_the_timeout():
    clock = FakeClock()
    buffer = SeqReorderBuffer(after=0, gap_timeout=5, clock=clock)
    buffer.add(entry(4))
    assert buffer.pop_ready() == []
    clock.now += 4.9
    assert buffer.skip_stale_gap() is None
    clock.now += 0.2
    assert buffer.skip_stale_gap() == (1, 3)
    assert released(buffer.pop_ready()) == [4]
    buffer.add(entry(2))  # too late: already skipped
    assert buffer.pop_ready() == []


def test_the_gap_timer_restarts_when_the_stream_moves_on():
    clock = FakeClock()
    buffer = SeqReorderBuffer(after=0, gap_timeout=5, clock=clock)
    buffer.add(entry(3))
    buffer.pop_ready()
    clock.now += 4
    buffer.add(entry(1))
    assert released(buffer.pop_ready()) == [1]  # seq 2 is missing from now on
    clock.now += 4
    assert buffer.skip_stale_gap() is None
    clock.now += 1.5
    assert buffer.skip_stale_gap() == (2, 2)
    assert released(buffer.pop_ready()) == [3]
