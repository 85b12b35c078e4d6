"""The RethinkDB notes store (``RETHINKDB_URL=rethinkdb://host:28015/todo``).

Tables ``notes`` (with outboxes and tombstones), ``notes_changes`` (the log) and
``notes_seq`` (the counter), created by ``python -m api init-db``; a small pool
of connections per process, every wait bounded by ``timeout``, failures raised
as ``Unavailable`` (503). The change log is :mod:`db.notes.rethink_log`.

Design: docs/design/stores.md#rethinkdb
"""

import datetime
import logging
import os
import threading
import time
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

from rethinkdb import r
from rethinkdb.errors import ReqlOpFailedError

from core.clock import as_utc
from core.clock import utc_now
from core.notes import CREATED
from core.notes import DELETED
from core.notes import UPDATED
from core.notes import Change
from core.notes import Note
from core.notes import new_note_id
from core.tracing import traceparent
from db.errors import PreconditionFailed
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
from db.notes.rethink_log import COUNTER_ID
from db.notes.rethink_log import ChangeLog
from db.notes.rethink_log import entry
from db.rethink import CONNECTION_ERRORS
from db.rethink import DRIVER_ERRORS
from db.rethink import Connector
from db.rethink import RawDecoder
from db.rethink import RethinkTarget
from db.rethink import check_name
from db.rethink import close_quietly
from db.rethink import ensure_tables
from db.rethink import is_missing_schema
from db.rethink import parse_url

log = logging.getLogger(__name__)

NOTE_FIELDS = ("id", "title", "body", "created_at", "updated_at", "version", "position")
_WRITE_ATTEMPTS = 10
#: Connections a process opens at most; more concurrent calls wait for one.
POOL_SIZE = 8
# Failed checks inside a write function come back in the result's
# first_error; these markers say which check failed.
_MISSING = "NOTE_MISSING"
_STALE = "NOTE_STALE_SEQ"
_LATE = "NOTE_LEASE_OVER"
_MISMATCH = "NOTE_VERSION_MISMATCH"
#: How the server words an insert refused for an id that exists.
_DUPLICATE = "Duplicate primary key"


def _time(value) -> datetime.datetime:
    # A TIME as RawDecoder leaves it, or the driver's datetime with its own
    # time zone object; float seconds: back to the clock's form.
    if isinstance(value, dict):
        value = datetime.datetime.fromtimestamp(
            value["epoch_time"], datetime.timezone.utc
        )
    else:
        value = as_utc(value)
    return value.replace(microsecond=round(value.microsecond / 1000) * 1000 % 1000000)


def _note(doc: Mapping[str, Any]) -> Note:
    return Note(
        id=doc["id"],
        title=doc["title"],
        body=doc["body"],
        created_at=_time(doc["created_at"]),
        updated_at=_time(doc["updated_at"]),
        version=doc["version"],
        position=doc["position"],
    )


def _change(entry: Mapping[str, Any]) -> Change:
    return Change(
        seq=entry["id"],
        type=entry["type"],
        note_id=entry["note_id"],
        old=None if entry["old_val"] is None else _note(entry["old_val"]),
        new=None if entry["new_val"] is None else _note(entry["new_val"]),
        ts=_time(entry["ts"]),
        traceparent=entry.get("traceparent"),
    )


class RethinkNotesStore(NotesStore):
    """Notes in RethinkDB, with a change log no crash can leave behind.

    Args:
        target: Servers, database and credentials (see :func:`parse_url`).
        table: Name of the notes table; the log and counter tables are
            ``<table>_changes`` and ``<table>_seq``.
        timeout: Seconds allowed for a connect (per server) and for each answer.
        clock: Returns the current UTC time (injectable for tests).
        poll_interval: Seconds between checks of ``stop``/``timeout``, and
            before a missing number is looked for, while :meth:`changes`
            follows the feed.
        lease: Seconds a writer has from taking its number to committing.
        clock_margin: Seconds the servers' clocks (and a write's way to its
            primary) may be off; a missing number is given up on
            ``lease + clock_margin`` seconds after it was taken.
        batch: Numbers read per query while catching up.
        empty_interval: Seconds between two emptyings of the outboxes by a
            reader following the stream.
        empty_batch: Notes whose outboxes one write empties.
        outbox_limit: Entries a note's outbox may hold before its writer
            logs and empties it itself (when no reader does).
    """

    def __init__(
        self,
        target: RethinkTarget,
        *,
        table: str = "notes",
        timeout: float = 5.0,
        clock: Clock = utc_now,
        poll_interval: float = 0.05,
        lease: float = 2.0,
        clock_margin: float = 1.0,
        batch: int = 1000,
        empty_interval: float = 1.0,
        empty_batch: int = 100,
        outbox_limit: int = 16,
    ):
        check_name(table, "RETHINKDB_TABLE", "the table name")
        if len(table) > 56:  # "<table>_changes" is a name too
            raise ValueError("RETHINKDB_TABLE: at most 56 characters")
        self.target = target
        self.table_names = self.table_names_for(table)
        self.timeout = timeout
        self.outbox_limit = outbox_limit
        self._clock = clock
        self._connector = Connector(target, timeout)
        database = r.db(target.db)
        self._notes = database.table(self.table_names[0])
        self._log = database.table(self.table_names[1])
        self._counter = database.table(self.table_names[2])
        self.changelog = ChangeLog(
            self._notes,
            self._log,
            self._counter,
            self._report,
            self._connector.connect,
            lease=lease,
            clock_margin=clock_margin,
            poll_interval=poll_interval,
            batch=batch,
            empty_interval=empty_interval,
            empty_batch=empty_batch,
        )
        self._pid = os.getpid()
        self._idle: List[Any] = []  # connections not in use, newest last
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        # One group of creates writes at a time in a process; the next one
        # gathers the creates that arrive meanwhile.
        self._create_turn = threading.Lock()
        self._retry_at = 0.0
        self._groups = CreateGroups(self._insert_group)

    @staticmethod
    def table_names_for(table: str) -> Tuple[str, str, str]:
        """The notes, change-log and counter table names for notes table ``table``."""
        return table, f"{table}_changes", f"{table}_seq"

    @classmethod
    def from_url(cls, url: str, **kwargs) -> "RethinkNotesStore":
        """A store for ``rethinkdb://host:port/db`` (keywords as for the class)."""
        return cls(parse_url(url), **kwargs)

    # Schema (python -m api init-db)

    def create_schema(self, replicas: int = 1) -> Sequence[str]:
        """Create the database, tables and indexes that are missing; what was done.

        Raises the driver's errors (no host answers, too few servers for
        ``replicas``) for the caller to report.
        """
        notes, changes, counter = self.table_names
        tables = {
            notes: {
                "position": (None, False),
                "outbox": (lambda doc: doc["outbox"]["id"], True),
            },
            changes: {},
            counter: {},
        }
        conn = self._connector.connect()
        try:
            return ensure_tables(conn, self.target.db, tables, replicas)
        finally:
            close_quietly(conn)

    # Connections

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            # A forked child shares the parent's sockets: forget them, never
            # close them. Its locks start free.
            self._pid, self._idle = os.getpid(), []
            self._slots = threading.BoundedSemaphore(POOL_SIZE)
            self._create_turn = threading.Lock()

    def _run(self, work: Callable[[Any], Any]) -> Any:
        """``work(connection)`` on a connection of the pool that no one else uses.

        Driver and availability errors become Unavailable; a broken
        connection is dropped (the next call connects again, to the next
        server first).
        """
        self._check_fork()
        with self._slots:
            conn = self._idle.pop() if self._idle else self._open()
            try:
                return work(conn)
            except DRIVER_ERRORS as ex:
                self._report(ex, "query")
                if isinstance(ex, CONNECTION_ERRORS):
                    conn.broken = True
                raise Unavailable(UNAVAILABLE) from ex
            finally:
                if conn.broken:
                    self._connector.failed(conn)
                    # The idle ones most likely lead to the same server:
                    # drop them too, rather than fail one request each.
                    idle, self._idle = self._idle, []
                    for other in idle:
                        close_quietly(other)
                else:
                    self._idle.append(conn)

    def _report(self, ex: Exception, what: str) -> None:
        if is_missing_schema(ex):
            log.error(
                "RethinkDB %s failed: %s; create the tables with "
                "`python -m api init-db` (RETHINKDB_URL=%s, RETHINKDB_TABLE=%s)",
                what,
                str(ex).splitlines()[0],
                self.target.describe(),
                self.table_names[0],
            )
        else:
            log.warning("RethinkDB %s failed: %s", what, str(ex).splitlines()[0])

    def _open(self):
        # After a failed connect, fail fast for a moment instead of making
        # every request wait for its own connect timeout.
        if time.monotonic() < self._retry_at:
            raise Unavailable(UNAVAILABLE)
        try:
            return self._connector.connect()
        except CONNECTION_ERRORS as ex:
            self._retry_at = time.monotonic() + min(1.0, self.timeout)
            log.warning("cannot connect to RethinkDB: %s", ex)
            raise Unavailable(UNAVAILABLE) from ex

    def close(self) -> None:
        idle, self._idle = self._idle, []
        if os.getpid() != self._pid:
            return
        for conn in idle:
            try:  # the unanswered writes (outbox clean-ups, voids) first
                conn.noreply_wait()
            except DRIVER_ERRORS:
                pass
            close_quietly(conn)

    def ping(self) -> None:
        # Each table answers (it exists, and its primary replica is up).
        probe = r.expr(
            [self._notes.get("-"), self._log.get(0), self._counter.get(COUNTER_ID)]
        )
        self._run(lambda conn: probe.run(conn))

    def log_floor(self) -> int:
        return self._run(self.changelog.floor)

    def prune_log(self, before: datetime.datetime, limit: int) -> int:
        # Numbers missing from the run pruned must be past their lease.
        margin = self.changelog.lease + self.changelog.clock_margin
        before = min(before, utc_now() - datetime.timedelta(seconds=margin))
        return self._run(lambda conn: self.changelog.prune(conn, before, limit))

    def last_seq(self) -> int:
        # Numbers taken by writes still in flight count as past, as in
        # changes(since=None).
        return self._run(self.changelog.head)

    # Reads

    def get(self, note_id: str) -> Note:
        require_id(note_id)
        query = self._notes.get(note_id).without("outbox").default(None)
        doc = self._run(lambda conn: query.run(conn, json_decoder=RawDecoder))
        if doc is None or doc.get("deleted"):
            raise not_found()
        return _note(doc)

    def list_page(self, limit: int, cursor: Optional[int] = None) -> Page:
        selection = self._notes
        if cursor is not None:  # positions below the cursor (right bound open)
            selection = selection.between(r.minval, cursor, index="position")
        query = (
            selection.order_by(index=r.desc("position"))
            .limit(limit + 1)
            .without("outbox")
        )
        docs = self._run(lambda conn: list(query.run(conn, json_decoder=RawDecoder)))
        notes = [_note(doc) for doc in docs]
        if len(notes) > limit:
            return Page(notes[:limit], notes[limit - 1].position)
        return Page(notes, None)

    # Writes

    def _write(
        self,
        note_id: str,
        guarded: Callable[[int, datetime.datetime], Callable[[Any], Any]],
    ) -> Dict[str, Any]:
        """Steps 1 to 3 for one note; the document as committed.

        ``guarded(seq, taken_at)`` is the replace function: the checks, then
        the new document with its outbox entry.
        """

        def work(conn) -> Dict[str, Any]:
            for _ in range(_WRITE_ATTEMPTS):
                seq, taken_at = self.changelog.take_seq(conn)
                try:
                    result = (
                        self._notes.get(note_id)
                        .replace(guarded(seq, taken_at), return_changes=True)
                        .run(conn)
                    )
                except ReqlOpFailedError:  # not written (no primary replica, ...)
                    self.changelog.void(conn, [seq], taken_at)
                    raise
                if not result["errors"]:
                    doc = result["changes"][0]["new_val"]
                    outbox = doc["outbox"]
                    if len(outbox) > self.outbox_limit:
                        # No reader has emptied this outbox for a while (no
                        # push worker runs): log and empty it here, durably.
                        if self.changelog.ship(conn, [(note_id, outbox)]):
                            conn.broken = True  # dropped after this call
                    else:
                        self.changelog.log_soon(conn, [outbox[-1]])
                    return doc
                self.changelog.void(conn, [seq], taken_at)
                error = result.get("first_error", "")
                if _MISSING in error:
                    raise not_found()
                if _MISMATCH in error:
                    raise PreconditionFailed(
                        "The note has changed since the version named in If-Match."
                    )
                if _STALE not in error and _LATE not in error:
                    raise RuntimeError(f"RethinkDB refused a note write: {error}")
            # Only reachable under a storm of writes to this one note.
            log.warning(
                "note %s: no write slot after %d attempts", note_id, _WRITE_ATTEMPTS
            )
            raise Unavailable(UNAVAILABLE)

        return self._run(work)

    def create(self, title: str, body: str) -> Note:
        now = self._clock()
        # In milliseconds, as the server keeps times: the note answered is
        # the note stored.
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        return self._groups.create(NewNote(new_note_id(), title, body, now))

    def _insert_group(self, group: List[NewNote]) -> None:
        """Steps 1 to 3 for the notes of ``group``, each step one query for all.

        Sets ``note`` on each member committed. Raises Unavailable when the
        notes left could not be written or their outcome is unknown (their
        numbers are then left to the readers, who copy them from an outbox or
        void them once their lease is over); raises RuntimeError when the
        notes left were refused for an id taken already (each tries again
        alone, see :class:`db.notes.groups.CreateGroups`).
        """

        def work(conn) -> None:
            self._groups.close(group)  # it holds its turn: it is counted now
            for _ in range(_WRITE_ATTEMPTS):
                if self._insert_once(conn, group):
                    return
            log.warning(
                "%d new notes: no write slot after %d attempts",
                len(group),
                _WRITE_ATTEMPTS,
            )
            raise Unavailable(UNAVAILABLE)

        self._check_fork()
        with self._create_turn:
            self._run(work)

    def _insert_once(self, conn, group: List[NewNote]) -> bool:
        """One try at :meth:`_insert_group`; False if the lease was over first."""
        first, taken_at = self.changelog.take_seq(conn, len(group))
        seqs = range(first, first + len(group))
        notes, docs = [], []
        for seq, new in zip(seqs, group):
            note = {
                "id": new.note_id,
                "title": new.title,
                "body": new.body,
                "created_at": new.now,
                "updated_at": new.now,
                "version": 1,
                "position": seq,
            }
            change = entry(
                seq, CREATED, note["id"], None, note, new.now, taken_at, new.traceparent
            )
            notes.append(note)
            docs.append({**note, "seq": seq, "outbox": [change]})
        deadline = taken_at + datetime.timedelta(seconds=self.changelog.lease)
        try:
            result = self._insert_docs(conn, docs, deadline)
        except ReqlOpFailedError:  # not written (no primary replica, ...)
            if len(docs) == 1:
                # Certain for one document; of a batch, a part may have been
                # written: its numbers are left to the readers.
                self.changelog.void(conn, seqs, taken_at)
            raise
        if result == _LATE:
            self.changelog.void(conn, seqs, taken_at)
            return False
        committed = set(result["committed"])
        for seq, new, note in zip(seqs, group, notes):
            if seq in committed:
                new.note = _note(note)
        if committed:
            self.changelog.log_soon(
                conn, [doc["outbox"][0] for doc in docs if doc["seq"] in committed]
            )
        if len(committed) == len(group):
            return True
        errors = result["errors"]
        refused = [seq for seq in seqs if seq not in committed]
        if len(errors) == len(refused) and all(_DUPLICATE in e for e in errors):
            self.changelog.void(conn, refused, taken_at)
            raise RuntimeError(f"RethinkDB refused new notes: {errors[0]}")
        # The outcome of the others is not known for sure: readers settle it.
        self._report(RuntimeError(errors[0] if errors else "no answer"), "note insert")
        raise Unavailable(UNAVAILABLE)

    def _insert_docs(self, conn, docs: List[dict], deadline: datetime.datetime):
        """Step 2 for new notes: insert ``docs`` unless the lease is over.

        ``_LATE`` if it was (nothing written), else the ``seq`` of each
        document inserted (``committed``) and the errors of the others.
        The server's clock is read once per query, so every document of
        the batch is checked against the same time.
        """
        inserted = self._notes.insert(
            docs, conflict="error", return_changes="always"
        ).do(
            lambda result: {
                "committed": result["changes"]
                .filter(lambda change: change.has_fields("error").not_())
                .map(lambda change: change["new_val"]["seq"]),
                "errors": result["changes"]
                .filter(lambda change: change.has_fields("error"))
                .map(lambda change: change["error"]),
            }
        )
        return r.branch(r.now().gt(deadline), _LATE, inserted).run(conn)

    def _change_guard(
        self,
        seq: int,
        taken_at: datetime.datetime,
        now: datetime.datetime,
        if_versions: Optional[Collection[int]],
        new_doc: Callable[[Any, int, Callable[[str, Any], Any]], Any],
        trace: Optional[str] = None,
    ) -> Callable[[Any], Any]:
        """The replace function of an update or delete under ``seq``.

        ``new_doc(row, seq, entry_for)`` builds the new document, where
        ``entry_for(kind, new_val)`` is its outbox entry.
        """
        deadline = taken_at + datetime.timedelta(seconds=self.changelog.lease)
        versions = None if if_versions is None else sorted(set(if_versions))

        def guarded(row):
            def entry_for(kind, new_val):
                before = row.pluck(*NOTE_FIELDS)
                return entry(
                    seq, kind, row["id"], before, new_val, now, taken_at, trace
                )

            checks = [
                row.eq(None),
                r.error(_MISSING),
                row.has_fields("deleted"),
                r.error(_MISSING),
                r.now().gt(deadline),
                r.error(_LATE),
                row["seq"].ge(seq),
                r.error(_STALE),
            ]
            if versions is not None:
                checks += [
                    r.expr(versions).contains(row["version"]).not_(),
                    r.error(_MISMATCH),
                ]
            return r.branch(*checks, new_doc(row, seq, entry_for))

        return guarded

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

        def new_doc(row, seq, entry_for):
            after = row.pluck(*NOTE_FIELDS).merge(
                {**fields, "updated_at": now, "version": row["version"] + 1}
            )
            outbox = row["outbox"].default([]).append(entry_for(UPDATED, after))
            return after.merge({"seq": seq, "outbox": outbox})

        doc = self._write(
            note_id,
            lambda seq, taken_at: self._change_guard(
                seq, taken_at, now, if_versions, new_doc, trace
            ),
        )
        return _note(doc)

    def delete(
        self, note_id: str, *, if_versions: Optional[Collection[int]] = None
    ) -> None:
        require_id(note_id)
        now, trace = self._clock(), traceparent()

        def new_doc(row, seq, entry_for):
            return {
                "id": row["id"],
                "deleted": True,
                "version": row["version"] + 1,
                "seq": seq,
                "outbox": row["outbox"].default([]).append(entry_for(DELETED, None)),
            }

        self._write(
            note_id,
            lambda seq, taken_at: self._change_guard(
                seq, taken_at, now, if_versions, new_doc, trace
            ),
        )

    # The change stream

    def changes(
        self,
        since: Optional[int] = None,
        *,
        stop: Optional[threading.Event] = None,
        timeout: Optional[float] = None,
    ) -> Iterator[Change]:
        stop = stop or threading.Event()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            conn = self._connector.connect()  # the feed blocks: a connection of its own
        except CONNECTION_ERRORS as ex:
            log.warning("cannot connect to RethinkDB: %s", ex)
            raise Unavailable(UNAVAILABLE) from ex
        entries = self.changelog.follow(conn, since, stop, deadline)
        try:
            for entry in entries:
                yield _change(entry)
        except DRIVER_ERRORS as ex:
            self._report(ex, "change feed")
            raise Unavailable(UNAVAILABLE) from ex
        finally:
            entries.close()  # now, not when collected: it stops its thread
            close_quietly(conn)
