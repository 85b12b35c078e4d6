"""Pagination helpers shared by the list endpoints."""

from typing import Optional
from urllib.parse import quote
from urllib.parse import urlencode

import falcon
from marshmallow import fields
from marshmallow import validate


def limit_field(default: int, maximum: int) -> fields.Integer:
    """A ``limit`` query parameter: 1..maximum, ``default`` when absent."""
    return fields.Integer(load_default=default, validate=validate.Range(1, maximum),
                          metadata={"description": f"page size, 1..{maximum}"})


def next_link(req: falcon.Request, **changes) -> Optional[str]:
    """This request's path and query with ``changes`` applied (a value of None drops it).

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
