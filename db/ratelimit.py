"""Token buckets of the rate limits, shared by every process through the SQL database.

One row per bucket (``rate_limits``); taking a token is one conditional
``UPDATE`` that refills in SQL, so concurrent workers never take more than
the bucket held. A client's first request inserts its row; rows untouched for
a whole window (full buckets) are deleted now and then.
"""

import hashlib
import time
from typing import Callable
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.ratelimit import Decision
from core.ratelimit import Rate
from db.errors import Unavailable
from db.sql import Base
from db.sql import Database


class RateLimitRow(Base):
    """One client's bucket of one policy; ``key`` is a hash, never the client."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(sa.Double)
    updated: Mapped[float] = mapped_column(sa.Double, index=True)


_TABLE = RateLimitRow.__table__
_NOW = sa.bindparam("now", type_=sa.Double)
_PER_SECOND = sa.bindparam("per_second", type_=sa.Double)
_QUOTA = sa.bindparam("quota", type_=sa.Double)
_COST = sa.bindparam("cost", type_=sa.Double)
# What the bucket holds now: its tokens plus the refill since its update,
# at most the quota (no negative time if another process's clock was ahead).
_ELAPSED = sa.case((_NOW > _TABLE.c.updated, _NOW - _TABLE.c.updated), else_=0.0)
_REFILLED = sa.case(
    (
        _TABLE.c.tokens + _ELAPSED * _PER_SECOND > _QUOTA,
        _QUOTA,
    ),
    else_=_TABLE.c.tokens + _ELAPSED * _PER_SECOND,
)
_KEY = _TABLE.c.key == sa.bindparam("bucket")
_TAKE = (
    sa.update(_TABLE)
    .where(_KEY, _REFILLED >= _COST)
    .values(tokens=_REFILLED - _COST, updated=_NOW)
    .returning(_TABLE.c.tokens)
)
_PEEK = sa.select(_REFILLED).where(_KEY)
_PRUNE = sa.delete(_TABLE).where(_TABLE.c.updated < sa.bindparam("before"))


def bucket_key(policy: str, client: str) -> str:
    """The row key of ``client``'s bucket under ``policy`` (a SHA-256, hex)."""
    return hashlib.sha256(f"{policy}\n{client}".encode()).hexdigest()


class RateLimitStore:
    """Token buckets in the ``rate_limits`` table.

    Args:
        database: The shared SQL handle.
        clock: Unix seconds (``time.time``; tests pass their own).
        prune_every: Seconds between two deletions of full buckets (per process).
    """

    def __init__(
        self,
        database: Database,
        clock: Callable[[], float] = time.time,
        prune_every: float = 60.0,
    ):
        self._db = database
        self._clock = clock
        self._prune_every = prune_every
        self._pruned_at: Optional[float] = None

    def take(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens from bucket ``key`` if it holds them; the decision.

        Raises:
            Unavailable: the database is down.
        """
        for _ in range(3):
            try:
                with self._db.write() as connection:
                    return self._take(connection, key, rate, cost)
            except exc.IntegrityError:
                continue  # another process created the row first: update it
        raise Unavailable("rate limit bucket could not be updated")

    def _take(
        self, connection: sa.Connection, key: str, rate: Rate, cost: float
    ) -> Decision:
        now = self._clock()
        params = {
            "bucket": key,
            "now": now,
            "per_second": rate.per_second,
            "quota": float(rate.quota),
            "cost": cost,
        }
        self._prune(connection, rate, now)
        left = connection.execute(_TAKE, params).scalar()
        if left is not None:
            return Decision.of(rate, left, allowed=True)
        held = connection.execute(_PEEK, params).scalar()
        if held is not None:
            return Decision.of(rate, held, allowed=False)
        left = rate.quota - cost
        if left < 0:  # more than a full bucket: never allowed
            return Decision.of(rate, float(rate.quota), allowed=False)
        connection.execute(
            sa.insert(_TABLE), {"key": key, "tokens": left, "updated": now}
        )
        return Decision.of(rate, left, allowed=True)

    def _prune(self, connection: sa.Connection, rate: Rate, now: float) -> None:
        if self._pruned_at is not None and now - self._pruned_at < self._prune_every:
            return
        self._pruned_at = now
        # Untouched for a whole window: full again, the same as no row.
        connection.execute(_PRUNE, {"before": now - rate.window})
