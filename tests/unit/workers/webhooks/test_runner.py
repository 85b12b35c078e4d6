"""The webhook handler runner: claims, retries, failures."""

import datetime
import threading
import time

import pytest

from core.clock import utc_now
from db.errors import Unavailable
from db.webhooks import WebhookStore
from workers.webhooks.handlers import HandlerContext
from workers.webhooks.handlers import PermanentError
from workers.webhooks.handlers import Registry
from workers.webhooks.runner import HandlerRunner


@pytest.fixture
def store(database):
    return WebhookStore(database)


def make_runner(store, registry, **kwargs):
    options = {"max_attempts": 3, "retry_base": 0.0}
    options.update(kwargs)
    return HandlerRunner(store, registry, HandlerContext(), **options)


def test_a_raising_handler_is_retried_then_failed_without_its_message(store):
    registry = Registry()
    calls = []

    @registry.on("push")
    def flaky(delivery, context):
        calls.append(delivery.attempts)
        raise RuntimeError("secret internals")

    store.receive("gh", "1", "push", {}, handled=True)
    runner = make_runner(store, registry, max_attempts=3)
    assert runner.run_once() == 1
    [after_one] = store.page(10)[0]
    assert after_one.status == "pending"
    assert after_one.outcome["error"] == "the handler raised RuntimeError"
    assert "retry_at" in after_one.outcome
    runner.run_once()
    runner.run_once()
    assert runner.run_once() == 0  # nothing left to do
    [final] = store.page(10)[0]
    assert calls == [1, 2, 3]
    assert final.status == "failed"
    assert final.outcome == {"error": "the handler raised RuntimeError", "attempts": 3}
    assert "secret" not in str(final.outcome)


def test_a_retry_waits_for_its_backoff(store):
    registry = Registry()

    @registry.on("push")
    def store_down(delivery, context):
        raise Unavailable("notes down")

    store.receive("gh", "1", "push", {}, handled=True)
    runner = make_runner(store, registry, retry_base=60.0)
    assert runner.run_once() == 1
    assert runner.run_once() == 0  # due in 30-60 s, not now
    [delivery] = store.page(10)[0]
    assert delivery.status == "pending"
    assert delivery.outcome["error"] == "notes down"


def test_a_permanent_error_fails_at_once_with_its_reason(store):
    registry = Registry()

    @registry.on("push")
    def refuse(delivery, context):
        raise PermanentError("unsupported ref")

    store.receive("gh", "1", "push", {}, handled=True)
    make_runner(store, registry).run_once()
    [delivery] = store.page(10)[0]
    assert delivery.status == "failed"
    assert delivery.outcome == {"error": "unsupported ref"}
    assert delivery.attempts == 1


def test_a_delivery_whose_handler_was_removed_fails(store):
    store.receive("gh", "1", "push", {}, handled=True)
    make_runner(store, Registry()).run_once()
    [delivery] = store.page(10)[0]
    assert delivery.status == "failed"
    assert "no handler" in delivery.outcome["error"]


def test_an_outcome_that_is_not_json_is_a_failure_not_a_crash(store):
    registry = Registry()
    registry.on("push")(lambda d, c: {"when": datetime.date.today()})
    store.receive("gh", "1", "push", {}, handled=True)
    make_runner(store, registry, max_attempts=1).run_once()
    [delivery] = store.page(10)[0]
    assert delivery.status == "failed"


def test_a_claimed_delivery_is_not_claimed_twice(store):
    store.receive("gh", "1", "push", {}, handled=True)
    assert len(store.claim_due(lease_seconds=60)) == 1
    assert store.claim_due(lease_seconds=60) == []


def test_a_claim_whose_runner_died_is_claimed_again_after_its_lease(store):
    store.receive("gh", "1", "push", {}, handled=True)
    [first] = store.claim_due(lease_seconds=60)
    later = utc_now() + datetime.timedelta(seconds=61)
    [second] = store.claim_due(lease_seconds=60, now=later)
    assert second.attempts == first.attempts + 1
    # The first runner wakes up late: its result is not recorded.
    assert store.finish(first, "processed", {"late": True}) is False
    assert store.finish(second, "processed", {"ok": True}) is True
    [delivery] = store.page(10)[0]
    assert delivery.outcome == {"ok": True}


def test_ignored_deliveries_are_never_claimed(store):
    store.receive("gh", "1", "fork", {}, handled=False)
    assert store.claim_due(lease_seconds=60) == []


# Waiting when idle


class Announcements:
    """Wakeups the test announces by hand."""

    def __init__(self):
        self.came = threading.Event()

    def wait(self, timeout: float) -> bool:
        # Cleared only once seen: an announcement made just after a wait timed
        # out is kept for the next one, as the real wakeups keep theirs.
        if not self.came.wait(timeout):
            return False
        self.came.clear()
        return True


def test_an_idle_runner_claims_at_once_when_a_delivery_is_announced(store):
    registry = Registry()
    handled = threading.Event()
    registry.on("push")(lambda d, c: handled.set() or {})
    announcements = Announcements()
    runner = make_runner(store, registry, poll_interval=30.0, wakeups=announcements)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.3)  # idle by now: its first claim found nothing
        store.receive("gh", "1", "push", {}, handled=True)
        started = time.monotonic()
        announcements.came.set()
        assert handled.wait(5)
        assert time.monotonic() - started < 2  # not the 30 s poll
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()  # the stop is seen while waiting on wakeups
