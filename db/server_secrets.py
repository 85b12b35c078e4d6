"""Secrets that every process of a deployment shares, made once, in the SQL database.

The first process that needs the stream tickets' secret draws 32 random bytes
into ``server_secrets``; the others read the row. Deleting it rotates the
secret at each process's next start. Usage: docs/user/push.md#keys-and-tickets
"""

import datetime
import secrets
import threading
from typing import Dict

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.clock import utc_now
from db.sql import Base
from db.sql import Database

#: Random bytes of a new secret.
SECRET_BYTES = 32


class ServerSecretRow(Base):
    """One named secret (hex), shared by every process of the deployment."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True))


_TABLE = ServerSecretRow.__table__
_BY_NAME = sa.select(_TABLE.c.value).where(_TABLE.c.name == sa.bindparam("name"))


class ServerSecrets:
    """Named secrets: read once per process, made by the first process that asks."""

    def __init__(self, database: Database):
        self._db = database
        self._known: Dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes:
        """The secret ``name``, made now if no process made it yet (Unavailable
        if the database is down)."""
        known = self._known.get(name)
        if known is not None:
            return known
        with self._lock:
            if name not in self._known:
                self._known[name] = self._read_or_make(name)
            return self._known[name]

    def _read_or_make(self, name: str) -> bytes:
        with self._db.read() as connection:
            value = connection.execute(_BY_NAME, {"name": name}).scalar()
        if value is not None:
            return bytes.fromhex(value)
        fresh = secrets.token_hex(SECRET_BYTES)
        try:
            with self._db.write() as connection:
                connection.execute(
                    sa.insert(_TABLE).values(
                        name=name, value=fresh, created_at=utc_now()
                    )
                )
            return bytes.fromhex(fresh)
        except exc.IntegrityError:  # another process made it first: take theirs
            with self._db.read() as connection:
                return bytes.fromhex(
                    connection.execute(_BY_NAME, {"name": name}).scalar_one()
                )
