"""The SQL notes store: group commit (notes created together share one
transaction) and the times of its change log."""

import pytest
import sqlalchemy as sa

import db.notes.groups
import db.notes.sql
from core.clock import isoformat
from core.notes import CREATED
from core.notes import new_note_id
from db.errors import Unavailable
from db.notes.sql import SqlNotesStore
from tests.support.note_groups import count_ids
from tests.support.note_groups import create_together


@pytest.fixture
def commits():
    return []


@pytest.fixture
def store(database, commits):
    return SqlNotesStore(database, on_commit=lambda: commits.append(1))


@pytest.fixture
def ids(monkeypatch):
    return count_ids(monkeypatch, db.notes.sql)


def test_notes_created_together_share_one_commit(monkeypatch, store, ids, commits):
    notes = create_together(monkeypatch, store, ids, 8)

    assert len(commits) == 1
    assert sorted(note.position for note in notes) == list(range(1, 9))
    for note in notes:
        assert store.get(note.id) == note
    changes = list(store.changes(since=0, timeout=0.2))
    assert [change.seq for change in changes] == list(range(1, 9))
    assert all(change.type == CREATED for change in changes)
    by_seq = {note.position: note for note in notes}
    assert all(change.new == by_seq[change.seq] for change in changes)


def test_groups_are_capped(monkeypatch, store, ids, commits):
    monkeypatch.setattr(db.notes.groups, "GROUP_MAX", 3)
    notes = create_together(monkeypatch, store, ids, 7)

    assert len(commits) == 3  # 3 + 3 + 1
    assert sorted(note.position for note in notes) == list(range(1, 8))


def test_a_bad_note_fails_alone_and_leaves_no_hole(monkeypatch, store, ids, commits):
    taken = store.create("first", "")
    commits.clear()
    ids.calls = 0

    def one_duplicate():
        return taken.id if ids.calls == 3 else new_note_id()

    monkeypatch.setattr(ids, "_make_id", one_duplicate)
    outcomes = create_together(monkeypatch, store, ids, 5)

    failed = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(failed) == 1 and isinstance(failed[0], sa.exc.IntegrityError)
    created = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    assert len(created) == 4
    assert len(store.list_page(50).notes) == 5
    seqs = [change.seq for change in store.changes(since=0, timeout=0.2)]
    assert seqs == list(range(1, 6))  # the failed write gave its seq back


def test_a_database_error_fails_the_whole_group_and_keeps_nothing(
    monkeypatch, database, store, ids, commits
):
    @sa.event.listens_for(database.engine, "before_cursor_execute")
    def fail(connection, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO note_changes"):  # as if the server went
            cursor.close()
            raise sa.exc.OperationalError(statement, parameters, OSError("gone"))

    outcomes = create_together(monkeypatch, store, ids, 4)

    assert all(isinstance(outcome, Unavailable) for outcome in outcomes)
    assert commits == []
    assert store.list_page(50).notes == []


def test_without_a_pause_each_create_commits_on_its_own(store, commits):
    first = store.create("a", "")
    second = store.create("b", "")
    assert len(commits) == 2
    assert (first.position, second.position) == (1, 2)


def test_the_log_keeps_times_as_the_api_writes_them_and_reads_either_form(
    store, database
):
    note = store.create("title", "body")
    changes = db.notes.sql._CHANGES
    with database.read() as connection:
        logged = connection.execute(sa.select(changes.c.new_val)).scalar_one()
    assert logged["created_at"] == logged["updated_at"] == isoformat(note.created_at)
    assert [change.new for change in store.changes(since=0, timeout=0.2)] == [note]

    # datetime.isoformat's form (+00:00, microseconds) reads back as well.
    python_form = note.created_at.isoformat()
    assert python_form.endswith("+00:00")
    with database.write() as connection:
        connection.execute(
            sa.update(changes).values(
                new_val={**logged, "created_at": python_form, "updated_at": python_form}
            )
        )
    assert [change.new for change in store.changes(since=0, timeout=0.2)] == [note]
