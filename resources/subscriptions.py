"""Outbound webhook subscriptions: ``/subscriptions`` and its items and attempts.

Deliveries themselves are made by the push worker with
:class:`workers.webhooks.sender.WebhookSender`; this resource manages what it
delivers to and shows how it went.
"""

import datetime
from typing import Optional

import falcon
import marshmallow
from marshmallow import Schema
from marshmallow import fields
from marshmallow import post_load
from marshmallow import validate as checks
from marshmallow import validates_schema

from core.clock import isoformat
from core.clock import utc_now
from core.notes import EVENT_TYPES
from core.signatures import generate_secret
from core.targets import Targets
from db.subscriptions import WILDCARDS
from db.subscriptions import Attempt
from db.subscriptions import Subscription
from db.subscriptions import SubscriptionStore
from web.auth import ADMIN
from web.auth import requires
from web.fields import IsoDateTime
from web.fields import SafeUrl
from web.fields import check_target
from web.fields import cursor_field
from web.openapi import HEADERS
from web.openapi import ResponseSchema
from web.paging import limit_field
from web.paging import next_link
from web.paging import page_body
from web.paging import page_schema
from web.validation import QuerySchema
from web.validation import validate


def _events_field(**kwargs) -> fields.List:
    choices = EVENT_TYPES + WILDCARDS
    return fields.List(
        fields.String(validate=checks.OneOf(choices)),
        validate=checks.Length(min=1, max=len(choices)),
        metadata={"description": "event types, or note.* / * for several"},
        **kwargs,
    )


def _unique(items):
    return list(dict.fromkeys(items))


def _url_field(**kwargs) -> SafeUrl:
    return SafeUrl(
        metadata={
            "description": "http(s) URL of a public host, at most 2048 characters"
        },
        **kwargs,
    )


class SubscriptionIn(Schema):
    url = _url_field(required=True)
    events = _events_field(required=True)

    @post_load
    def dedupe(self, data, **kwargs):
        data["events"] = _unique(data["events"])
        return data


class SubscriptionPatch(Schema):
    url = _url_field()
    events = _events_field()
    active = fields.Boolean(
        truthy={True},
        falsy={False},
        metadata={
            "description": "true re-enables (and resets the "
            "failure count); false pauses"
        },
    )

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise marshmallow.ValidationError(
                "Give at least one of url, events, active."
            )

    @post_load
    def dedupe(self, data, **kwargs):
        if "events" in data:
            data["events"] = _unique(data["events"])
        return data


#: The widest time range one replay request may name.
REPLAY_MAX_RANGE = datetime.timedelta(days=30)


class ReplayIn(Schema):
    since = IsoDateTime(
        required=True,
        metadata={"description": "deliveries first made at or after this time"},
    )
    until = IsoDateTime(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "and at or before this time (default: now); at most "
            "30 days after since"
        },
    )
    only_failed = fields.Boolean(
        load_default=False,
        truthy={True},
        falsy={False},
        metadata={"description": "only the deliveries that never succeeded"},
    )


class ReplayOut(ResponseSchema):
    subscription_id = fields.Integer()
    since = fields.String(metadata={"format": "date-time"})
    until = fields.String(metadata={"format": "date-time"})
    only_failed = fields.Boolean()
    queued = fields.Integer(
        metadata={"description": "deliveries queued by this request"}
    )
    pending = fields.Integer(
        metadata={"description": "replays of the subscription waiting in all"}
    )
    next_since = fields.String(
        allow_none=True,
        metadata={
            "format": "date-time",
            "description": "more matched than one request queues (10,000): "
            "send the request again with this as since; else null",
        },
    )


_REPLAY_EXAMPLE_IN = {
    "since": "2025-01-30T00:00:00Z",
    "until": "2025-01-31T12:00:00Z",
    "only_failed": True,
}
_REPLAY_EXAMPLE_OUT = {
    "subscription_id": 1,
    "since": "2025-01-30T00:00:00.000Z",
    "until": "2025-01-31T12:00:00.000Z",
    "only_failed": True,
    "queued": 3,
    "pending": 3,
    "next_since": None,
}


class SubscriptionOut(ResponseSchema):
    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    active = fields.Boolean()
    failure_count = fields.Integer(
        metadata={"description": "failed deliveries in a row"}
    )
    created_at = fields.String()
    disabled_at = fields.String(allow_none=True)
    last_delivery_at = fields.String(allow_none=True)


class SubscriptionCreated(SubscriptionOut):
    secret = fields.String(metadata={"description": "signing secret, shown only now"})


SubscriptionPage = page_schema("SubscriptionPage", SubscriptionOut())


class SubscriptionAttemptOut(ResponseSchema):
    id = fields.Integer()
    event_id = fields.String()
    event_type = fields.String()
    attempt = fields.Integer(
        metadata={"description": "1 for the first try of the event"}
    )
    at = fields.String()
    status_code = fields.Integer(allow_none=True)
    latency_ms = fields.Float()
    error = fields.String(allow_none=True)
    delivered = fields.Boolean()
    replay = fields.Boolean(
        metadata={"description": "part of a replayed delivery (POST .../replay)"}
    )


SubscriptionAttemptPage = page_schema(
    "SubscriptionAttemptPage", SubscriptionAttemptOut()
)


# -- examples and the outbound webhook, for the OpenAPI document ----------------

SUBSCRIPTION = {
    "id": 1,
    "url": "https://example.com/hooks",
    "events": ["note.created", "note.deleted"],
    "active": True,
    "failure_count": 0,
    "created_at": "2025-01-31T12:00:00.123Z",
    "disabled_at": None,
    "last_delivery_at": None,
}
ATTEMPT = {
    "id": 7,
    "event_id": "42",
    "event_type": "note.updated",
    "attempt": 1,
    "at": "2025-01-31T12:05:43.002Z",
    "status_code": 200,
    "latency_ms": 84.213,
    "error": None,
    "delivered": True,
    "replay": False,
}
_NOTE_OR_NULL = {"allOf": [{"$ref": "#/components/schemas/NoteOut"}], "nullable": True}
EVENT_SCHEMA = {
    "type": "object",
    "description": "A note change, as every push channel sends it.",
    "properties": {
        "id": {"type": "integer", "description": "the change's seq; deduplicate on it"},
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "old_val": _NOTE_OR_NULL,
        "new_val": _NOTE_OR_NULL,
        "ts": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "type", "old_val", "new_val", "ts"],
}
_NOTE = {
    "id": "5f0c3b1e9a3d4c8e8b1f2a7d6c5e4b3a",
    "title": "Groceries",
    "body": "milk, eggs",
    "created_at": "2025-01-31T12:00:00.123Z",
    "updated_at": "2025-01-31T12:00:00.123Z",
}
EVENT = {
    "id": 42,
    "type": "note.updated",
    "old_val": _NOTE,
    "new_val": {
        **_NOTE,
        "body": "milk, eggs, bread",
        "updated_at": "2025-01-31T12:05:42.801Z",
    },
    "ts": "2025-01-31T12:05:42.801Z",
}
#: What the push worker POSTs to each subscription's URL (OpenAPI callbacks).
CALLBACKS = {
    "noteEvent": {
        "{$request.body#/url}": {
            "post": {
                "summary": "A note event, signed the Standard Webhooks way.",
                "description": "Verify webhook-signature with the secret the "
                "subscription was created with; retries keep the webhook-id.",
                "parameters": [
                    dict(HEADERS[name], required=True)
                    for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": EVENT_SCHEMA, "example": EVENT}
                    },
                },
                "responses": {
                    "2XX": {"description": "Delivered."},
                    "default": {
                        "description": "Retried on network errors, 429 and 5xx; "
                        "other answers end the delivery as failed."
                    },
                },
            }
        }
    }
}


class SubscriptionPageQuery(QuerySchema):
    limit = limit_field(50, 200)
    cursor = cursor_field("from the previous page's next")


def subscription_json(subscription: Subscription, with_secret: bool = False) -> dict:
    """A subscription on the wire; its secret only when asked (at creation)."""
    out = {
        "id": subscription.id,
        "url": subscription.url,
        "events": list(subscription.events),
        "active": subscription.active,
        "failure_count": subscription.failure_count,
        "created_at": isoformat(subscription.created_at),
        "disabled_at": isoformat(subscription.disabled_at),
        "last_delivery_at": isoformat(subscription.last_delivery_at),
    }
    if with_secret:
        out["secret"] = subscription.secret
    return out


def attempt_json(attempt: Attempt) -> dict:
    """A delivery attempt on the wire."""
    return {
        "id": attempt.id,
        "event_id": attempt.event_id,
        "event_type": attempt.event_type,
        "attempt": attempt.attempt,
        "at": isoformat(attempt.at),
        "status_code": attempt.status_code,
        "latency_ms": round(attempt.latency_ms, 3),
        "error": attempt.error,
        "delivered": attempt.delivered,
        "replay": attempt.replay,
    }


class Subscriptions:
    """``/subscriptions``, ``/subscriptions/{id}`` (item), ``.../deliveries``."""

    def __init__(self, store: SubscriptionStore, targets: Optional[Targets] = None):
        self._store = store
        self._targets = targets or Targets()

    @requires(ADMIN)
    @validate(
        body=SubscriptionIn(),
        response=SubscriptionCreated(),
        status=201,
        errors=(503,),
        response_headers={201: ("Location",)},
        callbacks=CALLBACKS,
        examples={
            "body": {
                "url": "https://example.com/hooks",
                "events": ["note.created", "note.deleted"],
            },
            201: {
                **SUBSCRIPTION,
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            },
        },
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Subscribe a URL to note events; the signing secret is shown only here."""
        body = req.context.body
        check_target(self._targets, body["url"])
        subscription = self._store.create(
            body["url"], body["events"], generate_secret()
        )
        resp.media = subscription_json(subscription, with_secret=True)
        resp.status = falcon.HTTP_201
        resp.location = f"/subscriptions/{subscription.id}"

    @requires(ADMIN)
    @validate(
        query=SubscriptionPageQuery(),
        response=SubscriptionPage,
        errors=(503,),
        examples={"limit": 20, 200: {"items": [SUBSCRIPTION], "next": None}},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List subscriptions, oldest first (no secrets)."""
        query = req.context.query
        items, cursor = self._store.page(query["limit"], after=query.get("cursor"))
        resp.media = page_body(
            [subscription_json(item) for item in items],
            None if cursor is None else next_link(req, cursor=cursor),
        )

    @requires(ADMIN)
    @validate(
        response=SubscriptionOut(),
        errors=(404, 503),
        examples={"subscription_id": 1, 200: SUBSCRIPTION},
    )
    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, subscription_id: int
    ) -> None:
        """One subscription (no secret)."""
        resp.media = subscription_json(self._store.get(subscription_id))

    @requires(ADMIN)
    @validate(
        body=SubscriptionPatch(),
        response=SubscriptionOut(),
        errors=(404, 503),
        examples={
            "subscription_id": 1,
            "body": {"events": ["note.*"], "active": True},
            200: {**SUBSCRIPTION, "events": ["note.*"]},
        },
    )
    def on_patch_item(
        self, req: falcon.Request, resp: falcon.Response, subscription_id: int
    ) -> None:
        """Change a subscription; ``{"active": true}`` re-enables a disabled one."""
        body = req.context.body
        if "url" in body:
            check_target(self._targets, body["url"])
        subscription = self._store.update(
            subscription_id,
            url=body.get("url"),
            events=body.get("events"),
            active=body.get("active"),
        )
        resp.media = subscription_json(subscription)

    @requires(ADMIN)
    @validate(status=204, errors=(404, 503), examples={"subscription_id": 1})
    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, subscription_id: int
    ) -> None:
        """Delete a subscription and its delivery history."""
        self._store.delete(subscription_id)
        resp.status = falcon.HTTP_204

    @requires(ADMIN)
    @validate(
        query=SubscriptionPageQuery(),
        response=SubscriptionAttemptPage,
        errors=(404, 503),
        examples={
            "subscription_id": 1,
            "limit": 20,
            200: {"items": [ATTEMPT], "next": None},
        },
    )
    def on_get_deliveries(
        self, req: falcon.Request, resp: falcon.Response, subscription_id: int
    ) -> None:
        """A subscription's delivery attempts, newest first: status, latency, error."""
        query = req.context.query
        items, cursor = self._store.attempts(
            subscription_id, query["limit"], before=query.get("cursor")
        )
        resp.media = page_body(
            [attempt_json(item) for item in items],
            None if cursor is None else next_link(req, cursor=cursor),
        )

    @requires(ADMIN)
    @validate(
        body=ReplayIn(),
        response=ReplayOut(),
        status=202,
        errors=(404, 503),
        examples={
            "subscription_id": 1,
            "body": _REPLAY_EXAMPLE_IN,
            202: _REPLAY_EXAMPLE_OUT,
        },
    )
    def on_post_replay(
        self, req: falcon.Request, resp: falcon.Response, subscription_id: int
    ) -> None:
        """Deliver again what was delivered in a time range (202 with the count).

        Each delivery (the attempts at one event) first made between ``since``
        and ``until`` (at most 30 days apart; ``only_failed``: those that
        never succeeded) is queued, in the order they were made; the push
        worker sends each again with the same event id (``webhook-id``), so
        receivers deduplicate, and the delivery log marks its attempts
        ``replay``. A subscription that is not active gets them once enabled.
        """
        body = req.context.body
        since = body["since"]
        until = body["until"] or utc_now()
        if since > until:
            raise marshmallow.ValidationError({"until": ["Must not be before since."]})
        if until - since > REPLAY_MAX_RANGE:
            raise marshmallow.ValidationError(
                {"until": ["The range may span at most 30 days."]}
            )
        result = self._store.queue_replay(
            subscription_id, since, until, body["only_failed"]
        )
        resp.status = falcon.HTTP_202
        resp.media = {
            "subscription_id": subscription_id,
            "since": isoformat(since),
            "until": isoformat(until),
            "only_failed": body["only_failed"],
            "queued": result.queued,
            "pending": result.pending,
            "next_since": isoformat(result.next_since),
        }
