"""JSON on the wire: the one encoder and decoder of every body the project sends.

HTTP responses (through Falcon's media handlers), push events on ZeroMQ, SSE
and webhooks all go through :func:`dumps`: compact, UTF-8, non-ASCII kept
as it is.
"""

import json
from typing import Any

# One encoder for every call: json.dumps with options builds a new
# JSONEncoder each time (it only reuses its default one), which shows on
# hot paths. An encoder keeps no state between calls, so threads may share it.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> str:
    """``value`` as compact JSON text."""
    return _ENCODER.encode(value)


def encode(value: Any) -> bytes:
    """``value`` as compact JSON in UTF-8 bytes."""
    return dumps(value).encode("utf-8")


def loads(text: Any) -> Any:
    """The JSON document in ``text`` (str or bytes); ValueError if it is not one."""
    return json.loads(text)
