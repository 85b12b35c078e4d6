"""The RethinkDB notes store's change log: numbers, outboxes, the log and its readers.

A write takes a ``seq`` (:meth:`ChangeLog.take_seq`), commits the note with the
change in its outbox, then logs it (:meth:`ChangeLog.log_soon`, or
:meth:`ChangeLog.void`); :meth:`ChangeLog.follow` is the change stream, which
repairs the log from the outboxes and voids numbers never committed.

Design: docs/design/change-stream.md#how-rethinkdb-keeps-it
"""

import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import Callable
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional
from typing import Tuple

from rethinkdb import r
from rethinkdb.errors import ReqlCursorEmpty
from rethinkdb.errors import ReqlDriverError
from rethinkdb.errors import ReqlTimeoutError

from db.errors import Pruned
from db.notes.seq_order import VOID
from db.notes.seq_order import SeqReorderBuffer
from db.rethink import CONNECTION_ERRORS
from db.rethink import DRIVER_ERRORS
from db.rethink import close_quietly

log = logging.getLogger(__name__)

#: The counter document's id (the one earlier versions used: numbering goes on).
COUNTER_ID = "changes"
#: The counter table's document holding how far the log was pruned.
FLOOR_ID = "pruned"


class ChangeLog:
    """The counter, the log table and the outboxes of one notes table.

    Args:
        notes: The notes table (ReQL); its documents hold the outboxes.
        log_table: The change log table.
        counter: The counter table.
        report: ``report(error, what)`` logs a failed query (the store's).
        connect: Opens a new connection (for the thread that empties outboxes).
        lease: Seconds a writer has from taking its number to committing.
        clock_margin: Seconds the servers' clocks (and a write's way to its
            primary) may be off.
        poll_interval: Seconds between checks of ``stop``/``timeout``, and
            before a missing number is looked for, while following.
        batch: Numbers read per query while catching up.
        empty_interval: Seconds between two emptyings of the outboxes by a
            reader following the stream.
        empty_batch: Notes whose outboxes one write empties; the server
            serves the API's queries between two such writes, not during one.
    """

    def __init__(
        self,
        notes,
        log_table,
        counter,
        report: Callable[[Exception, str], None],
        connect: Callable[[], Any],
        *,
        lease: float,
        clock_margin: float,
        poll_interval: float,
        batch: int,
        empty_interval: float,
        empty_batch: int,
    ):
        self._notes = notes
        self._log = log_table
        self._counter = counter
        self._report = report
        self._connect = connect
        self.lease = lease
        self.clock_margin = clock_margin
        self.poll_interval = poll_interval
        self.batch = batch
        self.empty_interval = empty_interval
        self.empty_batch = empty_batch

    def head(self, conn) -> int:
        """The last number handed out (0 before the first)."""
        head = self._counter.get(COUNTER_ID).run(conn)
        return head["value"] if head else 0

    def floor(self, conn) -> int:
        """The number after which the log holds every entry (0: none pruned)."""
        floor = self._counter.get(FLOOR_ID).run(conn)
        return floor["value"] if floor else 0

    def prune(self, conn, before: datetime.datetime, limit: int) -> int:
        """Remove up to ``limit`` of the oldest entries written before ``before``.

        Never the newest entry. ``before`` must be at least ``lease +
        clock_margin`` in the past: a number missing from the run then can
        never be committed. Returns how many entries went.
        """
        bound = self.head(conn) - 1
        if bound < 1:
            return 0
        rows = (
            self._log.between(r.minval, bound, right_bound="closed")
            .order_by(index="id")
            .limit(limit)
            .map(
                lambda e: {
                    "id": e["id"],
                    "old": e["ts"].default(e["taken_at"]).lt(r.expr(before)),
                }
            )
            .coerce_to("array")
            .run(conn)
        )
        upto = None
        for row in rows:
            if not row["old"]:
                break
            upto = row["id"]
        if upto is None:
            return 0
        # Outbox entries up to there go to the log first (usually none: a
        # reader empties them within a second), so none comes back later.
        self.empty_outboxes(conn, upto)
        # The floor next: a reader missing an entry from now on sees why.
        check_write(
            self._counter.get(FLOOR_ID)
            .replace(
                lambda doc: {
                    "id": FLOOR_ID,
                    "value": r.branch(
                        doc.eq(None), upto, r.expr([doc["value"], upto]).max()
                    ),
                }
            )
            .run(conn)
        )
        result = (
            self._log.between(r.minval, upto, right_bound="closed")
            .delete(durability="soft")
            .run(conn)
        )
        return result["deleted"]

    def take_seq(self, conn, count: int = 1) -> Tuple[int, datetime.datetime]:
        """Step 1: the next ``count`` numbers in one increment.

        Returns the first of them and the server's time when they were taken
        (every number of the range has that lease).
        """
        result = (
            self._counter.get(COUNTER_ID)
            .replace(
                lambda doc: {
                    "id": COUNTER_ID,
                    "value": r.branch(doc.eq(None), 0, doc["value"]) + count,
                    "taken_at": r.now(),
                },
                return_changes=True,
            )
            .run(conn)
        )
        check_write(result)
        head = result["changes"][0]["new_val"]
        return head["value"] - count + 1, head["taken_at"]

    def void(self, conn, seqs: Iterable[int], taken_at: datetime.datetime) -> None:
        """Log that nothing was written under ``seqs``, so no reader waits for them.

        Only for numbers that certainly were not committed (their write was
        refused). Sent unanswered: if it is lost, readers void the numbers
        themselves once their lease is over.
        """
        voids = [{"id": seq, "type": VOID, "taken_at": taken_at} for seq in seqs]
        with contextlib.suppress(*DRIVER_ERRORS):
            self._log.insert(voids, durability="soft").run(conn, noreply=True)

    def log_soon(self, conn, entries: List[Dict[str, Any]]) -> None:
        """Step 3: log committed changes, soft and unanswered, in one write.

        The outboxes keep the changes durably until a reader has made the
        log durable (:meth:`empty_outboxes`), so losing this write (a crash
        of the process or the server) only means a reader copies them later.
        """
        with contextlib.suppress(*DRIVER_ERRORS):
            self._log.insert(entries, durability="soft").run(conn, noreply=True)

    def ship(
        self, conn, outboxes: List[Tuple[str, List[dict]]], wait: bool = False
    ) -> bool:
        """Copy outbox entries into the log durably, then drop them from the outboxes.

        An entry the log holds already may have been written soft (step 3)
        and not be on disk yet: the log is synced before any outbox entry
        is dropped. The changes are committed already, so a failure here is
        not the caller's: it is logged, and a reader copies them later.
        ``wait``: wait for the clean-up too (else it is sent unanswered).
        Returns whether the connection broke (the caller drops it).
        """
        entries = [entry for _, outbox in outboxes for entry in outbox]
        if not entries:
            return False
        try:
            result = self._log.insert(entries, conflict="error").run(conn)
            if result["errors"]:
                if "Duplicate primary key" not in result.get("first_error", ""):
                    raise RuntimeError(f"RethinkDB log write failed: {result}")
                self._log.sync().run(conn)
            # Each note's shipped numbers, bound once as a value the clean-up
            # looks a note up in: a literal inside the function would be
            # built again for every note (15 s for 14,000 notes).
            shipped = {k: [entry["id"] for entry in outbox] for k, outbox in outboxes}
            r.expr(shipped).do(
                lambda numbers: self._notes.get_all(*shipped).replace(
                    lambda doc: pruned(
                        doc,
                        lambda entry: numbers[doc["id"]].contains(entry["id"]).not_(),
                    ),
                    durability="soft",
                )
            ).run(conn, noreply=not wait)
        except DRIVER_ERRORS as ex:
            self._report(ex, "change log write (a reader will write it)")
            return isinstance(ex, CONNECTION_ERRORS)
        return False

    def follow(
        self,
        conn,
        since: Optional[int],
        stop: threading.Event,
        deadline: Optional[float],
    ) -> Iterator[Dict[str, Any]]:
        """Yield the log entries after ``since`` in ``seq`` order, then new ones.

        ``since`` None: from the counter's value now. Ends when ``stop`` is
        set or at ``deadline`` (monotonic); driver errors propagate.
        """

        def done() -> bool:
            if deadline is not None and time.monotonic() >= deadline:
                return True
            return stop.is_set()

        # Open the feed before reading the log, so nothing falls in between;
        # entries seen by both are released once.
        feed = self._log.changes(include_types=True).run(conn)
        head_value = self.head(conn)
        if since is not None:
            floor = self.floor(conn)
            if since == 0:
                since = floor
            elif since < floor:
                raise Pruned(floor)
        buffer = SeqReorderBuffer(head_value if since is None else since)
        low = buffer.next_seq
        emptier = _Emptier(self, low - 1)
        try:
            yield from self._follow(
                conn, feed, buffer, head_value, emptier, done, deadline
            )
        finally:
            emptier.stop()

    def _follow(
        self,
        conn,
        feed,
        buffer: SeqReorderBuffer,
        head_value: int,
        emptier: "_Emptier",
        done: Callable[[], bool],
        deadline: Optional[float],
    ) -> Iterator[Dict[str, Any]]:
        low = buffer.next_seq
        # Catching up, a chunk at a time. The outboxes keep what is released
        # meanwhile: emptying them competes with these reads on the server.
        while low <= head_value:
            high = min(head_value, low + self.batch - 1)
            self._fill(conn, buffer, low, high)
            for ready in buffer.pop_ready():
                if done():
                    return
                yield ready
            low = high + 1
        looked_at = sampled = time.monotonic()
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
                if item.get("type") in ("add", "change") and item.get("new_val"):
                    buffer.add(item["new_val"])
                elif "error" in item:
                    # The server dropped feed items (its queue overflowed);
                    # looking for the missing numbers reads them from the table.
                    log.warning("RethinkDB change feed: %s", item["error"])
            now = time.monotonic()
            gap = buffer.missing()
            if gap is not None and now - looked_at >= self.poll_interval:
                looked_at = sampled = now
                self._fill(conn, buffer, *gap)
            elif now - sampled >= self.lease:
                # Where the counter is now bounds when later-missing numbers
                # were taken: a writer that dies later is given up on sooner.
                sampled = now
                self._observe_head(conn, buffer)
            for ready in buffer.pop_ready():
                if done():
                    return
                yield ready
            emptier.released(buffer.next_seq - 1)

    def empty_outboxes(
        self, conn, upto: int, stop: Callable[[], bool] = lambda: False
    ) -> bool:
        """Log (durably) and drop the outbox entries up to ``upto``.

        ``empty_batch`` notes at a time, so that no write holds the server
        for long; ``stop()`` is asked between two. Returns whether none is left.
        Tombstones whose delete is then in the log go. Entries found in the
        log are not trusted to be on disk (step 3 writes soft, and a server
        crash may lose one the feed showed): see :meth:`ship`.
        """
        last = None
        while True:
            docs = (
                self._notes.between(
                    r.minval, upto, index="outbox", right_bound="closed"
                )
                .limit(self.empty_batch)
                .pluck("id", "outbox")
                .coerce_to("array")
                .run(conn)
            )
            if docs == last:  # shipped, yet still there: do not spin on it
                raise ReqlDriverError("outbox entries stayed after being logged")
            outboxes: Dict[str, Dict[int, dict]] = {}
            for doc in docs:  # a doc comes once per entry in range
                for entry in doc["outbox"]:
                    if entry["id"] <= upto:
                        outboxes.setdefault(doc["id"], {})[entry["id"]] = entry
            shipped = [(k, list(v.values())) for k, v in outboxes.items()]
            if self.ship(conn, shipped, True):
                raise ReqlDriverError("the connection broke while emptying outboxes")
            if len(docs) < self.empty_batch:
                return True
            if stop():
                return False
            last = docs

    def _observe_head(self, conn, buffer: SeqReorderBuffer) -> None:
        seen = r.expr({"now": r.now(), "head": self._counter.get(COUNTER_ID)}).run(conn)
        if seen["head"]:
            buffer.observe_head(seen["head"]["value"], seen["now"])

    def _fill(self, conn, buffer: SeqReorderBuffer, low: int, high: int) -> None:
        """Read numbers ``low..high`` into ``buffer``; repair and void what needs it.

        The outboxes are read before the log: a change shipped in between is
        then found in the log, so a number found in neither was not
        committed when the outboxes were read, after ``now``.
        """
        first = r.expr(
            {
                "now": r.now(),
                "head": self._counter.get(COUNTER_ID),
                "docs": self._notes.between(
                    low, high, index="outbox", right_bound="closed"
                )
                .pluck("id", "outbox")
                .coerce_to("array"),
            }
        ).run(conn)
        logged = list(self._log.between(low, high, right_bound="closed").run(conn))
        for entry in logged:
            buffer.add(entry)
        if first["head"]:
            buffer.observe_head(first["head"]["value"], first["now"])
        logged_ids = {entry["id"] for entry in logged}
        stranded: Dict[str, Dict[int, dict]] = {}
        for doc in first["docs"]:  # a doc comes once per outbox entry in range
            for entry in doc["outbox"]:
                if low <= entry["id"] <= high and entry["id"] not in logged_ids:
                    stranded.setdefault(doc["id"], {})[entry["id"]] = entry
        if stranded:
            # Committed, but its writer did not log it (it died, or is late).
            # Usually a writer that is late; after a crash, one that died.
            log.debug(
                "change log: copying %d committed changes from outboxes",
                sum(len(entries) for entries in stranded.values()),
            )
            outboxes = [(note_id, list(e.values())) for note_id, e in stranded.items()]
            if self.ship(conn, outboxes, wait=True):
                raise ReqlDriverError("the connection broke while repairing the log")
            for _, entries in outboxes:
                for entry in entries:
                    buffer.add(entry)
        if low <= buffer.next_seq <= high and buffer.lacks_next():
            self._check_floor(conn, buffer)
        self._void_dead(conn, buffer, low, high, first["now"])

    def _check_floor(self, conn, buffer: SeqReorderBuffer) -> None:
        """Raise Pruned if the next number is missing because it was pruned."""
        floor = self.floor(conn)
        if floor >= buffer.next_seq:
            raise Pruned(floor)

    def _void_dead(
        self,
        conn,
        buffer: SeqReorderBuffer,
        low: int,
        high: int,
        server_now: datetime.datetime,
    ) -> None:
        voids = []
        for first, last, taken_before in buffer.dead_gaps(
            server_now, self.lease + self.clock_margin
        ):
            for seq in range(max(first, low), min(last, high) + 1):
                voids.append({"id": seq, "type": VOID, "taken_at": taken_before})
        if not voids:
            return
        log.warning(
            "change log: %d numbers from %d were taken and never committed "
            "(a writer died); voided",
            len(voids),
            voids[0]["id"],
        )
        result = self._log.insert(voids, conflict="error", return_changes=True).run(
            conn
        )
        for change in result.get("changes", ()):
            buffer.add(change["new_val"])
        # A conflict means an entry came meanwhile: the next look reads it.


def entry(
    seq: int,
    kind: str,
    note_id: Any,
    old_val: Any,
    new_val: Any,
    ts: datetime.datetime,
    taken_at: datetime.datetime,
    traceparent: Optional[str] = None,
) -> Dict[str, Any]:
    """A change as the outbox and the log keep it.

    ``traceparent``: the write's trace context (TRACING), a field only when
    there is one.
    """
    change = {
        "id": seq,
        "type": kind,
        "note_id": note_id,
        "old_val": old_val,
        "new_val": new_val,
        "ts": ts,
        "taken_at": taken_at,
    }
    if traceparent is not None:
        change["traceparent"] = traceparent
    return change


def pruned(doc, keep: Callable[[Any], Any]):
    """The replacement of ``doc``: only the outbox entries ``keep`` keeps.

    A tombstone whose outbox is then empty goes: its delete is in the log.
    """
    rest = doc["outbox"].default([]).filter(keep)
    return r.branch(
        doc.eq(None),
        None,
        doc.has_fields("deleted").and_(rest.is_empty()),
        None,
        doc.without("outbox").merge({"outbox": rest}),
    )


def check_write(result: Mapping[str, Any]) -> None:
    if result.get("errors"):
        raise RuntimeError(f"RethinkDB write failed: {result.get('first_error')}")


class _Emptier:
    """Empties the outboxes up to what a reader released, in a thread of its own.

    Every ``empty_interval`` seconds, when the reader has released more
    since the last time, :meth:`ChangeLog.empty_outboxes` runs on a
    connection of this thread's own, so the reader never waits for it (it
    syncs the log to disk). Failures are logged and retried next time.
    """

    def __init__(self, changelog: ChangeLog, start: int):
        self._changelog = changelog
        self._upto = self._done = start
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def released(self, upto: int) -> None:
        """The reader has released every number up to ``upto``."""
        self._upto = upto
        if self._thread is None and upto > self._done:
            self._thread = threading.Thread(
                target=self._run, name="outbox-emptier", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """End the thread (after the emptying under way, if any)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        conn = None
        try:
            while not self._stop.wait(self._changelog.empty_interval):
                upto = self._upto
                if upto <= self._done:
                    continue
                try:
                    if conn is None:
                        conn = self._changelog._connect()
                    if self._changelog.empty_outboxes(conn, upto, self._stop.is_set):
                        self._done = upto
                except DRIVER_ERRORS as ex:
                    self._changelog._report(ex, "emptying the outboxes")
                    if conn is not None:
                        close_quietly(conn)
                    conn = None
        finally:
            if conn is not None:
                close_quietly(conn)
