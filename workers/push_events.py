"""Note changes as push events, and the bytes each channel sends (no I/O).

An event is ``{"id", "type", "old_val", "new_val", "ts"}``: ``id`` is the
change's ``seq`` (the same on every redelivery, so receivers deduplicate by
it), ``type`` is ``note.created``, ``note.updated`` or ``note.deleted``,
``old_val``/``new_val`` the note before and after (null before a create and
after a delete), ``ts`` when the change was made (ISO 8601 UTC).
"""

import json
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

from db.notes import CHANGE_TYPES
from db.notes import Change
from db.times import isoformat

#: Every event type, in the order of the change types.
EVENT_TYPES = tuple(f"note.{kind}" for kind in CHANGE_TYPES)

Event = Dict[str, Any]


def to_event(change: Change) -> Event:
    """The event for one change of the notes store."""
    return {
        "id": change.seq,
        "type": f"note.{change.type}",
        "old_val": change.old_val,
        "new_val": change.new_val,
        "ts": isoformat(change.ts),
    }


def encode(event: Event) -> bytes:
    """Compact UTF-8 JSON on one line (what every channel carries)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def zmq_frames(event: Event) -> List[bytes]:
    """The ZeroMQ message: ``[type, JSON]``; SUB filters on the type's prefix."""
    return [event["type"].encode("ascii"), encode(event)]


def sse_frame(event: Event) -> bytes:
    """One Server-Sent Event: ``id`` (the seq), ``event`` (the type), ``data`` (JSON).

    JSON never contains a raw newline, so the data fits one ``data:`` line.
    """
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event["id"], event["type"].encode("ascii"), encode(event))


#: An SSE comment line: ignored by clients, keeps proxies from closing the stream.
SSE_KEEPALIVE = b": keep-alive\n\n"


def parse_last_event_id(value: Optional[str]) -> Optional[int]:
    """The seq in a ``Last-Event-ID`` (or ``last_event_id``); None if absent.

    Raises ValueError unless it is a plain non-negative decimal integer.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or not value.isascii() or len(value) > 19:
        raise ValueError("Last-Event-ID must be a non-negative integer (an event id)")
    return int(value)
