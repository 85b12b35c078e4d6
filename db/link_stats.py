"""The visit rollup: per link and UTC hour, visits, referrer hosts, agent families.

Tables ``link_visit_hours`` and ``link_visit_sources`` (per hour and per day),
written in the transaction that writes the visit rows; statistics over time
read these counts, never the visits. Design: docs/design/links.md#the-hourly-rollup
"""

import collections
import dataclasses
import datetime
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional
from typing import Tuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core import linkstats
from db.sql import Base

REFERRER = "referrer"
AGENT = "agent"


class VisitHour(Base):
    """Visits of one link in one UTC hour (naive UTC, on the hour)."""

    __tablename__ = "link_visit_hours"

    link_id: Mapped[int] = mapped_column(sa.ForeignKey("links.id"), primary_key=True)
    hour: Mapped[datetime.datetime] = mapped_column(sa.DateTime, primary_key=True)
    visits: Mapped[int] = mapped_column(sa.Integer)


class VisitSource(Base):
    """Visits of one link from one referrer host or agent family in a UTC hour or day.

    ``start``: naive UTC, on the hour (period ``hour``) or at midnight (``day``).
    """

    __tablename__ = "link_visit_sources"

    link_id: Mapped[int] = mapped_column(sa.ForeignKey("links.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(4), primary_key=True)
    start: Mapped[datetime.datetime] = mapped_column(sa.DateTime, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(linkstats.NAME_MAX), primary_key=True)
    visits: Mapped[int] = mapped_column(sa.Integer)


_HOURS = VisitHour.__table__
_SOURCES = VisitSource.__table__
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclasses.dataclass(frozen=True)
class LinkStats:
    """A link's visits over ``[since, until)``, by bucket and by source.

    ``series``: (bucket start, visits) for every bucket, empty ones too.
    ``referrers`` and ``agents``: (host or family, visits), most first;
    None names the visits without a referrer or a user agent.
    """

    interval: str
    since: datetime.datetime
    until: datetime.datetime
    series: List[Tuple[datetime.datetime, int]]
    referrers: List[Tuple[Optional[str], int]]
    agents: List[Tuple[Optional[str], int]]

    @property
    def total(self) -> int:
        """Visits in the range."""
        return sum(visits for _, visits in self.series)


def _adding(table: sa.Table, dialect: str):
    """INSERT ... ON CONFLICT (the key) DO UPDATE SET visits = visits + new."""
    statement = _INSERTS[dialect](table)
    statement = statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={"visits": table.c.visits + statement.excluded.visits},
    )
    if dialect != "sqlite":
        # The construct stays: psycopg2cffi (PyPy) runs an executemany as
        # a statement per row, and SQLAlchemy sends this one as one
        # multi-row INSERT instead.
        return statement
    # SQLAlchemy compiles a dialect's upsert at every execution (its Insert
    # is not cacheable): under PyPy that was most of a batch's rollup. On
    # SQLite a batch is the driver's executemany either way, so the SQL is
    # compiled here once, as text, with the columns' types for the binds.
    sql = statement.compile(dialect=sqlite.dialect(paramstyle="named")).string
    return sa.text(sql).bindparams(
        *(sa.bindparam(column.key, type_=column.type) for column in table.columns)
    )


_ADDING = {
    dialect: (_adding(_HOURS, dialect), _adding(_SOURCES, dialect))
    for dialect in _INSERTS
}


def roll_up(connection: sa.Connection, visits: Iterable[dict]) -> None:
    """Add ``visits`` (values of ``visits`` rows) to the rollup, in this transaction.

    Rows are written in key order, so two writers that share rows take their
    locks in the same order (no deadlock on PostgreSQL).
    """
    # The visits of a batch mostly share their link, hour, referrer and user
    # agent: counted alike first, each kind is worked out once (parsing a
    # referrer and a user agent, and hashing datetimes, cost PyPy more than
    # the writes did: 2-4 ms of the 5-8 of a batch of 200).
    alike: Dict[tuple, list] = {}
    for visit in visits:
        at = visit["visited_at"]
        key = (
            visit["link_id"],
            (at.year, at.month, at.day, at.hour, at.tzinfo),
            visit["referrer"],
            visit["user_agent"],
        )
        seen = alike.get(key)
        if seen is None:
            alike[key] = [at, 1]
        else:
            seen[1] += 1
    hours: Dict[tuple, int] = collections.Counter()
    sources: Dict[tuple, int] = collections.Counter()
    for (link_id, _, referrer, user_agent), (at, n) in alike.items():
        hour = linkstats.floor(at, "hour")
        day = hour.replace(hour=0)
        hours[link_id, hour] += n
        host = linkstats.referrer_host(referrer) or ""
        family = linkstats.agent_family(user_agent) or ""
        for period, start in (("hour", hour), ("day", day)):
            sources[link_id, REFERRER, period, start, host] += n
            sources[link_id, AGENT, period, start, family] += n
    if not hours:
        return
    add_hours, add_sources = _ADDING[connection.dialect.name]
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
            {
                "link_id": link_id,
                "kind": kind,
                "period": period,
                "start": start,
                "name": name,
                "visits": n,
            }
            for (link_id, kind, period, start, name), n in sorted(sources.items())
        ],
    )


def forget(connection: sa.Connection, link_id: int) -> None:
    """Drop the rollup of a link (it is being deleted)."""
    connection.execute(sa.delete(_HOURS).where(_HOURS.c.link_id == link_id))
    connection.execute(sa.delete(_SOURCES).where(_SOURCES.c.link_id == link_id))


def read(
    connection: sa.Connection,
    link_id: int,
    interval: str,
    starts: List[datetime.datetime],
    top: int,
) -> LinkStats:
    """The statistics of a link over the buckets starting at ``starts`` (naive UTC).

    ``top``: how many referrer hosts and agent families, most visits first.
    """
    since, until = starts[0], linkstats.step(starts[-1], interval)
    counts = dict.fromkeys(starts, 0)
    rows = connection.execute(
        sa.select(_HOURS.c.hour, _HOURS.c.visits).where(
            _HOURS.c.link_id == link_id,
            _HOURS.c.hour >= since,
            _HOURS.c.hour < until,
        )
    )
    for hour, visits in rows:
        counts[linkstats.floor(hour, interval)] += visits
    return LinkStats(
        interval=interval,
        since=since,
        until=until,
        series=list(counts.items()),
        referrers=_top(connection, link_id, REFERRER, since, until, top),
        agents=_top(connection, link_id, AGENT, since, until, top),
    )


def _periods(
    since: datetime.datetime, until: datetime.datetime
) -> List[Tuple[str, datetime.datetime, datetime.datetime]]:
    """(period, from, to) whose rows make up ``[since, until)``: whole days as days.

    ``since`` and ``until`` are on the hour.
    """
    first_day = linkstats.floor(since, "day")
    if first_day < since:
        first_day = linkstats.step(first_day, "day")
    last_day = linkstats.floor(until, "day")
    if first_day >= last_day:
        return [("hour", since, until)]
    periods = [("day", first_day, last_day)]
    if since < first_day:
        periods.append(("hour", since, first_day))
    if last_day < until:
        periods.append(("hour", last_day, until))
    return periods


def _top(
    connection: sa.Connection,
    link_id: int,
    kind: str,
    since: datetime.datetime,
    until: datetime.datetime,
    top: int,
) -> List[Tuple[Optional[str], int]]:
    parts = [
        sa.select(_SOURCES.c.name, _SOURCES.c.visits).where(
            _SOURCES.c.link_id == link_id,
            _SOURCES.c.kind == kind,
            _SOURCES.c.period == period,
            _SOURCES.c.start >= start,
            _SOURCES.c.start < end,
        )
        for period, start, end in _periods(since, until)
    ]
    rows = sa.union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    visits = sa.func.sum(rows.c.visits).label("visits")
    found = connection.execute(
        sa.select(rows.c.name, visits)
        .group_by(rows.c.name)
        .order_by(visits.desc(), rows.c.name)
        .limit(top)
    )
    return [(name or None, int(count)) for name, count in found]
