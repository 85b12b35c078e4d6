"""webhook replays: the queue of POST /subscriptions/{id}/replay, attempts marked

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 14:08:16.852574
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_replays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["webhook_subscriptions.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_replays", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_replays_subscription", ["subscription_id", "id"], unique=False
        )
    # Existing attempts were all first deliveries: false (a portable default,
    # unlike autogenerate's text("0"), which PostgreSQL refuses for a boolean).
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("replay", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_column("replay")
    with op.batch_alter_table("webhook_replays", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_replays_subscription")
    op.drop_table("webhook_replays")
