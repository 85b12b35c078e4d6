"""Pagination shared by the list endpoints: one envelope, ``limit``, ``next`` links.

Every list answers ``{"items": [...], "next": url | null}``; ``next`` is the
link to the following page, relative to the server, null on the last.
"""

from typing import Any
from typing import List
from typing import Optional
from urllib.parse import quote
from urllib.parse import urlencode

import falcon
import marshmallow
from marshmallow import fields
from marshmallow import validate

from web.openapi import ResponseSchema


def limit_field(default: int, maximum: int) -> fields.Integer:
    """A ``limit`` query parameter: 1..maximum, ``default`` when absent."""
    return fields.Integer(
        load_default=default,
        validate=validate.Range(1, maximum),
        metadata={"description": f"page size, 1..{maximum}"},
    )


def next_link(req: falcon.Request, **changes) -> Optional[str]:
    """This request's path and query with ``changes`` applied (None drops a key).

    Relative to the server, so it stays right behind proxies:
    ``next_link(req, offset=200)`` -> ``/employees?q=smith&offset=200``.
    """
    params = dict(req.params)
    params.update(changes)
    query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    # req.path is decoded ("/departments/STREETS & SAN"); a link must be
    # encoded again. RFC 3986 lets sub-delims, ':' and '@' stand in a path.
    path = quote(req.path, safe="/!$&'()*+,;=:@")
    return path + ("?" + query if query else "")


def page_body(items: List[Any], next_url: Optional[str]) -> dict:
    """The list envelope: ``{"items": items, "next": next_url}``."""
    return {"items": items, "next": next_url}


def page_schema(name: str, item: marshmallow.Schema) -> marshmallow.Schema:
    """The OpenAPI schema of a list envelope of ``item`` (named ``name``)."""
    return ResponseSchema.from_dict(
        {
            "items": fields.List(fields.Nested(item)),
            "next": fields.String(
                allow_none=True,
                metadata={"description": "the next page; null on the last"},
            ),
        },
        name=name,
    )()
