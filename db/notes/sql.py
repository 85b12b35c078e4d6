"""The embedded notes store: SQLAlchemy on the shared database (SQLite by default).

Tables ``notes``, ``note_changes`` (the change log) and ``note_sequence`` (the
counter). Each write is one transaction that takes the counter row first, so
writes commit in ``seq`` order and the log has no holes; notes created together
share a transaction (group commit, docs/decisions/0003-group-commit.md).

Design: docs/design/stores.md#the-embedded-store
"""

import contextlib
import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Callable
from typing import List
from typing import Optional
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.clock import as_utc
from core.clock import isoformat
from core.clock import utc_now
from core.clock import z_as_offset
from core.notes import CREATED
from core.notes import DELETED
from core.notes import TITLE_MAX
from core.notes import UPDATED
from core.notes import Change
from core.notes import Note
from core.notes import new_note_id
from core.tracing import traceparent
from db.errors import PreconditionFailed
from db.errors import Pruned
from db.errors import Unavailable
from db.notes.base import UNAVAILABLE
from db.notes.base import Clock
from db.notes.base import NotesStore
from db.notes.base import Page
from db.notes.base import not_found
from db.notes.base import require_id
from db.notes.base import writable
from db.notes.groups import CreateGroups
from db.notes.groups import NewNote
from db.pg_wakeups import NOTIFY
from db.sql import Base
from db.sql import Database
from db.sql import Query

log = logging.getLogger(__name__)

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
    #: The W3C trace context of the write (TRACING), for the push worker.
    traceparent: Mapped[Optional[str]] = mapped_column(sa.String(55))


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


_NOTES = NoteRow.__table__
_CHANGES = NoteChangeRow.__table__
_SEQUENCE = NoteSequence.__table__

# Core statements built once: SQLAlchemy caches their compiled SQL, and no
# ORM unit of work runs on these paths (the API's hottest).
_NOTE_COLUMNS = (
    _NOTES.c.id,
    _NOTES.c.title,
    _NOTES.c.body,
    _NOTES.c.created_at,
    _NOTES.c.updated_at,
    _NOTES.c.version,
    _NOTES.c.position,
)
_GET = sa.select(*_NOTE_COLUMNS).where(_NOTES.c.id == sa.bindparam("note_id"))
_FETCH = Query(_GET)
_PAGE = (
    sa.select(*_NOTE_COLUMNS)
    .order_by(_NOTES.c.position.desc())
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_PAGE_AFTER = _PAGE.where(_NOTES.c.position < sa.bindparam("cursor"))
_NEXT_SEQ = (
    sa.update(_SEQUENCE)
    .where(_SEQUENCE.c.name == _SEQUENCE_NAME)
    .values(value=_SEQUENCE.c.value + sa.bindparam("count", type_=sa.BigInteger))
    .returning(_SEQUENCE.c.value)
)
_LAST_SEQ = sa.select(sa.func.max(_CHANGES.c.seq))
_INSERT_NOTE = sa.insert(_NOTES)
_INSERT_CHANGE = sa.insert(_CHANGES)
_UPDATE_NOTE = (
    sa.update(_NOTES)
    .where(
        _NOTES.c.id == sa.bindparam("note_id"),
        _NOTES.c.version == sa.bindparam("expected"),
    )
    .values(
        title=sa.bindparam("new_title"),
        body=sa.bindparam("new_body"),
        updated_at=sa.bindparam("new_updated_at"),
        version=sa.bindparam("new_version"),
    )
)
_DELETE_NOTE = sa.delete(_NOTES).where(
    _NOTES.c.id == sa.bindparam("note_id"),
    _NOTES.c.version == sa.bindparam("expected"),
)
_CHANGES_AFTER = (
    sa.select(
        _CHANGES.c.seq,
        _CHANGES.c.type,
        _CHANGES.c.note_id,
        _CHANGES.c.old_val,
        _CHANGES.c.new_val,
        _CHANGES.c.ts,
        _CHANGES.c.traceparent,
    )
    .where(_CHANGES.c.seq > sa.bindparam("after"))
    .order_by(_CHANGES.c.seq)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_FIRST_SEQ = sa.select(sa.func.min(_CHANGES.c.seq))
_OLDEST = (
    sa.select(_CHANGES.c.seq, _CHANGES.c.ts)
    .where(_CHANGES.c.seq < sa.select(sa.func.max(_CHANGES.c.seq)).scalar_subquery())
    .order_by(_CHANGES.c.seq)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_PRUNE = sa.delete(_CHANGES).where(_CHANGES.c.seq <= sa.bindparam("upto"))
_PING = sa.select(_NOTES.c.id).limit(1)


def _note(row) -> Note:
    return Note(
        id=row.id,
        title=row.title,
        body=row.body,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        version=row.version,
        position=row.position,
    )


def _row_values(note: Note) -> dict:
    # Not dataclasses.asdict: it deep-copies every value (slow under PyPy).
    return {
        "id": note.id,
        "title": note.title,
        "body": note.body,
        "created_at": note.created_at,
        "updated_at": note.updated_at,
        "version": note.version,
        "position": note.position,
    }


def _logged(note: Optional[Note]) -> Optional[dict]:
    """A note as the change log keeps it: its fields, times as the API writes them."""
    if note is None:
        return None
    fields = _row_values(note)
    fields["created_at"] = isoformat(note.created_at)
    fields["updated_at"] = isoformat(note.updated_at)
    return fields


def _log_time(text: str) -> datetime.datetime:
    # A log holds either the API's form (Z) or datetime.isoformat's (+00:00).
    return datetime.datetime.fromisoformat(z_as_offset(text))


def _from_log(fields: Optional[dict]) -> Optional[Note]:
    if fields is None:
        return None
    return Note(
        **{
            **fields,
            "created_at": _log_time(fields["created_at"]),
            "updated_at": _log_time(fields["updated_at"]),
        }
    )


def _change(row) -> Change:
    return Change(
        seq=row.seq,
        type=row.type,
        note_id=row.note_id,
        old=_from_log(row.old_val),
        new=_from_log(row.new_val),
        ts=as_utc(row.ts),
        traceparent=row.traceparent,
    )


class Wakeups(Protocol):
    """What :meth:`SqlNotesStore.changes` waits on between reads of the log."""

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True as soon as a commit was announced."""

    def close(self) -> None:
        """Stop listening (its owner calls it, once the log is no longer read)."""


class SqlNotesStore(NotesStore):
    """Notes in SQL tables, with the change log in the same transaction.

    Args:
        database: The shared :class:`db.sql.Database`; its tables come from
            ``create_schema`` (``python -m api init-db``, gunicorn start-up).
        clock: Returns the current UTC time (injectable for tests).
        poll_interval: Seconds between two reads of the log in :meth:`changes`
            when nothing announces commits; with ``wakeups``, the fallback.
        batch_size: Most log rows read at once by :meth:`changes`.
        on_commit: Called after every committed write (the API announces it
            to the push worker, :class:`core.wakeup.Notifier`); never fails
            the write.
        wakeups: Announced commits (:class:`core.wakeup.Listener`, or
            :class:`db.pg_wakeups.PgWakeups` on PostgreSQL): the log is read
            as soon as one arrives.
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = utc_now,
        poll_interval: float = 0.05,
        batch_size: int = 500,
        on_commit: Optional[Callable[[], None]] = None,
        wakeups: Optional[Wakeups] = None,
    ):
        self._db = database
        self._clock = clock
        self.poll_interval = poll_interval
        self._batch_size = batch_size
        self._on_commit = on_commit
        self._wakeups = wakeups
        self._groups = CreateGroups(self._insert)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        try:
            with self._db.read() as connection:
                yield connection
        except Unavailable as ex:
            raise Unavailable(UNAVAILABLE) from ex

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        try:
            with self._db.write() as connection:
                yield connection
                if connection.dialect.name == "postgresql":
                    connection.execute(NOTIFY)  # sent by the commit, if it commits
        except Unavailable as ex:
            raise Unavailable(UNAVAILABLE) from ex
        if self._on_commit is not None:
            try:
                self._on_commit()
            except Exception:  # the write is committed: never fail it now
                log.exception("announcing a commit failed")

    def _next_seq(self, connection: sa.Connection, count: int = 1) -> int:
        """Take ``count`` more seqs, returning the last; locked until the commit."""
        value = connection.execute(_NEXT_SEQ, {"count": count}).scalar_one_or_none()
        if value is None:  # the row was deleted by hand: carry on after the log
            value = (connection.execute(_LAST_SEQ).scalar() or 0) + count
            connection.execute(
                sa.insert(_SEQUENCE), {"name": _SEQUENCE_NAME, "value": value}
            )
        return value

    def create(self, title: str, body: str) -> Note:
        new = NewNote(new_note_id(), title, body, self._clock())
        return self._groups.create(new)

    def _insert(self, group: List[NewNote]) -> None:
        """Insert the notes of ``group`` and their changes in one transaction."""
        with self._write() as connection:
            self._groups.close(group)  # it holds the turn to write
            seq = self._next_seq(connection, len(group)) - len(group)
            notes, rows, changes = [], [], []
            for new in group:
                seq += 1
                note = Note(
                    id=new.note_id,
                    title=new.title,
                    body=new.body,
                    created_at=new.now,
                    updated_at=new.now,
                    version=1,
                    position=seq,
                )
                notes.append(note)
                rows.append(_row_values(note))
                changes.append(
                    {
                        "seq": seq,
                        "type": CREATED,
                        "note_id": note.id,
                        "old_val": None,
                        "new_val": _logged(note),
                        "ts": new.now,
                        "traceparent": new.traceparent,
                    }
                )
            connection.execute(_INSERT_NOTE, rows)
            connection.execute(_INSERT_CHANGE, changes)
        for new, note in zip(group, notes):  # committed
            new.note = note

    def get(self, note_id: str) -> Note:
        require_id(note_id)
        try:
            row = self._db.fetch_one(_FETCH, {"note_id": note_id})
        except Unavailable as ex:
            raise Unavailable(UNAVAILABLE) from ex
        if row is None:
            raise not_found()
        return _note(row)

    def list_page(self, limit: int, cursor: Optional[int] = None) -> Page:
        with self._read() as connection:
            if cursor is None:
                rows = connection.execute(_PAGE, {"limit": limit + 1}).all()
            else:
                rows = connection.execute(
                    _PAGE_AFTER, {"limit": limit + 1, "cursor": cursor}
                ).all()
        notes = [_note(row) for row in rows]
        if len(notes) > limit:
            return Page(notes[:limit], notes[limit - 1].position)
        return Page(notes, None)

    @staticmethod
    def _current(
        connection: sa.Connection,
        note_id: str,
        if_versions: Optional[Collection[int]],
    ) -> Note:
        # one_or_none reads on to the statement's end (the id is the key),
        # so its SQLite cursor is reused (db.sqlite._Cursor); first() would
        # close it with the statement still running.
        row = connection.execute(_GET, {"note_id": note_id}).one_or_none()
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
        now, trace = self._clock(), traceparent()
        with self._write() as connection:
            seq = self._next_seq(connection)
            before = self._current(connection, note_id, if_versions)
            after = dataclasses.replace(
                before, **fields, updated_at=now, version=before.version + 1
            )
            result = connection.execute(
                _UPDATE_NOTE,
                {
                    "note_id": note_id,
                    "expected": before.version,
                    "new_title": after.title,
                    "new_body": after.body,
                    "new_updated_at": after.updated_at,
                    "new_version": after.version,
                },
            )
            if result.rowcount != 1:
                raise _precondition_failed()
            connection.execute(
                _INSERT_CHANGE,
                {
                    "seq": seq,
                    "type": UPDATED,
                    "note_id": note_id,
                    "old_val": _logged(before),
                    "new_val": _logged(after),
                    "ts": now,
                    "traceparent": trace,
                },
            )
        return after

    def delete(
        self, note_id: str, *, if_versions: Optional[Collection[int]] = None
    ) -> None:
        require_id(note_id)
        now, trace = self._clock(), traceparent()
        with self._write() as connection:
            seq = self._next_seq(connection)
            before = self._current(connection, note_id, if_versions)
            result = connection.execute(
                _DELETE_NOTE, {"note_id": note_id, "expected": before.version}
            )
            if result.rowcount != 1:
                raise _precondition_failed()
            connection.execute(
                _INSERT_CHANGE,
                {
                    "seq": seq,
                    "type": DELETED,
                    "note_id": note_id,
                    "old_val": _logged(before),
                    "new_val": None,
                    "ts": now,
                    "traceparent": trace,
                },
            )

    def _read_changes(self, after: int, first: bool = False) -> List[Change]:
        """The changes after ``after``; Pruned if the next ones are gone.

        ``first`` with ``after`` 0: from the floor, whatever it is.
        """
        with self._read() as connection:
            rows = connection.execute(
                _CHANGES_AFTER, {"after": after, "limit": self._batch_size}
            ).all()
        if rows and rows[0].seq > after + 1 and not (first and after == 0):
            raise Pruned(rows[0].seq - 1)
        return [_change(row) for row in rows]

    def log_floor(self) -> int:
        with self._read() as connection:
            first = connection.execute(_FIRST_SEQ).scalar()
        return 0 if first is None else first - 1

    def prune_log(self, before: datetime.datetime, limit: int) -> int:
        with self._read() as connection:
            rows = connection.execute(_OLDEST, {"limit": limit}).all()
        upto = None
        for row in rows:  # the oldest run written before ``before``
            if as_utc(row.ts) >= before:
                break
            upto = row.seq
        if upto is None:
            return 0
        try:
            # Not self._write: nothing to announce to the push worker.
            with self._db.write() as connection:
                return connection.execute(_PRUNE, {"upto": upto}).rowcount
        except Unavailable as ex:
            raise Unavailable(UNAVAILABLE) from ex

    def last_seq(self) -> int:
        with self._read() as connection:
            last = connection.execute(_LAST_SEQ).scalar()
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
        first = True
        while True:
            batch = self._read_changes(last, first)
            first = False
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
            if wait <= 0 or self._pause(wait, stop):
                return

    def _pause(self, seconds: float, stop: threading.Event) -> bool:
        """Wait until a commit is announced or ``seconds`` pass; True if stopped."""
        if self._wakeups is None:
            return stop.wait(seconds)
        end = time.monotonic() + seconds
        while not stop.is_set():
            left = end - time.monotonic()
            # Short slices, so a stop is seen within 0.1 s.
            if left <= 0 or self._wakeups.wait(min(left, 0.1)):
                return stop.is_set()
        return True

    def ping(self) -> None:
        with self._read() as connection:
            connection.execute(_PING).close()


def _precondition_failed() -> PreconditionFailed:
    return PreconditionFailed(
        "The note has changed since the version named in If-Match."
    )


def _past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline
