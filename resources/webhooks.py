"""Inbound webhooks: ``POST/GET /webhooks/{source}``, ``GET /webhooks/deliveries``."""

import hashlib
import hmac
import logging
import time
from typing import Callable
from typing import Dict
from typing import Tuple
from urllib.parse import parse_qs

import falcon
from marshmallow import fields
from marshmallow import validate as checks

from core import signatures
from core import wire
from core.clock import isoformat
from core.text import text_error
from core.webhook_sources import Source
from db.webhooks import STATUSES
from db.webhooks import Delivery
from db.webhooks import WebhookStore
from web.auth import ADMIN
from web.auth import public
from web.auth import requires
from web.errors import Problem
from web.fields import cursor_field
from web.openapi import ResponseSchema
from web.paging import limit_field
from web.paging import next_link
from web.paging import page_body
from web.paging import page_schema
from web.validation import QuerySchema
from web.validation import validate
from workers.webhooks.handlers import Registry

log = logging.getLogger(__name__)

_MAX_ID = 200  # longest delivery id and event name stored


class InboundDeliveryOut(ResponseSchema):
    id = fields.String(metadata={"description": "the sender's delivery id"})
    source = fields.String()
    event = fields.String()
    received_at = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES)})
    attempts = fields.Integer(metadata={"description": "times a handler ran"})
    handled_at = fields.String(allow_none=True)
    outcome = fields.Raw(
        allow_none=True,
        metadata={"description": "what the handler returned, or why it failed"},
    )


InboundDeliveryPage = page_schema("InboundDeliveryPage", InboundDeliveryOut())

#: Examples of the OpenAPI document: GitHub's ping, as received and handled.
PING = {"zen": "Keep it simple.", "hook_id": 1}
DELIVERY = {
    "id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "source": "github",
    "event": "ping",
    "received_at": "2025-01-31T12:00:00.123Z",
    "status": "pending",
    "attempts": 0,
    "handled_at": None,
    "outcome": None,
}
HANDLED = {
    **DELIVERY,
    "status": "processed",
    "attempts": 1,
    "handled_at": "2025-01-31T12:00:00.412Z",
    "outcome": {"pong": True},
}
#: The body of a delivery: any JSON document, signed as sent (raw bytes).
SIGNED_BODY = {
    "required": True,
    "description": "The sender's payload, signed over its exact bytes: "
    "X-Hub-Signature-256 (github scheme) or webhook-id, webhook-timestamp and "
    "webhook-signature (standard scheme).",
    "content": {
        "application/json": {
            "schema": {"type": "object", "additionalProperties": True},
            "example": PING,
        },
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    "payload": {"type": "string", "description": "the JSON document"}
                },
                "required": ["payload"],
            },
            "example": {"payload": '{"zen":"Keep it simple.","hook_id":1}'},
        },
    },
}
_SIGNATURE_HEADERS = (
    "X-Hub-Signature-256",
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)


class DeliveriesQuery(QuerySchema):
    limit = limit_field(50, 200)
    cursor = cursor_field("from the previous page's next")
    source = fields.String()
    status = fields.String(validate=checks.OneOf(STATUSES))


class VerifyQuery(QuerySchema):
    mode = fields.String(data_key="hub.mode", metadata={"description": "subscribe"})
    verify_token = fields.String(data_key="hub.verify_token")
    challenge = fields.String(data_key="hub.challenge")


def delivery_json(delivery: Delivery) -> dict:
    """An inbound delivery on the wire (without its payload)."""
    return {
        "id": delivery.delivery_id,
        "source": delivery.source,
        "event": delivery.event,
        "received_at": isoformat(delivery.received_at),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "handled_at": isoformat(delivery.handled_at),
        "outcome": delivery.outcome,
    }


class WebhookReceiver:
    """``/webhooks/{source}``: signed deliveries in, hub verification.

    The body is read raw (signatures are over the exact bytes), so this
    resource opts out of the JSON-only middleware; the body size limit
    still applies.
    """

    accepts_any_media = True

    def __init__(
        self,
        sources: Dict[str, Source],
        store: WebhookStore,
        registry: Registry,
        now: Callable[[], float] = time.time,
        replay_window: float = 0.0,
    ):
        self._sources = sources
        self._store = store
        self._registry = registry
        self._now = now
        self._replay_window = replay_window

    @public
    @validate(
        response=InboundDeliveryOut(),
        status=202,
        errors=(400, 401, 404, 409, 413, 415, 503),
        also={200: InboundDeliveryOut()},
        request_body=SIGNED_BODY,
        headers=_SIGNATURE_HEADERS,
        examples={"source": "github", 202: DELIVERY, 200: HANDLED},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, source: str) -> None:
        """Receive a signed webhook delivery.

        The signature is checked on the raw body before anything else (401 if
        missing or wrong). The delivery is stored, then handled by the webhook
        runner: 202. Events without a handler are stored as ignored (202). The
        same delivery id again: 200 with the stored delivery and its outcome.
        GitHub signs no timestamp: the same body under a new delivery id within
        ``WEBHOOK_REPLAY_WINDOW`` seconds is a replay, 409.
        """
        config = self._source(source)
        body = req.bounded_stream.read()
        try:
            if config.scheme == "github":
                signatures.github_verify(
                    config.secret, body, req.get_header(signatures.GITHUB_HEADER)
                )
            else:
                signatures.standard_verify(
                    config.secret, body, _standard_headers(req), self._now()
                )
        except signatures.SignatureError as ex:
            log.info("webhook from %s refused: %s", source, ex)
            raise Problem(401, str(ex)) from None
        payload = _parse_payload(req, body)
        delivery_id, event = _identify(config, req, payload)
        delivery, created = self._store.receive(
            config.name,
            delivery_id,
            event,
            payload,
            handled=event in self._registry,
            # Standard Webhooks sign the id and a timestamp: only GitHub's
            # bodies can be replayed under a new id.
            body_sha256=hashlib.sha256(body).hexdigest()
            if config.scheme == "github"
            else None,
            replay_window=self._replay_window,
        )
        resp.media = delivery_json(delivery)
        resp.status = falcon.HTTP_202 if created else falcon.HTTP_200

    @public
    @validate(
        query=VerifyQuery(),
        response={"type": "string", "description": "hub.challenge, echoed"},
        media_type="text/plain",
        errors=(403, 404),
        examples={
            "source": "github",
            "hub.mode": "subscribe",
            "hub.verify_token": "tok",
            "hub.challenge": "1174862731",
            200: "1174862731",
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, source: str) -> None:
        """Answer a hub verification: echo hub.challenge if hub.verify_token matches.

        For senders that check an endpoint before using it (Facebook-style):
        ``?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C`` answers C as
        text/plain when T is the source's verify_token, 403 otherwise.
        """
        config = self._source(source)
        query = req.context.query
        token = query.get("verify_token", "")
        expected = config.verify_token
        if (
            query.get("mode") != "subscribe"
            or expected is None
            or not hmac.compare_digest(expected.encode(), token.encode())
        ):
            raise Problem(403, "The verify token does not match.")
        if not query.get("challenge"):
            raise Problem(403, "hub.challenge is missing.")
        resp.content_type = falcon.MEDIA_TEXT
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.text = query["challenge"]

    def _source(self, name: str) -> Source:
        try:
            return self._sources[name]
        except KeyError:
            raise Problem(404, f"No webhook source named {name!r}.") from None


class WebhookDeliveries:
    """``GET /webhooks/deliveries``: the deliveries received, newest first."""

    def __init__(self, store: WebhookStore):
        self._store = store

    @requires(ADMIN)
    @validate(
        query=DeliveriesQuery(),
        response=InboundDeliveryPage,
        errors=(503,),
        examples={"limit": 10, 200: {"items": [HANDLED], "next": None}},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List received webhook deliveries, newest first (filter by source, status)."""
        query = req.context.query
        items, cursor = self._store.page(
            query["limit"],
            before=query.get("cursor"),
            source=query.get("source"),
            status=query.get("status"),
        )
        resp.media = page_body(
            [delivery_json(item) for item in items],
            None if cursor is None else next_link(req, cursor=cursor),
        )


def _standard_headers(req: falcon.Request) -> dict:
    return {
        name: req.get_header(name)
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }


def _parse_payload(req: falcon.Request, body: bytes):
    """The JSON document in the body: sent as JSON, or GitHub's form ``payload=``."""
    media_type = (
        (req.content_type or "application/json").split(";", 1)[0].strip().lower()
    )
    if media_type == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8", "replace"))
        if "payload" not in form:
            raise Problem(400, "The form has no payload field.")
        text = form["payload"][-1]
    elif media_type == "application/json" or media_type.endswith("+json"):
        text = body
    else:
        raise Problem(415, "Send the payload as application/json.")
    try:
        return wire.loads(text)
    except ValueError as ex:
        raise Problem(400, f"The payload is not valid JSON: {ex}") from None


def _identify(config: Source, req: falcon.Request, payload) -> Tuple[str, str]:
    """The delivery id and event name, from the scheme's headers or payload."""
    if config.scheme == "github":
        delivery_id = req.get_header("X-GitHub-Delivery")
        event = req.get_header("X-GitHub-Event")
        where = "the X-GitHub-Delivery and X-GitHub-Event headers"
    else:
        delivery_id = req.get_header("webhook-id")
        event = payload.get("type") if isinstance(payload, dict) else None
        where = "a webhook-id header and a payload with a string 'type'"
    if not (
        isinstance(delivery_id, str)
        and isinstance(event, str)
        and 0 < len(delivery_id) <= _MAX_ID
        and 0 < len(event) <= _MAX_ID
        and text_error(delivery_id) is None
        and text_error(event) is None
    ):
        raise Problem(400, f"A delivery needs {where} (1-{_MAX_ID} characters each).")
    return delivery_id, event
