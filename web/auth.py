"""Who may call what: each responder's scope, checked against the request's API key.

``@requires(READ)`` (``WRITE``, ``ADMIN``) or ``@public``; a responder that
says nothing needs ``admin``, so a new endpoint is closed, not open. No key or
an unknown or revoked one: 401; a key without the scope: 403. A valid key sent
to a public operation names the client for the rate limits.
"""

from typing import Any
from typing import Callable
from typing import Mapping
from typing import Tuple

import falcon

from core.apikeys import ADMIN
from core.apikeys import READ
from core.apikeys import WRITE
from core.apikeys import bearer_token
from db.keys import KeyCache
from web.errors import Problem

__all__ = ["ADMIN", "PUBLIC", "READ", "WRITE", "Auth", "public", "requires"]

#: The scope of an operation that needs no key.
PUBLIC = "public"
_REALM = 'Bearer realm="api"'


def requires(scope: str) -> Callable:
    """Decorator: the responder needs a key with ``scope`` (read, write or admin)."""

    def mark(responder):
        responder.scope = scope
        return responder

    return mark


def public(responder):
    """Decorator: the responder needs no key."""
    responder.scope = PUBLIC
    return responder


def scope_of(responder) -> str:
    """What ``responder`` needs: its declared scope, else ``admin``."""
    return getattr(responder, "scope", ADMIN)


def _unauthorized(detail: str, error: str = "") -> Problem:
    challenge = _REALM + (f', error="{error}"' if error else "")
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


class Auth:
    """Middleware: the request's key must grant the scope of its operation.

    Args:
        keys: Where keys are looked up (cached).
        scopes: ``(uri_template, METHOD)`` -> the scope it needs, for every
            responder of the app; requests that reach none (Falcon's 405,
            OPTIONS) pass.
    """

    def __init__(self, keys: KeyCache, scopes: Mapping[Tuple[str, str], str]):
        self._keys = keys
        self._scopes = scopes

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params
    ) -> None:
        req.context.api_key = None
        if resource is None:
            return
        needed = self._scopes.get((req.uri_template, req.method))
        if needed is None:
            return
        if needed == PUBLIC:
            # No key needed; a valid one still names the client (rate limits).
            token = bearer_token(req.get_header("Authorization"))
            req.context.api_key = token and self._keys.get(token)
            return
        token = bearer_token(req.get_header("Authorization"))
        if token is None:
            raise _unauthorized(
                f"This operation needs an API key with the {needed} scope: "
                "send 'Authorization: Bearer KEY'."
            )
        key = req.context.api_key = self._keys.get(token)
        if key is None:
            raise _unauthorized("The API key is unknown or revoked.", "invalid_token")
        if needed not in key.granted:
            raise Problem(
                403,
                f"The key {key.name!r} does not have the {needed} scope.",
                headers={
                    "WWW-Authenticate": _REALM
                    + f', error="insufficient_scope", scope="{needed}"'
                },
            )
