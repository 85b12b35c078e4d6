"""``POST /stream-tickets``: a short-lived ticket that opens the push worker's streams.

Browsers cannot send ``Authorization`` with an ``EventSource`` or a
``WebSocket``: they get a ticket here with their key and put it in the
stream's URL (``/events?ticket=...``). See :mod:`core.tickets`.
"""

import time

import falcon
from marshmallow import fields

from core import tickets
from db.server_secrets import ServerSecrets
from web.auth import READ
from web.auth import requires
from web.openapi import ResponseSchema
from web.validation import validate

_EXAMPLE = {
    "ticket": "st1.7.1767225600.1lZ5-Xbx3M1d6e0bC2y8kqWmQYq7Ql0a9sJ5C0n3h0Q",
    "expires_in": tickets.TTL_SECONDS,
}


class TicketOut(ResponseSchema):
    """A ticket for ``?ticket=`` on the push worker's ``/events``, ``/snapshot``
    and ``/ws``; it opens streams until it expires, while its key is active."""

    ticket = fields.String()
    expires_in = fields.Integer(metadata={"description": "seconds it stays valid"})


class StreamTickets:
    """Issues stream tickets for the request's key.

    Args:
        secrets: Where the signing secret is (the SQL database).
        ttl: Seconds a ticket is valid.
    """

    def __init__(self, secrets: ServerSecrets, ttl: int = tickets.TTL_SECONDS):
        if ttl < 1:
            raise ValueError(f"STREAM_TICKET_TTL must be 1 or more, got {ttl}")
        self._secrets = secrets
        self._ttl = ttl

    @requires(READ)
    @validate(
        response=TicketOut(),
        examples={200: _EXAMPLE},
        errors=(503,),
        response_headers={200: ("Cache-Control",)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """A ticket that opens the push worker's streams (for browsers)."""
        key = getattr(req.context, "api_key", None)
        # AUTH=off: no key was checked; id 0 is no key's, so such a ticket
        # opens streams only where checks are off too.
        key_id = 0 if key is None else key.id
        secret = self._secrets.get(tickets.SECRET_NAME)
        resp.media = {
            "ticket": tickets.issue(secret, key_id, time.time(), self._ttl),
            "expires_in": self._ttl,
        }
        resp.set_header("Cache-Control", "no-store")
