"""What a WebSocket client asked to receive: event types and one note (no I/O).

A client sends ``{"subscribe": ["note.created", ...], "note_id": "..."}``
(either member alone, ``null`` to drop it) or puts the same in the query
string (``?subscribe=note.created,note.deleted&note_id=...``) to have it
from the first event on. Types are the event types or the wildcards of
webhook subscriptions (``note.*``, ``*``).
"""

import dataclasses
from collections.abc import Mapping
from typing import Any
from typing import Optional
from typing import Tuple

from core.notes import EVENT_TYPES
from core.notes import is_note_id
from db.subscriptions import WILDCARDS
from db.subscriptions import matches
from workers.push.events import RESET

#: What ``subscribe`` may name.
CHOICES = EVENT_TYPES + WILDCARDS
_MEMBERS = ("subscribe", "note_id")


@dataclasses.dataclass(frozen=True)
class EventFilter:
    """Which events a client gets: ``types`` (None: all) of ``note_id`` (None: any)."""

    types: Optional[Tuple[str, ...]] = None
    note_id: Optional[str] = None

    def wants(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` passes (a ``reset`` always does: it concerns all)."""
        if event["type"] == RESET:
            return True
        if self.types is not None and not matches(self.types, event["type"]):
            return False
        if self.note_id is not None:
            note = event["new_val"] or event["old_val"]
            return note is not None and note["id"] == self.note_id
        return True

    def updated(self, message: Any) -> "EventFilter":
        """This filter changed by a client's message; ValueError if it is not one."""
        if not isinstance(message, dict):
            raise ValueError(
                'Send an object: {"subscribe": ["note.created"], "note_id": "..."}.'
            )
        unknown = sorted(set(message) - set(_MEMBERS))
        if unknown:
            raise ValueError(
                f"Unknown member {unknown[0]!r}; the members are subscribe and note_id."
            )
        types, note_id = self.types, self.note_id
        if "subscribe" in message:
            types = _types(message["subscribe"])
        if "note_id" in message:
            note_id = _note_id(message["note_id"])
        return EventFilter(types, note_id)

    @classmethod
    def from_query(cls, params: Mapping[str, list]) -> "EventFilter":
        """The filter of ``?subscribe=a,b&note_id=...`` (``parse_qs`` values)."""
        message = {}
        if params.get("subscribe"):
            names = ",".join(params["subscribe"]).split(",")
            message["subscribe"] = [name.strip() for name in names if name.strip()]
        if params.get("note_id"):
            message["note_id"] = params["note_id"][-1]
        return cls().updated(message)

    def describe(self) -> dict:
        """The filter as the client's acknowledgement shows it."""
        return {
            "subscribe": None if self.types is None else list(self.types),
            "note_id": self.note_id,
        }


def _types(value: Any) -> Optional[Tuple[str, ...]]:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > len(CHOICES):
        raise ValueError(
            f"subscribe is a list of 1 to {len(CHOICES)} of {', '.join(CHOICES)}, "
            "or null for every event."
        )
    for name in value:
        if name not in CHOICES:
            shown = name if isinstance(name, str) else type(name).__name__
            raise ValueError(
                f"subscribe: {shown[:50]!r} is not one of {', '.join(CHOICES)}."
            )
    return tuple(dict.fromkeys(value))


def _note_id(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not is_note_id(value):
        raise ValueError("note_id is a note id (32 hex digits), or null for any note.")
    return value
