"""JSON on the wire: the one encoder and decoder of every body the project sends.

HTTP responses (through Falcon's media handlers), push events on ZeroMQ, SSE
and webhooks all go through :func:`dumps`: compact, UTF-8, non-ASCII kept
as it is.
"""

import json
from typing import Any


def dumps(value: Any) -> str:
    """``value`` as compact JSON text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode(value: Any) -> bytes:
    """``value`` as compact JSON in UTF-8 bytes."""
    return dumps(value).encode("utf-8")


def dumps_pretty(value: Any) -> str:
    """``value`` as indented JSON text, for documents people read (OpenAPI)."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def loads(text: Any) -> Any:
    """The JSON document in ``text`` (str or bytes); ValueError if it is not one."""
    return json.loads(text)
