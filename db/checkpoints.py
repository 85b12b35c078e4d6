"""How far the push worker has forwarded the change stream: named checkpoints.

One row per consumer in ``push_checkpoints``: the last ``seq`` it has
handled. The worker's own stream (ZeroMQ PUB) is the consumer ``push``;
each webhook subscription has one of its own (``webhook:<id>``), so a
subscription that lags behind, or was down, resumes from its own position.
The table lives in the SQL database of ``DATABASE_URL`` whichever notes
store is in use; every save is one committed transaction.
"""

import datetime
from typing import Dict
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.clock import utc_now
from db.sql import Base
from db.sql import Database


class PushCheckpointRow(Base):
    """The last ``seq`` one consumer of the change stream has handled."""

    __tablename__ = "push_checkpoints"

    consumer: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True))


class CheckpointStore:
    """Load, save and forget consumers' checkpoints (raises Unavailable when down)."""

    def __init__(self, database: Database):
        self._db = database

    def load(self, consumer: str) -> Optional[int]:
        """The saved ``seq`` of ``consumer``; None if it has none."""
        with self._db.session(write=False) as session:
            row = session.get(PushCheckpointRow, consumer)
            return None if row is None else row.seq

    def load_prefix(self, prefix: str) -> Dict[str, int]:
        """Every consumer whose name starts with ``prefix``, with its ``seq``."""
        query = sa.select(PushCheckpointRow.consumer, PushCheckpointRow.seq).where(
            PushCheckpointRow.consumer.startswith(prefix, autoescape=True)
        )
        with self._db.session(write=False) as session:
            return {name: seq for name, seq in session.execute(query)}

    def save(self, consumer: str, seq: int) -> None:
        """Set the checkpoint of ``consumer`` to ``seq`` (an upsert)."""
        table = PushCheckpointRow.__table__
        now = utc_now()
        update = (
            sa.update(table)
            .where(table.c.consumer == consumer)
            .values(seq=seq, updated_at=now)
        )
        for _ in range(2):
            try:
                with self._db.session() as session:
                    if session.execute(update).rowcount == 1:
                        return
                    session.execute(
                        sa.insert(table).values(
                            consumer=consumer, seq=seq, updated_at=now
                        )
                    )
                    return
            except exc.IntegrityError:
                continue  # someone inserted it first: update it now
        raise RuntimeError(f"checkpoint {consumer!r}: neither updated nor inserted")

    def delete(self, consumer: str) -> None:
        """Forget the checkpoint of ``consumer`` (no error if it has none)."""
        table = PushCheckpointRow.__table__
        with self._db.session() as session:
            session.execute(sa.delete(table).where(table.c.consumer == consumer))
