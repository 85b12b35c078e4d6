"""The handler registry and the built-in handlers."""

import pytest

from db.webhooks import WebhookStore
from workers.webhooks import handlers as webhook_handlers
from workers.webhooks.handlers import HandlerContext
from workers.webhooks.handlers import PermanentError
from workers.webhooks.handlers import Registry


@pytest.fixture
def store(database):
    return WebhookStore(database)


def test_decorator_registers_the_function_and_returns_it():
    registry = Registry()

    @registry.on("push", "create")
    def handler(delivery, context):
        return {"ref": delivery.payload["ref"]}

    assert handler.__name__ == "handler"
    assert registry.events() == ["create", "push"]
    assert "push" in registry and "delete" not in registry


def test_an_event_has_one_handler():
    registry = Registry()
    registry.on("push")(lambda d, c: None)
    with pytest.raises(ValueError, match="already has a handler"):
        registry.on("push")(lambda d, c: None)


def test_handle_runs_the_handler_of_the_event(store):
    registry = Registry()
    registry.on("push")(lambda delivery, context: {"ref": delivery.payload["ref"]})
    delivery, _ = store.receive("gh", "1", "push", {"ref": "main"}, handled=True)
    assert registry.handle(delivery, HandlerContext()) == {"ref": "main"}
    other, _ = store.receive("gh", "2", "fork", {}, handled=False)
    with pytest.raises(LookupError):
        registry.handle(other, HandlerContext())


def test_the_service_registry_has_the_built_in_handlers():
    assert {"ping", "issues"} <= set(webhook_handlers.registry.events())


def test_issue_handler_skips_actions_other_than_opened(store):
    delivery, _ = store.receive("gh", "1", "issues", {"action": "closed"}, handled=True)
    outcome = webhook_handlers.issue_to_note(delivery, HandlerContext())
    assert outcome == {"skipped": "action 'closed' is not handled"}


def test_issue_handler_without_a_notes_store_fails_permanently(store):
    payload = {"action": "opened", "issue": {"title": "t", "body": None}}
    delivery, _ = store.receive("gh", "1", "issues", payload, handled=True)
    with pytest.raises(PermanentError, match="no notes store"):
        webhook_handlers.issue_to_note(delivery, HandlerContext())


def test_issue_handler_refuses_a_payload_without_an_issue_title(store):
    delivery, _ = store.receive("gh", "1", "issues", {"action": "opened"}, handled=True)
    with pytest.raises(PermanentError, match="no issue"):
        webhook_handlers.issue_to_note(delivery, HandlerContext())
