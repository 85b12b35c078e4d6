"""Inbound webhook deliveries: stored before they are answered, handled later.

``pending`` -> ``processing`` -> ``processed`` or ``failed`` (``ignored``
without a handler); runners claim due deliveries with a conditional UPDATE and
a lease, and ``due_at`` holds when a pending one may be tried or a lease ends.
"""

import dataclasses
import datetime
from typing import Any
from typing import List
from typing import Optional
from typing import Tuple

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.clock import as_utc
from core.clock import naive_utc
from core.clock import utc_now
from db.errors import Conflict
from db.errors import NotFound
from db.pg_wakeups import NOTIFY_DELIVERIES
from db.sql import Base
from db.sql import Database

PENDING = "pending"
PROCESSING = "processing"
PROCESSED = "processed"
IGNORED = "ignored"
FAILED = "failed"
STATUSES = (PENDING, PROCESSING, PROCESSED, IGNORED, FAILED)


class InboundDelivery(Base):
    """One webhook received from a configured source."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("source", "delivery_id", name="uq_webhook_delivery"),
        sa.Index("ix_webhook_deliveries_due", "status", "due_at"),
        # One delivery per body and source holds the body's hash: the replay
        # check is this index, so two copies at once cannot both pass.
        sa.Index("uq_webhook_delivery_body", "source", "body_sha256", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    delivery_id: Mapped[str] = mapped_column(sa.String(200))
    event: Mapped[str] = mapped_column(sa.String(200))
    payload: Mapped[Any] = mapped_column(sa.JSON)
    received_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[Optional[datetime.datetime]] = mapped_column(sa.DateTime)
    handled_at: Mapped[Optional[datetime.datetime]] = mapped_column(sa.DateTime)
    outcome: Mapped[Optional[Any]] = mapped_column(sa.JSON)
    # SHA-256 of the raw body, for the replay check of senders that sign no
    # timestamp (GitHub); NULL where it is not kept, and once the body is
    # older than the replay window and came again.
    body_sha256: Mapped[Optional[str]] = mapped_column(sa.String(64))


@dataclasses.dataclass(frozen=True)
class Delivery:
    """A stored delivery as the resources and the handlers see it."""

    pk: int
    source: str
    delivery_id: str
    event: str
    payload: Any
    received_at: datetime.datetime
    status: str
    attempts: int
    handled_at: Optional[datetime.datetime]
    outcome: Any


def _view(row: InboundDelivery) -> Delivery:
    return Delivery(
        pk=row.id,
        source=row.source,
        delivery_id=row.delivery_id,
        event=row.event,
        payload=row.payload,
        received_at=as_utc(row.received_at),
        status=row.status,
        attempts=row.attempts,
        handled_at=as_utc(row.handled_at),
        outcome=row.outcome,
    )


def _forget_body(source: str, body_sha256: str, since: datetime.datetime):
    """An UPDATE: the delivery holding this body before ``since`` lets go of it.

    On PostgreSQL a concurrent copy waits for the row's lock, then finds the
    hash gone and fails on the unique index; SQLite runs writers one by one.
    """
    return (
        sa.update(InboundDelivery)
        .where(
            InboundDelivery.source == source,
            InboundDelivery.body_sha256 == body_sha256,
            InboundDelivery.received_at < since,
        )
        .values(body_sha256=None)
    )


class WebhookStore:
    """Inbound deliveries on the SQL database."""

    def __init__(self, database: Database):
        self._db = database

    def receive(
        self,
        source: str,
        delivery_id: str,
        event: str,
        payload: Any,
        handled: bool,
        body_sha256: Optional[str] = None,
        replay_window: float = 0.0,
    ) -> Tuple[Delivery, bool]:
        """Store a delivery once; returns ``(delivery, created)``.

        ``handled`` says whether a handler exists: the delivery is stored as
        pending (to be handled) or as ignored. A delivery id already stored
        for ``source`` is not stored again: the first one is returned with
        ``created`` False, even when two arrive at the same moment.

        With ``body_sha256`` and a ``replay_window`` (seconds), a body that
        ``source`` sent within the window under another delivery id is a
        replay: Conflict, nothing stored. The database decides it: a unique
        index holds one delivery per source and body hash, and the delivery
        that held it before the window is made to let go in the transaction
        that stores the new one; of copies sent at once, one is stored.
        """
        existing = self.find(source, delivery_id)
        if existing is not None:
            return existing, False
        now = naive_utc(utc_now())
        if replay_window <= 0:
            body_sha256 = None
        row = InboundDelivery(
            source=source,
            delivery_id=delivery_id,
            event=event,
            payload=payload,
            received_at=now,
            status=PENDING if handled else IGNORED,
            attempts=0,
            due_at=now if handled else None,
            handled_at=None if handled else now,
            outcome=None if handled else {"ignored": f"no handler for {event!r}"},
            body_sha256=body_sha256,
        )
        try:
            with self._db.session() as session:
                if body_sha256 is not None:
                    since = now - datetime.timedelta(seconds=replay_window)
                    session.execute(_forget_body(source, body_sha256, since))
                session.add(row)
                session.flush()
                created = _view(row)
                if handled and self._db.engine.dialect.name == "postgresql":
                    session.execute(NOTIFY_DELIVERIES)  # the runners', on commit
        except exc.IntegrityError:
            # Lost the race against the same delivery arriving concurrently,
            # or against the same body under another id (a replay).
            existing = self.find(source, delivery_id)
            if existing is not None:
                return existing, False
            earlier = body_sha256 and self._holder_of(source, body_sha256)
            if not earlier:
                raise
            raise Conflict(
                f"The same body came as delivery {earlier!r} less than "
                f"{replay_window:g} s ago: a replay is not handled again.",
                replay_of=earlier,
            ) from None
        return created, True

    def _holder_of(self, source: str, body_sha256: str) -> Optional[str]:
        """The delivery id that holds ``body_sha256`` for ``source``, if one does."""
        with self._db.session(write=False) as session:
            return session.scalars(
                sa.select(InboundDelivery.delivery_id).where(
                    InboundDelivery.source == source,
                    InboundDelivery.body_sha256 == body_sha256,
                )
            ).first()

    def find(self, source: str, delivery_id: str) -> Optional[Delivery]:
        """The delivery ``delivery_id`` from ``source``, or None."""
        with self._db.session(write=False) as session:
            row = session.scalars(
                sa.select(InboundDelivery).where(
                    InboundDelivery.source == source,
                    InboundDelivery.delivery_id == delivery_id,
                )
            ).one_or_none()
            return None if row is None else _view(row)

    def get(self, pk: int) -> Delivery:
        """The delivery with primary key ``pk``; NotFound if there is none."""
        with self._db.session(write=False) as session:
            row = session.get(InboundDelivery, pk)
            if row is None:
                raise NotFound(f"No delivery {pk}.")
            return _view(row)

    def page(
        self,
        limit: int,
        before: Optional[int] = None,
        source: Optional[str] = None,
        status: Optional[str] = None,
    ) -> Tuple[List[Delivery], Optional[int]]:
        """Newest first: up to ``limit`` deliveries older than the cursor ``before``.

        Returns the deliveries and the cursor of the next page (None on the last).
        """
        query = sa.select(InboundDelivery).order_by(InboundDelivery.id.desc())
        if before is not None:
            query = query.where(InboundDelivery.id < before)
        if source is not None:
            query = query.where(InboundDelivery.source == source)
        if status is not None:
            query = query.where(InboundDelivery.status == status)
        with self._db.session(write=False) as session:
            rows = session.scalars(query.limit(limit + 1)).all()
            items = [_view(row) for row in rows[:limit]]
        return items, (items[-1].pk if len(rows) > limit else None)

    # The handler runner's side ------------------------------------------------

    def claim_due(
        self,
        lease_seconds: float,
        limit: int = 10,
        now: Optional[datetime.datetime] = None,
    ) -> List[Delivery]:
        """Claim up to ``limit`` deliveries that are due, oldest first.

        Due: pending and past ``due_at``, or processing with an expired lease
        (its runner died). Each claim sets ``processing``, a new lease and one
        more attempt, with an UPDATE that only succeeds if nobody claimed the
        row in between; the returned deliveries carry the new attempt number,
        which :meth:`finish` and :meth:`retry_later` check.
        """
        now = now or naive_utc(utc_now())
        due = sa.and_(
            InboundDelivery.status.in_((PENDING, PROCESSING)),
            InboundDelivery.due_at <= now,
        )
        claimed = []
        with self._db.session() as session:
            candidates = session.execute(
                sa.select(InboundDelivery.id, InboundDelivery.attempts)
                .where(due)
                .order_by(InboundDelivery.id)
                .limit(limit)
            ).all()
            lease_end = now + datetime.timedelta(seconds=lease_seconds)
            for pk, attempts in candidates:
                result = session.execute(
                    sa.update(InboundDelivery)
                    .where(
                        InboundDelivery.id == pk,
                        InboundDelivery.attempts == attempts,
                        due,
                    )
                    .values(status=PROCESSING, due_at=lease_end, attempts=attempts + 1)
                )
                if result.rowcount == 1:
                    claimed.append(pk)
        return [self.get(pk) for pk in claimed]

    def finish(
        self,
        claim: Delivery,
        status: str,
        outcome: Any,
        now: Optional[datetime.datetime] = None,
    ) -> bool:
        """Record the final ``status`` (processed or failed) and ``outcome`` of a claim.

        Returns False (and changes nothing) when the claim was lost: its lease
        ran out and another runner took the delivery.
        """
        if status not in (PROCESSED, FAILED):
            raise ValueError(f"not a final status: {status}")
        now = now or naive_utc(utc_now())
        return self._update_claim(
            claim, status=status, outcome=outcome, handled_at=now, due_at=None
        )

    def retry_later(
        self, claim: Delivery, outcome: Any, due_at: datetime.datetime
    ) -> bool:
        """Put a claimed delivery back to pending, to be tried again at ``due_at``."""
        return self._update_claim(
            claim, status=PENDING, outcome=outcome, due_at=naive_utc(due_at)
        )

    def _update_claim(self, claim: Delivery, **values) -> bool:
        with self._db.session() as session:
            result = session.execute(
                sa.update(InboundDelivery)
                .where(
                    InboundDelivery.id == claim.pk,
                    InboundDelivery.status == PROCESSING,
                    InboundDelivery.attempts == claim.attempts,
                )
                .values(**values)
            )
            return result.rowcount == 1
