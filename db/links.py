"""The links store (the shortener): links, their visits, the exact visit counter.

A generated code is computed from the row id (core/codes.py);
an alias is stored in ``links.alias``. Deleting a link only marks the row, so
neither its id (hence its code) nor its alias is ever handed out again.

A visit is one transaction: a conditional ``UPDATE ... SET visits = visits + 1``
that matches only a live link under its ``max_visits``, then the visit row.
The database serialises the updates of one row (SQLite locks the file,
PostgreSQL the row and re-checks the condition), so the counter is exact
and ``max_visits`` is never passed, whatever the number of workers.
"""

import dataclasses
import datetime
import hashlib
import os
from typing import Callable
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy import orm
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.clock import as_utc
from core.clock import naive_utc
from core.clock import utc_now
from core.codes import ALIAS_PATTERN
from core.codes import MAX_ID
from core.codes import code_for_id
from core.codes import id_for_code
from core.codes import is_reserved
from core.codes import looks_like_code
from db.errors import Conflict
from db.errors import Gone
from db.errors import NotFound
from db.errors import Unavailable
from db.sql import Base
from db.sql import Database

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-assigned rowid.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Not echoing the code: it is whatever the client put in the path.
_NO_SUCH_LINK = "No link has this code."
REFERRER_MAX = 1024
USER_AGENT_MAX = 512


class Link(Base):
    """A short link; ``alias`` is NULL for links known by their generated code."""

    __tablename__ = "links"
    # AUTOINCREMENT: SQLite never reuses an id, even one whose row was removed.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    alias: Mapped[Optional[str]] = mapped_column(sa.String(64), unique=True)
    url: Mapped[str] = mapped_column(sa.String(2048), index=True)
    created_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime)
    expires_at: Mapped[Optional[datetime.datetime]] = mapped_column(sa.DateTime)
    max_visits: Mapped[Optional[int]] = mapped_column(sa.Integer)
    visits: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    deleted: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )


class Visit(Base):
    """One followed redirect; ``visitor`` is a salted hash, never the address."""

    __tablename__ = "visits"
    __table_args__ = (sa.Index("ix_visits_link_id_id", "link_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    link_id: Mapped[int] = mapped_column(sa.ForeignKey("links.id"))
    visited_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime)
    referrer: Mapped[Optional[str]] = mapped_column(sa.String(REFERRER_MAX))
    user_agent: Mapped[Optional[str]] = mapped_column(sa.String(USER_AGENT_MAX))
    visitor: Mapped[str] = mapped_column(sa.String(64))


@dataclasses.dataclass(frozen=True)
class LinkInfo:
    """A link as the API shows it (times in UTC, aware)."""

    code: str
    url: str
    created_at: datetime.datetime
    expires_at: Optional[datetime.datetime]
    max_visits: Optional[int]
    visits: int


@dataclasses.dataclass(frozen=True)
class VisitInfo:
    """One visit as the API shows it."""

    id: int
    visited_at: datetime.datetime
    referrer: Optional[str]
    user_agent: Optional[str]
    visitor: str


def _matches(code: str):
    """WHERE clause for the live link known as ``code``; None if none can be."""
    if looks_like_code(code):
        row_id = id_for_code(code)
        if row_id is None:
            return None
        # An alias link's id has a code too; only its alias may reach it.
        condition = sa.and_(Link.id == row_id, Link.alias.is_(None))
    elif ALIAS_PATTERN.fullmatch(code):
        condition = Link.alias == code
    else:
        return None
    return sa.and_(condition, Link.deleted.is_(False))


class LinkStore:
    """Links and visits in the SQL database.

    Args:
        database: The shared SQL handle.
        salt: Secret mixed into the hash of visitor addresses; empty: a random
            one for this process, so hashes compare only within it.
        clock: Returns the current aware UTC time (tests pass their own).
    """

    def __init__(
        self,
        database: Database,
        salt: str = "",
        clock: Callable[[], datetime.datetime] = utc_now,
    ):
        self._db = database
        self._salt = salt.encode() if salt else os.urandom(32)
        self.now = clock

    def create(
        self,
        url: str,
        alias: Optional[str] = None,
        expires_at: Optional[datetime.datetime] = None,
        max_visits: Optional[int] = None,
    ) -> LinkInfo:
        """Store a new link; Conflict if ``alias`` is taken (or ever was)."""
        try:
            with self._db.session() as session:
                link = self._insert(session, url, alias, expires_at, max_visits)
                # A generated code equal to a reserved word would be shadowed
                # by its route: bury that id and take the next one.
                while alias is None and is_reserved(code_for_id(link.id)):
                    link.deleted = True
                    link = self._insert(session, url, alias, expires_at, max_visits)
                return self._info(link)
        except exc.IntegrityError:
            raise Conflict(f"The alias '{alias}' is taken.", alias=alias) from None

    def _insert(self, session: orm.Session, url, alias, expires_at, max_visits) -> Link:
        link = Link(
            url=url,
            alias=alias,
            created_at=naive_utc(self.now()),
            expires_at=naive_utc(expires_at),
            max_visits=max_visits,
            visits=0,
            deleted=False,
        )
        session.add(link)
        session.flush()
        if link.id > MAX_ID:
            raise Unavailable("Every short code has been handed out.")
        return link

    def find_reusable(
        self,
        url: str,
        alias: Optional[str] = None,
        expires_at: Optional[datetime.datetime] = None,
        max_visits: Optional[int] = None,
    ) -> Optional[LinkInfo]:
        """The oldest usable link with exactly these properties, if there is one."""
        now = naive_utc(self.now())
        query = (
            sa.select(Link)
            .where(
                Link.url == url,
                Link.deleted.is_(False),
                Link.alias.is_(None) if alias is None else Link.alias == alias,
                Link.expires_at.is_(None)
                if expires_at is None
                else Link.expires_at == naive_utc(expires_at),
                Link.max_visits.is_(None)
                if max_visits is None
                else Link.max_visits == max_visits,
                sa.or_(Link.expires_at.is_(None), Link.expires_at > now),
                sa.or_(Link.max_visits.is_(None), Link.visits < Link.max_visits),
            )
            .order_by(Link.id)
            .limit(1)
        )
        with self._db.session() as session:
            link = session.scalars(query).first()
            return None if link is None else self._info(link)

    def get(self, code: str) -> LinkInfo:
        """The live link known as ``code``, even expired or used up; else NotFound."""
        with self._db.session() as session:
            return self._info(self._load(session, code))

    def visit(
        self,
        code: str,
        referrer: Optional[str],
        user_agent: Optional[str],
        address: Optional[str],
    ) -> str:
        """Count a visit and return the target URL; NotFound, or Gone when spent."""
        where = _matches(code)
        if where is None:
            raise NotFound(_NO_SUCH_LINK)
        now = naive_utc(self.now())
        # Core statements on the tables (no ORM unit of work): this is the
        # redirect's hot path.
        count = (
            sa.update(Link.__table__)
            .where(
                where,
                sa.or_(Link.expires_at.is_(None), Link.expires_at > now),
                sa.or_(Link.max_visits.is_(None), Link.visits < Link.max_visits),
            )
            .values(visits=Link.visits + 1)
            .returning(Link.id, Link.url)
        )
        with self._db.session() as session:
            row = session.execute(count).first()
            if row is None:
                link = self._load(session, code)  # NotFound when deleted or unknown
                raise Gone(self._spent_reason(link, now))
            session.execute(
                sa.insert(Visit.__table__).values(
                    link_id=row.id,
                    visited_at=now,
                    referrer=_clip(referrer, REFERRER_MAX),
                    user_agent=_clip(user_agent, USER_AGENT_MAX),
                    visitor=self._visitor(address),
                )
            )
            return row.url

    def visits(
        self, code: str, limit: int, before: Optional[int] = None
    ) -> tuple[list[VisitInfo], bool]:
        """Visits newest first, ids below ``before``; and whether more follow."""
        with self._db.session() as session:
            link = self._load(session, code)
            query = sa.select(Visit).where(Visit.link_id == link.id)
            if before is not None:
                query = query.where(Visit.id < before)
            rows = session.scalars(
                query.order_by(Visit.id.desc()).limit(limit + 1)
            ).all()
        items = [
            VisitInfo(
                id=row.id,
                visited_at=as_utc(row.visited_at),
                referrer=row.referrer,
                user_agent=row.user_agent,
                visitor=row.visitor,
            )
            for row in rows[:limit]
        ]
        return items, len(rows) > limit

    def delete(self, code: str) -> None:
        """Mark the link deleted (its code and alias stay taken) and drop its visits."""
        where = _matches(code)
        if where is None:
            raise NotFound(_NO_SUCH_LINK)
        with self._db.session() as session:
            row = session.execute(
                sa.update(Link.__table__)
                .where(where)
                .values(deleted=True)
                .returning(Link.id)
            ).first()
            if row is None:
                raise NotFound(_NO_SUCH_LINK)
            session.execute(sa.delete(Visit.__table__).where(Visit.link_id == row.id))

    def _load(self, session: orm.Session, code: str) -> Link:
        where = _matches(code)
        link = (
            None
            if where is None
            else session.scalars(sa.select(Link).where(where)).first()
        )
        if link is None:
            raise NotFound(_NO_SUCH_LINK)
        return link

    @staticmethod
    def _spent_reason(link: Link, now: datetime.datetime) -> str:
        if link.expires_at is not None and link.expires_at <= now:
            return "The link has expired."
        return "The link has reached its maximum number of visits."

    def _visitor(self, address: Optional[str]) -> str:
        return hashlib.sha256(self._salt + (address or "").encode()).hexdigest()

    @staticmethod
    def _info(link: Link) -> LinkInfo:
        return LinkInfo(
            code=link.alias if link.alias is not None else code_for_id(link.id),
            url=link.url,
            created_at=as_utc(link.created_at),
            expires_at=as_utc(link.expires_at),
            max_visits=link.max_visits,
            visits=link.visits,
        )


def _clip(text: Optional[str], limit: int) -> Optional[str]:
    return None if not text else text[:limit]
