"""Collatz chains: the longest in 1..n (from the workers) and one start's chain."""

import falcon
import marshmallow
from marshmallow import fields
from marshmallow import validate as check

from core import collatz as collatz_core
from gateways.collatz import CollatzClient
from web.auth import public
from web.fields import INT64_MAX
from web.openapi import ResponseSchema
from web.openapi import parameter
from web.validation import QuerySchema
from web.validation import validate

#: A chain of this many terms or more is returned without its sequence.
MAX_SEQUENCE = 1000


def _document_maxima(resource, operation: dict) -> None:
    """The largest n and k accepted is a setting (COLLATZ_MAX_N)."""
    for name in ("n", "k"):
        if any(p["name"] == name for p in operation.get("parameters", ())):
            schema = parameter(operation, name)["schema"]
            schema.update(minimum=1, maximum=resource.max_n)


class LongestQuery(QuerySchema):
    n = fields.Integer(
        required=True,
        validate=check.Range(1, INT64_MAX),
        metadata={"description": "the largest start considered (COLLATZ_MAX_N)"},
    )


class LongestOut(ResponseSchema):
    n = fields.Integer(metadata={"description": "the n asked for"})
    number = fields.Integer(metadata={"description": "the start of the longest chain"})
    length = fields.Integer(metadata={"description": "terms of its chain, both ends"})


class ChainQuery(QuerySchema):
    sequence = fields.Boolean(
        load_default=False,
        metadata={"description": f"include the terms (chains under {MAX_SEQUENCE})"},
    )


class ChainOut(ResponseSchema):
    start = fields.Integer()
    length = fields.Integer(metadata={"description": "terms, both ends included"})
    peak = fields.Integer(metadata={"description": "the largest term"})
    sequence = fields.List(
        fields.Integer(),
        metadata={
            "description": f"the terms: only with sequence=true, for chains "
            f"under {MAX_SEQUENCE}",
            "optional": True,
        },
    )


def check_bound(name: str, value: int, maximum: int) -> None:
    """422 unless ``1 <= value <= maximum`` (the maximum is a setting)."""
    try:
        check.Range(1, maximum)(value)
    except marshmallow.ValidationError as ex:
        raise marshmallow.ValidationError({name: ex.messages}) from None


class CollatzLongest:
    """``GET /collatz?n=``: the start in 1..n with the longest chain (the workers)."""

    def __init__(self, client: CollatzClient, max_n: int):
        self._client = client
        self.max_n = max_n

    @public
    @validate(
        query=LongestQuery(),
        response=LongestOut(),
        errors=(503,),
        examples={"n": 1000, 200: {"n": 1000, "number": 871, "length": 179}},
        document=_document_maxima,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The longest Collatz chain among the starts 1..n.

        Ties go to the smallest start. Computed by the collatz workers; 503
        when none answers within ``COLLATZ_TIMEOUT``.
        """
        n = req.context.query["n"]
        check_bound("n", n, self.max_n)
        number, length = self._client.longest(n)
        resp.media = {"n": n, "number": number, "length": length}


class CollatzChain:
    """``GET /collatz/{k}``: one start's chain, computed here (it is short)."""

    def __init__(self, max_n: int):
        self.max_n = max_n

    @public
    @validate(
        query=ChainQuery(),
        response=ChainOut(),
        examples={
            "k": 13,
            "sequence": True,
            200: {
                "start": 13,
                "length": 10,
                "peak": 40,
                "sequence": [13, 40, 20, 10, 5, 16, 8, 4, 2, 1],
            },
        },
        document=_document_maxima,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, k: int) -> None:
        """The Collatz chain from one start: its length and its peak."""
        check_bound("k", k, self.max_n)
        want_sequence = req.context.query["sequence"]
        chain = collatz_core.chain(k, keep_sequence=want_sequence)
        resp.media = {"start": k, "length": chain.length, "peak": chain.peak}
        if want_sequence and chain.length < MAX_SEQUENCE:
            resp.media["sequence"] = chain.sequence
