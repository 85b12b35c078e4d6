"""Who may use the push worker: an API key, or a stream ticket of one.

The API's keys (``db.keys``): ``Authorization: Bearer KEY``, or ``?ticket=``
(:mod:`core.tickets`) for browsers; the streams need ``read``, ``/metrics``
``admin``; refusals are the API's 401 and 403. A key revoked while its stream
is open ends it (:meth:`StreamAccess.active`). Usage: docs/user/push.md
"""

import time
from typing import Callable
from typing import Dict
from typing import Optional

from core import tickets
from core.apikeys import READ
from core.apikeys import bearer_token
from db.errors import Unavailable
from db.keys import ApiKey
from db.keys import KeyCache

_REALM = 'Bearer realm="push"'


class Refused(Exception):
    """A request the worker does not answer: its status, detail and headers."""

    def __init__(
        self, status: int, detail: str, headers: Optional[Dict[str, str]] = None
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def _unauthorized(detail: str, error: str = "") -> Refused:
    challenge = _REALM + (f', error="{error}"' if error else "")
    return Refused(401, detail, {"WWW-Authenticate": challenge})


class StreamAccess:
    """Checks keys and tickets; issues tickets.

    Args:
        keys: The API keys (cached); None: ``AUTH=off``, nothing is checked.
        secret: Returns the tickets' signing secret (may raise Unavailable).
        ttl: Seconds a ticket issued here is valid.
        clock: Wall-clock seconds (tickets carry a Unix time).
    """

    def __init__(
        self,
        keys: Optional[KeyCache],
        secret: Callable[[], bytes],
        ttl: int = tickets.TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        if ttl < 1:
            raise ValueError(f"STREAM_TICKET_TTL must be 1 or more, got {ttl}")
        self._keys = keys
        self._secret = secret
        self.ttl = ttl
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """Whether anything is checked (``AUTH=on``)."""
        return self._keys is not None

    def check(
        self,
        authorization: Optional[str],
        ticket: Optional[str] = None,
        scope: str = READ,
    ) -> Optional[ApiKey]:
        """The key of the request, if it grants ``scope``; raises :class:`Refused`.

        ``ticket``: a ticket from the query string (None: tickets are not
        taken here). None when checks are off.
        """
        if self._keys is None:
            return None
        try:
            key = self._key(authorization, ticket, scope)
        except Unavailable:
            raise Refused(503, "The key store (SQL database) is unavailable.") from None
        if scope not in key.granted:
            raise Refused(
                403,
                f"The key {key.name!r} does not have the {scope} scope.",
                {
                    "WWW-Authenticate": _REALM
                    + f', error="insufficient_scope", scope="{scope}"'
                },
            )
        return key

    def _key(
        self, authorization: Optional[str], ticket: Optional[str], scope: str
    ) -> ApiKey:
        token = bearer_token(authorization)
        if token is not None:
            key = self._keys.get(token)
            if key is None:
                raise _unauthorized(
                    "The API key is unknown or revoked.", "invalid_token"
                )
            return key
        if ticket:
            key_id = tickets.verify(self._secret(), ticket, self._clock())
            if key_id is None:
                raise _unauthorized(
                    "The ticket is expired or not valid: get a new one with "
                    "POST /stream-tickets.",
                    "invalid_token",
                )
            key = self._keys.get_id(key_id)
            if key is None:
                raise _unauthorized("The ticket's API key is revoked.", "invalid_token")
            return key
        how = "send 'Authorization: Bearer KEY'"
        if ticket is not None:
            how += ", or ?ticket= from POST /stream-tickets"
        raise _unauthorized(f"This needs an API key with the {scope} scope: {how}.")

    def issue(self, authorization: Optional[str]) -> Dict[str, object]:
        """``POST /stream-tickets``: a ticket for the request's key (a ``read`` one).

        With checks off the ticket names no key (id 0): it opens streams
        only where checks are off too.
        """
        key = self.check(authorization)
        try:
            secret = self._secret()
        except Unavailable:
            raise Refused(503, "The SQL database is unavailable.") from None
        key_id = 0 if key is None else key.id
        return {
            "ticket": tickets.issue(secret, key_id, self._clock(), self.ttl),
            "expires_in": self.ttl,
        }

    def active(self, key_id: int) -> bool:
        """Whether the key ``key_id`` may still stream (True while unsure)."""
        if self._keys is None:
            return True
        try:
            key = self._keys.get_id(key_id)
        except Unavailable:  # a database blip does not end every stream
            return True
        return key is not None and READ in key.granted
