"""Retention: the push worker prunes the tables that grow with use, in a thread.

Every ``RETENTION_INTERVAL`` seconds a round removes the change log, the
finished webhook deliveries and the raw visits older than their settings,
oldest first, ``RETENTION_BATCH`` rows per transaction with a pause
between batches. Why this process, and the reset a reader behind the log
gets: docs/operations/retention.md
"""

import dataclasses
import datetime
import logging
import threading
from typing import Callable
from typing import List
from typing import Optional

from core.clock import utc_now
from core.settings import Settings
from db import retention
from db.stores import Stores

log = logging.getLogger(__name__)

#: Most rows one transaction may remove (RETENTION_BATCH).
MAX_BATCH = 10000
_DAY = 86400.0

#: ``prune(before, limit)``: removes up to ``limit`` rows older than ``before``.
Prune = Callable[[datetime.datetime, int], int]


@dataclasses.dataclass(frozen=True)
class Task:
    """One table to prune: rows older than ``keep`` seconds go."""

    name: str
    prune: Prune
    keep: float


def check(settings: Settings) -> None:
    """Raise ValueError for retention settings that make no sense."""
    for env, days in (
        ("NOTES_LOG_RETENTION_DAYS", settings.notes_log_retention_days),
        ("WEBHOOK_RETENTION_DAYS", settings.webhook_retention_days),
        ("VISIT_RETENTION_DAYS", settings.visit_retention_days),
    ):
        if days < 0:
            raise ValueError(f"{env} must be 0 (keep forever) or more, got {days}")
    if settings.retention_interval <= 0:
        raise ValueError(
            f"RETENTION_INTERVAL must be above 0, got {settings.retention_interval}"
        )
    if not 1 <= settings.retention_batch <= MAX_BATCH:
        raise ValueError(
            f"RETENTION_BATCH must be 1 to {MAX_BATCH}, got {settings.retention_batch}"
        )


def tasks(settings: Settings, stores: Stores) -> List[Task]:
    """What the settings ask to prune (a retention of 0: not that table)."""
    database = stores.database
    webhooks = settings.webhook_retention_days * _DAY
    found = [
        Task(
            "notes change log",
            stores.notes.prune_log,
            settings.notes_log_retention_days * _DAY,
        ),
        Task(
            "inbound webhook deliveries",
            lambda before, limit: retention.prune_inbound_deliveries(
                database, before, limit
            ),
            max(webhooks, settings.webhook_replay_window) if webhooks else 0.0,
        ),
        Task(
            "outbound webhook attempts",
            lambda before, limit: retention.prune_attempts(database, before, limit),
            webhooks,
        ),
        Task(
            "link visits",
            lambda before, limit: retention.prune_visits(database, before, limit),
            settings.visit_retention_days * _DAY,
        ),
    ]
    return [task for task in found if task.keep > 0]


class Pruner:
    """Runs :meth:`round` every ``interval`` seconds in a thread until stopped.

    Args:
        tasks: The tables to prune.
        interval: Seconds between two rounds (the first comes at start).
        batch: Rows per transaction.
        pause: Seconds between two batches of one table.
        clock: The current UTC time (injectable for tests).
    """

    def __init__(
        self,
        tasks: List[Task],
        interval: float,
        batch: int,
        pause: float = 0.05,
        clock: Callable[[], datetime.datetime] = utc_now,
    ):
        self._tasks = tasks
        self._interval = interval
        self._batch = batch
        self._pause = pause
        self._clock = clock
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.rounds = 0

    def start(self) -> None:
        """Start the thread (nothing to do without tasks)."""
        if not self._tasks:
            log.info("retention: every table is kept forever")
            return
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the batch under way."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self._interval)

    def round(self) -> dict:
        """Prune every table once, batch by batch; rows removed by table name.

        A failure (the database is down) is logged; the next round retries.
        """
        removed = {}
        for task in self._tasks:
            before = self._clock() - datetime.timedelta(seconds=task.keep)
            total = 0
            try:
                while not self._stop.is_set():
                    count = task.prune(before, self._batch)
                    total += count
                    if count < self._batch or self._stop.wait(self._pause):
                        break
            except Exception as ex:  # the store, or a bug: the next round retries
                log.warning("retention: pruning the %s failed: %r", task.name, ex)
            if total:
                log.info("retention: removed %d rows of the %s", total, task.name)
            removed[task.name] = total
        self.rounds += 1
        return removed
