"""The schema before migrations: every table as create_all made it.

A database made before migrations existed is stamped with this revision
(db.schema.create_schema) instead of running it.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "employees",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position_title", sa.String(length=100), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.Column("salary_cents", sa.BigInteger(), nullable=False),
        sa.Column("name_key", sa.String(length=100), nullable=False),
        sa.Column("title_key", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_employees_department_name",
        "employees",
        ["department", "name", "id"],
        unique=False,
    )
    op.create_index(
        "ix_employees_department_salary",
        "employees",
        ["department", "salary_cents", "id"],
        unique=False,
    )
    op.create_index(
        "ix_employees_department_salary_desc",
        "employees",
        ["department", sa.literal_column("salary_cents DESC"), "id"],
        unique=False,
    )
    op.create_index("ix_employees_name", "employees", ["name", "id"], unique=False)
    op.create_index(
        "ix_employees_salary", "employees", ["salary_cents", "id"], unique=False
    )
    op.create_index(
        "ix_employees_salary_desc",
        "employees",
        [sa.literal_column("salary_cents DESC"), "id"],
        unique=False,
    )
    op.create_table(
        "links",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("alias", sa.String(length=64), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("max_visits", sa.Integer(), nullable=True),
        sa.Column("visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alias"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_links_url"), "links", ["url"], unique=False)
    op.create_table(
        "note_changes",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("note_id", sa.String(length=32), nullable=False),
        sa.Column("old_val", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("new_val", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "note_sequence",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # The counter row the notes store only ever UPDATEs (db/notes/sql.py; the
    # model inserts it on create_all, which Alembic does not run): without
    # it, concurrent first writers would race to number their changes.
    op.execute("INSERT INTO note_sequence (name, value) VALUES ('changes', 0)")
    op.create_table(
        "notes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("position"),
    )
    op.create_table(
        "primes",
        sa.Column(
            "number",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_table(
        "push_checkpoints",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer"),
    )
    op.create_table(
        "salary_departments",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_lower", sa.String(length=100), nullable=False),
        sa.Column("employees", sa.Integer(), nullable=False),
        sa.Column("min_cents", sa.BigInteger(), nullable=False),
        sa.Column("max_cents", sa.BigInteger(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("median_low_cents", sa.BigInteger(), nullable=False),
        sa.Column("median_high_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("name_lower"),
    )
    op.create_table(
        "salary_imports",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("loaded", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "delivery_id", name="uq_webhook_delivery"),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["status", "due_at"],
        unique=False,
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("last_delivery_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "visits",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "link_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("visited_at", sa.DateTime(), nullable=False),
        sa.Column("referrer", sa.String(length=1024), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("visitor", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_visits_link_id_id", "visits", ["link_id", "id"], unique=False)
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["webhook_subscriptions.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_attempts_subscription",
        "webhook_attempts",
        ["subscription_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_attempts_subscription", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_visits_link_id_id", table_name="visits")
    op.drop_table("visits")
    op.drop_table("webhook_subscriptions")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("salary_imports")
    op.drop_table("salary_departments")
    op.drop_table("push_checkpoints")
    op.drop_table("primes")
    op.drop_table("notes")
    op.drop_table("note_sequence")
    op.drop_table("note_changes")
    op.drop_index(op.f("ix_links_url"), table_name="links")
    op.drop_table("links")
    op.drop_index("ix_employees_salary_desc", table_name="employees")
    op.drop_index("ix_employees_salary", table_name="employees")
    op.drop_index("ix_employees_name", table_name="employees")
    op.drop_index("ix_employees_department_salary_desc", table_name="employees")
    op.drop_index("ix_employees_department_salary", table_name="employees")
    op.drop_index("ix_employees_department_name", table_name="employees")
    op.drop_table("employees")
