"""Rate limits: the ``RATE_LIMIT`` setting, the token bucket's arithmetic, the headers.

``100/minute`` is a bucket of 100 tokens per client refilled continuously at
100 per 60 s; the headers are draft-ietf-httpapi-ratelimit-headers' (revision
10). No I/O: the buckets live in the database (:mod:`db.ratelimit`).

Usage: docs/user/links.md#rate-limits
"""

import dataclasses
import math
import re
from typing import Optional

#: Window names a ``RATE_LIMIT`` may use, in seconds.
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"\A\s*(\d{1,9})\s*/\s*([a-z]+?)s?\s*\Z")


@dataclasses.dataclass(frozen=True)
class Rate:
    """``quota`` requests per ``window`` seconds (the bucket's size and refill)."""

    quota: int
    window: int

    @property
    def per_second(self) -> float:
        """Tokens that come back per second."""
        return self.quota / self.window

    def refill(self, tokens: float, elapsed: float) -> float:
        """Tokens in a bucket that held ``tokens`` ``elapsed`` seconds ago."""
        return min(float(self.quota), tokens + max(0.0, elapsed) * self.per_second)

    def seconds_until(self, tokens: float, wanted: float) -> float:
        """Seconds until a bucket holding ``tokens`` holds ``wanted``."""
        return max(0.0, (min(wanted, self.quota) - tokens) / self.per_second)


def parse_rate(text: str) -> Optional[Rate]:
    """``100/minute``, ``5/second``, ``1000/hour``, ``10000/day`` (plural too).

    Empty or ``off`` means no limit (None): an empty setting takes its default,
    so ``off`` is how a limit on by default is turned off. Raises ValueError
    with a message naming the setting for anything else.
    """
    if not text or not text.strip() or text.strip().lower() == "off":
        return None
    match = _RATE.match(text.lower())
    if match is None or match.group(2) not in UNITS or int(match.group(1)) < 1:
        raise ValueError(
            f"RATE_LIMIT must look like 100/minute or 5/second (a count from 1 "
            f"and one of {', '.join(UNITS)}) or be off, got {text!r}"
        )
    return Rate(int(match.group(1)), UNITS[match.group(2)])


@dataclasses.dataclass(frozen=True)
class Decision:
    """What a bucket said to one request."""

    allowed: bool
    #: Whole tokens left after this request (what another request may take now).
    remaining: int
    #: Seconds until the bucket is full again.
    reset: float
    #: Seconds until the next request is allowed (0 when it is now).
    retry_after: float

    @classmethod
    def of(cls, rate: Rate, tokens: float, allowed: bool) -> "Decision":
        """The decision for a bucket left with ``tokens`` (after this request)."""
        return cls(
            allowed=allowed,
            remaining=max(0, int(math.floor(tokens + 1e-9))),
            reset=rate.seconds_until(tokens, rate.quota),
            retry_after=rate.seconds_until(tokens, 1.0),
        )


def policy_header(name: str, rate: Rate) -> str:
    """The ``RateLimit-Policy`` field: ``"name";q=<quota>;w=<window>``."""
    return f'"{name}";q={rate.quota};w={rate.window}'


def limit_header(name: str, decision: Decision) -> str:
    """The ``RateLimit`` field: ``"name";r=<remaining>;t=<seconds>``.

    ``t`` is when the bucket is full again, or, when nothing remains, when
    the next request is allowed; whole seconds, rounded up.
    """
    seconds = decision.retry_after if decision.remaining == 0 else decision.reset
    return f'"{name}";r={decision.remaining};t={whole_seconds(seconds)}'


def whole_seconds(seconds: float) -> int:
    """Seconds rounded up, so that a client that waits them is not early."""
    return max(0, int(math.ceil(seconds - 1e-9)))
