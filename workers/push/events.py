"""The bytes each push channel sends for an event (no I/O).

An event is :func:`core.notes.event_json` of a change: ``{"id", "type",
"old_val", "new_val", "ts"}``, the same JSON on every channel.
"""

from typing import Any
from typing import Dict
from typing import List
from typing import Optional

from core.wire import encode

#: An event as the push worker hands it around: :func:`core.notes.event_json`.
Event = Dict[str, Any]


def zmq_frames(event: Event) -> List[bytes]:
    """The ZeroMQ message: ``[type, JSON]``; SUB filters on the type's prefix."""
    return [event["type"].encode("ascii"), encode(event)]


def sse_frame(event: Event) -> bytes:
    """One Server-Sent Event: ``id`` (the seq), ``event`` (the type), ``data`` (JSON).

    JSON never contains a raw newline, so the data fits one ``data:`` line.
    """
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event["id"],
        event["type"].encode("ascii"),
        encode(event),
    )


#: The type of the event that tells a client its stream starts over.
RESET = "reset"
#: Why a stream starts over (``reset_event``'s ``why``).
AHEAD = "ahead"
PRUNED = "pruned"
_REASONS = {
    AHEAD: "Last-Event-ID is ahead of the stream (the change log was reset); "
    "the stream starts over from the oldest retained change",
    PRUNED: "the changes after Last-Event-ID are older than the change log "
    "keeps (NOTES_LOG_RETENTION_DAYS); the stream goes on from the oldest "
    "retained change",
}


def reset_event(last_id: int, cursor: int, why: str = AHEAD) -> Event:
    """The ``reset`` event: the stream skips from ``last_id`` to after ``cursor``.

    Its ``id`` is where the stream restarts, so a client that reconnects
    before the next event resumes from there, not from its stale id. A
    client drops what it built from earlier events (see feed.resume).
    """
    return {
        "id": cursor,
        "type": RESET,
        "reason": _REASONS[why],
        "last_event_id": last_id,
        "restart_after": cursor,
    }


def sse_reset_frame(last_id: int, cursor: int, why: str = AHEAD) -> bytes:
    """The ``reset`` event as SSE, sent before a stream that starts over."""
    return sse_frame(reset_event(last_id, cursor, why))


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
