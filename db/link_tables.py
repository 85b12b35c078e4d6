"""The links and visits tables, and which row a code names.

A generated code is computed from the row id (core/codes.py); an alias is
stored in ``links.alias``. An alias link's id has a code too, but only its
alias reaches it. A deleted link keeps its row (marked), so neither its id
nor its alias is ever handed out again.
"""

import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.codes import ALIAS_PATTERN
from core.codes import id_for_code
from core.codes import looks_like_code
from db.sql import Base

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-assigned rowid.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

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
    #: Raised by each edit of url, expiry or visit limit: the link's ETag.
    version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")


class Visit(Base):
    """One followed redirect; ``visitor`` is a salted hash, never the address.

    ``referrer``: the ``Referer`` without its query string and fragment.
    """

    __tablename__ = "visits"
    __table_args__ = (sa.Index("ix_visits_link_id_id", "link_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    link_id: Mapped[int] = mapped_column(sa.ForeignKey("links.id"))
    visited_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime)
    referrer: Mapped[Optional[str]] = mapped_column(sa.String(REFERRER_MAX))
    user_agent: Mapped[Optional[str]] = mapped_column(sa.String(USER_AGENT_MAX))
    visitor: Mapped[str] = mapped_column(sa.String(64))


LINKS = Link.__table__
VISITS = Visit.__table__
LIVE = LINKS.c.deleted.is_(False)
#: The live link with this generated code's id (``link_id``), or this ``alias``.
BY_ID = sa.and_(LINKS.c.id == sa.bindparam("link_id"), LINKS.c.alias.is_(None), LIVE)
BY_ALIAS = sa.and_(LINKS.c.alias == sa.bindparam("alias"), LIVE)
INSERT_VISIT = sa.insert(VISITS)


def named(code: str):
    """``(BY_ID or BY_ALIAS, its parameters)`` for ``code``; None if no link can be."""
    if looks_like_code(code):
        row_id = id_for_code(code)
        return None if row_id is None else (BY_ID, {"link_id": row_id})
    if ALIAS_PATTERN.fullmatch(code):
        return BY_ALIAS, {"alias": code}
    return None
