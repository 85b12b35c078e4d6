"""Outbound webhook subscriptions: ``/subscriptions`` and its items and attempts.

Deliveries themselves are made by the push worker with
:class:`workers.webhook_sender.WebhookSender`; this resource manages what it
delivers to and shows how it went.
"""

from urllib.parse import urlsplit

import falcon
import marshmallow
from marshmallow import Schema
from marshmallow import fields
from marshmallow import post_load
from marshmallow import validate as checks
from marshmallow import validates_schema

from api.paging import limit_field
from api.paging import next_link
from api.validation import QuerySchema
from api.validation import validate
from db.subscriptions import EVENT_TYPES
from db.subscriptions import WILDCARDS
from db.subscriptions import SubscriptionStore
from workers.signatures import generate_secret

_MAX_URL = 2048


def check_url(value: str) -> None:
    """An absolute http(s) URL with a host and no credentials, else ValidationError."""
    if len(value) > _MAX_URL or any(c.isspace() or not c.isprintable() for c in value):
        raise marshmallow.ValidationError(
            f"A URL of at most {_MAX_URL} printable characters, without spaces."
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise marshmallow.ValidationError("Only http and https URLs are accepted.")
    if not parts.hostname:
        raise marshmallow.ValidationError("The URL needs a host.")
    if "@" in parts.netloc:
        raise marshmallow.ValidationError("Credentials in the URL are not accepted.")
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError:
        raise marshmallow.ValidationError("The URL's port is not valid.") from None


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


class SubscriptionIn(Schema):
    url = fields.String(required=True, validate=check_url)
    events = _events_field(required=True)

    @post_load
    def dedupe(self, data, **kwargs):
        data["events"] = _unique(data["events"])
        return data


class SubscriptionPatch(Schema):
    url = fields.String(validate=check_url)
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


class SubscriptionOut(Schema):
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


class SubscriptionPage(Schema):
    items = fields.List(fields.Nested(SubscriptionOut))
    next = fields.String(allow_none=True)


class SubscriptionAttemptOut(Schema):
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


class SubscriptionAttemptPage(Schema):
    items = fields.List(fields.Nested(SubscriptionAttemptOut))
    next = fields.String(allow_none=True)


class SubscriptionPageQuery(QuerySchema):
    limit = limit_field(50, 200)
    cursor = fields.Integer(
        validate=checks.Range(min=1),
        metadata={"description": "from the previous page's next"},
    )


class Subscriptions:
    """``/subscriptions``, ``/subscriptions/{id}`` (item), ``.../deliveries``."""

    def __init__(self, store: SubscriptionStore):
        self._store = store

    @validate(body=SubscriptionIn(), response=SubscriptionCreated(), status=201)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Subscribe a URL to note events; the signing secret is shown only here."""
        body = req.context.body
        subscription = self._store.create(
            body["url"], body["events"], generate_secret()
        )
        resp.media = subscription.to_dict(with_secret=True)
        resp.status = falcon.HTTP_201
        resp.location = f"/subscriptions/{subscription.id}"

    @validate(query=SubscriptionPageQuery(), response=SubscriptionPage())
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List subscriptions, oldest first (no secrets)."""
        query = req.context.query
        items, cursor = self._store.page(query["limit"], after=query.get("cursor"))
        resp.media = {
            "items": [item.to_dict() for item in items],
            "next": None if cursor is None else next_link(req, cursor=cursor),
        }

    @validate(response=SubscriptionOut(), errors=(404,))
    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, subscription_id: int
    ) -> None:
        """One subscription (no secret)."""
        resp.media = self._store.get(subscription_id).to_dict()

    @validate(body=SubscriptionPatch(), response=SubscriptionOut(), errors=(404,))
    def on_patch_item(
        self, req: falcon.Request, resp: falcon.Response, subscription_id: int
    ) -> None:
        """Change a subscription; ``{"active": true}`` re-enables a disabled one."""
        body = req.context.body
        subscription = self._store.update(
            subscription_id,
            url=body.get("url"),
            events=body.get("events"),
            active=body.get("active"),
        )
        resp.media = subscription.to_dict()

    @validate(status=204, errors=(404,))
    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, subscription_id: int
    ) -> None:
        """Delete a subscription and its delivery history."""
        self._store.delete(subscription_id)
        resp.status = falcon.HTTP_204

    @validate(
        query=SubscriptionPageQuery(), response=SubscriptionAttemptPage(), errors=(404,)
    )
    def on_get_deliveries(
        self, req: falcon.Request, resp: falcon.Response, subscription_id: int
    ) -> None:
        """A subscription's delivery attempts, newest first: status, latency, error."""
        query = req.context.query
        items, cursor = self._store.attempts(
            subscription_id, query["limit"], before=query.get("cursor")
        )
        resp.media = {
            "items": [item.to_dict() for item in items],
            "next": None if cursor is None else next_link(req, cursor=cursor),
        }
