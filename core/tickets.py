"""Stream tickets: short-lived, signed stand-ins for an API key (no I/O).

``st1.<key id>.<expiry>.<signature>``, an HMAC-SHA256 under the deployment's
secret (``db.server_secrets``), for the stream URLs that browsers cannot send
``Authorization`` with; nothing is stored per ticket, and the key's scopes at
the time of use count. Usage: docs/user/push.md#keys-and-tickets
"""

import base64
import hashlib
import hmac
import re
from typing import Optional

#: The name of the signing secret in ``server_secrets``.
SECRET_NAME = "stream-tickets"
#: Seconds a ticket is valid by default (``STREAM_TICKET_TTL``).
TTL_SECONDS = 60
_VERSION = "st1"
_SHAPE = re.compile(
    _VERSION + r"\.(0|[1-9][0-9]{0,18})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})"
)


def _signature(secret: bytes, key_id: int, expires: int) -> str:
    message = f"stream-ticket.{_VERSION}.{key_id}.{expires}".encode("ascii")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue(secret: bytes, key_id: int, now: float, ttl: int = TTL_SECONDS) -> str:
    """A ticket for the key ``key_id`` that expires ``ttl`` seconds after ``now``."""
    if ttl < 1:
        raise ValueError("a ticket lives at least one second")
    expires = int(now) + ttl
    return f"{_VERSION}.{key_id}.{expires}.{_signature(secret, key_id, expires)}"


def verify(secret: bytes, ticket: str, now: float) -> Optional[int]:
    """The key id of ``ticket`` if it is signed with ``secret`` and not expired.

    None for anything else: a malformed, forged, tampered or expired ticket.
    """
    match = _SHAPE.fullmatch(ticket)
    if match is None:
        return None
    key_id, expires = int(match.group(1)), int(match.group(2))
    expected = _signature(secret, key_id, expires)
    if not hmac.compare_digest(expected, match.group(3)):
        return None
    return key_id if now < expires else None
