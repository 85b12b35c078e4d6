"""The notes store: one interface, the shapes it hands out, two implementations.

Implementations: :class:`db.notes_sql.SqlNotesStore` (embedded, SQLAlchemy on
the shared ``DATABASE_URL``; the default) and
:class:`db.notes_rethink.RethinkNotesStore` (RethinkDB, chosen by
``RETHINKDB_URL``). :func:`open_store` picks one from the settings.

Positions and sequences. Every write gets the next number of one
store-wide, strictly increasing sequence (``seq``). A note keeps the
``seq`` of its creation as its ``position``: lists are ordered by it, newest
first, and a page cursor is the position of the last note on the page, so
paging is stable while notes are added (no duplicates, no gaps).

The change stream. Every successful write is recorded as a :class:`Change`
(``created``/``updated``/``deleted``, the note before and after, a
timestamp) under its ``seq``. ``changes(since)`` yields them in ``seq``
order, then keeps following new ones until the caller stops it; a consumer
that remembers the last ``seq`` it handled resumes with ``since=that seq``
and gets every later change exactly once more from there, in order, with
the same ``seq`` (the event's stable id).
"""

import abc
import dataclasses
import datetime
import re
import threading
import uuid
from typing import Any
from typing import Callable
from typing import Collection
from typing import Dict
from typing import Iterator
from typing import List
from typing import Mapping
from typing import Optional

from db.errors import NotFound
from db.times import isoformat

TITLE_MAX = 200
BODY_MAX = 20000

CREATED = "created"
UPDATED = "updated"
DELETED = "deleted"
CHANGE_TYPES = (CREATED, UPDATED, DELETED)

#: Fields a write may set (PATCH gives a subset, PUT both).
WRITABLE_FIELDS = ("title", "body")

_NOTE_ID = re.compile(r"\A[0-9a-f]{32}\Z")

Clock = Callable[[], datetime.datetime]


def new_note_id() -> str:
    """A fresh note id: a random UUID as 32 lowercase hex digits."""
    return uuid.uuid4().hex


def is_note_id(value: str) -> bool:
    """Whether ``value`` has the shape of a note id (anything else cannot exist)."""
    return bool(_NOTE_ID.match(value))


def utc_now() -> datetime.datetime:
    """The current UTC time, to the millisecond (what RethinkDB keeps)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclasses.dataclass(frozen=True)
class Note:
    """A stored note. ``version`` counts its writes; ``position`` orders lists."""

    id: str
    title: str
    body: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    version: int
    position: int

    @property
    def etag(self) -> str:
        """The entity tag of this version (unquoted): the version number."""
        return str(self.version)

    def to_dict(self) -> Dict[str, Any]:
        """The public JSON shape: id, title, body, created_at, updated_at."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a list, newest first; pass ``next_cursor`` back for the next."""

    notes: List[Note]
    next_cursor: Optional[int]


@dataclasses.dataclass(frozen=True)
class Change:
    """One write, as the change stream yields it.

    ``seq`` is the position in the stream (strictly increasing, the stable id
    of the event). ``old_val``/``new_val`` are the note's public shape
    (:meth:`Note.to_dict`) before and after: None before a create and after
    a delete.
    """

    seq: int
    type: str
    note_id: str
    old_val: Optional[Dict[str, Any]]
    new_val: Optional[Dict[str, Any]]
    ts: datetime.datetime

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready: seq, type, note_id, old_val, new_val, ts (ISO 8601)."""
        return {
            "seq": self.seq,
            "type": self.type,
            "note_id": self.note_id,
            "old_val": self.old_val,
            "new_val": self.new_val,
            "ts": isoformat(self.ts),
        }


class NotesStore(abc.ABC):
    """What the notes resource and the push worker need from a store.

    Errors: :class:`db.errors.NotFound` for an unknown (or malformed) id,
    :class:`db.errors.PreconditionFailed` when ``if_versions`` does not
    hold, :class:`db.errors.Unavailable` when the backend cannot be reached
    (calls never hang past the store's timeout).

    ``if_versions`` (on writes): apply the write only if the note's current
    version is one of these; the check and the write are one atomic step, so
    two editors cannot overwrite each other. None means unconditionally.
    """

    @abc.abstractmethod
    def create(self, title: str, body: str) -> Note:
        """Store a new note and return it (version 1)."""

    @abc.abstractmethod
    def get(self, note_id: str) -> Note:
        """The note with this id."""

    @abc.abstractmethod
    def list_page(self, limit: int, cursor: Optional[int] = None) -> Page:
        """Up to ``limit`` notes, newest first, after ``cursor`` (a previous page's)."""

    @abc.abstractmethod
    def patch(
        self,
        note_id: str,
        fields: Mapping[str, str],
        *,
        if_versions: Optional[Collection[int]] = None,
    ) -> Note:
        """Change the given fields (a subset of title, body); returns the new note."""

    def replace(
        self,
        note_id: str,
        title: str,
        body: str,
        *,
        if_versions: Optional[Collection[int]] = None,
    ) -> Note:
        """Replace title and body; returns the new note."""
        return self.patch(note_id, {"title": title, "body": body},
                          if_versions=if_versions)

    @abc.abstractmethod
    def delete(
        self, note_id: str, *, if_versions: Optional[Collection[int]] = None
    ) -> None:
        """Delete the note."""

    @abc.abstractmethod
    def changes(
        self,
        since: Optional[int] = None,
        *,
        stop: Optional[threading.Event] = None,
        timeout: Optional[float] = None,
    ) -> Iterator[Change]:
        """Yield every change after ``since`` in ``seq`` order, then follow new ones.

        Args:
            since: The last ``seq`` already handled: 0 replays everything the
                store keeps; None starts with the changes made from now on.
            stop: When this event is set, the iterator ends (at the latest
                one poll interval later) without yielding more.
            timeout: End after this many seconds in total (None: never).

        A backend failure raises :class:`db.errors.Unavailable` out of the
        iterator; call again with ``since`` = the last ``seq`` handled to
        resume without losing or reordering anything.
        """

    @abc.abstractmethod
    def last_seq(self) -> int:
        """The ``seq`` the change stream is at now (0 for a store never written).

        ``changes(since=last_seq())`` yields only the changes made after this
        call, like ``since=None``. A consumer with no checkpoint yet (the
        push worker on its first start) starts here and can checkpoint it.
        """

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise Unavailable unless the backend answers (for /ready)."""

    def close(self) -> None:  # noqa: B027 - a no-op unless the store holds connections
        """Release connections (at shutdown); the store reopens them on use."""


def require_id(note_id: str) -> None:
    """Raise NotFound for an id no note can have, before asking the backend."""
    if not is_note_id(note_id):
        raise NotFound("No note has this id.")


def not_found() -> NotFound:
    """The error for an id that is well formed but unknown."""
    return NotFound("No note has this id.")


def writable(fields: Mapping[str, str]) -> Dict[str, str]:
    """``fields`` restricted to the writable ones; ValueError if none or unknown."""
    unknown = set(fields) - set(WRITABLE_FIELDS)
    if unknown or not fields:
        raise ValueError(f"writable fields are {WRITABLE_FIELDS}, got {sorted(fields)}")
    return dict(fields)


def open_store(settings, database=None) -> NotesStore:
    """The store ``settings`` select: RethinkDB if ``rethinkdb_url`` is set, else SQL.

    Args:
        settings: An :class:`api.settings.Settings`.
        database: The shared :class:`db.sql.Database` (made from
            ``settings.database_url`` when not given).
    """
    # Imported here: both implementations import this module.
    if settings.rethinkdb_url:
        from db.notes_rethink import RethinkNotesStore

        return RethinkNotesStore.from_url(
            settings.rethinkdb_url,
            table=settings.rethinkdb_table,
            timeout=settings.rethinkdb_timeout,
        )
    from db.notes_sql import SqlNotesStore
    from db.sql import Database

    return SqlNotesStore(database or Database(settings.database_url))
