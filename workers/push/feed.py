"""The events the push worker has read, for readers that each keep a cursor.

The latest ``capacity`` events stay in memory; a reader whose cursor is older
gets the missing ones from the store's change log, then continues from memory.

Design: docs/design/push.md#the-feed
"""

import bisect
import collections
import contextlib
import dataclasses
import threading
import time
from typing import Callable
from typing import Deque
from typing import List
from typing import Optional

from core.notes import Change
from core.notes import event_json
from db.errors import Pruned
from db.notes.base import NotesStore
from workers.push.events import AHEAD
from workers.push.events import PRUNED
from workers.push.events import RESET
from workers.push.events import Event
from workers.push.events import reset_event


@dataclasses.dataclass(frozen=True)
class Resume:
    """Where a client's stream starts (:meth:`EventFeed.resume`).

    ``cursor``: the events after it are sent. ``reset``: tell the client
    to drop what it built from the old events before sending them, because
    its last event id is ahead of the stream (``why`` = ``ahead``: its
    events came from a log that no longer exists, such as a database that
    was reset) or the changes after it were pruned (``pruned``); either way
    the stream goes on from the oldest change the log holds.
    """

    cursor: int
    reset: bool = False
    why: str = AHEAD


class EventFeed:
    """Recent events in ``id`` order, with a store to replay older ones from.

    Args:
        store: The notes store the events come from (for replays).
        start: The ``seq`` the worker starts after; every event published
            later has a higher ``id``.
        capacity: How many events stay in memory.
        make_event: Turns a change replayed from the store into its event
            (the worker's own, so replays are traced like the rest).
    """

    def __init__(
        self,
        store: NotesStore,
        start: int,
        capacity: int = 10000,
        make_event: Callable[[Change], Event] = event_json,
    ):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._store = store
        self._make_event = make_event
        self._capacity = capacity
        self._events: Deque[Event] = collections.deque()
        self._ids: Deque[int] = collections.deque()
        # Every event after _base is in memory; _head is the last one published.
        self._base = start
        self._head = start
        self._changed = threading.Condition()
        self._closed = threading.Event()

    @property
    def head(self) -> int:
        """The ``id`` of the last event published (the start if none yet)."""
        with self._changed:
            return self._head

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (readers should finish)."""
        return self._closed.is_set()

    def resume(self, last_id: Optional[int]) -> Resume:
        """Where a reader that last saw ``last_id`` (None: a new one) resumes.

        Every push channel that lets clients resume (SSE's ``Last-Event-ID``,
        a future WebSocket) asks here, so they all treat an id ahead of the
        stream alike: never a silent wait for ids that will not come again,
        but a reset and the oldest retained change; the same for an id whose
        next changes were pruned from the log (and are not in memory). An id
        the feed has not reached yet but the store has (the worker is
        catching up) is fine. Asking the store can raise
        :class:`db.errors.Unavailable`.
        """
        if last_id is None:
            return Resume(self.head)
        with self._changed:
            if self._base <= last_id <= self._head:
                return Resume(last_id)  # memory has what follows
            head = self._head
        floor = self._store.log_floor()
        if 0 < last_id < floor:
            return Resume(floor, reset=True, why=PRUNED)
        if last_id <= head or last_id <= self._store.last_seq():
            return Resume(last_id)
        return Resume(floor, reset=True)

    def wait_closed(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for :meth:`close`; whether it came."""
        return self._closed.wait(timeout)

    def publish(self, event: Event) -> None:
        """Add the next event (its ``id`` above every earlier one) and wake readers."""
        with self._changed:
            if event["id"] <= self._head:
                raise ValueError(
                    f"event {event['id']} after {self._head}: out of order"
                )
            self._events.append(event)
            self._ids.append(event["id"])
            self._head = event["id"]
            if len(self._events) > self._capacity:
                self._base = self._ids.popleft()
                self._events.popleft()
            self._changed.notify_all()

    def close(self) -> None:
        """Wake every reader; reads answer at once from now on."""
        with self._changed:
            self._closed.set()
            self._changed.notify_all()

    def read(
        self, cursor: int, limit: int = 500, timeout: Optional[float] = None
    ) -> List[Event]:
        """Up to ``limit`` events after ``cursor``, in order.

        Waits up to ``timeout`` seconds (None: until one comes or the feed
        closes) when there is none yet; an empty list means none came.
        Reading the store for a cursor older than memory can raise
        :class:`db.errors.Unavailable`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._head <= cursor and not self._closed.is_set():
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return []
                self._changed.wait(wait)
            # Checked after the wait: more than ``capacity`` events may have
            # come meanwhile and pushed those right after the cursor out.
            if cursor >= self._base:
                return self._after(cursor, limit)
            target = self._base
        return self._replay(cursor, target, limit, timeout)

    def event(self, event_id: int, timeout: float = 10.0) -> Optional[Event]:
        """The event ``event_id`` (from memory, or the store's log); None if none.

        For replays of deliveries made before. None when the log does not
        hold it (a RethinkDB write that never happened) or the worker has not
        read that far. Reading the store can raise
        :class:`db.errors.Unavailable`.
        """
        with self._changed:
            if event_id < 1 or event_id > self._head:
                return None
            if event_id > self._base:
                index = bisect.bisect_left(self._ids, event_id)
                if index < len(self._ids) and self._ids[index] == event_id:
                    return self._events[index]
                return None
        found = self._replay(event_id - 1, event_id, 1, timeout)
        if found and found[0]["id"] == event_id and found[0]["type"] != RESET:
            return found[0]
        return None

    def _after(self, cursor: int, limit: int) -> List[Event]:
        # Under the lock. Ids only grow, so a binary search finds the start.
        first = bisect.bisect_right(self._ids, cursor)
        end = min(len(self._events), first + limit)
        return [self._events[i] for i in range(first, end)]

    def _replay(
        self, cursor: int, target: int, limit: int, timeout: Optional[float]
    ) -> List[Event]:
        """Events after ``cursor`` from the store's log, up to ``target`` at most.

        Changes the log no longer holds: a ``reset`` event in their place.
        """
        found: List[Event] = []
        changes = self._store.changes(since=cursor, stop=self._closed, timeout=timeout)
        try:
            with contextlib.closing(changes):
                for change in changes:
                    found.append(self._make_event(change))
                    if change.seq >= target or len(found) >= limit:
                        break
        except Pruned as ex:
            if not found:
                found.append(reset_event(cursor, ex.floor, PRUNED))
        return found
