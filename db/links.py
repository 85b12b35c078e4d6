"""The links store (the shortener): links, their visits, the exact visit counter.

A link with ``max_visits`` counts each visit in the request with a conditional
``UPDATE``, so the counter is exact; other visits go to the process's
:class:`db.visit_recorder.VisitRecorder`. Every visit written also goes into
the rollup of :mod:`db.link_stats`, in the same transaction.

Design: docs/design/links.md
"""

import dataclasses
import datetime
import functools
import hashlib
import logging
import os
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Callable
from typing import List
from typing import Optional
from typing import Tuple
from typing import Union

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy import orm

from core.clock import as_utc
from core.clock import naive_utc
from core.clock import utc_now
from core.codes import MAX_ID
from core.codes import code_for_id
from core.codes import is_reserved
from core.codes import looks_like_code
from core.urls import referrer_of
from db import link_stats
from db.errors import Conflict
from db.errors import Gone
from db.errors import NotFound
from db.errors import PreconditionFailed
from db.errors import Unavailable
from db.link_tables import BY_ALIAS
from db.link_tables import BY_ID
from db.link_tables import INSERT_VISIT
from db.link_tables import LINKS
from db.link_tables import LIVE
from db.link_tables import REFERRER_MAX
from db.link_tables import USER_AGENT_MAX
from db.link_tables import VISITS
from db.link_tables import Link
from db.link_tables import Visit
from db.link_tables import named
from db.sql import Database
from db.sql import Query
from db.visit_recorder import VisitRecorder

log = logging.getLogger(__name__)

_NO_SUCH_LINK = "No link has this code."
_SPENT = "The link has reached its maximum number of visits."
_CHANGED = "The link has changed since the version given in If-Match."
#: What PATCH may change.
_EDITABLE = ("url", "expires_at", "max_visits")


@dataclasses.dataclass(frozen=True)
class LinkInfo:
    """A link as the API shows it (times in UTC, aware)."""

    code: str
    url: str
    created_at: datetime.datetime
    expires_at: Optional[datetime.datetime]
    max_visits: Optional[int]
    visits: int
    version: int

    @property
    def etag(self) -> str:
        """The entity tag of the link's settings (unquoted): its version."""
        return str(self.version)


@dataclasses.dataclass(frozen=True)
class VisitInfo:
    """One visit as the API shows it."""

    id: int
    visited_at: datetime.datetime
    referrer: Optional[str]
    user_agent: Optional[str]
    visitor: str


# Core statements built once (SQLAlchemy caches their SQL): the redirect path.
_LINK_COLUMNS = (
    LINKS.c.id,
    LINKS.c.alias,
    LINKS.c.url,
    LINKS.c.created_at,
    LINKS.c.expires_at,
    LINKS.c.max_visits,
    LINKS.c.visits,
    LINKS.c.version,
)
# What a redirect needs: fewer columns, fewer values to convert.
_TARGET_COLUMNS = (
    LINKS.c.id,
    LINKS.c.url,
    LINKS.c.expires_at,
    LINKS.c.max_visits,
    LINKS.c.visits,
)
#: (all columns, a redirect's columns) by the clause that names the link.
_QUERIES = {
    where: (
        Query(sa.select(*_LINK_COLUMNS).where(where)),
        Query(sa.select(*_TARGET_COLUMNS).where(where)),
    )
    for where in (BY_ID, BY_ALIAS)
}
_COUNT_VISIT = (
    sa.update(LINKS)
    .where(
        LINKS.c.id == sa.bindparam("link_id"),
        LIVE,
        sa.or_(LINKS.c.expires_at.is_(None), LINKS.c.expires_at > sa.bindparam("now")),
        sa.or_(LINKS.c.max_visits.is_(None), LINKS.c.visits < LINKS.c.max_visits),
    )
    .values(visits=LINKS.c.visits + 1)
    .returning(LINKS.c.url)
)
_INSERT_LINK = sa.insert(LINKS).returning(LINKS.c.id)
# Many rows in one statement (SQLAlchemy's "insertmanyvalues"), ids in the
# order of the rows given.
_INSERTLINKS = sa.insert(LINKS).returning(LINKS.c.id, sort_by_parameter_order=True)
_TAKEN_ALIASES = sa.select(LINKS.c.alias).where(
    LINKS.c.alias.in_(sa.bindparam("aliases", expanding=True))
)
_BURY = (
    sa.update(LINKS).where(LINKS.c.id == sa.bindparam("link_id")).values(deleted=True)
)


class LinkStore:
    """Links and visits in the SQL database.

    Args:
        database: The shared SQL handle.
        salt: Secret mixed into the hash of visitor addresses; empty: a random
            one for this process, so hashes compare only within it.
        clock: Returns the current aware UTC time (tests pass their own).
        flush_interval: Seconds between two writes of the visits of links
            without ``max_visits`` (:class:`VisitRecorder`); 0: in the request.
    """

    def __init__(
        self,
        database: Database,
        salt: str = "",
        clock: Callable[[], datetime.datetime] = utc_now,
        flush_interval: float = 1.0,
    ):
        self._db = database
        self._salt = salt.encode() if salt else os.urandom(32)
        # Visitors come back: a hash costs about 10 us under PyPy, a hit none.
        self._visitor = functools.lru_cache(maxsize=4096)(self._hash_address)
        self.now = clock
        self.recorder = VisitRecorder(database, flush_interval)

    def close(self) -> None:
        """Write the queued visits and stop the recorder's thread."""
        self.recorder.close()

    def create(
        self,
        url: str,
        alias: Optional[str] = None,
        expires_at: Optional[datetime.datetime] = None,
        max_visits: Optional[int] = None,
    ) -> LinkInfo:
        """Store a new link; Conflict if ``alias`` is taken (or ever was)."""
        values = {
            "url": url,
            "alias": alias,
            "created_at": naive_utc(self.now()),
            "expires_at": naive_utc(expires_at),
            "max_visits": max_visits,
            "visits": 0,
            "deleted": False,
        }
        try:
            with self._db.write() as connection:
                link_id = self._insert(connection, values)
                link_id = self._unreserved(connection, link_id, values)
        except exc.IntegrityError:
            raise Conflict(_alias_taken_message(alias), alias=alias) from None
        return _new_info(link_id, values)

    def create_many(self, links: Sequence[Mapping]) -> List[Union[LinkInfo, Conflict]]:
        """Store new links in one transaction; per link, its info or a Conflict.

        Each item has the keyword arguments of :meth:`create`. A link whose
        alias is taken (or ever was) gets a :class:`Conflict` and the others
        are stored all the same; checking the aliases and inserting the rest
        happen in one write transaction. If another writer takes one of the
        aliases in between (PostgreSQL), the transaction is rolled back and
        done again, so nothing is half stored.
        """
        now = naive_utc(self.now())
        rows = [
            {
                "url": link["url"],
                "alias": link.get("alias"),
                "created_at": now,
                "expires_at": naive_utc(link.get("expires_at")),
                "max_visits": link.get("max_visits"),
                "visits": 0,
                "deleted": False,
            }
            for link in links
        ]
        for _ in range(3):
            try:
                with self._db.write() as connection:
                    return self._create_rows(connection, rows)
            except exc.IntegrityError:
                continue  # an alias was taken meanwhile: check them again
        raise Unavailable("The links could not be stored; try again.")

    def _create_rows(
        self, connection: sa.Connection, rows: List[dict]
    ) -> List[Union[LinkInfo, Conflict]]:
        aliases = sorted({row["alias"] for row in rows if row["alias"] is not None})
        taken = set()
        if aliases:
            taken = set(
                connection.execute(_TAKEN_ALIASES, {"aliases": aliases}).scalars()
            )
        # An alias taken before, or by an earlier row of this batch: a conflict.
        conflicts = set()
        for index, row in enumerate(rows):
            alias = row["alias"]
            if alias is not None:
                if alias in taken:
                    conflicts.add(index)
                taken.add(alias)
        fresh = [row for index, row in enumerate(rows) if index not in conflicts]
        ids = []
        if fresh:
            ids = connection.execute(_INSERTLINKS, fresh).scalars().all()
        if ids and max(ids) > MAX_ID:
            raise Unavailable("Every short code has been handed out.")
        made = iter(ids)
        out: List[Union[LinkInfo, Conflict]] = []
        for index, row in enumerate(rows):
            if index in conflicts:
                out.append(
                    Conflict(_alias_taken_message(row["alias"]), alias=row["alias"])
                )
                continue
            link_id = self._unreserved(connection, next(made), row)
            out.append(_new_info(link_id, row))
        return out

    def _unreserved(self, connection: sa.Connection, link_id: int, values: dict) -> int:
        """``link_id``, or a new one when its code would be a reserved word.

        A generated code equal to a reserved word would be shadowed by its
        route: that id is buried and the next one taken.
        """
        while values["alias"] is None and is_reserved(code_for_id(link_id)):
            connection.execute(_BURY, {"link_id": link_id})
            link_id = self._insert(connection, values)
        return link_id

    @staticmethod
    def _insert(connection: sa.Connection, values: dict) -> int:
        link_id = connection.execute(_INSERT_LINK, values).scalar_one()
        if link_id > MAX_ID:
            raise Unavailable("Every short code has been handed out.")
        return link_id

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
        with self._db.session(write=False) as session:
            link = session.scalars(query).first()
            return None if link is None else self._info(link)

    def get(self, code: str) -> LinkInfo:
        """The live link known as ``code``, even expired or used up; else NotFound.

        Its ``visits`` include the visits this process has queued.
        """
        self._flush_pending()
        return self._info(self._find(code))

    def _flush_pending(self) -> None:
        # Statistics read here include this process's queued visits.
        if self.recorder.pending:
            self.recorder.flush()

    def _find(self, code: str, target: bool = False):
        """The row of the live link ``code``; NotFound if there is none."""
        found = named(code)
        if found is not None:
            where, params = found
            row = self._db.fetch_one(_QUERIES[where][target], params)
            if row is not None:
                return row
        raise NotFound(_NO_SUCH_LINK)

    def visit(
        self,
        code: str,
        referrer: Optional[str],
        user_agent: Optional[str],
        address: Optional[str],
    ) -> str:
        """Count a visit and return the target URL; NotFound, or Gone when spent.

        Exact and in the request for a link with ``max_visits``; queued for
        the recorder otherwise (see the module's docstring).
        """
        link = self._find(code, target=True)
        now = naive_utc(self.now())
        if link.expires_at is not None and link.expires_at <= now:
            raise Gone("The link has expired.")
        visit = {
            "link_id": link.id,
            "visited_at": now,
            "referrer": _clip(referrer and referrer_of(referrer), REFERRER_MAX),
            "user_agent": _clip(user_agent, USER_AGENT_MAX),
            "visitor": self._visitor(address),
        }
        if link.max_visits is None:
            self.recorder.add(visit)
            return link.url
        if link.visits >= link.max_visits:
            raise Gone(_SPENT)
        with self._db.write() as connection:
            url = connection.execute(
                _COUNT_VISIT, {"link_id": link.id, "now": now}
            ).scalar()
            if url is not None:
                connection.execute(INSERT_VISIT, visit)
                link_stats.roll_up(connection, [visit])
        if url is None:  # spent, expired or deleted since it was read
            self._spent(code, now)
        return url

    def _spent(self, code: str, now: datetime.datetime) -> None:
        link = self._find(code)  # NotFound when deleted meanwhile
        if link.expires_at is not None and link.expires_at <= now:
            raise Gone("The link has expired.")
        raise Gone(_SPENT)

    def visits(
        self, code: str, limit: int, before: Optional[int] = None
    ) -> tuple[list[VisitInfo], bool]:
        """Visits newest first, ids below ``before``; and whether more follow."""
        self._flush_pending()
        with self._db.session(write=False) as session:
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

    def list_page(
        self,
        limit: int,
        before: Optional[int] = None,
        search: Optional[str] = None,
        expired: Optional[bool] = None,
        spent: Optional[bool] = None,
    ) -> Tuple[List[LinkInfo], Optional[int]]:
        """Live links newest first, ids below ``before``; and the next cursor.

        Args:
            limit: Most links on the page.
            before: The cursor of the previous page (a row id).
            search: Text the URL or the alias contains (any case), or a
                whole generated code.
            expired: Only links past (True) or not past (False) their expiry.
            spent: Only links that have (True) or have not (False) reached
                their ``max_visits``.
        """
        self._flush_pending()
        query = sa.select(*_LINK_COLUMNS).where(LIVE)
        if before is not None:
            query = query.where(LINKS.c.id < before)
        if search:
            query = query.where(_searched(search))
        if expired is not None:
            now = naive_utc(self.now())
            is_expired = LINKS.c.expires_at <= now
            query = query.where(
                is_expired
                if expired
                else sa.or_(LINKS.c.expires_at.is_(None), sa.not_(is_expired))
            )
        if spent is not None:
            is_spent = LINKS.c.visits >= LINKS.c.max_visits
            query = query.where(
                is_spent
                if spent
                else sa.or_(LINKS.c.max_visits.is_(None), sa.not_(is_spent))
            )
        query = query.order_by(LINKS.c.id.desc()).limit(limit + 1)
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        links = [self._info(row) for row in rows[:limit]]
        return links, (rows[limit - 1].id if len(rows) > limit else None)

    def update(
        self,
        code: str,
        changes: Mapping,
        if_versions: Optional[Collection[int]] = None,
    ) -> LinkInfo:
        """Change a link's ``url``, ``expires_at`` or ``max_visits``; the new link.

        Each change raises the version. ``if_versions``: change only a link
        at one of these versions, else PreconditionFailed (None: any).
        Setting ``max_visits`` writes this process's queued visits first,
        so that the limit starts from the visits made before it.

        Raises:
            NotFound: no live link is known as ``code``.
            PreconditionFailed: the link is at another version.
        """
        where = _where(code)
        if where is None:
            raise NotFound(_NO_SUCH_LINK)
        if "max_visits" in changes:
            self._flush_pending()
        values = {key: changes[key] for key in _EDITABLE if key in changes}
        if "expires_at" in values:
            values["expires_at"] = naive_utc(values["expires_at"])
        statement = sa.update(LINKS).where(where)
        if if_versions is not None:
            statement = statement.where(LINKS.c.version.in_(sorted(if_versions)))
        statement = statement.values(**values, version=LINKS.c.version + 1)
        with self._db.write() as connection:
            row = connection.execute(statement.returning(*_LINK_COLUMNS)).first()
            if row is None:
                self._refuse(connection, where)
        return self._info(row)

    @staticmethod
    def _refuse(connection: sa.Connection, where) -> None:
        """Why a conditional write matched no row: NotFound or PreconditionFailed."""
        if connection.execute(sa.select(LINKS.c.id).where(where)).first() is None:
            raise NotFound(_NO_SUCH_LINK)
        raise PreconditionFailed(_CHANGED)

    def exists(self, code: str) -> bool:
        """Whether a live link is known as ``code`` (even expired or used up)."""
        try:
            self._find(code, target=True)
        except NotFound:
            return False
        return True

    def stats(
        self,
        code: str,
        interval: str,
        starts: List[datetime.datetime],
        top: int = 10,
    ) -> link_stats.LinkStats:
        """The link's visits in the buckets starting at ``starts`` (aware UTC).

        Read from the rollup (:mod:`db.link_stats`), this process's queued
        visits included; NotFound if no live link is known as ``code``.
        """
        self._flush_pending()
        link = self._find(code, target=True)
        with self._db.read() as connection:
            found = link_stats.read(
                connection, link.id, interval, [naive_utc(s) for s in starts], top
            )
        return dataclasses.replace(
            found,
            since=as_utc(found.since),
            until=as_utc(found.until),
            series=[(as_utc(start), n) for start, n in found.series],
        )

    def delete(self, code: str, if_versions: Optional[Collection[int]] = None) -> None:
        """Mark the link deleted (its code and alias stay taken); drop its visits.

        ``if_versions``: as for :meth:`update`.
        """
        where = _where(code)
        if where is None:
            raise NotFound(_NO_SUCH_LINK)
        statement = sa.update(LINKS).where(where)
        if if_versions is not None:
            statement = statement.where(LINKS.c.version.in_(sorted(if_versions)))
        with self._db.write() as connection:
            row = connection.execute(
                statement.values(deleted=True).returning(LINKS.c.id)
            ).first()
            if row is None:
                self._refuse(connection, where)
            connection.execute(sa.delete(VISITS).where(VISITS.c.link_id == row.id))
            link_stats.forget(connection, row.id)

    def _load(self, session: orm.Session, code: str) -> Link:
        where = _where(code)
        link = (
            None
            if where is None
            else session.scalars(sa.select(Link).where(where)).first()
        )
        if link is None:
            raise NotFound(_NO_SUCH_LINK)
        return link

    def _hash_address(self, address: Optional[str]) -> str:
        return hashlib.sha256(self._salt + (address or "").encode()).hexdigest()

    @staticmethod
    def _info(link) -> LinkInfo:
        return LinkInfo(
            code=link.alias if link.alias is not None else code_for_id(link.id),
            url=link.url,
            created_at=as_utc(link.created_at),
            expires_at=as_utc(link.expires_at),
            max_visits=link.max_visits,
            visits=link.visits,
            version=link.version,
        )


def _where(code: str):
    """The WHERE clause (values bound) of the live link ``code``; None: none can be."""
    found = named(code)
    return None if found is None else found[0].params(found[1])


def _alias_taken_message(alias: Optional[str]) -> str:
    return f"The alias '{alias}' is taken."


def _new_info(link_id: int, values: dict) -> LinkInfo:
    """The info of a link just inserted with ``values``."""
    alias = values["alias"]
    return LinkInfo(
        code=alias if alias is not None else code_for_id(link_id),
        url=values["url"],
        created_at=as_utc(values["created_at"]),
        expires_at=as_utc(values["expires_at"]),
        max_visits=values["max_visits"],
        visits=0,
        version=1,
    )


def _searched(text: str):
    """WHERE clause: the URL or alias contains ``text`` (any case), or it is the code.

    ``autoescape``: ``%`` and ``_`` in ``text`` stand for themselves.
    """
    found = [
        LINKS.c.url.icontains(text, autoescape=True),
        LINKS.c.alias.icontains(text, autoescape=True),
    ]
    if looks_like_code(text):
        found.append(_where(text))
    return sa.or_(*(clause for clause in found if clause is not None))


def _clip(text: Optional[str], limit: int) -> Optional[str]:
    return None if not text else text[:limit]
