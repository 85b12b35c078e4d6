"""Claims held by a PostgreSQL session: which push worker delivers a subscription.

A claim is a session-level advisory lock on a connection of the claimant's
own, so PostgreSQL releases it when that session ends (the worker died):
another worker takes the subscription over at its next refresh, from the
saved cursor, with no lease to wait out. Design: docs/design/push.md#fan-out
"""

import logging
from typing import Optional
from typing import Set

import sqlalchemy as sa
from sqlalchemy import exc

from db.errors import Unavailable
from db.sql import make_engine

log = logging.getLogger(__name__)

#: The first key of every claim's lock (the second is the subscription id),
#: so that other advisory locks of the database do not collide with them.
NAMESPACE = 0x70757368  # "push"

_TRY = sa.text("SELECT pg_try_advisory_lock(:namespace, :key)")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(:namespace, :key)")


class PgClaims:
    """Subscription claims of one process, on a PostgreSQL session of its own.

    :meth:`valid` says whether the claims taken so far still hold (the
    session is alive); when it is not, they are all forgotten, and the
    caller must stop what it did under them.
    """

    def __init__(self, url: str):
        self._engine = make_engine(url)
        self._connection: Optional[sa.Connection] = None
        self._held: Set[int] = set()
        dbapi = self._engine.dialect.loaded_dbapi
        self._errors = (dbapi.Error, exc.SQLAlchemyError, OSError)

    def _session(self) -> sa.Connection:
        if self._connection is None:
            # Autocommit: the session holds the locks, no transaction stays open.
            self._connection = self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        return self._connection

    def valid(self) -> bool:
        """Whether the claims held still hold; False (and none held) if lost."""
        if self._connection is None:
            return not self._held
        try:
            self._connection.exec_driver_sql("SELECT 1")
        except self._errors as ex:
            log.warning("subscription claims lost with their session: %s", ex)
            self._drop()
            return False
        return True

    def acquire(self, key: int) -> bool:
        """Claim ``key``: True if this process holds it (now or already)."""
        if key in self._held:
            return True
        try:
            got = (
                self._session()
                .execute(_TRY, {"namespace": NAMESPACE, "key": key})
                .scalar()
            )
        except self._errors as ex:
            self._drop()
            raise Unavailable(f"subscription claims: {ex}") from ex
        if got:
            self._held.add(key)
        return bool(got)

    def release(self, key: int) -> None:
        """Let ``key`` go (its subscription is no longer delivered here)."""
        if key not in self._held:
            return
        self._held.discard(key)
        try:
            self._session().execute(_UNLOCK, {"namespace": NAMESPACE, "key": key})
        except self._errors as ex:
            log.warning("subscription claim %s not released: %s", key, ex)
            self._drop()

    def _drop(self) -> None:
        self._held.clear()
        if self._connection is not None:
            try:
                self._connection.invalidate()
            except self._errors:
                pass
            self._connection = None

    def close(self) -> None:
        """End the session: every claim is released."""
        if self._connection is not None:
            try:
                self._connection.close()
            except self._errors:
                pass
            self._connection = None
        self._held.clear()
        self._engine.dispose()
