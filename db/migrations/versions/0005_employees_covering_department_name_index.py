"""employees: the department-by-name index covers title and salary (exports)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 04:12:59.232219
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("employees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_employees_department_name"))
        batch_op.create_index(
            "ix_employees_department_name",
            ["department", "name", "id", "position_title", "salary_cents"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("employees", schema=None) as batch_op:
        batch_op.drop_index("ix_employees_department_name")
        batch_op.create_index(
            batch_op.f("ix_employees_department_name"),
            ["department", "name", "id"],
            unique=False,
        )
