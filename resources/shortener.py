"""The URL shortener: ``/links`` to manage short links, ``/{code}`` to follow one."""

import datetime

import falcon
import marshmallow
from marshmallow import fields
from marshmallow import validate as check

from api.paging import limit_field
from api.paging import next_link
from api.safe_url import SafeUrl
from api.safe_url import host_of
from api.validation import QuerySchema
from api.validation import validate
from db.links import LinkInfo
from db.links import LinkStore
from resources.shortener_codes import alias_error

REDIRECT_STATUSES = (301, 302, 307, 308)


def _alias_is_free(alias: str) -> None:
    problem = alias_error(alias)
    if problem:
        raise marshmallow.ValidationError(problem)


class IsoDateTime(fields.AwareDateTime):
    """ISO 8601 date-time, ``Z`` suffix included; UTC when no offset is given.

    Python 3.9's ``datetime.fromisoformat`` (PyPy) does not read ``Z``, and the
    backport marshmallow would patch it with does not build under PyPy.
    """

    def __init__(self, **kwargs):
        super().__init__(default_timezone=datetime.timezone.utc, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime.datetime:
        if isinstance(value, str) and value[-1:] in ("Z", "z"):
            value = value[:-1] + "+00:00"
        return super()._deserialize(value, attr, data, **kwargs)


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
        load_default=None, allow_none=True, strict=True, validate=check.Range(min=1)
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
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    max_visits = fields.Integer(allow_none=True)
    visits = fields.Integer()


class VisitOut(marshmallow.Schema):
    """One followed redirect."""

    visited_at = fields.DateTime()
    referrer = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    visitor = fields.String(metadata={"description": "salted SHA-256 of the address"})


class VisitPage(marshmallow.Schema):
    """A page of visits, newest first."""

    items = fields.List(fields.Nested(VisitOut))
    next = fields.String(
        allow_none=True, metadata={"description": "next page; null on the last"}
    )


class VisitsQuery(QuerySchema):
    """Query of ``GET /links/{code}/visits``."""

    limit = limit_field(default=50, maximum=500)
    before = fields.Integer(
        load_default=None,
        validate=check.Range(min=1),
        metadata={
            "description": "cursor from the next link: visits older than this one"
        },
    )


def _invalid(field: str, message: str) -> marshmallow.ValidationError:
    """A field error for checks that need state; api.errors answers it as 422."""
    return marshmallow.ValidationError({field: [message]})


def _iso(moment):
    return None if moment is None else moment.isoformat()


class Links:
    """``/links``: create, read and delete short links; read their visits.

    Args:
        store: The links store.
        public_base_url: Base of the short URLs (``PUBLIC_BASE_URL``); links to
            its host are refused, since they would redirect to the shortener.
    """

    def __init__(self, store: LinkStore, public_base_url: str):
        self._store = store
        self._base = public_base_url.rstrip("/")
        self._own_host = host_of(public_base_url)

    def _body(self, link: LinkInfo) -> dict:
        return {
            "code": link.code,
            "short_url": f"{self._base}/{link.code}",
            "url": link.url,
            "created_at": _iso(link.created_at),
            "expires_at": _iso(link.expires_at),
            "max_visits": link.max_visits,
            "visits": link.visits,
        }

    @validate(body=LinkIn(), response=LinkOut(), status=201, errors=(409,))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Shorten a URL.

        201 with ``Location``; with ``"reuse": true``, 200 and an existing usable
        link with the same URL, alias, expiry and visit limit when there is one.
        """
        body = req.context.body
        if host_of(body["url"]) == self._own_host:
            raise _invalid("url", "Links to this shortener are not accepted.")
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

    @validate(response=LinkOut(), errors=(404,))
    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """A short link with its visit count."""
        resp.media = self._body(self._store.get(code))

    @validate(status=204, errors=(404,))
    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """Delete a short link; its code is never handed out again."""
        self._store.delete(code)
        resp.status = falcon.HTTP_204

    @validate(query=VisitsQuery(), response=VisitPage(), errors=(404,))
    def on_get_visits(
        self, req: falcon.Request, resp: falcon.Response, code: str
    ) -> None:
        """Visits of a short link, newest first (paginated)."""
        query = req.context.query
        visits, more = self._store.visits(code, query["limit"], query["before"])
        resp.media = {
            "items": [
                {
                    "visited_at": _iso(visit.visited_at),
                    "referrer": visit.referrer,
                    "user_agent": visit.user_agent,
                    "visitor": visit.visitor,
                }
                for visit in visits
            ],
            "next": next_link(req, before=visits[-1].id) if more else None,
        }


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

    @validate(status=302, errors=(404, 410))
    def on_get(self, req: falcon.Request, resp: falcon.Response, code: str) -> None:
        """Follow a short link.

        Redirects (302 unless ``REDIRECT_STATUS`` says otherwise) and records the
        visit; 410 once the link has expired or reached ``max_visits``.
        """
        url = self._store.visit(code, req.referer, req.user_agent, req.remote_addr)
        resp.status = self._status
        # Not resp.location: it would percent-encode the '%' of the stored,
        # already encoded URL a second time.
        resp.set_header("Location", url)
