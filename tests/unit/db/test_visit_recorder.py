"""Batched visits (db/visit_recorder.py): the bound, failures, the size cap."""

import time

import pytest
import sqlalchemy as sa

from db import visit_recorder
from db.errors import Unavailable
from db.link_tables import Link
from db.link_tables import Visit
from db.links import LinkStore


def stored(database, link_code_store, code):
    """(counter, visit rows) as the database has them, without flushing."""
    link_id = link_code_store._find(code).id
    with database.read() as connection:
        counter = connection.execute(
            sa.select(Link.visits).where(Link.id == link_id)
        ).scalar_one()
        rows = connection.execute(
            sa.select(sa.func.count())
            .select_from(Visit)
            .where(Visit.link_id == link_id)
        ).scalar_one()
    return counter, rows


def test_queued_visits_are_written_within_the_interval(database):
    store = LinkStore(database, "salt", flush_interval=0.2)
    try:
        code = store.create("https://example.com/").code
        for _ in range(5):
            assert (
                store.visit(code, None, "agent", "192.0.2.1") == "https://example.com/"
            )
        done = time.monotonic()
        assert stored(database, store, code) == (0, 0)  # queued, not yet written
        while stored(database, store, code) != (5, 5):
            assert time.monotonic() - done < 0.2 + 2.0, "not written in time"
            time.sleep(0.02)
    finally:
        store.close()


def test_a_failed_write_keeps_the_visits_for_the_next(database, monkeypatch):
    store = LinkStore(database, "salt", flush_interval=600)
    try:
        code = store.create("https://example.com/").code
        for _ in range(3):
            store.visit(code, None, None, None)
        recorder = store.recorder
        real_write = recorder._write

        def down(batch):
            raise Unavailable("SQL database unavailable")

        monkeypatch.setattr(recorder, "_write", down)
        with pytest.raises(Unavailable):
            recorder.flush()
        assert recorder.pending == 3
        store.visit(code, None, None, None)
        monkeypatch.setattr(recorder, "_write", real_write)
        assert recorder.flush() == 4
        assert stored(database, store, code) == (4, 4)
    finally:
        store.close()


def test_a_full_queue_is_written_by_the_request(database):
    store = LinkStore(database, "salt", flush_interval=600)
    store.recorder._max_pending = 3
    try:
        code = store.create("https://example.com/").code
        store.visit(code, None, None, None)
        store.visit(code, None, None, None)
        assert stored(database, store, code) == (0, 0)
        store.visit(code, None, None, None)
        assert stored(database, store, code) == (3, 3)
        assert store.recorder.pending == 0
    finally:
        store.close()


def test_a_long_queue_is_written_a_batch_per_transaction(database, monkeypatch):
    monkeypatch.setattr(visit_recorder, "BATCH", 4)
    store = LinkStore(database, "salt", flush_interval=600)
    try:
        code = store.create("https://example.com/").code
        for _ in range(10):
            store.visit(code, None, None, None)
        recorder = store.recorder
        real_write, sizes = recorder._write, []

        def write(batch):
            sizes.append(len(batch))
            if len(sizes) == 2:
                raise Unavailable("SQL database unavailable")
            real_write(batch)

        monkeypatch.setattr(recorder, "_write", write)
        with pytest.raises(Unavailable):
            recorder.flush()
        # The first batch is in; the rest waits, in order, for the next try.
        assert (stored(database, store, code), recorder.pending) == ((4, 4), 6)
        assert recorder.flush() == 6
        assert sizes == [4, 4, 4, 2]
        assert stored(database, store, code) == (10, 10)
    finally:
        store.close()


def test_visits_piling_up_wake_the_writer_before_its_interval(database):
    store = LinkStore(database, "salt", flush_interval=600)
    store.recorder._wake_at = 3
    try:
        code = store.create("https://example.com/").code
        for _ in range(3):
            store.visit(code, None, None, None)
        woken = time.monotonic()
        while stored(database, store, code) != (3, 3):
            assert time.monotonic() - woken < 5, "the writer was not woken"
            time.sleep(0.02)
    finally:
        store.close()


def test_visits_of_a_link_deleted_meanwhile_are_not_brought_back(database):
    store = LinkStore(database, "salt", flush_interval=600)
    try:
        gone = store.create("https://example.com/gone").code
        kept = store.create("https://example.com/kept").code
        store.visit(gone, None, None, None)
        store.visit(kept, None, None, None)
        store.delete(gone)
        assert store.recorder.flush() == 2
        assert stored(database, store, kept) == (1, 1)
        with database.read() as connection:
            assert (
                connection.execute(
                    sa.select(sa.func.count()).select_from(Visit)
                ).scalar_one()
                == 1
            )
    finally:
        store.close()


def test_links_with_max_visits_count_in_the_request(database):
    store = LinkStore(database, "salt", flush_interval=600)
    try:
        code = store.create("https://example.com/", max_visits=2).code
        store.visit(code, None, None, None)
        assert store.recorder.pending == 0
        assert stored(database, store, code) == (1, 1)
    finally:
        store.close()
