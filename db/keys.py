"""API keys in the SQL database: made, listed and revoked by name, looked up by digest.

Only a key's SHA-256 is stored (:mod:`core.apikeys`). :class:`KeyCache`
keeps each answer of the database for :data:`CACHE_SECONDS`, so a worker
asks about a key at most once a second, and a revoked key stops working on
every worker within that second.
"""

import dataclasses
import datetime
import logging
import threading
import time
from typing import Callable
from typing import Dict
from typing import FrozenSet
from typing import List
from typing import Optional
from typing import Tuple
from typing import Union

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core import apikeys
from core.addresses import is_loopback
from core.clock import as_utc
from core.clock import utc_now
from db.errors import Conflict
from db.errors import NotFound
from db.sql import Base
from db.sql import Database

log = logging.getLogger(__name__)

NAME_MAX = 64
#: How long a worker trusts what the database said of a key.
CACHE_SECONDS = 1.0
#: How often a key's ``last_used_at`` is written, at most.
LAST_USED_EVERY = 60.0
#: Most keys (known or not) a worker remembers; past it, it starts over.
CACHE_MAX = 10_000


class KeyRow(Base):
    """An API key: its name, the digest of the key, its scopes."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX), unique=True)
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True))
    last_used_at: Mapped[Optional[datetime.datetime]] = mapped_column(
        sa.DateTime(timezone=True)
    )
    revoked_at: Mapped[Optional[datetime.datetime]] = mapped_column(
        sa.DateTime(timezone=True)
    )


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """What is known of a key; never the key itself."""

    id: int
    name: str
    scopes: Tuple[str, ...]
    created_at: datetime.datetime
    last_used_at: Optional[datetime.datetime]
    revoked_at: Optional[datetime.datetime]
    #: The scopes this key may use: each of its scopes includes the lower ones.
    granted: FrozenSet[str]


_TABLE = KeyRow.__table__
_BY_DIGEST = sa.select(_TABLE).where(
    _TABLE.c.digest == sa.bindparam("digest"), _TABLE.c.revoked_at.is_(None)
)
_BY_ID = sa.select(_TABLE).where(
    _TABLE.c.id == sa.bindparam("key_id"), _TABLE.c.revoked_at.is_(None)
)
_TOUCH = (
    sa.update(_TABLE)
    .where(_TABLE.c.id == sa.bindparam("key_id"))
    .values(last_used_at=sa.bindparam("now"))
)
_ANY_ACTIVE = sa.select(_TABLE.c.id).where(_TABLE.c.revoked_at.is_(None)).limit(1)


def _key(row) -> ApiKey:
    scopes = tuple(row.scopes.split(","))
    return ApiKey(
        id=row.id,
        name=row.name,
        scopes=scopes,
        created_at=as_utc(row.created_at),
        last_used_at=row.last_used_at and as_utc(row.last_used_at),
        revoked_at=row.revoked_at and as_utc(row.revoked_at),
        granted=apikeys.granted(scopes),
    )


class KeyStore:
    """The API keys of the SQL database."""

    def __init__(self, database: Database):
        self._db = database

    def create(self, name: str, scopes: str) -> Tuple[ApiKey, str]:
        """A new key named ``name``: what is stored of it, and the key (shown once).

        ValueError for a bad name or scopes; Conflict if the name is taken
        (by a revoked key too: a name always means one key).
        """
        name = name.strip()
        if not name or len(name) > NAME_MAX or not name.isprintable():
            raise ValueError(f"a key's name is 1 to {NAME_MAX} printable characters")
        scope_list = apikeys.parse_scopes(scopes)
        secret = apikeys.new_key()
        values = {
            "name": name,
            "digest": apikeys.digest(secret),
            "scopes": ",".join(scope_list),
            "created_at": utc_now(),
        }
        try:
            with self._db.write() as connection:
                row = connection.execute(
                    sa.insert(_TABLE).values(values).returning(*_TABLE.c)
                ).one()
        except exc.IntegrityError:
            raise Conflict(f"A key named {name!r} exists.") from None
        return _key(row), secret

    def list(self) -> List[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._db.read() as connection:
            rows = connection.execute(sa.select(_TABLE).order_by(_TABLE.c.id)).all()
        return [_key(row) for row in rows]

    def revoke(self, name: str) -> ApiKey:
        """Revoke the key ``name`` (NotFound if there is no such active key)."""
        with self._db.write() as connection:
            row = connection.execute(
                sa.update(_TABLE)
                .where(_TABLE.c.name == name, _TABLE.c.revoked_at.is_(None))
                .values(revoked_at=utc_now())
                .returning(*_TABLE.c)
            ).first()
        if row is None:
            raise NotFound(f"No active key named {name!r}.")
        return _key(row)

    def find(self, key: str) -> Optional[ApiKey]:
        """The active key ``key``, or None."""
        if not apikeys.well_formed(key):
            return None
        with self._db.read() as connection:
            row = connection.execute(
                _BY_DIGEST, {"digest": apikeys.digest(key)}
            ).first()
        return None if row is None else _key(row)

    def find_id(self, key_id: int) -> Optional[ApiKey]:
        """The active key whose id is ``key_id`` (a stream ticket names it), or None."""
        with self._db.read() as connection:
            row = connection.execute(_BY_ID, {"key_id": key_id}).first()
        return None if row is None else _key(row)

    def touch(self, key_id: int, now: datetime.datetime) -> None:
        """Record that the key was used at ``now``."""
        with self._db.write() as connection:
            connection.execute(_TOUCH, {"key_id": key_id, "now": now})

    def any_active(self) -> bool:
        """Whether at least one key is not revoked."""
        with self._db.read() as connection:
            return connection.execute(_ANY_ACTIVE).first() is not None


class KeyCache:
    """Keys as the database last answered, for at most ``ttl`` seconds each.

    Args:
        store: Where keys are looked up.
        ttl: Seconds an answer (a key, or "no such key") is trusted.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        store: KeyStore,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._store = store
        self._ttl = ttl
        self._clock = clock
        # By key (str), and by id (int) for stream tickets.
        self._answers: Dict[Union[str, int], Tuple[float, Optional[ApiKey]]] = {}
        self._touched: Dict[int, float] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Optional[ApiKey]:
        """The active key ``key``, or None (unknown, revoked); Unavailable if unsure."""
        return self._get(key, self._store.find)

    def get_id(self, key_id: int) -> Optional[ApiKey]:
        """The active key with id ``key_id``, or None; Unavailable if unsure."""
        return self._get(key_id, self._store.find_id)

    def _get(self, key, find: Callable) -> Optional[ApiKey]:
        now = self._clock()
        answer = self._answers.get(key)
        if answer is not None and answer[0] > now:
            return answer[1]
        found = find(key)
        if len(self._answers) >= CACHE_MAX:
            self._answers = {}
        self._answers[key] = (now + self._ttl, found)
        if found is not None:
            self._note_use(found, now)
        return found

    def _note_use(self, key: ApiKey, now: float) -> None:
        with self._lock:
            if self._touched.get(key.id, float("-inf")) > now - LAST_USED_EVERY:
                return
            self._touched[key.id] = now
        try:
            self._store.touch(key.id, utc_now())
        except Exception:  # a lost "last used" must not fail the request
            log.exception("recording the use of key %r failed", key.name)


def open_without_keys(settings, store: KeyStore) -> Optional[str]:
    """Why a server on ``settings.host`` must not start, or None if it may.

    Beyond loopback with ``AUTH=on`` and no active key, nobody could use it
    but by turning auth off in a hurry: it is refused instead, saying how
    to make a key.
    """
    if settings.auth != "on" or is_loopback(settings.host) or store.any_active():
        return None
    return (
        f"HOST={settings.host} is beyond loopback and no API key exists: make "
        "one first (python -m api keys create --name NAME --scopes admin), or "
        "set AUTH=off on a trusted network"
    )
