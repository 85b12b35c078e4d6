"""Deliver the feed's events to webhook subscriptions: one thread each, own cursor.

Each subscription's thread hands the events it wants to
``workers.webhooks.sender`` (signed POSTs, retries) and saves its cursor as
``webhook:<id>`` in ``push_checkpoints``: a slow endpoint delays only itself,
a restart resumes each from its own cursor, replays go between two reads.

Design: docs/design/push.md#fan-out
"""

import logging
import threading
import time
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

from core.backoff import Backoff
from db.checkpoints import CheckpointStore
from db.errors import NotFound
from db.errors import Unavailable
from workers.push import metrics
from workers.push.events import RESET
from workers.push.feed import EventFeed

log = logging.getLogger(__name__)

#: Checkpoint names of subscriptions: ``webhook:<id>``.
PREFIX = "webhook:"

#: ``make_sender(sleep)``: a new sender for one thread; it must wait with ``sleep``.
SenderFactory = Callable[[Callable[[float], None]], Any]

#: The error of a replay whose event the change log does not hold.
MISSING_EVENT = "replay: the event is no longer in the change log"


def cursor_name(subscription_id: Any) -> str:
    """The checkpoint name of a subscription."""
    return f"{PREFIX}{subscription_id}"


class _Stopped(Exception):
    """Raised out of the sender's back-off sleep when the worker stops."""


class SubscriptionWorker:
    """Delivers the feed's events to one subscription, in order, in its own thread.

    ``subscription`` needs ``id`` and ``wants(event_type)``; the sender's
    ``deliver(subscription, event, replay=False)`` returns a result with
    ``disabled`` and ``gone`` (either ends this worker) and ``close()`` ends
    the sender. ``replays`` (a :class:`db.subscriptions.SubscriptionStore`,
    or None) holds the deliveries to make again (:meth:`want_replays`).
    """

    def __init__(
        self,
        subscription: Any,
        cursor: int,
        feed: EventFeed,
        cursors: CheckpointStore,
        make_sender: SenderFactory,
        save_interval: float = 1.0,
        replays: Any = None,
    ):
        self._subscription = subscription
        self.cursor = cursor
        self._feed = feed
        self._cursors = cursors
        self._make_sender = make_sender
        self._save_interval = save_interval
        self._name = cursor_name(subscription.id)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._retired = False
        self._replays = replays
        self._replays_wanted = threading.Event()
        self._saved = cursor
        self._saved_at = time.monotonic()
        self.ended_at: Optional[float] = None
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)

    @property
    def subscription(self) -> Any:
        """The subscription as last read (URL and events may change)."""
        with self._lock:
            return self._subscription

    @property
    def alive(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.is_alive()

    def update(self, subscription: Any) -> None:
        """Use the subscription as just re-read for the next deliveries."""
        with self._lock:
            self._subscription = subscription

    def start(self) -> None:
        """Start delivering after ``cursor``."""
        self._thread.start()

    def want_replays(self) -> None:
        """Replays are waiting for this subscription: make them before the next read."""
        self._replays_wanted.set()

    def stop(self, retire: bool = False) -> None:
        """Stop after the delivery under way; ``retire`` also forgets the cursor."""
        if retire:
            self._retired = True
        self._stop.set()

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the thread to end."""
        self._thread.join(timeout)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped()

    def _run(self) -> None:
        sender = self._make_sender(self._sleep)
        try:
            self._deliver_all(sender)
        finally:
            self._finish()
            sender.close()
            self.ended_at = time.monotonic()

    def _deliver_all(self, sender: Any) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                if self._replays_wanted.is_set() and not self._replay(sender):
                    return
                events = self._feed.read(self.cursor, limit=100, timeout=0.5)
                if not events and self._feed.closed:
                    return
                for event in events:
                    if self._stop.is_set():
                        return
                    if not self._handle(sender, event):
                        return
                self._save(force=False)
                backoff.success()
            except _Stopped:
                return
            except Exception as ex:  # the store, the database, or a bug: retry
                delay = backoff.failure()
                if isinstance(ex, Unavailable):
                    log.warning("%s: %s; retrying in %.1fs", self._name, ex, delay)
                else:
                    log.exception(
                        "%s: delivery failed; retrying in %.1fs", self._name, delay
                    )
                if self._stop.wait(delay):
                    return

    def _replay(self, sender: Any) -> bool:
        """Make the waiting replays, oldest first; False when the worker must end."""
        while not self._stop.is_set():
            waiting = self._replays.pending_replays(self._subscription.id, limit=50)
            if not waiting:
                self._replays_wanted.clear()  # the refresher sets it again if needed
                return True
            for replay in waiting:
                if self._stop.is_set():
                    return True
                if not self._replay_one(sender, replay):
                    return False
        return True

    def _replay_one(self, sender: Any, replay: Any) -> bool:
        subscription = self.subscription
        event_id = replay.event_id
        event = self._feed.event(int(event_id)) if event_id.isdigit() else None
        if event is None:
            log.warning(
                "%s: replay of event %s: %s", self._name, event_id, MISSING_EVENT
            )
            try:
                self._replays.record_attempt(
                    subscription.id,
                    event_id,
                    replay.event_type,
                    1,
                    None,
                    0.0,
                    MISSING_EVENT,
                    False,
                    replay=True,
                )
            except NotFound:
                self._retired = True
                return False
            self._replays.replay_done(replay.id)
            return True
        result = sender.deliver(subscription, event, replay=True)
        # Only now: a worker that dies before this line delivers it again.
        self._replays.replay_done(replay.id)
        if result.gone or result.disabled:
            log.info(
                "%s %s during a replay; no more deliveries",
                self._name,
                "deleted" if result.gone else "disabled",
            )
            self._retired = True
            return False
        return True

    def _handle(self, sender: Any, event: Dict[str, Any]) -> bool:
        """Deliver ``event`` if wanted and move on; False when the worker must end."""
        subscription = self.subscription
        # A reset concerns every subscription: the events it skips may be
        # some it wants.
        if event["type"] == RESET or subscription.wants(event["type"]):
            result = sender.deliver(subscription, event)
            metrics.count_delivery(result)
            if result.gone or result.disabled:
                log.info(
                    "%s %s; no more deliveries",
                    self._name,
                    "deleted" if result.gone else "disabled",
                )
                self._retired = True
                return False
            self.cursor = event["id"]
            self._save(force=True)
        else:
            self.cursor = event["id"]
        return True

    def _save(self, force: bool) -> None:
        if self.cursor == self._saved:
            return
        if not force and time.monotonic() - self._saved_at < self._save_interval:
            return
        try:
            self._cursors.save(self._name, self.cursor)
        except Unavailable:
            log.warning(
                "%s: cursor %d not saved; database unavailable", self._name, self.cursor
            )
            return
        self._saved, self._saved_at = self.cursor, time.monotonic()

    def _finish(self) -> None:
        try:
            if self._retired:
                self._cursors.delete(self._name)
            else:
                self._save(force=True)
        except Unavailable:
            log.warning(
                "%s: cursor not updated at exit; database unavailable", self._name
            )


class Fanout:
    """Keeps one :class:`SubscriptionWorker` per active subscription.

    Args:
        feed: The events.
        source: ``active()`` lists the active subscriptions (objects with
            ``id`` and ``wants(event_type)``).
        make_sender: Makes a sender per worker thread (see SenderFactory).
        cursors: Where cursors are saved.
        start: The worker's starting position: where subscriptions without
            a cursor start on the first refresh.
        refresh_interval: Seconds between two reads of the subscriptions.
        replays: Where replays wait (``replays_waiting()``,
            ``pending_replays(id, limit)``, ``replay_done(id)``,
            ``record_attempt(...)``: a SubscriptionStore); None: no replays.
        claims: Which subscriptions this worker delivers, when several
            share the database (``acquire(id)``, ``release(id)``, ``valid()``,
            ``close()``: a :class:`db.pg_claims.PgClaims`); a subscription
            another worker holds is left to it, and one taken over starts
            from its saved cursor. None: every subscription (one worker).
    """

    def __init__(
        self,
        feed: EventFeed,
        source: Any,
        make_sender: SenderFactory,
        cursors: CheckpointStore,
        start: int,
        refresh_interval: float = 1.0,
        replays: Any = None,
        claims: Any = None,
    ):
        self._feed = feed
        self._source = source
        self._replays = replays
        self._claims = claims
        self._make_sender = make_sender
        self._cursors = cursors
        self._refresh_interval = refresh_interval
        self._previous_head = start
        self._first = True
        self._workers: Dict[Any, SubscriptionWorker] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fanout", daemon=True)
        self.refreshes = 0

    def start(self) -> None:
        """Read the subscriptions now and then every ``refresh_interval`` seconds."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every worker (each saves its cursor); wait up to ``timeout`` in all."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.alive:
                log.warning(
                    "%s still delivering at exit; its event will be sent again",
                    cursor_name(worker.subscription.id),
                )
        if self._claims is not None:
            self._claims.close()

    def status(self) -> Dict[str, int]:
        """Each delivering subscription's cursor, by id."""
        with self._lock:
            return {
                str(key): worker.cursor
                for key, worker in self._workers.items()
                if worker.alive
            }

    def _run(self) -> None:
        backoff = Backoff(base=self._refresh_interval)
        while not self._stop.is_set():
            try:
                self.refresh()
                wait = self._refresh_interval
                backoff.success()
            except Exception as ex:  # the database, most likely: try again later
                wait = backoff.failure()
                if isinstance(ex, Unavailable):
                    log.warning(
                        "cannot read webhook subscriptions: %s; retrying in %.1fs",
                        ex,
                        wait,
                    )
                else:
                    log.exception(
                        "cannot read webhook subscriptions; retrying in %.1fs", wait
                    )
            self._stop.wait(wait)

    def _stop_all(self) -> None:
        """Stop every worker, cursors kept: the claims they ran under are lost."""
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(5)
        log.warning("subscription claims lost: %d deliveries stopped", len(workers))

    def refresh(self) -> None:
        """Start workers for new subscriptions, retire those no longer active."""
        head = self._feed.head  # before the read: see the module docstring
        read_at = time.monotonic()
        if self._claims is not None and not self._claims.valid():
            self._stop_all()
        subscriptions: List[Any] = list(self._source.active())
        saved = self._cursors.load_prefix(PREFIX) if self._first else {}
        active = set()
        for subscription in subscriptions:
            active.add(subscription.id)
            worker = self._workers.get(subscription.id)
            if worker is not None and worker.alive:
                worker.update(subscription)
                continue
            if worker is not None and (worker.ended_at or 0) > read_at:
                continue  # it just ended itself (disabled); this list predates that
            name = cursor_name(subscription.id)
            cursor = saved.get(name)
            if self._claims is not None:
                if not self._claims.acquire(subscription.id):
                    continue  # another push worker delivers it
                if not self._first:
                    # Taken over from a worker that stopped: on from its cursor.
                    cursor = self._cursors.load(name)
            if cursor is None:
                cursor = self._previous_head
            self._cursors.save(name, cursor)
            worker = SubscriptionWorker(
                subscription,
                cursor,
                self._feed,
                self._cursors,
                self._make_sender,
                replays=self._replays,
            )
            worker.start()
            with self._lock:
                self._workers[subscription.id] = worker
            log.info(
                "%s: delivering events after %d", cursor_name(subscription.id), cursor
            )
        if self._replays is not None:
            for key in self._replays.replays_waiting():
                worker = self._workers.get(key)
                if worker is not None and key in active:
                    worker.want_replays()
        for key in [key for key in self._workers if key not in active]:
            with self._lock:
                worker = self._workers.pop(key)
            worker.stop(retire=True)
            if self._claims is not None:
                self._claims.release(key)
            log.info("%s no longer active: stopped", cursor_name(key))
        kept = {cursor_name(key) for key in active}
        for name in saved:
            if name not in kept:
                self._cursors.delete(name)  # its subscription went while we were down
        self._previous_head = head
        self._first = False
        self.refreshes += 1
