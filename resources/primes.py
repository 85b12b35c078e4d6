"""Primes: store batches of primes all or nothing; list them; ask about one number.

``POST /primes`` (and the seed's ``POST /supply_primes``) checks the whole
batch before touching the database: types and range (422 with errors per
index), then primality (422 naming every number that is not prime), then the
store checks for duplicates (409 naming every one) and inserts in one
transaction.
"""

from collections.abc import Sequence
from typing import List

import falcon
import marshmallow
from marshmallow import fields
from marshmallow import validate as check

from core.primality import UPPER_BOUND
from core.primality import is_prime
from db.primes import PrimeStore
from web.auth import WRITE
from web.auth import public
from web.auth import requires
from web.errors import Problem
from web.openapi import ResponseSchema
from web.openapi import parameter
from web.paging import limit_field
from web.paging import next_link
from web.paging import page_body
from web.validation import QuerySchema
from web.validation import validate

MAX_BATCH = 10_000
SEED_ANSWER = {"response": "prime numbers insert API"}
#: 2**64 - 59, the largest prime below 2**64 (an example of the document).
LARGEST_64_BIT_PRIME = 18446744073709551557


def _document_n(resource, operation: dict) -> None:
    parameter(operation, "n")["schema"].update(minimum=1, maximum=UPPER_BOUND - 1)


class LengthFirstList(fields.List):
    """A list field that checks its length before its items.

    A list far over the limit gets one error, not one per item.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise self.make_error("invalid")
        self._validate(value)
        return super()._deserialize(value, attr, data, **kwargs)


class PrimesIn(marshmallow.Schema):
    """A batch of numbers to store: JSON integers (not 13.0, "13" or true)."""

    primes = LengthFirstList(
        # Strict: only JSON integers. marshmallow refuses booleans in any
        # number field, so true is not taken for 1.
        fields.Integer(
            strict=True,
            validate=check.Range(2, UPPER_BOUND - 1),
        ),
        required=True,
        validate=check.Length(1, MAX_BATCH),
        metadata={"description": f"1..{MAX_BATCH} primes, each 2 <= n < 2**64"},
    )


class PrimesStored(ResponseSchema):
    """The numbers a batch stored, in the order sent."""

    stored = fields.List(fields.Integer())
    count = fields.Integer()


class PrimesPage(ResponseSchema):
    """One page of stored primes, ascending."""

    items = fields.List(fields.Integer())
    next = fields.String(
        allow_none=True, metadata={"description": "the next page; null on the last"}
    )


class PrimesQuery(QuerySchema):
    """Paging of ``GET /primes``: ``limit`` and the ``after`` cursor."""

    limit = limit_field(default=100, maximum=1000)
    after = fields.Integer(
        validate=check.Range(0, UPPER_BOUND - 1),
        metadata={"description": "list the primes above this number"},
    )


class NumberOut(ResponseSchema):
    """What is known about one number."""

    number = fields.Integer()
    prime = fields.Boolean()
    stored = fields.Boolean()


class SeedAnswer(ResponseSchema):
    """The seed's fixed answer."""

    response = fields.String()


def check_primes(numbers: Sequence[int]) -> None:
    """Raise a 422 problem naming every number of ``numbers`` that is not prime."""
    not_prime = [
        {"index": index, "number": number}
        for index, number in enumerate(numbers)
        if not is_prime(number)
    ]
    if not_prime:
        raise Problem(
            422,
            f"{_count(not_prime, numbers)} not prime; nothing was stored.",
            errors={
                "primes": {
                    str(bad["index"]): ["Not a prime number."] for bad in not_prime
                }
            },
            not_prime=not_prime,
        )


def _count(found: Sequence, numbers: Sequence) -> str:
    verb = "is" if len(found) == 1 else "are"
    return f"{len(found)} of the {len(numbers)} numbers {verb}"


class Primes:
    """``/primes``, ``/primes/{n}`` and the seed's ``/supply_primes``."""

    def __init__(self, store: PrimeStore):
        self._store = store

    @requires(WRITE)
    @validate(
        body=PrimesIn(),
        response=PrimesStored(),
        status=201,
        errors=(409, 503),
        examples={
            "body": {"primes": [2, 3, 5, 7, 11, 13]},
            201: {"stored": [2, 3, 5, 7, 11, 13], "count": 6},
        },
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Store a batch of primes, all or nothing.

        422 names every number that is not prime (``not_prime``: index and
        number); 409 names every number already stored or repeated in the
        batch (``duplicates``). Either way nothing is stored.
        """
        self._store_batch(req, resp)

    @public
    @validate(
        query=PrimesQuery(),
        response=PrimesPage(),
        errors=(503,),
        examples={
            "limit": 3,
            200: {"items": [2, 3, 5], "next": "/primes?limit=3&after=5"},
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List the stored primes in ascending order, a page at a time."""
        query = req.context.query
        limit = query["limit"]
        numbers = self._store.page(limit + 1, after=query.get("after"))
        more = len(numbers) > limit
        numbers = numbers[:limit]
        resp.media = page_body(
            numbers, next_link(req, after=numbers[-1]) if more else None
        )

    @public
    @validate(
        response=NumberOut(),
        errors=(422, 503),
        examples={
            "n": LARGEST_64_BIT_PRIME,
            200: {"number": LARGEST_64_BIT_PRIME, "prime": True, "stored": True},
        },
        document=_document_n,
    )
    def on_get_item(self, req: falcon.Request, resp: falcon.Response, n: int) -> None:
        """Whether n (1 <= n < 2**64) is prime and whether it is stored.

        A path that is not an integer is 404; an integer out of range is 422.
        """
        if not 1 <= n < UPPER_BOUND:
            raise marshmallow.ValidationError(
                {
                    "n": [
                        f"Must be greater than or equal to 1 and less than or "
                        f"equal to {UPPER_BOUND - 1}."
                    ]
                }
            )
        resp.media = {
            "number": n,
            "prime": is_prime(n),
            "stored": self._store.contains(n),
        }

    @public
    @validate(response=SeedAnswer(), examples={200: SEED_ANSWER})
    def on_get_seed(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The seed's description of its insert API."""
        resp.media = SEED_ANSWER

    @requires(WRITE)
    @validate(
        body=PrimesIn(),
        response=PrimesStored(),
        status=201,
        errors=(409, 503),
        examples={
            "body": {"primes": [LARGEST_64_BIT_PRIME]},
            201: {"stored": [LARGEST_64_BIT_PRIME], "count": 1},
        },
    )
    def on_post_seed(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Store a batch of primes, all or nothing (the seed's path for it)."""
        self._store_batch(req, resp)

    def _store_batch(self, req: falcon.Request, resp: falcon.Response) -> None:
        numbers: List[int] = req.context.body["primes"]
        check_primes(numbers)
        stored = self._store.insert(numbers)
        resp.status = falcon.HTTP_201
        resp.media = {"stored": stored, "count": len(stored)}
