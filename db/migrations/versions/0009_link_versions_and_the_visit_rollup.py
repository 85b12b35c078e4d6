"""link versions (ETags of PATCH /links/{code}) and the visit rollup for statistics

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 18:14:34.035191

- ``links.version``: 1 for every link stored.
- ``link_visit_hours`` and ``link_visit_sources`` (db/link_stats.py): the
  visits already stored are counted in, so statistics cover them too.
  Referrer hosts and agent families are classified by ``core.linkstats``,
  as new visits are: the rollup holds one set of rules.
"""

import collections

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from core import linkstats

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: Visits counted per batch.
_BATCH = 5000
_LINK_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_SOURCE_KEY = ("link_id", "kind", "period", "start", "name")


def upgrade() -> None:
    op.create_table(
        "link_visit_hours",
        sa.Column("link_id", _LINK_ID, nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"]),
        sa.PrimaryKeyConstraint("link_id", "hour"),
    )
    op.create_table(
        "link_visit_sources",
        sa.Column("link_id", _LINK_ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=4), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"]),
        sa.PrimaryKeyConstraint("link_id", "kind", "period", "start", "name"),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default="1", nullable=False)
        )
    _count_stored_visits()


def downgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_column("version")
    op.drop_table("link_visit_sources")
    op.drop_table("link_visit_hours")


def _adding(table: sa.Table, keys, dialect: str):
    statement = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect](
        table
    )
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={"visits": table.c.visits + statement.excluded.visits},
    )


def _count_stored_visits() -> None:
    visits = sa.table(
        "visits",
        sa.column("id", sa.BigInteger),
        sa.column("link_id", sa.BigInteger),
        sa.column("visited_at", sa.DateTime),
        sa.column("referrer", sa.String),
        sa.column("user_agent", sa.String),
    )
    hours_table = sa.table(
        "link_visit_hours",
        sa.column("link_id", sa.BigInteger),
        sa.column("hour", sa.DateTime),
        sa.column("visits", sa.Integer),
    )
    sources_table = sa.table(
        "link_visit_sources",
        sa.column("link_id", sa.BigInteger),
        sa.column("kind", sa.String),
        sa.column("period", sa.String),
        sa.column("start", sa.DateTime),
        sa.column("name", sa.String),
        sa.column("visits", sa.Integer),
    )
    connection = op.get_bind()
    dialect = connection.dialect.name
    add_hours = _adding(hours_table, ["link_id", "hour"], dialect)
    add_sources = _adding(
        sources_table, ["link_id", "kind", "period", "start", "name"], dialect
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(
                visits.c.id,
                visits.c.link_id,
                visits.c.visited_at,
                visits.c.referrer,
                visits.c.user_agent,
            )
            .where(visits.c.id > last)
            .order_by(visits.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        hours = collections.Counter()
        sources = collections.Counter()
        for _, link_id, visited_at, referrer, user_agent in rows:
            hour = linkstats.floor(visited_at, "hour")
            hours[link_id, hour] += 1
            host = linkstats.referrer_host(referrer) or ""
            family = linkstats.agent_family(user_agent) or ""
            for period, start in (("hour", hour), ("day", hour.replace(hour=0))):
                sources[link_id, "referrer", period, start, host] += 1
                sources[link_id, "agent", period, start, family] += 1
        connection.execute(
            add_hours,
            [
                {"link_id": link_id, "hour": hour, "visits": n}
                for (link_id, hour), n in sorted(hours.items())
            ],
        )
        connection.execute(
            add_sources,
            [
                dict(zip(_SOURCE_KEY, key), visits=n)
                for key, n in sorted(sources.items())
            ],
        )
        last = rows[-1][0]
