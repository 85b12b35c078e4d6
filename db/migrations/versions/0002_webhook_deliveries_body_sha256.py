"""webhook deliveries: body_sha256 for the GitHub replay window

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 13:48:58.386169
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("body_sha256", sa.String(length=64), nullable=True)
        )
        batch_op.create_index(
            "ix_webhook_deliveries_body", ["source", "body_sha256"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_body")
        batch_op.drop_column("body_sha256")
