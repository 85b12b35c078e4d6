"""The notes store contract, run against every store available.

The embedded (SQL) store always; the RethinkDB store when RETHINKDB_URL
points at a RethinkDB 2.4 server (skipped with the reason otherwise).
"""

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.notes import is_note_id
from db.errors import NotFound
from db.errors import PreconditionFailed
from db.notes.rethink import RethinkNotesStore
from db.notes.sql import SqlNotesStore
from tests.support.processes import wait_until

MALFORMED_IDS = [
    "",
    "x",
    "0" * 31,
    "0" * 33,
    "A" * 32,
    "g" * 32,
    "../" + "0" * 29,
    "0" * 200,
]


@pytest.fixture
def store(notes_backend, request):
    """A fresh, empty store of each kind."""
    if notes_backend.name == "sql":
        yield SqlNotesStore(request.getfixturevalue("database"), poll_interval=0.02)
        return
    rethink = RethinkNotesStore.from_url(
        notes_backend.rethinkdb_url,
        table=notes_backend.rethinkdb_table,
        timeout=10,
        poll_interval=0.05,
    )
    yield rethink
    rethink.close()


def changes_after(store, since, count, timeout=15.0):
    """The first ``count`` changes after ``since`` (fails if they do not come)."""
    found = []
    with contextlib.closing(store.changes(since=since, timeout=timeout)) as changes:
        for change in changes:
            found.append(change)
            if len(found) == count:
                return found
    raise AssertionError(f"expected {count} changes, got {found}")


# CRUD


def test_create_then_get(store):
    note = store.create("Groceries", "milk, eggs")
    assert is_note_id(note.id)
    assert (note.title, note.body, note.version) == ("Groceries", "milk, eggs", 1)
    assert note.created_at == note.updated_at
    assert store.get(note.id) == note
    assert note.created_at.tzinfo is not None
    assert note.created_at.microsecond % 1000 == 0  # milliseconds, as stored


def test_ids_are_unique(store):
    ids = {store.create(f"n{i}", "").id for i in range(20)}
    assert len(ids) == 20


def test_unknown_and_malformed_ids_are_not_found(store):
    store.create("exists", "")
    for note_id in MALFORMED_IDS + ["0" * 32]:
        with pytest.raises(NotFound):
            store.get(note_id)
        with pytest.raises(NotFound):
            store.patch(note_id, {"title": "x"})
        with pytest.raises(NotFound):
            store.delete(note_id)


def test_replace_changes_both_fields_and_the_version(store):
    note = store.create("old", "old body")
    new = store.replace(note.id, "new", "new body")
    assert (new.title, new.body, new.version) == ("new", "new body", 2)
    assert new.created_at == note.created_at
    assert new.updated_at >= note.updated_at
    assert store.get(note.id) == new


def test_patch_changes_only_the_fields_given(store):
    note = store.create("title", "body")
    patched = store.patch(note.id, {"body": "changed"})
    assert (patched.title, patched.body, patched.version) == ("title", "changed", 2)
    assert store.patch(note.id, {"title": "t2"}).body == "changed"


def test_delete_removes_the_note(store):
    note = store.create("doomed", "")
    store.delete(note.id)
    with pytest.raises(NotFound):
        store.get(note.id)
    with pytest.raises(NotFound):
        store.delete(note.id)
    with pytest.raises(NotFound):
        store.replace(note.id, "back", "")


def test_if_versions_guards_every_write(store):
    note = store.create("v1", "")
    assert store.patch(note.id, {"title": "v2"}, if_versions={1}).version == 2
    with pytest.raises(PreconditionFailed):
        store.replace(note.id, "lost", "update", if_versions={1})
    with pytest.raises(PreconditionFailed):
        store.patch(note.id, {"title": "lost"}, if_versions=set())
    with pytest.raises(PreconditionFailed):
        store.delete(note.id, if_versions={1})
    assert store.get(note.id).title == "v2"
    assert store.replace(note.id, "v3", "", if_versions={1, 2}).version == 3
    store.delete(note.id, if_versions={3})
    with pytest.raises(NotFound):
        store.get(note.id)


def test_ping_answers(store):
    store.ping()


# Listing


def test_empty_store_lists_nothing(store):
    page = store.list_page(10)
    assert page.notes == [] and page.next_cursor is None


def test_pages_are_newest_first_and_chain_to_the_end(store):
    created = [store.create(f"n{i}", "") for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        page = store.list_page(3, cursor)
        pages += 1
        seen += page.notes
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert [n.id for n in seen] == [n.id for n in reversed(created)]


def test_exact_multiple_of_the_page_size_ends_with_no_next(store):
    for i in range(4):
        store.create(f"n{i}", "")
    first = store.list_page(2)
    second = store.list_page(2, first.next_cursor)
    assert len(second.notes) == 2 and second.next_cursor is None


def test_paging_is_stable_while_notes_are_added_and_deleted(store):
    created = [store.create(f"n{i}", "") for i in range(6)]
    first = store.list_page(2)
    store.create("newer 1", "")  # before the cursor: must not show up later
    store.delete(first.notes[0].id)  # on a page already read: must not shift
    store.create("newer 2", "")
    rest, cursor = [], first.next_cursor
    while cursor is not None:
        page = store.list_page(2, cursor)
        rest += page.notes
        cursor = page.next_cursor
    ids = [n.id for n in first.notes + rest]
    assert ids == [n.id for n in reversed(created)]


def test_updates_do_not_move_a_note(store):
    a, b = store.create("a", ""), store.create("b", "")
    store.patch(a.id, {"body": "touched"})
    assert [n.id for n in store.list_page(10).notes] == [b.id, a.id]


# The change stream


def test_changes_replay_every_write_in_order_with_old_and_new_values(store):
    note = store.create("first", "body")
    updated = store.patch(note.id, {"title": "second"})
    store.delete(note.id)
    created_ev, updated_ev, deleted_ev = changes_after(store, 0, 3)
    assert [e.type for e in (created_ev, updated_ev, deleted_ev)] == [
        "created",
        "updated",
        "deleted",
    ]
    assert created_ev.seq < updated_ev.seq < deleted_ev.seq
    assert {e.note_id for e in (created_ev, updated_ev, deleted_ev)} == {note.id}
    assert created_ev.old is None and created_ev.new == note
    assert updated_ev.old == note
    assert updated_ev.new == updated
    assert deleted_ev.old == updated and deleted_ev.new is None
    assert created_ev.ts.tzinfo is not None


def test_changes_resume_after_a_sequence(store):
    for i in range(5):
        store.create(f"n{i}", "")
    everything = changes_after(store, 0, 5)
    resumed = changes_after(store, everything[1].seq, 3)
    assert [c.seq for c in resumed] == [c.seq for c in everything[2:]]
    assert [c.new for c in resumed] == [c.new for c in everything[2:]]


def test_failed_writes_leave_no_trace_in_the_stream(store):
    note = store.create("kept", "")
    with pytest.raises(PreconditionFailed):
        store.patch(note.id, {"title": "refused"}, if_versions={7})
    with pytest.raises(NotFound):
        store.delete("0" * 32)
    store.patch(note.id, {"title": "accepted"})
    created, updated = changes_after(store, 0, 2)
    assert updated.type == "updated" and updated.new.title == "accepted"
    assert list(store.changes(since=updated.seq, timeout=0.5)) == []


def test_changes_follow_new_writes_until_stopped(store):
    received, stop = [], threading.Event()

    def consume():
        for change in store.changes(since=0, stop=stop):
            received.append(change)

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        note = store.create("live", "")
        wait_until(lambda: len(received) == 1, timeout=15, what="created event")
        store.patch(note.id, {"body": "live too"})
        wait_until(lambda: len(received) == 2, timeout=15, what="updated event")
        store.delete(note.id)
        wait_until(lambda: len(received) == 3, timeout=15, what="deleted event")
    finally:
        stop.set()
        consumer.join(timeout=15)
    assert not consumer.is_alive()
    assert [c.type for c in received] == ["created", "updated", "deleted"]


def test_changes_from_now_skip_the_past(store):
    store.create("old news", "")
    done = threading.Event()

    def keep_writing():  # the stream starts at its first next(): write until it yields
        count = 0
        while not done.wait(0.1):
            store.create(f"fresh {count}", "")
            count += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        with contextlib.closing(store.changes(since=None, timeout=15)) as changes:
            first = next(changes)
    finally:
        done.set()
        writer.join()
    assert first.new.title.startswith("fresh")


def test_last_seq_is_where_the_stream_is(store):
    assert store.last_seq() == 0
    note = store.create("before", "")
    store.patch(note.id, {"body": "still before"})
    head = store.last_seq()
    after = store.create("after", "")
    (change,) = changes_after(store, head, 1)
    assert change.new == after
    assert store.last_seq() == change.seq > head


def test_timeout_ends_an_idle_stream(store):
    assert list(store.changes(since=0, timeout=0.3)) == []


# Concurrency


def test_concurrent_writes_from_threads_are_all_kept_in_one_order(store):
    shared = store.create("shared", "")
    threads, per_thread = 4, 8

    def work(worker):
        for i in range(per_thread):
            store.create(f"w{worker}-{i}", "")
            store.patch(shared.id, {"body": f"w{worker}-{i}"})

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))

    total = threads * per_thread
    assert len(store.list_page(500).notes) == total + 1
    changes = changes_after(store, 0, 1 + 2 * total)
    seqs = [c.seq for c in changes]
    assert seqs == sorted(set(seqs))
    # The shared note's updates form one chain: each starts where the last ended.
    chain = [c for c in changes if c.note_id == shared.id]
    for earlier, later in zip(chain, chain[1:]):
        assert later.old == earlier.new
    assert chain[-1].new == store.get(shared.id)


def test_concurrent_conditional_writes_let_exactly_one_win(store):
    note = store.create("contested", "")
    barrier = threading.Barrier(6)

    def edit(editor):
        barrier.wait()
        try:
            store.patch(note.id, {"body": f"editor {editor}"}, if_versions={1})
            return True
        except PreconditionFailed:
            return False

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(edit, range(6)))
    assert outcomes.count(True) == 1
    assert store.get(note.id).version == 2
