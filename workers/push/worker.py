"""The push worker: every note change pushed to subscribers, in order, nothing lost.

``python -m workers.push`` follows the notes store's change stream into an
in-memory feed, read by the ZeroMQ PUB socket, the webhook subscriptions and
the SSE and WebSocket clients, each with a cursor of its own.

Design: docs/design/push.md
"""

import argparse
import logging
import signal
import sys
import threading
import time
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

import zmq
from sqlalchemy import exc as sa_exc

from core import gc_pauses
from core import tickets
from core import tracing
from core.backoff import Backoff
from core.hosts import AllowedHosts
from core.hosts import AllowedOrigins
from core.logs import configure_logging
from core.notes import Change
from core.notes import note_json
from core.settings import Settings
from core.wakeup import Listener
from db.errors import Pruned
from db.errors import Unavailable
from db.keys import KeyCache
from db.notes.base import NotesStore
from db.notes.sql import Wakeups
from db.pg_wakeups import PgWakeups
from db.pg_wakeups import is_postgresql
from db.schema import create_schema
from db.stores import Stores
from db.stores import open_stores
from workers.push import metrics
from workers.push.access import StreamAccess
from workers.push.checkpointer import Checkpointer
from workers.push.events import PRUNED
from workers.push.events import reset_event
from workers.push.feed import EventFeed
from workers.push.pub import Publisher
from workers.push.pub import pub_keys
from workers.push.retention import Pruner
from workers.push.retention import check as check_retention
from workers.push.retention import tasks as retention_tasks
from workers.push.sse import SseServer
from workers.push.subscribers import make_fanout as webhook_fanout
from workers.push.tracing import event_maker

log = logging.getLogger("workers.push")

#: The checkpoint name of the worker's own stream.
CONSUMER = "push"
#: Notes the live page starts with (the newest).
SNAPSHOT_LIMIT = 500

#: ``make_fanout(settings, stores, feed, start)``: the webhook output (with
#: ``start()``, ``stop()`` and ``status()``), or None for none.
FanoutFactory = Callable[[Settings, Stores, EventFeed, int], Any]

# Unavailable and OperationalError: the database is down. Any DBAPIError at
# start: also two processes creating the same PostgreSQL table at once.
_RETRYABLE = (Unavailable, sa_exc.DBAPIError)


class PushWorker:
    """Follows the notes store and forwards every change; :meth:`run` until stopped.

    Args:
        settings: Endpoints and stores.
        since: Start after this ``seq`` instead of the checkpoint.
        stores: The stores (default: the ones the settings select).
        make_fanout: Builds the webhook output (default: the webhook
            subscriptions of the SQL database; None: no webhooks).
        grace: Seconds the PUB output waits for a first SUB client at start.
        checkpoint_interval: Seconds between checkpoint saves.
        keepalive: Seconds between SSE keep-alive comments.
        feed_capacity: Events kept in memory for readers that lag.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        since: Optional[int] = None,
        stores: Optional[Stores] = None,
        make_fanout: Optional[FanoutFactory] = webhook_fanout,
        grace: float = 2.0,
        checkpoint_interval: float = 0.5,
        keepalive: float = 15.0,
        feed_capacity: int = 10000,
    ):
        self.settings = settings
        self._since = since
        self._stores = stores
        self._make_fanout = make_fanout
        self._grace = grace
        self._checkpoint_interval = checkpoint_interval
        self._keepalive = keepalive
        self._feed_capacity = feed_capacity
        self._stop = threading.Event()
        self._feed: Optional[EventFeed] = None
        self._checkpointer: Optional[Checkpointer] = None
        self._publisher: Optional[Publisher] = None
        self._fanout: Any = None
        self._sse: Optional[SseServer] = None
        self._stores_in_use: Optional[Stores] = None

    def stop(self) -> None:
        """Ask :meth:`run` to finish (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Forward changes until stopped; the exit status (1: cannot start)."""
        settings = self.settings
        try:
            rules = self._rules()
        except ValueError as ex:
            log.error("cannot start: %s", ex)
            return 1
        wakeups = None if self._stores else self._listen()
        stores = self._stores or open_stores(settings, wakeups)
        self._stores_in_use = stores
        publisher = Publisher(settings.push_pub_endpoint, grace=self._grace)
        try:
            try:
                publisher.bind(pub_keys(settings))
                sse = SseServer(
                    settings.push_sse_bind,
                    self.status,
                    self._keepalive,
                    metrics=lambda: metrics.exposition(self._metrics_state),
                    snapshot=self.snapshot,
                    access=self._access(stores),
                    **rules,
                )
            except (zmq.ZMQError, OSError, ValueError) as ex:
                log.error(
                    "cannot listen (PUSH_PUB_ENDPOINT=%s, PUSH_SSE_BIND=%s): %s",
                    settings.push_pub_endpoint,
                    settings.push_sse_bind,
                    ex,
                )
                publisher.close()
                return 1
            start = self._starting_point(stores)
            if start is None:  # stopped while waiting for the database
                publisher.close()
                sse.stop()
                return 0
            self._serve(start, stores, publisher, sse)
        finally:
            stores.close()
            if wakeups is not None:
                wakeups.close()
        return 0

    def _rules(self) -> Dict[str, Any]:
        """Who and what the HTTP port answers, from the settings (ValueError if bad)."""
        settings = self.settings
        if settings.auth not in ("on", "off"):
            raise ValueError(f"AUTH must be on or off, got {settings.auth!r}")
        if settings.pg_listen not in ("on", "off"):
            raise ValueError(f"PG_LISTEN must be on or off, got {settings.pg_listen!r}")
        if settings.stream_ticket_ttl < 1:
            raise ValueError(
                f"STREAM_TICKET_TTL must be 1 or more, got {settings.stream_ticket_ttl}"
            )
        check_retention(settings)
        return {
            "hosts": AllowedHosts(settings.allowed_hosts, [settings.public_base_url]),
            "origins": AllowedOrigins(settings.push_allowed_origins),
            "header_timeout": settings.push_header_timeout,
            "max_per_client": settings.push_max_connections_per_client,
        }

    def _access(self, stores: Stores) -> StreamAccess:
        """The API's keys (AUTH=on) and the tickets' secret, from the SQL database."""
        keys = KeyCache(stores.keys) if self.settings.auth == "on" else None
        return StreamAccess(
            keys,
            lambda: stores.secrets.get(tickets.SECRET_NAME),
            self.settings.stream_ticket_ttl,
        )

    def _listen(self) -> Optional[Wakeups]:
        """What announces the notes store's commits; None: poll the log often."""
        settings = self.settings
        if settings.rethinkdb_url:
            return None  # the RethinkDB store follows a changefeed
        if settings.pg_listen == "on" and is_postgresql(settings.database_url):
            log.info("reading the change log when PostgreSQL notifies a commit")
            return PgWakeups(settings.database_url)
        address = settings.push_wake_address
        if not address:
            log.info("PUSH_WAKE_ADDRESS is empty: polling the change log")
            return None
        try:
            listener = Listener(address)
        except (OSError, ValueError) as ex:
            log.warning(
                "cannot listen for commit nudges on PUSH_WAKE_ADDRESS=%s (%s): "
                "polling the change log instead",
                address,
                ex,
            )
            return None
        log.info("reading the change log when the API announces a commit (%s)", address)
        return listener

    def _starting_point(self, stores: Stores) -> Optional[int]:
        store, checkpoints = stores.notes, stores.checkpoints
        self._retry(
            lambda: create_schema(stores.database.engine), "creating the SQL tables"
        )
        if self._since is not None:
            log.info("starting after event %d, as asked", self._since)
            return self._since
        saved = self._retry(
            lambda: checkpoints.load(CONSUMER), "reading the checkpoint"
        )
        if saved is not None:
            log.info("resuming after the checkpoint, event %d", saved)
            return saved
        head = self._retry(store.last_seq, "reading the change log")
        if head is not None:
            log.info("no checkpoint yet: starting after the latest change, %d", head)
        return head

    def _serve(
        self, start: int, stores: Stores, publisher: Publisher, sse: SseServer
    ) -> None:
        store = stores.notes
        # TRACING: a span per change read, in the trace of its write.
        make_event = event_maker(tracing.tracer(__name__))
        self._feed = feed = EventFeed(
            store, start, self._feed_capacity, make_event=make_event
        )
        self._checkpointer = checkpointer = Checkpointer(
            stores.checkpoints, CONSUMER, start, self._checkpoint_interval
        )
        self._publisher = publisher
        self._sse = sse
        if self._make_fanout is not None:
            self._fanout = self._make_fanout(self.settings, stores, feed, start)
        pruner = Pruner(
            retention_tasks(self.settings, stores),
            self.settings.retention_interval,
            self.settings.retention_batch,
        )
        checkpointer.start()
        pruner.start()
        publisher.start(feed, checkpointer)
        sse.start(feed)
        if self._fanout is not None:
            self._fanout.start()
        host, port = sse.address
        log.info(
            "push worker forwarding changes after %d: PUB %s, SSE http://%s:%d/events, "
            "WebSocket ws://%s:%d/ws",
            start,
            publisher.endpoint,
            host,
            port,
            host,
            port,
        )
        try:
            self._follow(store, feed, start, make_event)
        finally:
            pruner.stop()
            log.info("stopping: publishing what was read (up to %d)", feed.head)
            publisher.finish()
            feed.close()
            if self._fanout is not None:
                self._fanout.stop()
            sse.stop()
            checkpointer.close()
            log.info("stopped; checkpoint %s", checkpointer.saved)

    def _follow(
        self,
        store: NotesStore,
        feed: EventFeed,
        position: int,
        make_event: Callable[[Change], Dict[str, Any]],
    ) -> None:
        """Publish every change after ``position`` to the feed until stopped."""
        backoff = Backoff()
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                for change in store.changes(since=position, stop=self._stop):
                    feed.publish(make_event(change))
                    metrics.EVENTS.inc()
                    position = change.seq
                    backoff.success()
            except Pruned as ex:
                # Down longer than the log is kept: every reader is told.
                log.warning(
                    "the changes after %d were pruned from the log; "
                    "going on after %d with a reset event",
                    position,
                    ex.floor,
                )
                feed.publish(reset_event(position, ex.floor, PRUNED))
                position = ex.floor
            except Exception as ex:  # the store, or a bug: never give up, never spin
                if time.monotonic() - began > backoff.cap:
                    backoff.success()  # it worked for a while: start over small
                delay = backoff.failure()
                if isinstance(ex, Unavailable):
                    log.warning(
                        "notes store unavailable after event %d; retrying in %.1fs",
                        position,
                        delay,
                    )
                else:
                    log.exception(
                        "following the change stream failed after event "
                        "%d; retrying in %.1fs",
                        position,
                        delay,
                    )
                self._stop.wait(delay)

    def _retry(self, action: Callable[[], Any], what: str) -> Any:
        """``action()`` until it works (None if stopped first), backing off."""
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                return action()
            except _RETRYABLE as ex:
                delay = backoff.failure()
                log.warning(
                    "%s failed (%s); retrying in %.1fs", what, type(ex).__name__, delay
                )
                self._stop.wait(delay)
        return None

    def snapshot(self, limit: int = SNAPSHOT_LIMIT) -> Dict[str, Any]:
        """The live page's start: the newest notes and the seq read before them.

        The seq is read first, so a change made meanwhile is both in the
        notes and in the events after the seq; the page applies it twice,
        which changes nothing (changes are applied by id).
        """
        stores = self._stores_in_use
        if stores is None:
            raise Unavailable("the push worker is starting")
        seq = stores.notes.last_seq()
        page = stores.notes.list_page(limit)
        return {
            "seq": seq,
            "notes": [note_json(note) for note in page.notes],
            "truncated": page.next_cursor is not None,
        }

    def _metrics_state(self) -> Dict[str, Any]:
        """Scrape-time state for /metrics: the stream's newest seq, the positions."""
        checkpointer = self._checkpointer
        state: Dict[str, Any] = {}
        if checkpointer is not None:
            state["published"] = checkpointer.position
            state["checkpoint"] = checkpointer.saved
        stores = self._stores_in_use
        if stores is not None:
            try:
                state["newest"] = stores.notes.last_seq()
            except Unavailable:
                pass
        if state.get("newest") is not None and state.get("checkpoint") is not None:
            state["lag"] = max(0, state["newest"] - state["checkpoint"])
        if self._sse is not None:
            state["ws_clients"] = self._sse.hub.clients
            state["ws_dropped"] = self._sse.hub.dropped
        return state

    def status(self) -> Dict[str, Any]:
        """What ``GET /health`` on the SSE port answers."""
        feed, checkpointer, publisher = self._feed, self._checkpointer, self._publisher
        topics: List[str] = []
        if publisher is not None:
            topics = sorted(t.decode("utf-8", "replace") for t in publisher.topics)
        return {
            "status": "ok",
            "head": None if feed is None else feed.head,
            "published": None if checkpointer is None else checkpointer.position,
            "checkpoint": None if checkpointer is None else checkpointer.saved,
            "pub_topics": topics,
            "webhooks": {} if self._fanout is None else self._fanout.status(),
            "websocket": {
                "clients": 0 if self._sse is None else self._sse.hub.clients,
                "dropped": 0 if self._sse is None else self._sse.hub.dropped,
            },
        }


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m workers.push [--since N]``: run the push worker until signalled."""
    parser = argparse.ArgumentParser(
        prog="python -m workers.push", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--since",
        type=int,
        metavar="SEQ",
        help="forward the changes after SEQ instead of after the checkpoint "
        "(0: everything the store's log holds)",
    )
    args = parser.parse_args(argv)
    if args.since is not None and args.since < 0:
        parser.error("--since must be 0 or more")
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    try:
        tracing.start(settings.tracing, "falcon-pypy-api-push")
    except ValueError as ex:
        log.error("cannot start: %s", ex)
        return 1
    gc_pauses.watch()
    worker = PushWorker(settings, since=args.since)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
