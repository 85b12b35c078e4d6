"""Visits of links without ``max_visits``, written in batches off the request.

A visit is in the statistics at most about ``interval`` seconds after its
redirect; a process that dies without a clean exit loses the visits of at
most its last ``interval`` seconds. A clean exit writes them.
"""

import atexit
import collections
import logging
import os
import threading
import time
from typing import Dict
from typing import List
from typing import Optional

import sqlalchemy as sa

from core.backoff import Backoff
from db import link_stats
from db.link_tables import INSERT_VISIT
from db.link_tables import LINKS
from db.link_tables import LIVE
from db.sql import Database

log = logging.getLogger(__name__)

#: Most visits written in one transaction. A write holds its process (under
#: gevent, SQLite's calls block every greenlet), so a batch's length is the
#: tail of GET /{code}: 5,000 visits held a PyPy worker for 90-190 ms. Each
#: transaction also has a fixed cost, so smaller batches cost CPU. Against
#: 500, under wrk (bench.ab, PyPy): 200 cut the redirect's p99 from 13.8 to
#: 9.8 ms for 3.5% more CPU per request; 100 from 13.0 to 8.3 ms for 11%.
BATCH = 200
#: Seconds the writer sleeps between two batches: under gevent a timer, so
#: the requests ready meanwhile run before the next batch.
_BETWEEN_BATCHES = 0.000001

_LIVE_AMONG = sa.select(LINKS.c.id).where(
    LINKS.c.id.in_(sa.bindparam("ids", expanding=True)), LIVE
)
_ADD_VISITS = (
    sa.update(LINKS)
    .where(LINKS.c.id == sa.bindparam("link_id"))
    .values(visits=LINKS.c.visits + sa.bindparam("added", type_=sa.Integer))
)


class VisitRecorder:
    """Writes the visits of links without ``max_visits`` in batches, off the request.

    :meth:`add` queues a visit; a thread of this process writes what is queued
    every ``interval`` seconds, or as soon as ``wake_at`` visits wait, in
    transactions of :data:`BATCH` visits. When ``max_pending`` visits wait
    (the database is slow or down), :meth:`add` writes them itself. What
    fails to be written stays queued, in order, and is tried again after a
    growing pause (up to 30 s). At the process's exit (atexit) and on
    :meth:`close` the queue is written.

    Args:
        database: The shared SQL handle.
        interval: Seconds between two writes; 0 writes each visit at once.
        max_pending: Most visits queued before :meth:`add` writes them.
        wake_at: Visits queued that wake the thread before its interval ends.
    """

    def __init__(
        self,
        database: Database,
        interval: float,
        max_pending: int = 5000,
        wake_at: int = 5 * BATCH,
    ):
        self._db = database
        self.interval = interval
        self._max_pending = max_pending
        self._wake_at = wake_at
        self._pending: List[dict] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one batch at a time, in order
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._pid = 0
        self._closed = False

    def add(self, visit: dict) -> None:
        """Queue one visit (the values of a ``visits`` row)."""
        with self._lock:
            self._pending.append(visit)
            waiting = len(self._pending)
            full = waiting >= self._max_pending
            if self.interval > 0 and not full and self._pid != os.getpid():
                self._start()
        if full or self.interval <= 0:
            self.flush()
        elif waiting == self._wake_at:
            self._wake.set()

    def _start(self) -> None:
        # Here, not in __init__: gunicorn forks after building the app, and a
        # thread does not survive a fork.
        self._pid = os.getpid()
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name="visit-recorder", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        backoff = Backoff()
        pause = self.interval
        while not self._closed:
            self._wake.wait(pause)
            if not self._closed:
                self._wake.clear()
            try:
                self.flush()
            except Exception as ex:  # the batch stays queued for the next try
                pause = backoff.failure()
                log.warning(
                    "writing %d visits failed (%s); retrying in %.1fs",
                    self.pending,
                    type(ex).__name__,
                    pause,
                )
            else:
                backoff.success()
                pause = self.interval

    @property
    def pending(self) -> int:
        """How many visits wait to be written."""
        return len(self._pending)

    def flush(self) -> int:
        """Write every queued visit now, :data:`BATCH` at a time; how many.

        Raises:
            Unavailable: the database is down (the visits not written yet
                stay queued).
        """
        with self._write_lock:
            with self._lock:
                queued, self._pending = self._pending, []
            written = 0
            try:
                while written < len(queued):
                    if written:
                        time.sleep(_BETWEEN_BATCHES)
                    self._write(queued[written : written + BATCH])
                    written += BATCH
            except BaseException:
                with self._lock:
                    self._pending[:0] = queued[written:]
                raise
            return len(queued)

    def _write(self, batch: List[dict]) -> None:
        added: Dict[int, int] = collections.Counter(v["link_id"] for v in batch)
        with self._db.write() as connection:
            # A link deleted meanwhile lost its visits: do not bring them back.
            live = set(
                connection.execute(_LIVE_AMONG, {"ids": sorted(added)}).scalars()
            )
            if not live:
                return
            # In id order: writers that share links lock them in one order.
            connection.execute(
                _ADD_VISITS,
                [
                    {"link_id": k, "added": n}
                    for k, n in sorted(added.items())
                    if k in live
                ],
            )
            kept = [v for v in batch if v["link_id"] in live]
            connection.execute(INSERT_VISIT, kept)
            link_stats.roll_up(connection, kept)

    def close(self) -> None:
        """Stop the thread and write what is queued (at exit, or in tests)."""
        self._closed = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        self._wake.clear()
        self._pid = 0
        try:
            self.flush()
        except Exception:
            log.exception("%d visits could not be written at exit", self.pending)
