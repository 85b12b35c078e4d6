"""The notes store's interface: what the notes resource and the push worker need.

Implementations: :class:`db.notes.sql.SqlNotesStore` (the default) and
:class:`db.notes.rethink.RethinkNotesStore`; ``db.stores.open_stores`` picks one.

Design: docs/design/stores.md, docs/design/change-stream.md
"""

import abc
import dataclasses
import datetime
import threading
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

from core.notes import Change
from core.notes import Note
from core.notes import is_note_id
from db.errors import NotFound

#: The detail of every Unavailable a store raises.
UNAVAILABLE = "notes store unavailable"
#: Fields a write may set (PATCH gives a subset, PUT both).
WRITABLE_FIELDS = ("title", "body")

Clock = Callable[[], datetime.datetime]


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a list, newest first; pass ``next_cursor`` back for the next."""

    notes: List[Note]
    next_cursor: Optional[int]


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
        return self.patch(
            note_id, {"title": title, "body": body}, if_versions=if_versions
        )

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
        resume without losing or reordering anything. A ``since`` above 0
        whose next changes were pruned raises :class:`db.errors.Pruned`
        (before any change, or where the pruning is met); ``since=0``
        starts after the floor.
        """

    @abc.abstractmethod
    def log_floor(self) -> int:
        """The ``seq`` after which the log holds every change (0: none pruned)."""

    @abc.abstractmethod
    def prune_log(self, before: datetime.datetime, limit: int) -> int:
        """Remove up to ``limit`` of the oldest log entries written before ``before``.

        Only a run of the oldest entries goes, never the newest entry, so
        the floor only rises. One short write; returns how many went.
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
