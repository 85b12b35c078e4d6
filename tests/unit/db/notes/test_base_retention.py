"""The notes store's retention contract (prune_log, log_floor), on every store.

The SQL store always; the RethinkDB store when RETHINKDB_URL points at a
server (skipped with the reason otherwise).
"""

import contextlib
import time

import pytest

from core.clock import utc_now
from db.errors import Pruned
from db.notes.rethink import RethinkNotesStore
from db.notes.sql import SqlNotesStore
from db.schema import create_schema
from db.sql import Database


@pytest.fixture
def store(notes_backend, database_url):
    """A fresh, empty store of each kind, reading the log 2 entries at a time.

    RethinkDB with a short write lease: what is younger may not be pruned.
    """
    if notes_backend.name == "sql":
        database = Database(database_url)
        create_schema(database.engine)
        yield SqlNotesStore(database, poll_interval=0.02, batch_size=2)
        database.dispose()
        return
    rethink = RethinkNotesStore.from_url(
        notes_backend.rethinkdb_url,
        table=notes_backend.rethinkdb_table,
        timeout=10,
        poll_interval=0.05,
        lease=0.2,
        clock_margin=0.1,
        batch=2,
    )
    yield rethink
    rethink.close()


def read(store, since, timeout=3.0):
    """Every change after ``since`` the store yields within ``timeout``: seqs."""
    found = []
    with contextlib.closing(store.changes(since=since, timeout=timeout)) as changes:
        for change in changes:
            found.append(change.seq)
            if change.seq == store.last_seq():
                break
    return found


def write(store, count):
    """``count`` notes, one change each."""
    for i in range(count):
        store.create(f"n{i}", "")


def settled(store):
    """A moment later than every write so far, past a RethinkDB write's lease."""
    time.sleep(0.4)  # the RethinkDB store keeps what is younger than its lease
    return utc_now()


def test_nothing_pruned_the_floor_is_zero(store):
    write(store, 3)
    assert store.log_floor() == 0
    assert store.prune_log(utc_now().replace(year=2000), 100) == 0
    assert read(store, 0) == [1, 2, 3]


def test_prune_removes_the_oldest_run_and_raises_the_floor(store):
    write(store, 4)
    cutoff = settled(store)
    write(store, 2)
    assert store.prune_log(cutoff, 100) == 4
    assert store.log_floor() == 4
    assert read(store, 4) == [5, 6]
    assert read(store, 0) == [5, 6]  # 0: everything the log holds
    with pytest.raises(Pruned) as caught:
        read(store, 2)
    assert caught.value.floor == 4


def test_prune_goes_by_batches(store):
    write(store, 5)
    cutoff = settled(store)
    write(store, 1)
    assert store.prune_log(cutoff, 2) == 2
    assert store.log_floor() == 2
    assert store.prune_log(cutoff, 2) == 2
    assert store.prune_log(cutoff, 2) == 1
    assert store.prune_log(cutoff, 2) == 0
    assert store.log_floor() == 5
    assert read(store, 5) == [6]


def test_the_newest_entry_stays_however_old(store):
    write(store, 3)
    cutoff = settled(store)
    assert store.prune_log(cutoff, 100) == 2
    assert store.log_floor() == 2
    assert store.last_seq() == 3
    assert read(store, 2) == [3]
    write(store, 1)
    assert read(store, 2) == [3, 4]  # numbering goes on


def test_a_reader_that_meets_a_pruning_mid_way_gets_pruned(store):
    write(store, 6)
    cutoff = settled(store)
    write(store, 1)
    changes = store.changes(since=0, timeout=5)
    with contextlib.closing(changes):
        assert next(changes).seq == 1
        store.prune_log(cutoff, 100)
        with pytest.raises(Pruned) as caught:
            for _ in changes:
                pass
    assert caught.value.floor == 6
