"""The visit rollup: per link and UTC hour, visits, referrer hosts, agent families.

Statistics over time read these counts, never the visit rows:

- ``link_visit_hours``: (link, hour) -> visits; one row per hour with visits.
- ``link_visit_sources``: (link, kind, hour, name) -> visits, where kind is
  ``referrer`` (name: the referrer's host, "" for none) or ``agent`` (name:
  the user-agent family of :mod:`core.linkstats`, "" for none).

They are written in the transaction that writes the visit rows (the batch of
the visit recorder, or the counted visit of a link with ``max_visits``), so
they always agree with the visits stored. A batch adds one upsert per
distinct (link, hour) and per distinct (link, hour, host or family): rows
stay at most one per hour and name however many visits there are, and a
range of statistics reads about (hours with visits) x (names) rows.
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
    """Visits of one link in one UTC hour from one referrer host or agent family."""

    __tablename__ = "link_visit_sources"

    link_id: Mapped[int] = mapped_column(sa.ForeignKey("links.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    hour: Mapped[datetime.datetime] = mapped_column(sa.DateTime, primary_key=True)
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
    return statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={"visits": table.c.visits + statement.excluded.visits},
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
    hours: Dict[tuple, int] = collections.Counter()
    sources: Dict[tuple, int] = collections.Counter()
    for visit in visits:
        link_id = visit["link_id"]
        hour = linkstats.floor(visit["visited_at"], "hour")
        hours[link_id, hour] += 1
        host = linkstats.referrer_host(visit["referrer"])
        sources[link_id, REFERRER, hour, host or ""] += 1
        family = linkstats.agent_family(visit["user_agent"])
        sources[link_id, AGENT, hour, family or ""] += 1
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
            {"link_id": link_id, "kind": kind, "hour": hour, "name": name, "visits": n}
            for (link_id, kind, hour, name), n in sorted(sources.items())
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


def _top(
    connection: sa.Connection,
    link_id: int,
    kind: str,
    since: datetime.datetime,
    until: datetime.datetime,
    top: int,
) -> List[Tuple[Optional[str], int]]:
    visits = sa.func.sum(_SOURCES.c.visits).label("visits")
    rows = connection.execute(
        sa.select(_SOURCES.c.name, visits)
        .where(
            _SOURCES.c.link_id == link_id,
            _SOURCES.c.kind == kind,
            _SOURCES.c.hour >= since,
            _SOURCES.c.hour < until,
        )
        .group_by(_SOURCES.c.name)
        .order_by(visits.desc(), _SOURCES.c.name)
        .limit(top)
    )
    return [(name or None, int(count)) for name, count in rows]
