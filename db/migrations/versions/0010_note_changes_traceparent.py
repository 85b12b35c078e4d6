"""the trace context of each note change (TRACING)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00.000000

- ``note_changes.traceparent``: the W3C ``traceparent`` of the request
  that made the change, so the push worker's spans join its trace; NULL
  when tracing is off and for the changes already logged.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("note_changes") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("note_changes") as batch:
        batch.drop_column("traceparent")
