"""The outbound sender against local HTTP receivers (tests/support/webhook_receiver.py).

Sleeps between retries go through an injected function that records them, so
the retry policy is checked without waiting for it.
"""

import json
import time

import pytest

from core import signatures
from core.targets import Targets
from db.subscriptions import SubscriptionStore
from tests.support.processes import free_port
from tests.support.webhook_receiver import Receiver
from workers.webhooks.sender import RetryPolicy
from workers.webhooks.sender import WebhookSender
from workers.webhooks.sender import parse_retry_after

#: The receivers listen on 127.0.0.1, which the default rule refuses.
LOOPBACK_ALLOWED = Targets("127.0.0.0/8")

EVENT = {
    "id": "evt_1",
    "type": "note.created",
    "old_val": None,
    "new_val": {"id": "n1", "title": "caf\u00e9"},
    "ts": 1700000000.5,
}


@pytest.fixture
def store(database):
    return SubscriptionStore(database)


@pytest.fixture
def make_sender(store):
    senders = []

    def make(**policy):
        sleeps = []
        options = {"max_attempts": 3, "max_failures": 3}
        options.update(policy)
        sender = WebhookSender(
            store,
            RetryPolicy(**options),
            LOOPBACK_ALLOWED,
            sleep=sleeps.append,
            rand=lambda: 0.5,
        )
        sender.sleeps = sleeps
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        sender.close()


def subscribe(store, url):
    return store.create(url, ["note.*"], signatures.generate_secret())


def attempts(store, subscription):
    items, _ = store.attempts(subscription.id, limit=100)
    return list(reversed(items))


def test_fails_twice_then_succeeds_in_three_signed_attempts(store, make_sender):
    sender = make_sender()
    with Receiver([500, 502, 204]) as receiver:
        subscription = subscribe(store, receiver.url)
        result = sender.deliver(subscription, EVENT)
    assert result.delivered and result.attempts == 3 and result.status_code == 204
    recorded = attempts(store, subscription)
    assert [(a.attempt, a.status_code, a.delivered) for a in recorded] == [
        (1, 500, False),
        (2, 502, False),
        (3, 204, True),
    ]
    assert recorded[0].error == "HTTP 500" and recorded[2].error is None
    assert all(a.latency_ms > 0 and a.event_id == "evt_1" for a in recorded)
    # Exponential backoff with jitter (rand fixed at 0.5): 0.5 s then 1 s ceilings.
    assert sender.sleeps == [0.375, 0.75]
    # Every attempt is signed for the receiver, with the same webhook-id.
    for request in receiver.requests:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"] == "evt_1"
        signatures.standard_verify(
            subscription.secret, request.body, request.headers, now=time.time()
        )
        assert json.loads(request.body) == EVENT
    assert store.get(subscription.id).failure_count == 0


def test_an_endpoint_that_always_fails_is_disabled_after_n_deliveries(
    store, make_sender
):
    sender = make_sender(max_attempts=2, max_failures=3)
    with Receiver([503]) as receiver:
        subscription = subscribe(store, receiver.url)
        results = [
            sender.deliver(subscription, dict(EVENT, id=f"evt_{n}")) for n in range(3)
        ]
    assert [r.delivered for r in results] == [False, False, False]
    assert [r.disabled for r in results] == [False, False, True]
    after = store.get(subscription.id)
    assert after.active is False and after.failure_count == 3
    assert after.disabled_at is not None
    assert len(receiver.requests) == 6  # 3 deliveries x 2 attempts
    assert store.matching("note.created") == []


def test_a_success_resets_the_consecutive_failures(store, make_sender):
    sender = make_sender(max_attempts=1, max_failures=2)
    with Receiver([500, 200, 500]) as receiver:
        subscription = subscribe(store, receiver.url)
        for n in range(3):
            sender.deliver(subscription, dict(EVENT, id=f"evt_{n}"))
    after = store.get(subscription.id)
    assert after.active is True and after.failure_count == 1


@pytest.mark.parametrize("status", [400, 404, 410, 302])
def test_other_4xx_and_redirects_are_not_retried(store, make_sender, status):
    sender = make_sender()
    answer = (
        (status, {"Location": "http://127.0.0.1:9/elsewhere"})
        if status == 302
        else status
    )
    with Receiver([answer, 200]) as receiver:
        subscription = subscribe(store, receiver.url)
        result = sender.deliver(subscription, EVENT)
    assert not result.delivered
    assert result.attempts == 1 and result.status_code == status
    assert len(receiver.requests) == 1
    assert sender.sleeps == []
    assert store.get(subscription.id).failure_count == 1


def test_429_retry_after_is_honoured(store, make_sender):
    sender = make_sender()
    with Receiver([(429, {"Retry-After": "7"}), 200]) as receiver:
        subscription = subscribe(store, receiver.url)
        result = sender.deliver(subscription, EVENT)
    assert result.delivered and result.attempts == 2
    assert sender.sleeps == [7.0]


def test_a_retry_after_over_the_limit_ends_the_delivery(store, make_sender):
    sender = make_sender(max_retry_after=60)
    with Receiver([(429, {"Retry-After": "3600"}), 200]) as receiver:
        subscription = subscribe(store, receiver.url)
        result = sender.deliver(subscription, EVENT)
    assert not result.delivered and result.attempts == 1
    assert sender.sleeps == []


def test_a_slow_endpoint_times_out_and_is_retried(store, make_sender):
    sender = make_sender(max_attempts=2, timeout=0.2)
    with Receiver(["hang"]) as receiver:
        subscription = subscribe(store, receiver.url)
        started = time.monotonic()
        result = sender.deliver(subscription, EVENT)
        elapsed = time.monotonic() - started
    assert not result.delivered and result.attempts == 2
    assert result.status_code is None
    assert result.error.startswith("timed out")
    assert elapsed < 5  # bounded by the timeout, not by the endpoint
    assert all(a.latency_ms >= 200 for a in attempts(store, subscription))
    assert len(sender.sleeps) == 1


def test_a_refused_connection_is_retried_and_recorded(store, make_sender):
    sender = make_sender(max_attempts=2)
    subscription = subscribe(store, f"http://127.0.0.1:{free_port()}/hook")
    result = sender.deliver(subscription, EVENT)
    assert not result.delivered and result.attempts == 2
    assert result.error == "connection failed: Connection refused"
    assert [a.error for a in attempts(store, subscription)] == [result.error] * 2


def test_a_subscription_deleted_meanwhile_ends_the_delivery(store, make_sender):
    sender = make_sender()
    with Receiver([500, 200]) as receiver:
        subscription = subscribe(store, receiver.url)
        store.delete(subscription.id)
        result = sender.deliver(subscription, EVENT)
    assert result.gone and not result.delivered and result.attempts == 1


# The policy, directly


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=8.0)
    assert [policy.backoff(n, 0.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [policy.backoff(n, 0.999) for n in range(1, 6)] == pytest.approx(
        [1.0, 2.0, 4.0, 8.0, 8.0], rel=1e-3
    )


def test_retry_after_in_seconds_or_as_an_http_date():
    assert parse_retry_after("120", now=0) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490) == 0.0
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


def test_policy_from_settings(settings):
    policy = RetryPolicy.from_settings(settings)
    assert policy.max_attempts == settings.subscription_max_attempts
    assert policy.max_failures == settings.subscription_max_failures
    assert policy.timeout == settings.subscription_timeout
