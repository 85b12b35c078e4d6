"""Links, the shortener: ``/links`` manages short links, ``/{code}`` follows one.

A link's ``ETag`` is the version of its settings (url, expiry, visit limit):
``PATCH`` and ``DELETE`` honour ``If-Match`` (412 when it has moved on), and
visits do not change it, so a counter that moves never fails a write.
"""

import datetime
from collections.abc import Collection
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

import falcon
import marshmallow
from marshmallow import fields
from marshmallow import validate as check

from core import linkstats
from core.clock import isoformat
from core.codes import alias_error
from core.qr import FORMATS
from core.qr import MEDIA_TYPES
from core.qr import qr_image
from core.targets import Targets
from core.text import clean_text
from core.urls import host_of
from db.errors import Conflict
from db.link_stats import LinkStats
from db.links import LinkInfo
from db.links import LinkStore
from db.links import VisitInfo
from web.auth import READ
from web.auth import WRITE
from web.auth import public
from web.auth import requires
from web.conditional import if_match_versions
from web.errors import Problem
from web.errors import status_title
from web.fields import INT32_MAX
from web.fields import INT64_MAX
from web.fields import IsoDateTime
from web.fields import SafeUrl
from web.fields import check_target
from web.fields import cursor_field
from web.fields import request_host
from web.openapi import ResponseSchema
from web.paging import limit_field
from web.paging import next_link
from web.paging import page_body
from web.paging import page_schema
from web.validation import QuerySchema
from web.validation import text_errors
from web.validation import validate

REDIRECT_STATUSES = (301, 302, 307, 308)
#: Most links one ``POST /links/bulk`` takes.
BULK_MAX = 1000
#: Longest ``q`` of ``GET /links``.
SEARCH_MAX = 200
#: Most buckets one ``GET /links/{code}/stats`` answers.
STATS_BUCKETS_MAX = 1000
#: Buckets of ``GET /links/{code}/stats`` without ``since``, per interval.
STATS_DEFAULT_BUCKETS = {"hour": 24, "day": 30, "week": 12, "month": 12}
#: Most referrer hosts and agent families in statistics.
STATS_TOP_MAX = 100
#: Largest ``scale`` (pixels per module) and ``border`` of a QR code.
QR_SCALE_MAX = 20
QR_BORDER_MAX = 10
#: How long clients and proxies may keep a QR code: a code names one link.
QR_CACHE_CONTROL = "public, max-age=86400"
_LINK_FIELDS = ("url", "alias", "expires_at", "max_visits")


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


class LinkPatch(marshmallow.Schema):
    """Body of ``PATCH /links/{code}``: the settings to change, at least one."""

    url = SafeUrl(
        metadata={
            "description": "the new target: http(s), at most 2048 characters; "
            "no scheme means https"
        },
    )
    expires_at = IsoDateTime(
        allow_none=True,
        metadata={"description": "ISO 8601, in the future; null: never expires"},
    )
    max_visits = fields.Integer(
        allow_none=True,
        strict=True,
        validate=check.Range(1, INT32_MAX),
        metadata={
            "description": "null: no limit; at or below the visits made, the "
            "link is used up (410) from then on"
        },
    )

    @marshmallow.validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise marshmallow.ValidationError(
                "Give at least one of url, expires_at, max_visits.",
                field_name="_schema",
            )


class BulkLinksIn(marshmallow.Schema):
    """Body of ``POST /links/bulk`` (for the document: items are checked one by one)."""

    links = fields.List(
        fields.Nested(LinkIn),
        required=True,
        validate=check.Length(1, BULK_MAX),
        metadata={"description": f"1 to {BULK_MAX} bodies of POST /links"},
    )


class LinkOut(ResponseSchema):
    """A short link."""

    code = fields.String()
    short_url = fields.String()
    url = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})
    expires_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    max_visits = fields.Integer(allow_none=True)
    visits = fields.Integer()


class VisitOut(ResponseSchema):
    """One followed redirect."""

    visited_at = fields.String(metadata={"format": "date-time"})
    referrer = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    visitor = fields.String(metadata={"description": "salted SHA-256 of the address"})


VisitPage = page_schema("VisitPage", VisitOut())
LinkPage = page_schema("LinkPage", LinkOut())


class BucketOut(ResponseSchema):
    """Visits in one bucket of an interval."""

    start = fields.String(metadata={"format": "date-time"})
    visits = fields.Integer()


class ReferrerOut(ResponseSchema):
    """Visits from one referrer host."""

    host = fields.String(
        allow_none=True, metadata={"description": "null: no Referer (direct)"}
    )
    visits = fields.Integer()


class AgentOut(ResponseSchema):
    """Visits from one user-agent family."""

    family = fields.String(
        allow_none=True,
        metadata={
            "description": "one of " + ", ".join(linkstats.FAMILIES) + "; null: "
            "no User-Agent"
        },
    )
    visits = fields.Integer()


class StatsOut(ResponseSchema):
    """A link's visits over a range: per bucket, by referrer host and agent family."""

    code = fields.String()
    interval = fields.String()
    since = fields.String(
        metadata={"format": "date-time", "description": "start of the first bucket"}
    )
    until = fields.String(
        metadata={
            "format": "date-time",
            "description": "end of the last bucket (exclusive)",
        }
    )
    total = fields.Integer(metadata={"description": "visits in the range"})
    visits = fields.List(
        fields.Nested(BucketOut),
        metadata={"description": "every bucket of the range, oldest first"},
    )
    referrers = fields.List(
        fields.Nested(ReferrerOut), metadata={"description": "most visits first"}
    )
    agents = fields.List(
        fields.Nested(AgentOut), metadata={"description": "most visits first"}
    )


#: Examples of the OpenAPI document (link 1's code, as the docs show).
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


class BulkItemOut(ResponseSchema):
    """The result of one item of ``POST /links/bulk``."""

    index = fields.Integer(metadata={"description": "position in the request"})
    status = fields.Integer(
        metadata={
            "description": "201 created, 200 reused (reuse: true), or the "
            "status of the item's problem (409 alias taken, 422 invalid)"
        }
    )
    link = fields.Nested(
        LinkOut, metadata={"description": "when 200 or 201", "optional": True}
    )
    problem = fields.Dict(
        metadata={
            "description": "RFC 9457 problem details, when 4xx",
            "optional": True,
        }
    )


class BulkOut(ResponseSchema):
    """The answer of ``POST /links/bulk``: one result per item, in order."""

    items = fields.List(fields.Nested(BulkItemOut))
    created = fields.Integer()
    reused = fields.Integer()
    failed = fields.Integer()


_BULK_EXAMPLE_IN = {
    "links": [
        {"url": "https://example.com/spring"},
        {"url": "https://example.com/sale", "alias": "spring-sale"},
        {"url": "javascript:alert(1)"},
    ]
}
_BULK_EXAMPLE_OUT = {
    "items": [
        {
            "index": 0,
            "status": 201,
            "link": {
                "code": "2F8rEhD",
                "short_url": "http://127.0.0.1:8000/2F8rEhD",
                "url": "https://example.com/spring",
                "created_at": "2025-01-31T12:00:00.123Z",
                "expires_at": None,
                "max_visits": None,
                "visits": 0,
            },
        },
        {
            "index": 1,
            "status": 409,
            "problem": {
                "type": "about:blank",
                "title": "Conflict",
                "status": 409,
                "detail": "The alias 'spring-sale' is taken.",
                "alias": "spring-sale",
            },
        },
        {
            "index": 2,
            "status": 422,
            "problem": {
                "type": "about:blank",
                "title": "Unprocessable Content",
                "status": 422,
                "detail": "This link did not pass validation; see errors.",
                "errors": {"url": ["Only http and https URLs are accepted."]},
            },
        },
    ],
    "created": 1,
    "reused": 0,
    "failed": 2,
}


STATS = {
    "code": CODE,
    "interval": "day",
    "since": "2025-01-29T00:00:00.000Z",
    "until": "2025-02-01T00:00:00.000Z",
    "total": 5,
    "visits": [
        {"start": "2025-01-29T00:00:00.000Z", "visits": 0},
        {"start": "2025-01-30T00:00:00.000Z", "visits": 2},
        {"start": "2025-01-31T00:00:00.000Z", "visits": 3},
    ],
    "referrers": [
        {"host": "news.example.org", "visits": 3},
        {"host": None, "visits": 2},
    ],
    "agents": [{"family": "Firefox", "visits": 4}, {"family": "bot", "visits": 1}],
}


class LinkListQuery(QuerySchema):
    """Query of ``GET /links``."""

    limit = limit_field(default=50, maximum=500)
    before = cursor_field(
        "cursor from the next link: links older than this one", maximum=INT64_MAX
    )
    q = fields.String(
        validate=check.Length(1, SEARCH_MAX),
        metadata={
            "description": "links whose URL (as stored: normalised) or alias "
            f"contains this text, in any case, or whose code it is; 1..{SEARCH_MAX} "
            "characters"
        },
    )
    expired = fields.Boolean(
        metadata={"description": "true: only expired links; false: only the others"}
    )
    spent = fields.Boolean(
        metadata={
            "description": "true: only links that reached their max_visits; "
            "false: only the others"
        }
    )


class StatsQuery(QuerySchema):
    """Query of ``GET /links/{code}/stats``."""

    interval = fields.String(
        load_default="day",
        validate=check.OneOf(linkstats.INTERVALS),
        metadata={
            "description": "bucket size, in UTC: hour, day, week (from Monday) or month"
        },
    )
    since = IsoDateTime(
        metadata={
            "description": "start of the range (rounded down to its bucket); "
            "default: "
            + ", ".join(
                f"{count} {interval}s"
                for interval, count in STATS_DEFAULT_BUCKETS.items()
            )
            + " back from until"
        }
    )
    until = IsoDateTime(
        metadata={"description": "end of the range (exclusive); default: now"}
    )
    top = fields.Integer(
        load_default=10,
        validate=check.Range(1, STATS_TOP_MAX),
        metadata={
            "description": "how many referrer hosts and agent families, "
            f"1..{STATS_TOP_MAX}"
        },
    )


class QrQuery(QuerySchema):
    """Query of ``GET /links/{code}/qr``."""

    format = fields.String(
        validate=check.OneOf(FORMATS),
        metadata={"description": "png or svg; default: what Accept prefers, else png"},
    )
    scale = fields.Integer(
        load_default=5,
        validate=check.Range(1, QR_SCALE_MAX),
        metadata={"description": f"pixels per module, 1..{QR_SCALE_MAX}"},
    )
    border = fields.Integer(
        load_default=4,
        validate=check.Range(0, QR_BORDER_MAX),
        metadata={
            "description": f"quiet zone in modules, 0..{QR_BORDER_MAX} (scanners "
            "want 4)"
        },
    )


class VisitsQuery(QuerySchema):
    """Query of ``GET /links/{code}/visits``."""

    limit = limit_field(default=50, maximum=500)
    before = cursor_field(
        "cursor from the next link: visits older than this one", maximum=INT64_MAX
    )


def _invalid(field: str, message: str) -> marshmallow.ValidationError:
    """A field error for checks that need state; web.errors answers it as 422."""
    return marshmallow.ValidationError({field: [message]})


def _item_problem(status: int, detail: str, **extra) -> dict:
    """The problem details of one item of a bulk request."""
    problem = {
        "type": "about:blank",
        "title": status_title(status),
        "status": status,
        "detail": detail,
    }
    problem.update(extra)
    return problem


def _bulk_items(media: Any) -> List[Any]:
    """The ``links`` of a bulk body; a 422 when the body is not 1..BULK_MAX of them."""
    if not isinstance(media, dict):
        raise marshmallow.ValidationError(
            {"_schema": ['The body is an object: {"links": [...]}.']}
        )
    unknown = sorted(key for key in media if key != "links")
    if unknown or "links" not in media:
        errors = {key: ["Unknown field."] for key in unknown}
        if "links" not in media:
            errors["links"] = ["Missing data for required field."]
        raise marshmallow.ValidationError(errors)
    links = media["links"]
    if not isinstance(links, list):
        raise marshmallow.ValidationError({"links": ["Not a valid list."]})
    if not links:
        raise marshmallow.ValidationError({"links": ["Give at least one link."]})
    if len(links) > BULK_MAX:
        raise Problem(
            422,
            f"At most {BULK_MAX:,} links per request; this one has {len(links):,}. "
            "Send them in several requests.",
            errors={"links": [f"Longer than maximum length {BULK_MAX}."]},
        )
    return links


_NO_SUCH_LINK = "No link has this code."


def _stats_json(code: str, stats: LinkStats) -> dict:
    """Statistics on the wire."""
    return {
        "code": code,
        "interval": stats.interval,
        "since": isoformat(stats.since),
        "until": isoformat(stats.until),
        "total": stats.total,
        "visits": [
            {"start": isoformat(start), "visits": visits}
            for start, visits in stats.series
        ],
        "referrers": [
            {"host": host, "visits": visits} for host, visits in stats.referrers
        ],
        "agents": [
            {"family": family, "visits": visits} for family, visits in stats.agents
        ],
    }


def _preferred_format(req: falcon.Request) -> str:
    """The QR format Accept prefers; png when it names neither."""
    preferred = req.client_prefers([MEDIA_TYPES["png"], MEDIA_TYPES["svg"]])
    return "svg" if preferred == MEDIA_TYPES["svg"] else "png"


def _document_qr(resource: "Links", operation: dict) -> None:
    """The SVG answer beside the PNG one, with a real image as its example."""
    svg = qr_image(f"{resource.base_url}/{CODE}", "svg", 5, 4).decode()
    operation["responses"]["200"]["content"][MEDIA_TYPES["svg"]] = {
        "schema": {"type": "string"},
        "example": svg,
    }


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
        self.base_url = public_base_url.rstrip("/")
        self._own_host = host_of(public_base_url)
        self._targets = targets or Targets()

    def _body(self, link: LinkInfo) -> dict:
        return {
            "code": link.code,
            "short_url": f"{self.base_url}/{link.code}",
            "url": link.url,
            "created_at": isoformat(link.created_at),
            "expires_at": isoformat(link.expires_at),
            "max_visits": link.max_visits,
            "visits": link.visits,
        }

    @requires(WRITE)
    @validate(
        body=LinkIn(),
        response=LinkOut(),
        status=201,
        errors=(409, 503),
        also={200: LinkOut()},
        response_headers={201: ("Location", "ETag"), 200: ("ETag",)},
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
        self._check(body, self._own_hosts(req), self._store.now())
        link_fields = {k: body[k] for k in _LINK_FIELDS}
        if body["reuse"]:
            link = self._store.find_reusable(**link_fields)
            if link is not None:
                resp.etag = link.etag
                resp.media = self._body(link)
                return
        link = self._store.create(**link_fields)
        resp.status = falcon.HTTP_201
        resp.location = f"/links/{link.code}"
        resp.etag = link.etag
        resp.media = self._body(link)

    def _own_hosts(self, req: falcon.Request) -> Collection[str]:
        return {self._own_host, request_host(req)} - {None}

    def _check(
        self, body: dict, own_hosts: Collection[str], now: datetime.datetime
    ) -> None:
        """The checks a loaded link body (or PATCH) needs beyond its schema (422)."""
        if "url" in body:
            check_target(self._targets, body["url"], own_hosts)
        if body.get("expires_at") is not None and body["expires_at"] <= now:
            raise _invalid("expires_at", "Must be in the future.")

    @requires(WRITE)
    @validate(
        response=BulkOut(),
        status=207,
        errors=(400, 413, 415, 422, 503),
        request_body={
            "required": True,
            "content": {
                "application/json": {
                    "schema": BulkLinksIn,
                    "example": _BULK_EXAMPLE_IN,
                }
            },
        },
        examples={207: _BULK_EXAMPLE_OUT},
    )
    def on_post_bulk(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Shorten up to 1,000 URLs in one request.

        207 with one result per link, in the order sent: the link (201, or 200
        for ``"reuse": true`` with a match) or the problem of that link (422
        invalid, 409 alias taken). The valid links are stored, in one
        transaction, even when others fail. Over 1,000 links: 422.
        """
        items = _bulk_items(req.get_media())
        own_hosts = self._own_hosts(req)
        now = self._store.now()
        schema = LinkIn()
        results: List[Optional[Dict[str, Any]]] = [None] * len(items)
        to_create = []
        for index, raw in enumerate(items):
            try:
                body = self._load_item(schema, raw, own_hosts, now)
            except marshmallow.ValidationError as ex:
                results[index] = self._failed(
                    index,
                    _item_problem(
                        422,
                        "This link did not pass validation; see errors.",
                        errors=ex.normalized_messages(),
                    ),
                )
                continue
            link_fields = {k: body[k] for k in _LINK_FIELDS}
            if body["reuse"]:
                link = self._store.find_reusable(**link_fields)
                if link is not None:
                    results[index] = {
                        "index": index,
                        "status": 200,
                        "link": self._body(link),
                    }
                    continue
            to_create.append((index, link_fields))
        outcomes = self._store.create_many([fields for _, fields in to_create])
        for (index, _), outcome in zip(to_create, outcomes):
            if isinstance(outcome, Conflict):
                problem = _item_problem(409, outcome.detail, **outcome.extra)
                results[index] = self._failed(index, problem)
            else:
                results[index] = {
                    "index": index,
                    "status": 201,
                    "link": self._body(outcome),
                }
        resp.status = falcon.HTTP_207
        resp.media = {
            "items": results,
            "created": sum(1 for item in results if item["status"] == 201),
            "reused": sum(1 for item in results if item["status"] == 200),
            "failed": sum(1 for item in results if item["status"] >= 400),
        }

    def _load_item(
        self,
        schema: marshmallow.Schema,
        raw: Any,
        own_hosts: Collection[str],
        now: datetime.datetime,
    ) -> dict:
        """One bulk item loaded and checked as ``POST /links`` would; else 422."""
        if not isinstance(raw, dict):
            raise marshmallow.ValidationError(
                {"_schema": ["Each link is a JSON object, as POST /links takes."]}
            )
        errors = text_errors(raw)
        if errors:
            raise marshmallow.ValidationError(errors)
        body = schema.load(raw)
        self._check(body, own_hosts, now)
        return body

    @staticmethod
    def _failed(index: int, problem: dict) -> dict:
        return {"index": index, "status": problem["status"], "problem": problem}

    @requires(READ)
    @validate(
        query=LinkListQuery(),
        response=LinkPage,
        errors=(503,),
        examples={
            "limit": 20,
            "q": "example.com",
            200: {"items": [LINK], "next": None},
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List short links, newest first: search, filters, cursor paging.

        `q` finds links whose URL or alias contains it (any case) or whose
        code it is; `expired` and `spent` (reached `max_visits`) keep the
        links that are (true) or are not (false). Follow `next` until it is
        null: links created meanwhile never shift a page. Deleted links are
        never listed.
        """
        query = req.context.query
        links, cursor = self._store.list_page(
            query["limit"],
            before=query.get("before"),
            search=query.get("q"),
            expired=query.get("expired"),
            spent=query.get("spent"),
        )
        resp.media = page_body(
            [self._body(link) for link in links],
            None if cursor is None else next_link(req, before=cursor),
        )

    @requires(READ)
    @validate(
        response=LinkOut(),
        errors=(404, 503),
        response_headers={200: ("ETag",)},
        examples={"code": CODE, 200: {**LINK, "visits": 1}},
    )
    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """A short link with its visit count.

        Its ETag is the version of its settings, for If-Match.
        """
        link = self._store.get(code)
        resp.etag = link.etag
        resp.media = self._body(link)

    @requires(WRITE)
    @validate(
        body=LinkPatch(),
        response=LinkOut(),
        errors=(404, 412, 503),
        headers=("If-Match",),
        response_headers={200: ("ETag",)},
        examples={
            "code": CODE,
            "body": {"url": "https://example.com/summer", "max_visits": 1000},
            200: {
                **LINK,
                "url": "https://example.com/summer",
                "max_visits": 1000,
                "visits": 1,
            },
        },
    )
    def on_patch_item(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """Change a link's target, expiry or visit limit.

        Send the fields to change: `url`, `expires_at` (null: never) and
        `max_visits` (null: no limit). If-Match with the ETag you read: 412
        if the link changed since. The code, alias and visits stay.
        """
        body = req.context.body
        self._check(body, self._own_hosts(req), self._store.now())
        link = self._store.update(code, body, if_versions=if_match_versions(req))
        resp.etag = link.etag
        resp.media = self._body(link)

    @requires(WRITE)
    @validate(
        status=204,
        errors=(404, 412, 503),
        headers=("If-Match",),
        examples={"code": CODE},
    )
    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """Delete a short link; its code is never handed out again.

        If-Match with the ETag you read: 412 if the link changed since.
        """
        self._store.delete(code, if_versions=if_match_versions(req))
        resp.status = falcon.HTTP_204

    @requires(READ)
    @validate(
        query=StatsQuery(),
        response=StatsOut(),
        errors=(404, 503),
        examples={"code": CODE, "interval": "day", 200: STATS},
    )
    def on_get_stats(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """Visits over time, top referrer hosts and user-agent families.

        Counted per UTC hour as visits are written (never by reading every
        visit), and answered per `interval` bucket over `since`..`until`
        (at most 1,000 buckets), empty buckets included.
        """
        query = req.context.query
        interval = query["interval"]
        starts = self._buckets(interval, query.get("since"), query.get("until"))
        stats = self._store.stats(code, interval, starts, query["top"])
        resp.media = _stats_json(code, stats)

    def _buckets(
        self,
        interval: str,
        since: Optional[datetime.datetime],
        until: Optional[datetime.datetime],
    ) -> List[datetime.datetime]:
        """The bucket starts of a stats request; 422 for a range it cannot take."""
        until = until or self._store.now()
        try:
            if since is None:
                last = linkstats.floor(
                    until - datetime.timedelta(microseconds=1), interval
                )
                since = linkstats.back(
                    last, interval, STATS_DEFAULT_BUCKETS[interval] - 1
                )
            if since >= until:
                raise _invalid("since", "Must be before until.")
            starts = linkstats.buckets(since, until, interval, STATS_BUCKETS_MAX)
        except (OverflowError, ValueError):
            raise _invalid(
                "since", "Out of range: the range must fall between years 1 and 9999."
            ) from None
        if starts is None:
            raise _invalid(
                "since",
                f"At most {STATS_BUCKETS_MAX:,} {interval}s per request: narrow "
                "since..until or take a longer interval.",
            )
        return starts

    @public
    @validate(
        query=QrQuery(),
        response={"type": "string", "format": "binary"},
        media_type=MEDIA_TYPES["png"],
        errors=(404, 503),
        response_headers={200: ("Cache-Control",)},
        examples={"code": CODE, "format": "png", "scale": 5, 200: "(PNG image)"},
        document=_document_qr,
    )
    def on_get_qr(self, req: falcon.Request, resp: falcon.Response, code: str) -> None:
        """A QR code of the short URL, as PNG or SVG.

        `format` png or svg; without it, what Accept prefers (PNG for
        `*/*`). Public, as the short URL it holds is; cacheable for a day.
        """
        query = req.context.query
        if not self._store.exists(code):
            raise Problem(404, _NO_SUCH_LINK)
        kind = query.get("format") or _preferred_format(req)
        resp.content_type = MEDIA_TYPES[kind]
        resp.data = qr_image(
            f"{self.base_url}/{code}", kind, query["scale"], query["border"]
        )
        resp.cache_control = [QR_CACHE_CONTROL]
        resp.vary = ["Accept"]
        resp.set_header("Content-Disposition", f'inline; filename="{code}.{kind}"')

    @requires(READ)
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

    @public
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
