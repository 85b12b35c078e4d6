"""The webhook handler runner: ``python -m workers.webhooks.runner`` (supervisord.conf).

It claims the deliveries the receiver stored as pending, runs their handler and
records the outcome: the database is the queue, claims are conditional
UPDATEs with a lease, and handling is at least once.

Design: docs/user/webhooks.md#handling-the-runner
"""

import datetime
import json
import logging
import random
import signal
import sys
import threading
import time
from typing import Callable
from typing import Optional

from core.clock import isoformat
from core.clock import utc_now
from core.logs import configure_logging
from core.settings import Settings
from db.errors import Unavailable
from db.notes.sql import Wakeups
from db.pg_wakeups import DELIVERIES_CHANNEL
from db.pg_wakeups import PgWakeups
from db.pg_wakeups import is_postgresql
from db.stores import open_stores
from db.webhooks import FAILED
from db.webhooks import PROCESSED
from db.webhooks import Delivery
from db.webhooks import WebhookStore
from workers.webhooks.handlers import HandlerContext
from workers.webhooks.handlers import PermanentError
from workers.webhooks.handlers import Registry
from workers.webhooks.handlers import registry as default_registry

log = logging.getLogger("workers.webhooks.runner")


class HandlerRunner:
    """Claims due deliveries, runs their handlers, records the outcomes.

    Args:
        store: The inbound deliveries.
        registry: Event name -> handler.
        context: The stores handed to every handler.
        poll_interval: Seconds to wait when nothing is due.
        max_attempts: Attempts before a delivery whose handler raises is failed.
        lease_seconds: How long a claim is held before another runner may take it.
        retry_base, retry_max: Backoff between attempts (seconds, doubling, capped).
        wakeups: Announces stored deliveries (:class:`db.pg_wakeups.PgWakeups`
            on their channel): an idle runner claims as soon as one comes.
    """

    def __init__(
        self,
        store: WebhookStore,
        registry: Registry,
        context: HandlerContext,
        *,
        poll_interval: float = 0.5,
        max_attempts: int = 5,
        lease_seconds: float = 120.0,
        retry_base: float = 2.0,
        retry_max: float = 300.0,
        batch: int = 10,
        rand: Callable[[], float] = random.random,
        wakeups: Optional[Wakeups] = None,
    ):
        self.store = store
        self.registry = registry
        self.context = context
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.batch = batch
        self._rand = rand
        self._wakeups = wakeups

    def run_once(self) -> int:
        """Handle the deliveries due now (one batch); returns how many."""
        claims = self.store.claim_due(self.lease_seconds, limit=self.batch)
        for claim in claims:
            self._handle(claim)
        return len(claims)

    def run(self, stop: threading.Event) -> None:
        """Handle deliveries until ``stop`` is set, waiting out a store that is down."""
        log.info(
            "webhook handler runner started; events: %s",
            ", ".join(self.registry.events()),
        )
        down_delay = 1.0
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Unavailable as ex:
                log.warning(
                    "store unavailable (%s); retrying in %.0fs", ex.detail, down_delay
                )
                stop.wait(down_delay)
                down_delay = min(down_delay * 2, 30.0)
                continue
            down_delay = 1.0
            if not handled:
                self._idle(stop)
        log.info("webhook handler runner stopped")

    def _idle(self, stop: threading.Event) -> None:
        """Wait ``poll_interval``, less if a delivery is announced or on stop."""
        if self._wakeups is None:
            stop.wait(self.poll_interval)
            return
        end = time.monotonic() + self.poll_interval
        while not stop.is_set():
            left = end - time.monotonic()
            # Short slices, so a stop is seen within 0.1 s.
            if left <= 0 or self._wakeups.wait(min(left, 0.1)):
                return

    def _handle(self, claim: Delivery) -> None:
        if claim.event not in self.registry:
            # Stored while a handler existed; the handler is gone since.
            self._fail(claim, {"error": f"no handler for {claim.event!r}"})
            return
        try:
            outcome = self.registry.handle(claim, self.context)
            json.dumps(outcome)  # fail here, not at commit, if it cannot be stored
        except PermanentError as ex:
            self._fail(claim, {"error": str(ex)})
        except Unavailable as ex:
            self._retry_or_fail(claim, {"error": ex.detail})
        except Exception as ex:
            log.exception(
                "handler for %s %s (delivery %s) raised",
                claim.source,
                claim.event,
                claim.delivery_id,
            )
            # The exception's text stays in the log: outcomes are shown over HTTP.
            self._retry_or_fail(
                claim, {"error": f"the handler raised {type(ex).__name__}"}
            )
        else:
            if not self.store.finish(claim, PROCESSED, outcome):
                log.warning("delivery %s was reclaimed before it finished", claim.pk)

    def _retry_or_fail(self, claim: Delivery, outcome: dict) -> None:
        if claim.attempts >= self.max_attempts:
            outcome["attempts"] = claim.attempts
            self._fail(claim, outcome)
            return
        ceiling = min(self.retry_max, self.retry_base * 2 ** (claim.attempts - 1))
        due = utc_now() + datetime.timedelta(
            seconds=ceiling / 2 + self._rand() * ceiling / 2
        )
        outcome["retry_at"] = isoformat(due)
        log.info(
            "delivery %s (%s) attempt %s failed; retry at %s",
            claim.delivery_id,
            claim.event,
            claim.attempts,
            outcome["retry_at"],
        )
        self.store.retry_later(claim, outcome, due)

    def _fail(self, claim: Delivery, outcome: dict) -> None:
        log.warning(
            "delivery %s (%s %s) failed: %s",
            claim.delivery_id,
            claim.source,
            claim.event,
            outcome["error"],
        )
        self.store.finish(claim, FAILED, outcome)


def main() -> int:
    """Run the runner until SIGTERM or SIGINT."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    if settings.pg_listen not in ("on", "off"):
        log.error("PG_LISTEN must be on or off, got %r", settings.pg_listen)
        return 1
    stores = open_stores(settings)
    wakeups = None
    if settings.pg_listen == "on" and is_postgresql(settings.database_url):
        wakeups = PgWakeups(settings.database_url, DELIVERIES_CHANNEL)
    runner = HandlerRunner(
        stores.webhooks,
        default_registry,
        HandlerContext(notes=stores.notes),
        poll_interval=settings.webhook_poll_interval,
        max_attempts=settings.webhook_handler_attempts,
        lease_seconds=settings.webhook_lease,
        wakeups=wakeups,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        runner.run(stop)
    finally:
        if wakeups is not None:
            wakeups.close()
        stores.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
