"""Notes, the domain the stores, the API and the push worker share.

The values a store hands out (:class:`Note`, :class:`Change`), the rules every
store enforces, and the one JSON of a note (:func:`note_json`) and of a change
event (:func:`event_json`, on every push channel). Stores keep domain values,
never this JSON, so the wire format can change without touching stored rows.
"""

import dataclasses
import datetime
import random
import re
from typing import Any
from typing import Dict
from typing import Optional

from core.clock import isoformat

TITLE_MAX = 200
BODY_MAX = 20000

CREATED = "created"
UPDATED = "updated"
DELETED = "deleted"
CHANGE_TYPES = (CREATED, UPDATED, DELETED)
#: Every event type the push worker sends, in the order of the change types.
EVENT_TYPES = tuple(f"note.{kind}" for kind in CHANGE_TYPES)

_NOTE_ID = re.compile(r"\A[0-9a-f]{32}\Z")


def new_note_id() -> str:
    """A fresh note id: 128 random bits as 32 lowercase hex digits.

    From ``random`` (seeded from the OS, seeded again in every forked child),
    not ``uuid4``: uuid4 reads os.urandom per id, a system call each time
    (about 20 us under PyPy in a VM). Ids name notes; they are not secrets
    (``GET /notes`` lists them all), so they need to be unique, not
    unpredictable; 128 bits make a collision practically impossible.
    """
    return "%032x" % random.getrandbits(128)  # noqa: UP031 - fast under PyPy


def is_note_id(value: str) -> bool:
    """Whether ``value`` has the shape of a note id (anything else cannot exist)."""
    return bool(_NOTE_ID.match(value))


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


@dataclasses.dataclass(frozen=True)
class Change:
    """One write, as the change stream yields it.

    ``seq`` is the position in the stream (strictly increasing, the stable id
    of the event). ``old``/``new`` are the note before and after: None
    before a create and after a delete. ``traceparent``: the W3C trace
    context of the write, when it was traced (never sent to subscribers).
    """

    seq: int
    type: str
    note_id: str
    old: Optional[Note]
    new: Optional[Note]
    ts: datetime.datetime
    traceparent: Optional[str] = None


def note_json(note: Note) -> Dict[str, Any]:
    """A note on the wire: id, title, body, created_at, updated_at."""
    return {
        "id": note.id,
        "title": note.title,
        "body": note.body,
        "created_at": isoformat(note.created_at),
        "updated_at": isoformat(note.updated_at),
    }


def event_json(change: Change) -> Dict[str, Any]:
    """A change on the wire: ``{"id", "type", "old_val", "new_val", "ts"}``.

    ``id`` is the change's ``seq`` (the same on every redelivery, so
    receivers deduplicate by it); ``type`` is ``note.created``,
    ``note.updated`` or ``note.deleted``.
    """
    return {
        "id": change.seq,
        "type": f"note.{change.type}",
        "old_val": None if change.old is None else note_json(change.old),
        "new_val": None if change.new is None else note_json(change.new),
        "ts": isoformat(change.ts),
    }
