"""Retention of the SQL tables that grow with use: visits and webhook deliveries.

Each function removes one small batch of the oldest rows written before
``before`` (UTC) with one ``DELETE`` by primary key, and returns how many
went; the caller (:mod:`workers.push.retention`) calls it again until a
batch comes back short. What each table keeps, and why:
docs/operations/retention.md#how-it-prunes
"""

import datetime
from typing import List

import sqlalchemy as sa

from core.clock import naive_utc
from db.link_tables import VISITS
from db.sql import Database
from db.subscriptions import AttemptRow
from db.subscriptions import ReplayRow
from db.webhooks import FAILED
from db.webhooks import IGNORED
from db.webhooks import PROCESSED
from db.webhooks import InboundDelivery

#: Statuses of an inbound delivery that nothing will handle again.
FINISHED = (PROCESSED, IGNORED, FAILED)

_INBOUND = InboundDelivery.__table__
_ATTEMPTS = AttemptRow.__table__
_REPLAYS = ReplayRow.__table__


def _naive(moment: datetime.datetime) -> datetime.datetime:
    return naive_utc(moment) if moment.tzinfo is not None else moment


def _oldest_run(database: Database, key, time_column, before, limit: int) -> int:
    """The key of the last of the oldest rows (key order) written before ``before``.

    0 when the oldest row is not older.
    """
    query = sa.select(key, time_column).order_by(key).limit(limit)
    with database.read() as connection:
        rows = connection.execute(query).all()
    upto = 0
    for row_key, written in rows:
        if written is None or _naive(written) >= before:
            break
        upto = row_key
    return upto


def prune_visits(database: Database, before: datetime.datetime, limit: int) -> int:
    """Remove up to ``limit`` of the oldest visit rows from before ``before``."""
    before = _naive(before)
    upto = _oldest_run(database, VISITS.c.id, VISITS.c.visited_at, before, limit)
    if not upto:
        return 0
    with database.write() as connection:
        return connection.execute(
            sa.delete(VISITS).where(VISITS.c.id <= upto, VISITS.c.visited_at < before)
        ).rowcount


def prune_inbound_deliveries(
    database: Database, before: datetime.datetime, limit: int
) -> int:
    """Remove up to ``limit`` finished inbound deliveries received before ``before``."""
    before = _naive(before)
    finished = sa.and_(_INBOUND.c.status.in_(FINISHED), _INBOUND.c.received_at < before)
    with database.read() as connection:
        ids: List[int] = list(
            connection.execute(
                sa.select(_INBOUND.c.id)
                .where(finished)
                .order_by(_INBOUND.c.id)
                .limit(limit)
            ).scalars()
        )
    if not ids:
        return 0
    with database.write() as connection:
        # The condition again: a delivery's status cannot leave FINISHED,
        # but the statement should say what it removes.
        return connection.execute(
            sa.delete(_INBOUND).where(_INBOUND.c.id.in_(ids), finished)
        ).rowcount


def prune_attempts(database: Database, before: datetime.datetime, limit: int) -> int:
    """Remove up to ``limit`` of the oldest outbound attempts made before ``before``.

    Attempts of a delivery waiting for a replay stay.
    """
    before = _naive(before)
    upto = _oldest_run(database, _ATTEMPTS.c.id, _ATTEMPTS.c.at, before, limit)
    if not upto:
        return 0
    replay_waiting = (
        sa.select(_REPLAYS.c.id)
        .where(
            _REPLAYS.c.subscription_id == _ATTEMPTS.c.subscription_id,
            _REPLAYS.c.event_id == _ATTEMPTS.c.event_id,
        )
        .exists()
    )
    with database.write() as connection:
        return connection.execute(
            sa.delete(_ATTEMPTS).where(
                _ATTEMPTS.c.id <= upto,
                _ATTEMPTS.c.at < before,
                sa.not_(replay_waiting),
            )
        ).rowcount
