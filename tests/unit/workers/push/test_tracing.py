"""The push worker's spans (TRACING): a change read joins the trace of its write,
and its webhook delivery continues it, sending ``traceparent`` to the receiver."""

import datetime
import json

import pytest

from core import signatures
from core import tracing
from core.notes import CREATED
from core.notes import Change
from core.notes import Note
from core.notes import event_json
from core.targets import Targets
from core.tracing import parent
from core.wire import encode
from db.schema import create_schema
from db.sql import Database
from db.subscriptions import SubscriptionStore
from tests.support.tracing import spans  # noqa: F401 (fixture)
from tests.support.webhook_receiver import Receiver
from workers.push.tracing import TracedEvent
from workers.push.tracing import event_maker
from workers.webhooks.sender import RetryPolicy
from workers.webhooks.sender import WebhookSender

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
WRITE_SPAN = "b7ad6b7169203331"
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
NOTE = Note("a" * 32, "title", "body", NOW, NOW, 1, 7)


def change(traceparent=None) -> Change:
    return Change(7, CREATED, NOTE.id, None, NOTE, NOW, traceparent)


@pytest.fixture
def subscriptions(settings):
    database = Database(settings.database_url)
    create_schema(database.engine)
    yield SubscriptionStore(database)
    database.dispose()


def test_off_events_are_the_plain_json():
    assert event_maker(None) is event_json


def test_a_change_read_is_a_span_under_its_write(spans):  # noqa: F811
    event = event_maker(tracing.tracer(__name__))(
        change(f"00-{TRACE_ID}-{WRITE_SPAN}-01")
    )

    assert isinstance(event, TracedEvent)
    assert event == event_json(change())
    assert "traceparent" not in json.loads(encode(event))
    (read,) = spans.get_finished_spans()
    assert read.name == "receive note.created"
    assert format(read.context.trace_id, "032x") == TRACE_ID
    assert format(read.parent.span_id, "016x") == WRITE_SPAN
    assert event.traceparent == f"00-{TRACE_ID}-{read.context.span_id:016x}-01"


def test_a_change_written_untraced_starts_a_trace(spans):  # noqa: F811
    event = event_maker(tracing.tracer(__name__))(change(None))
    (read,) = spans.get_finished_spans()
    assert read.parent is None
    assert event.traceparent.split("-")[1] == format(read.context.trace_id, "032x")


def test_the_delivery_continues_the_trace_and_sends_traceparent(
    spans,  # noqa: F811
    subscriptions,
):
    event = event_maker(tracing.tracer(__name__))(
        change(f"00-{TRACE_ID}-{WRITE_SPAN}-01")
    )
    sender = WebhookSender(
        subscriptions, RetryPolicy(max_attempts=1), Targets("127.0.0.0/8")
    )
    try:
        with Receiver([204]) as receiver:
            subscription = subscriptions.create(
                receiver.url, ["note.*"], signatures.generate_secret()
            )
            assert sender.deliver(subscription, event).delivered
    finally:
        sender.close()

    read, deliver = spans.get_finished_spans()
    assert deliver.name == "webhook deliver"
    assert deliver.parent.span_id == read.context.span_id
    assert deliver.context.trace_id == read.context.trace_id
    assert deliver.attributes["webhook.delivered"] is True
    assert deliver.attributes["http.response.status_code"] == 204
    (request,) = receiver.requests
    sent = request.headers["traceparent"]
    assert sent == f"00-{TRACE_ID}-{deliver.context.span_id:016x}-01"
    assert parent(sent) is not None


def test_off_the_delivery_sends_no_traceparent(subscriptions):
    sender = WebhookSender(
        subscriptions, RetryPolicy(max_attempts=1), Targets("127.0.0.0/8")
    )
    try:
        with Receiver([204]) as receiver:
            subscription = subscriptions.create(
                receiver.url, ["note.*"], signatures.generate_secret()
            )
            assert sender.deliver(subscription, event_json(change())).delivered
    finally:
        sender.close()
    (request,) = receiver.requests
    assert "traceparent" not in request.headers
