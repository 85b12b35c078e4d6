"""Per-client rate limits: a token bucket per client, shared by every worker.

:class:`RateLimit` is middleware. For the requests it limits (``POST`` to
the resources registered with :meth:`RateLimit.limit_creation`, or every
write when ``every_write``) it takes a token from the client's bucket in the
database (:class:`db.ratelimits.RateLimitStore`) before the responder runs:

- allowed: the answer carries ``RateLimit-Policy`` and ``RateLimit``;
- refused: a 429 problem with the same two headers and ``Retry-After``.

The client is the value of ``key_header`` when one is configured and sent
(an API key), else the connection's address. Nothing of it is stored but a
hash. When the database cannot be reached the request goes through
unlimited (and the store it needs will answer for itself): a limit protects
the service, it is not a reason to refuse everything.
"""

import logging
from typing import Any
from typing import Set

import falcon

from core.ratelimit import Rate
from core.ratelimit import limit_header
from core.ratelimit import policy_header
from core.ratelimit import whole_seconds
from db.errors import Unavailable
from db.ratelimits import RateLimitStore
from db.ratelimits import bucket_key
from web.errors import Problem

log = logging.getLogger(__name__)

#: Methods that write; ``every_write`` limits them all.
WRITE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
#: ``RATE_LIMIT_SCOPE`` values.
SCOPES = ("links", "writes")
_MAX_KEY = 256


class RateLimit:
    """Middleware that limits each client's requests to ``rate``.

    Args:
        store: Where the buckets are.
        rate: The limit (``RATE_LIMIT``).
        scope: ``links`` (link creation) or ``writes`` (every write); also
            the policy's name in the headers.
        key_header: Header whose value names the client (``X-API-Key``);
            empty: the client's address only.
    """

    def __init__(
        self, store: RateLimitStore, rate: Rate, scope: str, key_header: str = ""
    ):
        if scope not in SCOPES:
            raise ValueError(
                f"RATE_LIMIT_SCOPE must be one of {', '.join(SCOPES)}, got {scope!r}"
            )
        self._store = store
        self._rate = rate
        self.scope = scope
        self._key_header = key_header.strip()
        self._creators: Set[int] = set()
        self.policy = policy_header(scope, rate)

    def limit_creation(self, resource: Any) -> None:
        """Limit the ``POST`` requests ``resource`` answers (link creation)."""
        self._creators.add(id(resource))

    def applies(self, method: str, resource: Any) -> bool:
        """Whether a ``method`` request to ``resource`` takes a token."""
        if self.scope == "writes":
            return method in WRITE_METHODS
        return method == "POST" and id(resource) in self._creators

    def client(self, req: falcon.Request) -> str:
        """Who the request counts for: ``key:<API key>`` or ``addr:<address>``."""
        if self._key_header:
            value = req.get_header(self._key_header)
            if value:
                return "key:" + value[:_MAX_KEY]
        return "addr:" + (req.remote_addr or "")

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params
    ) -> None:
        if resource is None or not self.applies(req.method, resource):
            return
        key = bucket_key(self.scope, self.client(req))
        try:
            decision = self._store.take(key, self._rate)
        except Unavailable as ex:
            log.warning("rate limit not checked (%s): request let through", ex)
            return
        headers = {
            "RateLimit-Policy": self.policy,
            "RateLimit": limit_header(self.scope, decision),
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
