"""Webhook delivery checks the resolved address: no private target, unless allowed."""

import socket

import pytest

from core import signatures
from core.targets import Targets
from db.subscriptions import SubscriptionStore
from tests.support.webhook_receiver import Receiver
from workers.webhooks.sender import RetryPolicy
from workers.webhooks.sender import WebhookSender
from workers.webhooks.transport import guarded_session


@pytest.fixture
def store(database):
    return SubscriptionStore(database)


def rebinding_resolver(port_owner: str):
    """``getaddrinfo`` where ``rebind.example`` resolves to 127.0.0.1."""

    def resolve(host, port, *args, **kwargs):
        if host == "rebind.example":
            host = port_owner
        return socket.getaddrinfo(host, port, *args, **kwargs)

    return resolve


def deliver(store, targets, url):
    subscription = store.create(url, ["note.*"], signatures.generate_secret())
    sender = WebhookSender(
        store,
        RetryPolicy(max_attempts=3),
        targets,
        session=guarded_session(targets, rebinding_resolver("127.0.0.1")),
        sleep=lambda seconds: None,
    )
    try:
        return sender.deliver(subscription, {"id": 1, "type": "note.created"})
    finally:
        sender.close()


def test_a_name_that_resolves_to_loopback_is_refused_at_delivery(store):
    with Receiver([200]) as receiver:
        port = receiver.server.server_address[1]
        result = deliver(store, Targets(), f"http://rebind.example:{port}/hook")
        assert receiver.requests == []
    assert not result.delivered
    assert result.attempts == 1  # not retried: it would resolve the same way
    assert "refused: rebind.example resolves to 127.0.0.1" in result.error


def test_stored_private_targets_are_refused_at_delivery_too(store):
    # A row written before the rule existed (or straight into the database).
    with Receiver([200]) as receiver:
        result = deliver(store, Targets(), receiver.url)
        assert receiver.requests == []
    assert "refused" in result.error


@pytest.mark.parametrize("allowed", ["127.0.0.1", "rebind.example"])
def test_an_allowed_address_or_name_is_delivered_to(store, allowed):
    with Receiver([204]) as receiver:
        port = receiver.server.server_address[1]
        result = deliver(store, Targets(allowed), f"http://rebind.example:{port}/h")
        assert len(receiver.requests) == 1
    assert result.delivered
