"""The RethinkDB notes store (``RETHINKDB_URL=rethinkdb://host:28015/todo``).

Tables, in the URL's database (created with their index when missing):

- ``notes`` (the name is configurable): one document per note, primary key
  ``id``, a secondary index ``position`` that lists are ordered by.
- ``notes_changes``: the change log, one document per ``seq`` (primary key
  ``id`` = seq) with ``type``, ``note_id``, ``old_val``, ``new_val``, ``ts``.
- ``notes_seq``: one counter document that hands out ``seq``.

Why a change log, not just a changefeed on ``notes``: a changefeed starts
at "now" and cannot resume, so a consumer that was down (the push worker
after a restart) would lose what changed meanwhile, and it carries no
sequence to checkpoint. So every write also appends its change to
``notes_changes``, and :meth:`RethinkNotesStore.changes` opens a real
changefeed on that table (``include_types=True``) first, then reads what
the log holds after ``since`` (``between`` on the primary key, in order),
then follows the feed. The events are the same as the embedded store's.

Ordering without transactions. RethinkDB writes one document atomically,
never two, so a write goes:

1. take the next ``seq``: an atomic increment of the counter document;
2. write the note with a ``replace`` whose function checks, on the server
   and atomically, that the note exists, that its ``seq`` is lower than
   ours (else a later writer got there first: take a new ``seq`` and try
   again) and, for If-Match, that its ``version`` is one of those named;
   ``return_changes`` gives the exact old and new values;
3. append ``{id: seq, type, old_val, new_val, ts}`` to the log, or a
   ``void`` entry when step 2 did not apply (404, 412, retry).

Log entries can therefore land slightly out of ``seq`` order; the reader
(:mod:`db.seq_order`) releases them strictly in ``seq`` order and waits up
to ``gap_timeout`` for a missing number before skipping it. What is not
covered: when step 3 never happens (the process dies, or the connection
drops, between steps 2 and 3), the note is written with no log entry; that
change is skipped after ``gap_timeout`` (with a warning) and never
delivered. The log is never pruned by the store; delete old
entries with ``r.table('notes_changes').between(r.minval, N).delete()``
once every consumer has checkpointed past N.

Connections: one per process, opened lazily (and again after a fork or a
failure), shared by threads under a lock; the change feed gets its own.
Every connect and every query answer is bounded by ``timeout``; driver and
availability errors become ``Unavailable("notes store unavailable")`` (503),
and the next call reconnects, so the API recovers when the server returns.
"""

import dataclasses
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
from typing import Tuple

from rethinkdb import r
from rethinkdb.errors import ReqlCursorEmpty
from rethinkdb.errors import ReqlDriverError
from rethinkdb.errors import ReqlRuntimeError
from rethinkdb.errors import ReqlTimeoutError

from core.clock import utc_now
from core.notes import CREATED
from core.notes import DELETED
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
from db.notes.seq_order import VOID
from db.notes.seq_order import SeqReorderBuffer
from db.rethink import DRIVER_ERRORS
from db.rethink import BoundedConnection
from db.rethink import RethinkTarget
from db.rethink import close_quietly
from db.rethink import parse_url

log = logging.getLogger(__name__)

UNAVAILABLE = "notes store unavailable"
_COUNTER_ID = "changes"
_WRITE_ATTEMPTS = 10
# Failed checks inside a write function come back in the result's
# first_error; these markers say which check failed.
_MISSING = "NOTE_MISSING"
_STALE = "NOTE_STALE_SEQ"
_MISMATCH = "NOTE_VERSION_MISMATCH"


def _note(doc: Mapping[str, Any]) -> Note:
    return Note(
        id=doc["id"],
        title=doc["title"],
        body=doc["body"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
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
        ts=entry["ts"],
    )


def _create_missing(create: Callable[[], Any]) -> None:
    # Two processes starting together may both see a table missing.
    try:
        create()
    except ReqlRuntimeError as ex:
        if "already exists" not in ex.message:
            raise


class RethinkNotesStore(NotesStore):
    """Notes in RethinkDB, with a change log for a resumable change stream.

    Args:
        target: Server, database and credentials (see :func:`parse_url`).
        table: Name of the notes table; the log and counter tables are
            ``<table>_changes`` and ``<table>_seq``.
        timeout: Seconds allowed for a connect and for each query's answer.
        clock: Returns the current UTC time (injectable for tests).
        poll_interval: Seconds between checks of ``stop``/``timeout`` and of
            missing log entries while :meth:`changes` waits on the feed.
        gap_timeout: Seconds :meth:`changes` waits for a missing ``seq``
            before skipping it (default: three times ``timeout``, longer than
            a live write can take).
    """

    def __init__(
        self,
        target: RethinkTarget,
        *,
        table: str = "notes",
        timeout: float = 5.0,
        clock: Clock = utc_now,
        poll_interval: float = 0.2,
        gap_timeout: Optional[float] = None,
    ):
        self.target = target
        self.table_names = self.table_names_for(table)
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.gap_timeout = 3 * timeout if gap_timeout is None else gap_timeout
        self._clock = clock
        database = r.db(target.db)
        self._notes = database.table(table)
        self._log = database.table(self.table_names[1])
        self._counter = database.table(self.table_names[2])
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._conn = None
        self._retry_at = 0.0

    @staticmethod
    def table_names_for(table: str) -> Tuple[str, str, str]:
        """The notes, change-log and counter table names for notes table ``table``."""
        return table, f"{table}_changes", f"{table}_seq"

    @classmethod
    def from_url(cls, url: str, **kwargs) -> "RethinkNotesStore":
        """A store for ``rethinkdb://host:port/db`` (keywords as for the class)."""
        return cls(parse_url(url), **kwargs)

    # Connections

    def _connect(self):
        """A new connection, with the database, tables and index in place."""
        conn = r.make_connection(
            BoundedConnection,
            host=self.target.host,
            port=self.target.port,
            db=self.target.db,
            user=self.target.user,
            password=self.target.password,
            timeout=self.timeout,
            query_timeout=self.timeout,
        )
        try:
            self._ensure_schema(conn)
        except BaseException:
            close_quietly(conn)
            raise
        return conn

    def _ensure_schema(self, conn) -> None:
        db = self.target.db
        if db not in r.db_list().run(conn):
            _create_missing(lambda: r.db_create(db).run(conn))
        existing = r.db(db).table_list().run(conn)
        for name in self.table_names:
            if name not in existing:
                _create_missing(lambda name=name: r.db(db).table_create(name).run(conn))
                r.db(db).table(name).wait().run(conn)
        if "position" not in self._notes.index_list().run(conn):
            _create_missing(lambda: self._notes.index_create("position").run(conn))
        self._notes.index_wait("position").run(conn)

    def _run(self, work: Callable[[Any], Any]) -> Any:
        """``work(connection)`` on this process's connection, serialized.

        Driver and availability errors drop the connection (the next call
        opens a new one) and become Unavailable.
        """
        if os.getpid() != self._pid:
            # A forked child shares the parent's socket: forget it, never close it.
            self._pid, self._lock, self._conn = os.getpid(), threading.Lock(), None
        with self._lock:
            if self._conn is None:
                self._conn = self._open()
            try:
                return work(self._conn)
            except DRIVER_ERRORS as ex:
                log.warning("RethinkDB query failed: %s", ex)
                close_quietly(self._conn)
                self._conn = None
                raise Unavailable(UNAVAILABLE) from ex

    def _open(self):
        # After a failed connect, fail fast for a moment instead of making
        # every request wait for its own connect timeout.
        if time.monotonic() < self._retry_at:
            raise Unavailable(UNAVAILABLE)
        try:
            return self._connect()
        except DRIVER_ERRORS as ex:
            self._retry_at = time.monotonic() + min(1.0, self.timeout)
            log.warning(
                "cannot connect to RethinkDB at %s:%s: %s",
                self.target.host,
                self.target.port,
                ex,
            )
            raise Unavailable(UNAVAILABLE) from ex

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and os.getpid() == self._pid:
                close_quietly(self._conn)
            self._conn = None

    def ping(self) -> None:
        self._run(lambda conn: r.expr(1).run(conn))

    def last_seq(self) -> int:
        # The counter, as changes(since=None) reads it: numbers taken by
        # writes still in flight count as past (the same rule).
        head = self._run(lambda conn: self._counter.get(_COUNTER_ID).run(conn))
        return head["value"] if head else 0

    # Reads

    def get(self, note_id: str) -> Note:
        require_id(note_id)
        doc = self._run(lambda conn: self._notes.get(note_id).run(conn))
        if doc is None:
            raise not_found()
        return _note(doc)

    def list_page(self, limit: int, cursor: Optional[int] = None) -> Page:
        selection = self._notes
        if cursor is not None:  # positions below the cursor (right bound open)
            selection = selection.between(r.minval, cursor, index="position")
        query = selection.order_by(index=r.desc("position")).limit(limit + 1)
        notes = [_note(doc) for doc in self._run(lambda conn: list(query.run(conn)))]
        if len(notes) > limit:
            return Page(notes[:limit], notes[limit - 1].position)
        return Page(notes, None)

    # Writes

    def _next_seq(self, conn) -> int:
        result = self._counter.insert(
            {"id": _COUNTER_ID, "value": 1},
            conflict=lambda _id, old, new: old.merge({"value": old["value"] + 1}),
            return_changes=True,
        ).run(conn)
        _check_write(result)
        return result["changes"][0]["new_val"]["value"]

    def _append(
        self,
        conn,
        seq: int,
        kind: str,
        note_id: str,
        before: Optional[Note],
        after: Optional[Note],
        ts,
    ) -> None:
        entry = {
            "id": seq,
            "type": kind,
            "note_id": note_id,
            "old_val": dataclasses.asdict(before) if before else None,
            "new_val": dataclasses.asdict(after) if after else None,
            "ts": ts,
        }
        _check_write(self._log.insert(entry).run(conn))

    def create(self, title: str, body: str) -> Note:
        now = self._clock()

        def work(conn) -> Note:
            seq = self._next_seq(conn)
            doc = {
                "id": new_note_id(),
                "title": title,
                "body": body,
                "created_at": now,
                "updated_at": now,
                "version": 1,
                "position": seq,
                "seq": seq,
            }
            result = self._notes.insert(doc, return_changes=True).run(conn)
            _check_write(result)
            note = _note(result["changes"][0]["new_val"])
            self._append(conn, seq, CREATED, note.id, None, note, now)
            return note

        return self._run(work)

    def _guarded_write(
        self,
        note_id: str,
        kind: str,
        now,
        new_value: Callable[[Any, int], Any],
        if_versions: Optional[Collection[int]],
    ) -> Optional[Note]:
        """Replace the note by ``new_value(row, seq)`` atomically, then log it.

        Returns the note as written (None after a delete).
        """
        require_id(note_id)
        versions = None if if_versions is None else sorted(set(if_versions))

        def work(conn) -> Optional[Note]:
            for _ in range(_WRITE_ATTEMPTS):
                seq = self._next_seq(conn)
                result = (
                    self._notes.get(note_id)
                    .replace(_guard(seq, versions, new_value), return_changes=True)
                    .run(conn)
                )
                if not result["errors"]:
                    change = result["changes"][0]
                    before = _note(change["old_val"])
                    after = _note(change["new_val"]) if change["new_val"] else None
                    self._append(conn, seq, kind, note_id, before, after, now)
                    return after
                # The number stays unused: say so, so readers need not wait for it.
                _check_write(self._log.insert({"id": seq, "type": VOID}).run(conn))
                error = result.get("first_error", "")
                if _MISSING in error:
                    raise not_found()
                if _MISMATCH in error:
                    raise PreconditionFailed(
                        "The note has changed since the version named in If-Match."
                    )
                if _STALE not in error:
                    raise RuntimeError(f"RethinkDB refused a note write: {error}")
            # Only reachable under a storm of writes to this one note.
            log.warning(
                "note %s: no write slot after %d attempts", note_id, _WRITE_ATTEMPTS
            )
            raise Unavailable(UNAVAILABLE)

        return self._run(work)

    def patch(
        self,
        note_id: str,
        fields: Mapping[str, str],
        *,
        if_versions: Optional[Collection[int]] = None,
    ) -> Note:
        fields = writable(fields)
        now = self._clock()

        def updated(row, seq):
            return row.merge(
                {**fields, "updated_at": now, "version": row["version"] + 1, "seq": seq}
            )

        return self._guarded_write(note_id, UPDATED, now, updated, if_versions)

    def delete(
        self, note_id: str, *, if_versions: Optional[Collection[int]] = None
    ) -> None:
        self._guarded_write(
            note_id, DELETED, self._clock(), lambda row, seq: None, if_versions
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
            conn = self._connect()  # the feed blocks: a connection of its own
        except DRIVER_ERRORS as ex:
            raise Unavailable(UNAVAILABLE) from ex
        try:
            for entry in self._follow(conn, since, stop, deadline):
                yield _change(entry)
        except DRIVER_ERRORS as ex:
            log.warning("RethinkDB change feed failed: %s", ex)
            raise Unavailable(UNAVAILABLE) from ex
        finally:
            close_quietly(conn)

    def _follow(
        self,
        conn,
        since: Optional[int],
        stop: threading.Event,
        deadline: Optional[float],
    ) -> Iterator[Dict[str, Any]]:
        def done() -> bool:
            if deadline is not None and time.monotonic() >= deadline:
                return True
            return stop.is_set()

        # Open the feed before reading the log, so nothing falls in between;
        # entries seen by both are released once.
        feed = self._log.changes(include_types=True).run(conn)
        if since is None:
            head = self._counter.get(_COUNTER_ID).run(conn)
            since = head["value"] if head else 0
        buffer = SeqReorderBuffer(since, self.gap_timeout)
        for entry in (
            self._log.between(since, r.maxval, left_bound="open")
            .order_by(index="id")
            .run(conn)
        ):
            buffer.add(entry)
            for ready in buffer.pop_ready():
                if done():
                    return
                yield ready
        last_fill = time.monotonic()
        while not done():
            wait = self.poll_interval
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            try:
                item = feed.next(wait=wait)
            except ReqlTimeoutError:
                item = None
            except ReqlCursorEmpty as ex:  # feeds end only when the server ends them
                raise ReqlDriverError("the change feed ended") from ex
            if item is not None:
                if item.get("type") == "add":
                    buffer.add(item["new_val"])
                elif "error" in item:
                    # The server dropped feed items (its queue overflowed);
                    # the gap fill below reads them from the table.
                    log.warning("RethinkDB change feed: %s", item["error"])
            gap = buffer.missing()
            if gap is not None and time.monotonic() - last_fill >= self.poll_interval:
                last_fill = time.monotonic()
                missing = self._log.between(gap[0], gap[1], right_bound="closed")
                for entry in missing.run(conn):
                    buffer.add(entry)
            skipped = buffer.skip_stale_gap() if buffer.missing() else None
            if skipped is not None:
                log.warning("change log: seq %d..%d never arrived; skipped", *skipped)
            for ready in buffer.pop_ready():
                if done():
                    return
                yield ready


def _guard(
    seq: int, versions: Optional[List[int]], new_value: Callable[[Any, int], Any]
) -> Callable[[Any], Any]:
    """The ``replace`` function of a write under ``seq``: checks, then ``new_value``.

    Runs on the server, atomically with the write. A failed check aborts the
    write with a marker in the result's ``first_error``.
    """

    def guarded(row):  # one parameter: the driver sends a one-argument function
        checks = [row.eq(None), r.error(_MISSING), row["seq"].ge(seq), r.error(_STALE)]
        if versions is not None:
            checks += [
                r.expr(versions).contains(row["version"]).not_(),
                r.error(_MISMATCH),
            ]
        return r.branch(*checks, new_value(row, seq))

    return guarded


def _check_write(result: Mapping[str, Any]) -> None:
    if result.get("errors"):
        raise RuntimeError(f"RethinkDB write failed: {result.get('first_error')}")
