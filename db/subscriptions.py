"""Outbound webhook subscriptions and the record of every delivery attempt.

``failure_count`` counts consecutive failed deliveries and disables the
subscription at the maximum; :meth:`SubscriptionStore.queue_replay` queues the
deliveries of a time range in ``webhook_replays`` for the push worker.

Design: docs/design/push.md#fan-out
"""

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any
from typing import List
from typing import Optional
from typing import Tuple

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.clock import as_utc
from core.clock import naive_utc
from core.clock import utc_now
from db.errors import NotFound
from db.sql import Base
from db.sql import Database

#: Patterns that stand for several types: every event, every note event.
WILDCARDS = ("*", "note.*")


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether a subscription to ``patterns`` wants an event of ``event_type``."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


class SubscriptionRow(Base):
    """One outbound subscription."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2048))
    events: Mapped[Any] = mapped_column(sa.JSON)
    secret: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    failure_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime)
    disabled_at: Mapped[Optional[datetime.datetime]] = mapped_column(sa.DateTime)
    last_delivery_at: Mapped[Optional[datetime.datetime]] = mapped_column(sa.DateTime)


class AttemptRow(Base):
    """One HTTP attempt to deliver one event to one subscription."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        sa.Index("ix_webhook_attempts_subscription", "subscription_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(sa.String(200))
    event_type: Mapped[str] = mapped_column(sa.String(200))
    attempt: Mapped[int]
    at: Mapped[datetime.datetime] = mapped_column(sa.DateTime)
    status_code: Mapped[Optional[int]]
    latency_ms: Mapped[float]
    error: Mapped[Optional[str]] = mapped_column(sa.String(500))
    delivered: Mapped[bool]
    replay: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class ReplayRow(Base):
    """A delivery waiting to be made again (``POST /subscriptions/{id}/replay``)."""

    __tablename__ = "webhook_replays"
    __table_args__ = (
        sa.Index("ix_webhook_replays_subscription", "subscription_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(sa.String(200))
    event_type: Mapped[str] = mapped_column(sa.String(200))
    requested_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime)


@dataclasses.dataclass(frozen=True)
class Subscription:
    """A subscription as the API and the sender see it (``secret`` included)."""

    id: int
    url: str
    events: List[str]
    secret: str = dataclasses.field(repr=False)
    active: bool
    failure_count: int
    created_at: datetime.datetime
    disabled_at: Optional[datetime.datetime]
    last_delivery_at: Optional[datetime.datetime]

    def wants(self, event_type: str) -> bool:
        """Whether this subscription asked for events of ``event_type``."""
        return matches(self.events, event_type)


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One recorded delivery attempt."""

    id: int
    subscription_id: int
    event_id: str
    event_type: str
    attempt: int
    at: datetime.datetime
    status_code: Optional[int]
    latency_ms: float
    error: Optional[str]
    delivered: bool
    replay: bool = False


@dataclasses.dataclass(frozen=True)
class Replay:
    """A queued replay: deliver event ``event_id`` to the subscription again."""

    id: int
    subscription_id: int
    event_id: str
    event_type: str


@dataclasses.dataclass(frozen=True)
class ReplayQueued:
    """What :meth:`SubscriptionStore.queue_replay` did."""

    #: Deliveries queued by this call.
    queued: int
    #: Replays of the subscription waiting in all (this call's included).
    pending: int
    #: When more deliveries matched than one call queues: the first time of
    #: those left out (call again with it as ``since``); else None.
    next_since: Optional[datetime.datetime]


def _subscription(row: SubscriptionRow) -> Subscription:
    return Subscription(
        id=row.id,
        url=row.url,
        events=list(row.events),
        secret=row.secret,
        active=row.active,
        failure_count=row.failure_count,
        created_at=as_utc(row.created_at),
        disabled_at=as_utc(row.disabled_at),
        last_delivery_at=as_utc(row.last_delivery_at),
    )


def _attempt(row: AttemptRow) -> Attempt:
    return Attempt(
        id=row.id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        attempt=row.attempt,
        at=as_utc(row.at),
        status_code=row.status_code,
        latency_ms=row.latency_ms,
        error=row.error,
        delivered=row.delivered,
        replay=bool(row.replay),
    )


#: Most deliveries one replay request queues (the rest: ``next_since``).
MAX_REPLAY = 10000


class SubscriptionStore:
    """Subscriptions and their delivery attempts on the SQL database."""

    def __init__(self, database: Database):
        self._db = database

    def create(self, url: str, events: Sequence[str], secret: str) -> Subscription:
        """Store a new, active subscription."""
        row = SubscriptionRow(
            url=url,
            events=list(events),
            secret=secret,
            active=True,
            failure_count=0,
            created_at=naive_utc(utc_now()),
        )
        with self._db.session() as session:
            session.add(row)
            session.flush()
            return _subscription(row)

    def get(self, subscription_id: int) -> Subscription:
        """The subscription ``subscription_id``; NotFound if there is none."""
        with self._db.session(write=False) as session:
            return _subscription(self._row(session, subscription_id))

    def page(
        self, limit: int, after: Optional[int] = None
    ) -> Tuple[List[Subscription], Optional[int]]:
        """Oldest first: up to ``limit`` subscriptions after the cursor; next cursor."""
        query = sa.select(SubscriptionRow).order_by(SubscriptionRow.id)
        if after is not None:
            query = query.where(SubscriptionRow.id > after)
        with self._db.session(write=False) as session:
            rows = session.scalars(query.limit(limit + 1)).all()
            items = [_subscription(row) for row in rows[:limit]]
        return items, (items[-1].id if len(rows) > limit else None)

    def update(
        self,
        subscription_id: int,
        url: Optional[str] = None,
        events: Optional[Sequence[str]] = None,
        active: Optional[bool] = None,
    ) -> Subscription:
        """Change the given fields. Re-enabling resets the failure count."""
        with self._db.session() as session:
            row = self._row(session, subscription_id)
            if url is not None:
                row.url = url
            if events is not None:
                row.events = list(events)
            if active is True and not row.active:
                row.active, row.failure_count, row.disabled_at = True, 0, None
            elif active is False and row.active:
                row.active, row.disabled_at = False, naive_utc(utc_now())
            session.flush()
            return _subscription(row)

    def delete(self, subscription_id: int) -> None:
        """Delete the subscription and its attempts; NotFound if there is none."""
        with self._db.session() as session:
            for table in (AttemptRow, ReplayRow):
                session.execute(
                    sa.delete(table).where(table.subscription_id == subscription_id)
                )
            result = session.execute(
                sa.delete(SubscriptionRow).where(SubscriptionRow.id == subscription_id)
            )
            if result.rowcount != 1:
                raise NotFound(f"No subscription {subscription_id}.")

    def matching(self, event_type: str) -> List[Subscription]:
        """The active subscriptions that want ``event_type``, oldest first."""
        with self._db.session(write=False) as session:
            rows = session.scalars(
                sa.select(SubscriptionRow)
                .where(SubscriptionRow.active.is_(True))
                .order_by(SubscriptionRow.id)
            ).all()
            return [
                _subscription(row) for row in rows if matches(row.events, event_type)
            ]

    # The sender's side -------------------------------------------------------

    def record_attempt(
        self,
        subscription_id: int,
        event_id: str,
        event_type: str,
        attempt: int,
        status_code: Optional[int],
        latency_ms: float,
        error: Optional[str],
        delivered: bool,
        replay: bool = False,
    ) -> Attempt:
        """Store one attempt; NotFound if the subscription was deleted meanwhile.

        ``replay``: the attempt belongs to a replayed delivery.
        """
        with self._db.session() as session:
            self._row(session, subscription_id)
            row = AttemptRow(
                subscription_id=subscription_id,
                event_id=event_id,
                event_type=event_type,
                attempt=attempt,
                at=naive_utc(utc_now()),
                status_code=status_code,
                latency_ms=latency_ms,
                error=None if error is None else error[:500],
                delivered=delivered,
                replay=replay,
            )
            session.add(row)
            session.flush()
            return _attempt(row)

    def record_delivery(
        self, subscription_id: int, delivered: bool, max_failures: int
    ) -> Subscription:
        """Count a finished delivery: success resets the failure count, failure adds 1.

        The subscription is disabled when ``max_failures`` deliveries in a row
        have failed. The count is changed in SQL (``failure_count + 1``), so
        concurrent senders do not lose an increment.
        """
        now = naive_utc(utc_now())
        with self._db.session() as session:
            self._row(session, subscription_id)
            row_id = SubscriptionRow.id == subscription_id
            if delivered:
                values = {"failure_count": 0}
            else:
                values = {"failure_count": SubscriptionRow.failure_count + 1}
            session.execute(
                sa.update(SubscriptionRow)
                .where(row_id)
                .values(last_delivery_at=now, **values)
            )
            if not delivered:
                session.execute(
                    sa.update(SubscriptionRow)
                    .where(
                        row_id,
                        SubscriptionRow.active.is_(True),
                        SubscriptionRow.failure_count >= max_failures,
                    )
                    .values(active=False, disabled_at=now)
                )
            session.expire_all()
            return _subscription(self._row(session, subscription_id))

    def attempts(
        self, subscription_id: int, limit: int, before: Optional[int] = None
    ) -> Tuple[List[Attempt], Optional[int]]:
        """Newest first: up to ``limit`` attempts older than the cursor; next cursor."""
        query = (
            sa.select(AttemptRow)
            .where(AttemptRow.subscription_id == subscription_id)
            .order_by(AttemptRow.id.desc())
        )
        if before is not None:
            query = query.where(AttemptRow.id < before)
        with self._db.session(write=False) as session:
            self._row(session, subscription_id)
            rows = session.scalars(query.limit(limit + 1)).all()
            items = [_attempt(row) for row in rows[:limit]]
        return items, (items[-1].id if len(rows) > limit else None)

    # Replays ----------------------------------------------------------------

    def queue_replay(
        self,
        subscription_id: int,
        since: datetime.datetime,
        until: datetime.datetime,
        only_failed: bool = False,
        limit: int = MAX_REPLAY,
    ) -> ReplayQueued:
        """Queue a new delivery of each delivery first made in ``[since, until]``.

        In the order they were first made; ``only_failed``: only those that
        never succeeded. A delivery already waiting to be replayed is not
        queued twice. At most ``limit`` per call. NotFound if there is no
        such subscription.
        """
        first_at = sa.func.min(AttemptRow.at)
        waiting = sa.select(ReplayRow.event_id).where(
            ReplayRow.subscription_id == subscription_id
        )
        query = (
            sa.select(AttemptRow.event_id, AttemptRow.event_type, first_at)
            .where(
                AttemptRow.subscription_id == subscription_id,
                AttemptRow.event_id.not_in(waiting),
            )
            .group_by(AttemptRow.event_id, AttemptRow.event_type)
            .having(first_at >= naive_utc(since), first_at <= naive_utc(until))
            .order_by(sa.func.min(AttemptRow.id))
            .limit(limit + 1)
        )
        if only_failed:
            succeeded = sa.func.max(sa.case((AttemptRow.delivered, 1), else_=0))
            query = query.having(succeeded == 0)
        now = naive_utc(utc_now())
        with self._db.session() as session:
            self._row(session, subscription_id)
            found = session.execute(query).all()
            chosen = found[:limit]
            if chosen:
                session.execute(
                    sa.insert(ReplayRow),
                    [
                        {
                            "subscription_id": subscription_id,
                            "event_id": event_id,
                            "event_type": event_type,
                            "requested_at": now,
                        }
                        for event_id, event_type, _ in chosen
                    ],
                )
            pending = session.scalar(
                sa.select(sa.func.count())
                .select_from(ReplayRow)
                .where(ReplayRow.subscription_id == subscription_id)
            )
        next_since = as_utc(found[limit][2]) if len(found) > limit else None
        return ReplayQueued(len(chosen), pending, next_since)

    def replays_waiting(self) -> List[int]:
        """The ids of the subscriptions that have replays waiting."""
        with self._db.session(write=False) as session:
            return list(
                session.scalars(
                    sa.select(ReplayRow.subscription_id)
                    .distinct()
                    .order_by(ReplayRow.subscription_id)
                )
            )

    def pending_replays(self, subscription_id: int, limit: int = 100) -> List[Replay]:
        """The oldest ``limit`` replays waiting for ``subscription_id``, in order."""
        with self._db.session(write=False) as session:
            rows = session.scalars(
                sa.select(ReplayRow)
                .where(ReplayRow.subscription_id == subscription_id)
                .order_by(ReplayRow.id)
                .limit(limit)
            ).all()
            return [
                Replay(row.id, row.subscription_id, row.event_id, row.event_type)
                for row in rows
            ]

    def replay_done(self, replay_id: int) -> None:
        """Forget a replay once its delivery is over (delivered or given up)."""
        with self._db.session() as session:
            session.execute(sa.delete(ReplayRow).where(ReplayRow.id == replay_id))

    @staticmethod
    def _row(session, subscription_id: int) -> SubscriptionRow:
        row = session.get(SubscriptionRow, subscription_id)
        if row is None:
            raise NotFound(f"No subscription {subscription_id}.")
        return row
