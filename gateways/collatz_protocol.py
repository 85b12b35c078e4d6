"""The frames the collatz broker, its workers and its clients exchange.

ASCII only (commands are words, numbers decimal digits; nothing is pickled):
clients send ``b"<n>"`` (the seed's text protocol) or ``CZ1 LONGEST <n>
[<timeout ms>]`` and ``CZ1 PING`` to the frontend; workers send ``READY``,
``HEARTBEAT``, ``RESULT`` and ``FAILED`` and get ``TASK <task> <lo> <hi>``.

Design: docs/design/collatz.md#frames
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
