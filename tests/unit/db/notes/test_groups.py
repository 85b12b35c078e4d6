"""Group commit, whatever the store: who joins a group, and each member's outcome."""

import threading

import pytest

import db.notes.groups
from core.clock import utc_now
from core.notes import Note
from db.errors import Unavailable
from db.notes.groups import CreateGroups
from db.notes.groups import NewNote
from tests.support.note_groups import Counted
from tests.support.note_groups import create_together


class FakeStore:
    """A store whose group write is ``fate(group)``, after numbering the notes."""

    def __init__(self, fate=None):
        self.groups = []
        self.ids = Counted(lambda: f"{len(self.groups)}-{self.ids.calls}")
        self._fate = fate or (lambda group: None)
        self._lock = threading.Lock()
        self._groups = CreateGroups(self._write)

    def create(self, title, body):
        return self._groups.create(NewNote(self.ids(), title, body, utc_now()))

    def _write(self, group):
        self._groups.close(group)
        with self._lock:
            self.groups.append([new.title for new in group])
        self._fate(group)


def commit(new, position=1):
    new.note = Note(new.note_id, new.title, new.body, new.now, new.now, 1, position)


def commit_all(group):
    for number, new in enumerate(group, 1):
        commit(new, number)


def test_creates_of_one_moment_form_one_group(monkeypatch):
    store = FakeStore(commit_all)
    outcomes = create_together(monkeypatch, store, store.ids, 6)

    assert len(store.groups) == 1 and len(store.groups[0]) == 6
    assert sorted(note.title for note in outcomes) == [f"note {i}" for i in range(6)]
    assert sorted(note.position for note in outcomes) == list(range(1, 7))


def test_groups_are_capped(monkeypatch):
    monkeypatch.setattr(db.notes.groups, "GROUP_MAX", 2)
    store = FakeStore(commit_all)
    outcomes = create_together(monkeypatch, store, store.ids, 5)

    assert sorted(len(group) for group in store.groups) == [1, 2, 2]
    assert all(isinstance(outcome, Note) for outcome in outcomes)


def test_an_outage_fails_only_the_notes_not_committed(monkeypatch):
    def half_then_outage(group):
        for new in group[::2]:
            commit(new)
        raise Unavailable("notes store unavailable")

    store = FakeStore(half_then_outage)
    outcomes = create_together(monkeypatch, store, store.ids, 6)

    assert len(store.groups) == 1  # no second try: the outcome is the outage's
    notes = [outcome for outcome in outcomes if isinstance(outcome, Note)]
    failed = [outcome for outcome in outcomes if isinstance(outcome, Unavailable)]
    assert len(notes) == 3 and len(failed) == 3


def test_another_error_retries_each_open_note_alone(monkeypatch):
    def refuse_note_2(group):
        for new in group:
            if new.title != "note 2":
                commit(new)
        if any(new.title == "note 2" for new in group):
            raise RuntimeError("id taken")

    store = FakeStore(refuse_note_2)
    outcomes = create_together(monkeypatch, store, store.ids, 4)

    assert sorted(map(len, store.groups)) == [1, 4]  # the group, then note 2 alone
    assert isinstance(outcomes[2], RuntimeError)
    assert all(isinstance(outcomes[i], Note) for i in (0, 1, 3))


def test_a_note_the_write_left_open_is_never_acknowledged(monkeypatch):
    store = FakeStore(lambda group: commit(group[0]))  # one forgotten
    outcomes = create_together(monkeypatch, store, store.ids, 2)

    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "Note",
        "Unavailable",
    ]


def test_a_note_failed_by_the_write_keeps_its_own_error(monkeypatch):
    def one_known_failure(group):
        commit_all(group[1:])
        group[0].error = ValueError("this one")

    store = FakeStore(one_known_failure)
    outcomes = create_together(monkeypatch, store, store.ids, 3)

    assert [type(outcome).__name__ for outcome in outcomes].count("ValueError") == 1
    assert [type(outcome).__name__ for outcome in outcomes].count("Note") == 2


def test_without_a_pause_each_create_is_a_group_of_its_own():
    store = FakeStore(commit_all)
    store.create("a", "")
    store.create("b", "")
    assert store.groups == [["a"], ["b"]]


def test_a_failed_write_of_one_raises_its_error():
    def fail(group):
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        FakeStore(fail).create("a", "")
