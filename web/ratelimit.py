"""Per-client rate limits: a token bucket per client, shared by every worker.

:class:`RateLimit` is middleware that takes a token before the responder runs
(a 429 problem when none is left). The client is its checked API key, else its
address, stored only as a hash; when the database is down requests go through
unlimited, since a limit protects the service and is no reason to refuse all.

Usage: docs/user/links.md#rate-limits
"""

import logging
from typing import Any
from typing import Callable

import falcon

from core.ratelimit import Rate
from core.ratelimit import limit_header
from core.ratelimit import policy_header
from core.ratelimit import whole_seconds
from db.errors import Unavailable
from db.ratelimit import RateLimitStore
from db.ratelimit import bucket_key
from web.errors import Problem

log = logging.getLogger(__name__)

#: Methods that write (``RATE_LIMIT_SCOPE=writes`` limits them all).
WRITE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
#: ``RATE_LIMIT_SCOPE`` values.
SCOPES = ("links", "writes")


class RateLimit:
    """Middleware that limits each client's requests to ``rate``.

    Args:
        store: Where the buckets are.
        rate: The limit.
        name: The policy's name, in the headers and the buckets' keys.
        applies: ``applies(method, resource)``: whether such a request
            takes a token.
    """

    def __init__(
        self,
        store: RateLimitStore,
        rate: Rate,
        name: str,
        applies: Callable[[str, Any], bool],
    ):
        self._store = store
        self._rate = rate
        self.name = name
        self.applies = applies
        self.policy = policy_header(name, rate)

    @staticmethod
    def client(req: falcon.Request) -> str:
        """Who the request counts for: its API key, else the client's address.

        Never a value the client picks: a key counts only once
        :class:`web.auth.Auth` has checked it, and ``X-Forwarded-For`` only
        when a trusted proxy sent it (:class:`web.middleware.ClientAddress`).
        """
        key = getattr(req.context, "api_key", None)
        if key is not None:
            return f"key:{key.id}"
        return "addr:" + (req.remote_addr or "")

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params
    ) -> None:
        if resource is None or not self.applies(req.method, resource):
            return
        key = bucket_key(self.name, self.client(req))
        try:
            decision = self._store.take(key, self._rate)
        except Unavailable as ex:
            log.warning("rate limit not checked (%s): request let through", ex)
            return
        headers = {
            "RateLimit-Policy": self.policy,
            "RateLimit": limit_header(self.name, decision),
        }
        if not decision.allowed:
            wait = max(1, whole_seconds(decision.retry_after))
            headers["Retry-After"] = str(wait)
            raise Problem(
                429,
                f"Too many requests: this client may send {self._rate.quota} "
                f"per {self._rate.window} s. Try again in {wait} s.",
                headers=headers,
            )
        resp.set_headers(headers)
