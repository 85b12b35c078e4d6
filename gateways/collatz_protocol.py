"""The frames the collatz broker, its workers and its clients exchange.

Every frame is ASCII: commands are words, numbers are decimal digits. Nothing
is pickled.

Clients, on the broker's frontend (ROUTER; a REQ socket adds the empty
delimiter frame, the broker routes the reply back along the same envelope):

- Text protocol (the seed's): one frame, the number: ``b"1000"``. Reply: one
  frame ``b"871 179"`` (the start with the longest chain in 1..n, a space, its
  length in terms), or ``b"error: <reason>"``.
- API protocol: ``CZ1 LONGEST <n> [<timeout ms>]`` answered by
  ``CZ1 OK <start> <length>`` or ``CZ1 ERR <code> <reason>`` (codes below);
  ``CZ1 PING`` answered by ``CZ1 PONG <JSON stats>``.

Workers, on the backend (worker DEALER -> broker ROUTER):

- worker -> broker: ``READY``, ``HEARTBEAT``, ``RESULT <task> <start> <length>``,
  ``FAILED <task> <reason>``.
- broker -> worker: ``TASK <task> <lo> <hi>`` (inclusive range of starts),
  ``HEARTBEAT``.
"""

from typing import List

API = b"CZ1"
LONGEST = b"LONGEST"
PING = b"PING"
PONG = b"PONG"
OK = b"OK"
ERR = b"ERR"

# Error codes of ``CZ1 ERR``.
INVALID = b"invalid"  # n is not an integer in the accepted range
TIMEOUT = b"timeout"  # no worker finished within the deadline
BUSY = b"busy"  # too many jobs queued
FAILED_CODE = b"failed"  # workers failed the job repeatedly
PROTOCOL = b"protocol"  # malformed request

READY = b"READY"
HEARTBEAT = b"HEARTBEAT"
TASK = b"TASK"
RESULT = b"RESULT"
FAILED = b"FAILED"

#: Seconds between heartbeats, and heartbeats either side may miss before it
#: gives the other up. Broker and workers must agree, so both default to these.
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_LIVENESS = 3


#: Longer frames are not numbers (and converting them would cost time).
MAX_DIGITS = 30


def number(frame: bytes) -> int:
    """A decimal number from a frame; ValueError for anything else."""
    if len(frame) > MAX_DIGITS + 2:
        raise ValueError("too long for a number")
    text = frame.decode("ascii").strip()
    if not text.isdigit() or len(text) > MAX_DIGITS:
        raise ValueError(f"not a decimal number: {text[:40]!r}")
    return int(text)


def numbers(*values: int) -> List[bytes]:
    """Frames for ``values``, in decimal."""
    return [str(value).encode("ascii") for value in values]
