"""webhook bodies unique per source (an atomic replay check); referrers without queries

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 17:30:00.000000

- ``webhook_deliveries``: the index on (source, body_sha256) becomes unique.
  Bodies stored more than once (replays after the window, or copies that
  raced the old check) keep their hash on the newest delivery only.
- ``visits.referrer``: stored ones lose their query string, fragment and
  ``user:password@``, as new visits do; the downgrade leaves them so.
"""

from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Visits rewritten per statement batch.
_BATCH = 1000


def upgrade() -> None:
    deliveries = sa.table(
        "webhook_deliveries",
        sa.column("id", sa.Integer),
        sa.column("source", sa.String),
        sa.column("body_sha256", sa.String),
    )
    newer = deliveries.alias("newer")
    op.execute(
        deliveries.update()
        .where(
            deliveries.c.body_sha256.is_not(None),
            sa.exists().where(
                newer.c.source == deliveries.c.source,
                newer.c.body_sha256 == deliveries.c.body_sha256,
                newer.c.id > deliveries.c.id,
            ),
        )
        .values(body_sha256=None)
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_body")
        batch_op.create_index(
            "uq_webhook_delivery_body", ["source", "body_sha256"], unique=True
        )
    _strip_referrers()


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("uq_webhook_delivery_body")
        batch_op.create_index(
            "ix_webhook_deliveries_body", ["source", "body_sha256"], unique=False
        )


def _bare(referrer: str):
    # The rule of core.urls.referrer_of when this revision was written
    # (a migration keeps its own copy: the app's may change later).
    try:
        parts = urlsplit(referrer)
    except ValueError:
        return None
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", "")) or None


def _strip_referrers() -> None:
    visits = sa.table(
        "visits", sa.column("id", sa.BigInteger), sa.column("referrer", sa.String)
    )
    connection = op.get_bind()
    marked = sa.or_(*(visits.c.referrer.contains(mark) for mark in "?#@"))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(visits.c.id, visits.c.referrer)
            .where(visits.c.id > last, marked)
            .order_by(visits.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            visits.update()
            .where(visits.c.id == sa.bindparam("visit_id"))
            .values(referrer=sa.bindparam("bare")),
            [{"visit_id": pk, "bare": _bare(referrer)} for pk, referrer in rows],
        )
        last = rows[-1][0]
