"""The primes table and its store: all-or-nothing batch inserts, ascending reads.

Numbers reach 2**64 - 1 but SQL integers are signed 64-bit, so the column holds
``n - 2**63``: one to one and in order, so the primary key and ``ORDER BY`` stay
right in 8 bytes (a NUMERIC is lossy on SQLite, a padded string bigger and
slower). :class:`UnsignedInt64` shifts on the way in and out.
"""

import logging
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Dict
from typing import List
from typing import Optional
from typing import Set

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy import orm
from sqlalchemy import types

from db.errors import Conflict
from db.sql import Base
from db.sql import Database

log = logging.getLogger(__name__)

_OFFSET = 2**63
#: Numbers per ``IN (...)`` list: far under SQLite's bound-variable limit
#: (999 before 3.32) and small enough for any planner.
IN_CHUNK = 500


class UnsignedInt64(types.TypeDecorator):
    """0 <= n < 2**64 kept in a signed 64-bit column as ``n - 2**63`` (order kept)."""

    impl = sa.BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect):
        # SQLite makes an INTEGER PRIMARY KEY the rowid itself (no second
        # index); its INTEGER is 64-bit like BIGINT elsewhere.
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Integer())
        return dialect.type_descriptor(sa.BigInteger())

    def process_bind_param(self, value, dialect):
        return None if value is None else value - _OFFSET

    def process_result_value(self, value, dialect):
        return None if value is None else value + _OFFSET


class Prime(Base):
    """A stored prime; the number is the primary key, so each is stored once."""

    __tablename__ = "primes"

    number: orm.Mapped[int] = orm.mapped_column(
        UnsignedInt64(), primary_key=True, autoincrement=False
    )


_PRIMES = Prime.__table__
# Core statements built once (SQLAlchemy caches their SQL; no ORM session).
_INSERT = sa.insert(_PRIMES)
_AMONG = sa.select(_PRIMES.c.number).where(
    _PRIMES.c.number.in_(sa.bindparam("numbers", expanding=True))
)
_ONE = sa.select(_PRIMES.c.number).where(_PRIMES.c.number == sa.bindparam("number"))
_PAGE = (
    sa.select(_PRIMES.c.number)
    .order_by(_PRIMES.c.number)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_PAGE_AFTER = _PAGE.where(_PRIMES.c.number > sa.bindparam("after"))


class PrimeStore:
    """Stores batches of numbers all or nothing, and reads them back in order."""

    def __init__(self, database: Database):
        self._database = database

    def insert(self, numbers: Sequence[int]) -> List[int]:
        """Store every number of ``numbers`` in one transaction, or none.

        The caller has checked that they are primes in range; this checks they
        are new. Returns ``numbers``.

        Raises:
            Conflict: with ``duplicates`` (index, number, reason) naming every
                number repeated in the batch or already stored; nothing is stored.
        """
        repeated = _repeats(numbers)
        if repeated:
            # Nothing to insert, but the answer should name stored ones too.
            raise self._conflict(numbers, repeated, self.stored_among(numbers))
        # Inserting in ascending order makes concurrent batches take their row
        # locks in the same order, so PostgreSQL cannot deadlock them.
        rows = [{"number": n} for n in sorted(numbers)]
        try:
            with self._database.write() as connection:
                connection.execute(_INSERT, rows)
        except exc.IntegrityError:
            # The primary key refused a number: stored before, or by a batch
            # that committed first. The transaction is rolled back; look up
            # which ones to name them.
            stored = self.stored_among(numbers)
            log.debug("batch of %d refused: %d stored", len(numbers), len(stored))
            raise self._conflict(numbers, {}, stored) from None
        return list(numbers)

    def stored_among(self, numbers: Iterable[int]) -> Set[int]:
        """The numbers of ``numbers`` that are stored."""
        distinct = sorted(set(numbers))
        found: Set[int] = set()
        with self._database.read() as connection:
            for start in range(0, len(distinct), IN_CHUNK):
                chunk = distinct[start : start + IN_CHUNK]
                found.update(connection.execute(_AMONG, {"numbers": chunk}).scalars())
        return found

    def contains(self, number: int) -> bool:
        """Whether ``number`` is stored."""
        with self._database.read() as connection:
            return connection.execute(_ONE, {"number": number}).first() is not None

    def page(self, limit: int, after: Optional[int] = None) -> List[int]:
        """Up to ``limit`` stored numbers in ascending order, all above ``after``."""
        with self._database.read() as connection:
            if after is None:
                rows = connection.execute(_PAGE, {"limit": limit})
            else:
                rows = connection.execute(_PAGE_AFTER, {"limit": limit, "after": after})
            return list(rows.scalars())

    @staticmethod
    def _conflict(
        numbers: Sequence[int], repeated: Dict[int, int], stored: Set[int]
    ) -> Conflict:
        duplicates = []
        for index, number in enumerate(numbers):
            entry = {"index": index, "number": number}
            if number in stored:
                duplicates.append({**entry, "reason": "stored"})
            elif index in repeated:
                duplicates.append(
                    {**entry, "reason": "repeated", "first_index": repeated[index]}
                )
        verb = "is" if len(duplicates) == 1 else "are"
        detail = (
            f"{len(duplicates)} of the {len(numbers)} numbers {verb} already "
            "stored or repeated in the batch; nothing was stored."
        )
        return Conflict(detail, duplicates=duplicates)


def _repeats(numbers: Sequence[int]) -> Dict[int, int]:
    """Index of every repeat -> index of the number's first occurrence."""
    first: Dict[int, int] = {}
    repeated: Dict[int, int] = {}
    for index, number in enumerate(numbers):
        seen = first.setdefault(number, index)
        if seen != index:
            repeated[index] = seen
    return repeated
