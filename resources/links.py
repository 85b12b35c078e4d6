"""Links, the shortener: ``/links`` manages short links, ``/{code}`` follows one."""

from typing import Optional

import falcon
import marshmallow
from marshmallow import fields
from marshmallow import validate as check

from core.clock import isoformat
from core.codes import alias_error
from core.targets import Targets
from core.text import clean_text
from core.urls import host_of
from db.links import LinkInfo
from db.links import LinkStore
from db.links import VisitInfo
from web.fields import INT32_MAX
from web.fields import INT64_MAX
from web.fields import IsoDateTime
from web.fields import SafeUrl
from web.fields import check_target
from web.fields import cursor_field
from web.fields import request_host
from web.paging import limit_field
from web.paging import next_link
from web.paging import page_body
from web.paging import page_schema
from web.validation import QuerySchema
from web.validation import validate

REDIRECT_STATUSES = (301, 302, 307, 308)


def _alias_is_free(alias: str) -> None:
    problem = alias_error(alias)
    if problem:
        raise marshmallow.ValidationError(problem)


class LinkIn(marshmallow.Schema):
    """Body of ``POST /links``."""

    url = SafeUrl(
        required=True,
        metadata={
            "description": "http(s) URL, at most 2048 characters; no scheme means https"
        },
    )
    alias = fields.String(
        load_default=None,
        allow_none=True,
        validate=_alias_is_free,
        metadata={
            "pattern": "^[A-Za-z0-9_-]{3,64}$",
            "description": "custom code: not 7 letters and digits, not a route",
        },
    )
    expires_at = IsoDateTime(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "ISO 8601, in the future; UTC when no offset is given"
        },
    )
    max_visits = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=check.Range(1, INT32_MAX),
    )
    reuse = fields.Boolean(
        load_default=False,
        metadata={
            "description": "answer 200 with an existing usable link that matches"
        },
    )


class LinkOut(marshmallow.Schema):
    """A short link."""

    code = fields.String()
    short_url = fields.String()
    url = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})
    expires_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    max_visits = fields.Integer(allow_none=True)
    visits = fields.Integer()


class VisitOut(marshmallow.Schema):
    """One followed redirect."""

    visited_at = fields.String(metadata={"format": "date-time"})
    referrer = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    visitor = fields.String(metadata={"description": "salted SHA-256 of the address"})


VisitPage = page_schema("VisitPage", VisitOut())

#: Examples of the OpenAPI document (link 1's code, as README shows).
CODE = "2F8rEhD"
LINK = {
    "code": CODE,
    "short_url": f"http://127.0.0.1:8000/{CODE}",
    "url": "https://example.com/spring?ref=mail",
    "created_at": "2025-01-31T12:00:00.123Z",
    "expires_at": None,
    "max_visits": None,
    "visits": 0,
}
VISIT = {
    "visited_at": "2025-01-31T12:03:17.410Z",
    "referrer": "https://news.example.org/",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) "
    "Gecko/20100101 Firefox/128.0",
    "visitor": "3b4f2e0c5a1d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
}


class VisitsQuery(QuerySchema):
    """Query of ``GET /links/{code}/visits``."""

    limit = limit_field(default=50, maximum=500)
    before = cursor_field(
        "cursor from the next link: visits older than this one", maximum=INT64_MAX
    )


def _invalid(field: str, message: str) -> marshmallow.ValidationError:
    """A field error for checks that need state; api.errors answers it as 422."""
    return marshmallow.ValidationError({field: [message]})


def visit_json(visit: VisitInfo) -> dict:
    """A visit on the wire."""
    return {
        "visited_at": isoformat(visit.visited_at),
        "referrer": visit.referrer,
        "user_agent": visit.user_agent,
        "visitor": visit.visitor,
    }


class Links:
    """``/links``: create, read and delete short links; read their visits.

    Args:
        store: The links store.
        public_base_url: Base of the short URLs (``PUBLIC_BASE_URL``).
        targets: Where links may point (:mod:`core.targets`); by default only
            at public hosts. Never at the host of ``public_base_url`` or the
            one the request named: a link to the shortener itself could
            redirect in a loop.
    """

    def __init__(
        self,
        store: LinkStore,
        public_base_url: str,
        targets: Optional[Targets] = None,
    ):
        self._store = store
        self._base = public_base_url.rstrip("/")
        self._own_host = host_of(public_base_url)
        self._targets = targets or Targets()

    def _body(self, link: LinkInfo) -> dict:
        return {
            "code": link.code,
            "short_url": f"{self._base}/{link.code}",
            "url": link.url,
            "created_at": isoformat(link.created_at),
            "expires_at": isoformat(link.expires_at),
            "max_visits": link.max_visits,
            "visits": link.visits,
        }

    @validate(
        body=LinkIn(),
        response=LinkOut(),
        status=201,
        errors=(409, 503),
        also={200: LinkOut()},
        response_headers={201: ("Location",)},
        examples={
            "body": {"url": "https://example.com/spring?ref=mail"},
            201: LINK,
            200: LINK,
        },
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Shorten a URL.

        201 with ``Location``; with ``"reuse": true``, 200 and an existing usable
        link with the same URL, alias, expiry and visit limit when there is one.
        """
        body = req.context.body
        own_hosts = {self._own_host, request_host(req)} - {None}
        check_target(self._targets, body["url"], own_hosts)
        if body["expires_at"] is not None and body["expires_at"] <= self._store.now():
            raise _invalid("expires_at", "Must be in the future.")
        link_fields = {k: body[k] for k in ("url", "alias", "expires_at", "max_visits")}
        if body["reuse"]:
            link = self._store.find_reusable(**link_fields)
            if link is not None:
                resp.media = self._body(link)
                return
        link = self._store.create(**link_fields)
        resp.status = falcon.HTTP_201
        resp.location = f"/links/{link.code}"
        resp.media = self._body(link)

    @validate(
        response=LinkOut(),
        errors=(404, 503),
        examples={"code": CODE, 200: {**LINK, "visits": 1}},
    )
    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """A short link with its visit count."""
        resp.media = self._body(self._store.get(code))

    @validate(status=204, errors=(404, 503), examples={"code": CODE})
    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """Delete a short link; its code is never handed out again."""
        self._store.delete(code)
        resp.status = falcon.HTTP_204

    @validate(
        query=VisitsQuery(),
        response=VisitPage,
        errors=(404, 503),
        examples={"code": CODE, "limit": 20, 200: {"items": [VISIT], "next": None}},
    )
    def on_get_visits(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """Visits of a short link, newest first (paginated)."""
        query = req.context.query
        visits, more = self._store.visits(code, query["limit"], query.get("before"))
        resp.media = page_body(
            [visit_json(visit) for visit in visits],
            next_link(req, before=visits[-1].id) if more else None,
        )


class Redirect:
    """``GET /{code}``: redirect to the link's URL and count the visit.

    Args:
        store: The links store.
        status: Redirect status (``REDIRECT_STATUS``): 301, 302, 307 or 308.
    """

    def __init__(self, store: LinkStore, status: int):
        if status not in REDIRECT_STATUSES:
            raise ValueError(f"REDIRECT_STATUS must be one of {REDIRECT_STATUSES}")
        self._store = store
        self._status = status

    @validate(
        status=302,
        errors=(404, 410, 503),
        also={status: None for status in REDIRECT_STATUSES if status != 302},
        examples={"code": CODE},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, code: str) -> None:
        """Follow a short link.

        Redirects (302 unless ``REDIRECT_STATUS`` says otherwise) and records the
        visit; 410 once the link has expired or reached ``max_visits``.
        """
        url = self._store.visit(
            code, clean_text(req.referer), clean_text(req.user_agent), req.remote_addr
        )
        resp.status = self._status
        # Not resp.location: it would percent-encode the '%' of the stored,
        # already encoded URL a second time.
        resp.set_header("Location", url)
