"""The embedded notes store: SQLAlchemy on the shared database (SQLite by default).

Tables: ``notes``; ``note_changes``, the change log, one row per write with
its ``seq``, ``type``, ``old_val``/``new_val`` (the note's stored fields as
JSON, not its API shape) and ``ts``; and
``note_sequence``, one counter row that hands out ``seq``.

Every write is one transaction that first increments the counter row, then
writes the note and appends its change. Taking the counter row first locks
it until commit (SQLite: the database write lock; PostgreSQL: the row
lock), so writes commit in ``seq`` order: once a reader sees ``seq`` N,
every lower ``seq`` is visible too, and the log can be tailed with
``WHERE seq > last``. A rolled-back write gives its number back, so the log
has no holes. The If-Match check is part of the same transaction and the
update itself is conditional (``WHERE version = ?``).

:meth:`SqlNotesStore.changes` polls the log every ``poll_interval`` seconds
(a cheap primary-key range query), so a consumer in another process (the
push worker) sees a change at most that long after it commits.
"""

import contextlib
import dataclasses
import datetime
import threading
import time
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from typing import List
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import orm
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.clock import as_utc
from core.clock import utc_now
from core.notes import CREATED
from core.notes import DELETED
from core.notes import TITLE_MAX
from core.notes import UPDATED
from core.notes import Change
from core.notes import Note
from core.notes import new_note_id
from db.errors import PreconditionFailed
from db.errors import Unavailable
from db.notes.base import Clock
from db.notes.base import NotesStore
from db.notes.base import Page
from db.notes.base import not_found
from db.notes.base import require_id
from db.notes.base import writable
from db.sql import Base
from db.sql import Database

UNAVAILABLE = "notes store unavailable"
_SEQUENCE_NAME = "changes"  # the row the DDL below creates


class NoteRow(Base):
    """A note. ``position`` is the ``seq`` of its creation (list order)."""

    __tablename__ = "notes"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    position: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    title: Mapped[str] = mapped_column(sa.String(TITLE_MAX))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True))
    version: Mapped[int] = mapped_column(sa.Integer)


class NoteChangeRow(Base):
    """One entry of the change log, written in the same transaction as the note."""

    __tablename__ = "note_changes"

    seq: Mapped[int] = mapped_column(
        sa.BigInteger, primary_key=True, autoincrement=False
    )
    type: Mapped[str] = mapped_column(sa.String(8))
    note_id: Mapped[str] = mapped_column(sa.String(32))
    old_val: Mapped[Optional[dict]] = mapped_column(sa.JSON(none_as_null=True))
    new_val: Mapped[Optional[dict]] = mapped_column(sa.JSON(none_as_null=True))
    ts: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True))


class NoteSequence(Base):
    """The counter that hands out ``seq``; its row lock orders the writes."""

    __tablename__ = "note_sequence"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger)


# The counter row exists from the moment its table does, so writers only
# ever UPDATE it (two first writers cannot race to INSERT it).
event.listen(
    NoteSequence.__table__,
    "after_create",
    sa.DDL("INSERT INTO note_sequence (name, value) VALUES ('changes', 0)"),
)


def _note(row: NoteRow) -> Note:
    return Note(
        id=row.id,
        title=row.title,
        body=row.body,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        version=row.version,
        position=row.position,
    )


def _logged(note: Optional[Note]) -> Optional[dict]:
    """A note as the change log keeps it: its fields, times as ISO 8601."""
    if note is None:
        return None
    fields = dataclasses.asdict(note)
    fields["created_at"] = note.created_at.isoformat()
    fields["updated_at"] = note.updated_at.isoformat()
    return fields


def _from_log(fields: Optional[dict]) -> Optional[Note]:
    if fields is None:
        return None
    return Note(
        **{
            **fields,
            "created_at": datetime.datetime.fromisoformat(fields["created_at"]),
            "updated_at": datetime.datetime.fromisoformat(fields["updated_at"]),
        }
    )


def _change(row: NoteChangeRow) -> Change:
    return Change(
        seq=row.seq,
        type=row.type,
        note_id=row.note_id,
        old=_from_log(row.old_val),
        new=_from_log(row.new_val),
        ts=as_utc(row.ts),
    )


class SqlNotesStore(NotesStore):
    """Notes in SQL tables, with the change log in the same transaction.

    Args:
        database: The shared :class:`db.sql.Database`; its tables come from
            ``create_schema`` (``python -m api init-db``, gunicorn start-up).
        clock: Returns the current UTC time (injectable for tests).
        poll_interval: Seconds between two reads of the log in :meth:`changes`.
        batch_size: Most log rows read at once by :meth:`changes`.
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = utc_now,
        poll_interval: float = 0.05,
        batch_size: int = 500,
    ):
        self._db = database
        self._clock = clock
        self.poll_interval = poll_interval
        self._batch_size = batch_size

    @contextlib.contextmanager
    def _session(self) -> Iterator[orm.Session]:
        try:
            with self._db.session() as session:
                yield session
        except Unavailable as ex:
            raise Unavailable(UNAVAILABLE) from ex

    def _next_seq(self, session: orm.Session) -> int:
        """Take the next ``seq``; the counter stays locked until the commit."""
        table = NoteSequence.__table__
        value = session.execute(
            sa.update(table)
            .where(table.c.name == _SEQUENCE_NAME)
            .values(value=table.c.value + 1)
            .returning(table.c.value)
        ).scalar_one_or_none()
        if value is None:  # the row was deleted by hand: carry on after the log
            last = session.execute(sa.select(sa.func.max(NoteChangeRow.seq))).scalar()
            value = (last or 0) + 1
            session.add(NoteSequence(name=_SEQUENCE_NAME, value=value))
        return value

    def create(self, title: str, body: str) -> Note:
        with self._session() as session:
            seq = self._next_seq(session)
            now = self._clock()
            row = NoteRow(
                id=new_note_id(),
                position=seq,
                title=title,
                body=body,
                created_at=now,
                updated_at=now,
                version=1,
            )
            session.add(row)
            note = _note(row)
            session.add(
                NoteChangeRow(
                    seq=seq,
                    type=CREATED,
                    note_id=note.id,
                    old_val=None,
                    new_val=_logged(note),
                    ts=now,
                )
            )
        return note

    def get(self, note_id: str) -> Note:
        require_id(note_id)
        with self._session() as session:
            row = session.get(NoteRow, note_id)
            if row is None:
                raise not_found()
            return _note(row)

    def list_page(self, limit: int, cursor: Optional[int] = None) -> Page:
        query = sa.select(NoteRow).order_by(NoteRow.position.desc()).limit(limit + 1)
        if cursor is not None:
            query = query.where(NoteRow.position < cursor)
        with self._session() as session:
            notes = [_note(row) for row in session.scalars(query)]
        if len(notes) > limit:
            return Page(notes[:limit], notes[limit - 1].position)
        return Page(notes, None)

    def _current(
        self, session: orm.Session, note_id: str, if_versions: Optional[Collection[int]]
    ) -> Note:
        row = session.get(NoteRow, note_id)
        if row is None:
            raise not_found()
        if if_versions is not None and row.version not in if_versions:
            raise _precondition_failed()
        return _note(row)

    def patch(
        self,
        note_id: str,
        fields: Mapping[str, str],
        *,
        if_versions: Optional[Collection[int]] = None,
    ) -> Note:
        fields = writable(fields)
        require_id(note_id)
        with self._session() as session:
            seq = self._next_seq(session)
            before = self._current(session, note_id, if_versions)
            after = dataclasses.replace(
                before, **fields, updated_at=self._clock(), version=before.version + 1
            )
            table = NoteRow.__table__
            result = session.execute(
                sa.update(table)
                .where(table.c.id == note_id, table.c.version == before.version)
                .values(**fields, updated_at=after.updated_at, version=after.version)
            )
            if result.rowcount != 1:
                raise _precondition_failed()
            session.add(
                NoteChangeRow(
                    seq=seq,
                    type=UPDATED,
                    note_id=note_id,
                    old_val=_logged(before),
                    new_val=_logged(after),
                    ts=after.updated_at,
                )
            )
        return after

    def delete(
        self, note_id: str, *, if_versions: Optional[Collection[int]] = None
    ) -> None:
        require_id(note_id)
        with self._session() as session:
            seq = self._next_seq(session)
            before = self._current(session, note_id, if_versions)
            table = NoteRow.__table__
            result = session.execute(
                sa.delete(table).where(
                    table.c.id == note_id, table.c.version == before.version
                )
            )
            if result.rowcount != 1:
                raise _precondition_failed()
            session.add(
                NoteChangeRow(
                    seq=seq,
                    type=DELETED,
                    note_id=note_id,
                    old_val=_logged(before),
                    new_val=None,
                    ts=self._clock(),
                )
            )

    def _read_changes(self, after: int) -> List[Change]:
        query = (
            sa.select(NoteChangeRow)
            .where(NoteChangeRow.seq > after)
            .order_by(NoteChangeRow.seq)
            .limit(self._batch_size)
        )
        with self._session() as session:
            return [_change(row) for row in session.scalars(query)]

    def last_seq(self) -> int:
        with self._session() as session:
            last = session.execute(sa.select(sa.func.max(NoteChangeRow.seq))).scalar()
        return last or 0

    def changes(
        self,
        since: Optional[int] = None,
        *,
        stop: Optional[threading.Event] = None,
        timeout: Optional[float] = None,
    ) -> Iterator[Change]:
        stop = stop or threading.Event()
        deadline = None if timeout is None else time.monotonic() + timeout
        last = self.last_seq() if since is None else since
        while True:
            batch = self._read_changes(last)
            for change in batch:
                if stop.is_set() or _past(deadline):
                    return
                yield change
                last = change.seq
            if len(batch) == self._batch_size:
                continue  # more are waiting: no pause
            wait = self.poll_interval
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            if wait <= 0 or stop.wait(wait):
                return

    def ping(self) -> None:
        with self._session() as session:
            session.execute(sa.select(NoteRow.id).limit(1))


def _precondition_failed() -> PreconditionFailed:
    return PreconditionFailed(
        "The note has changed since the version named in If-Match."
    )


def _past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline
