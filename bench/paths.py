"""The hot paths ``make bench`` measures, one declarative entry each.

A path whose endpoint answers 404 or 405 is reported as not available.
"""

import dataclasses
import itertools
import json
import math
import time
from typing import Callable
from typing import Iterator
from typing import List
from typing import Optional

import requests

#: How long a 503 is asked again: a backend coming up (collatz workers).
BACKEND_PATIENCE = 30.0


class NotAvailable(Exception):
    """The app does not offer this path."""


class Api:
    """A few calls to the app under test, for setting data up."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def call(
        self, method: str, path: str, body: Optional[dict] = None, ok=range(400)
    ) -> requests.Response:
        """``method path`` with a JSON body; NotAvailable on a status not ``ok``."""
        url, deadline = self.base_url + path, time.monotonic() + BACKEND_PATIENCE
        while True:
            response = requests.request(
                method, url, json=body, timeout=30, allow_redirects=False
            )
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if response.status_code not in ok:
            raise NotAvailable(f"{method} {path} answers {response.status_code}")
        return response

    def create(self, path: str, body: dict) -> dict:
        """``POST path``: what it created."""
        return self.call("POST", path, body, ok=(200, 201)).json()


@dataclasses.dataclass(frozen=True)
class Target:
    """One measured request: ``name`` keys the results, ``label`` is shown.

    The label's first words are the method and path unless given; the
    path's ``{i}`` becomes a unique integer per request. ``setup(api)``
    prepares data and returns the path; ``bodies(count, start)`` makes
    unique bodies (``probe_body`` then checks the endpoint); ``collatz``: the
    stack needs its workers; ``rows(api)``: rows per answer (an export);
    ``warm_requests``: requests per PyPy worker before its warm-up may end,
    when not the harness's default.
    """

    name: str
    label: str
    path: str = ""
    method: str = ""
    body: Optional[str] = None
    setup: Optional[Callable[[Api], str]] = None
    bodies: Optional[Callable[[int, int], List[str]]] = None
    probe_body: Optional[str] = None
    collatz: bool = False
    rows: Optional[Callable[[Api], int]] = None
    warm_requests: Optional[int] = None

    def __post_init__(self):
        method, path = self.label.split()[:2]
        object.__setattr__(self, "method", self.method or method)
        object.__setattr__(self, "path", self.path or path)

    def prepare(self, api: Api) -> str:
        """Set data up, check the endpoint answers (else NotAvailable); the path."""
        path = self.setup(api) if self.setup else self.path
        body = self.probe_body if self.bodies else self.body
        api.call(self.method, path.replace("{i}", "1"), json.loads(body or "null"))
        return path


def _note(api: Api) -> str:
    note = api.create("/notes", {"title": "bench", "body": "read by wrk"})
    return "/notes/" + note["id"]


def _notes(api: Api) -> str:
    for n in range(30):
        api.create("/notes", {"title": f"listed {n}", "body": "x"})
    return "/notes?limit=20"


def _police_rows(api: Api) -> int:
    return api.call("GET", "/departments/POLICE").json()["employees"]


def _link(api: Api) -> str:
    return "/" + api.create("/links", {"url": "https://example.com/bench"})["code"]


PRIMES_PER_BATCH = 10


def small_primes(limit: int) -> List[int]:
    """Every prime <= ``limit`` (sieve of Eratosthenes)."""
    if limit < 2:
        return []
    sieve = bytearray([1]) * (limit + 1)
    sieve[0] = sieve[1] = 0
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return list(itertools.compress(range(limit + 1), sieve))


def primes_from(start: int, window: int = 1 << 20) -> Iterator[int]:
    """The primes >= ``start``, ascending; sieves ``window`` numbers at a time."""
    low = max(start, 2)
    while True:
        high = low + window
        segment = bytearray([1]) * window
        for p in small_primes(math.isqrt(high - 1)):
            first = max(p * p, (low + p - 1) // p * p)
            if first < high:
                segment[first - low :: p] = bytes(len(range(first, high, p)))
        yield from itertools.compress(range(low, high), segment)
        low = high


def _prime_bodies(count: int, start: int) -> List[str]:
    """Consecutive primes from ``start``: the API stores no batch twice."""
    primes = primes_from(start)
    batches = (list(itertools.islice(primes, PRIMES_PER_BATCH)) for _ in range(count))
    return [json.dumps({"primes": batch}) for batch in batches]


TARGETS = [
    Target("health", "GET /health"),
    Target("notes-get", "GET /notes/{id}", setup=_note),
    Target(
        "notes-post",
        "POST /notes",
        body=json.dumps({"title": "bench", "body": "written by wrk"}),
    ),
    Target("notes-list", "GET /notes?limit=20", setup=_notes),
    Target(
        "notes-patch",
        "PATCH /notes/{id}",
        body=json.dumps({"body": "patched by wrk"}),
        setup=_note,
    ),
    Target("department", "GET /departments/POLICE"),
    Target("employees", "GET /departments/POLICE/employees?limit=100"),
    Target("dept-seed", "GET /dept/TREASURER (seed path: the whole department)"),
    Target(
        "export",
        "GET /departments/POLICE/employees.ndjson (all)",
        rows=_police_rows,
        warm_requests=100,
    ),
    Target("redirect", "GET /{code} (redirect)", setup=_link),
    Target(
        "links-create",
        "POST /links",
        body=json.dumps({"url": "https://example.com/bench"}),
    ),
    Target(
        "primes",
        f"POST /primes ({PRIMES_PER_BATCH} new primes)",
        bodies=_prime_bodies,
        probe_body=json.dumps({"primes": [2, 3, 5, 7, 11]}),
    ),
    Target("collatz-cached", "GET /collatz?n=100000 (cached)", collatz=True),
    Target(
        "collatz-uncached",
        "GET /collatz?n=... (uncached)",
        "/collatz?n={i}",
        collatz=True,
    ),
]

BY_NAME = {target.name: target for target in TARGETS}

#: The bare Falcon app (bench/bare.py): the ceiling of this stack.
BARE = Target("bare", "bare Falcon app (ceiling)", "/", "GET")


def by_name(names: List[str]) -> List[Target]:
    """The targets named (in TARGETS order); ValueError naming unknown ones."""
    unknown = sorted(set(names) - set(BY_NAME) - {"bare"})
    if unknown:
        known = ", ".join(sorted(BY_NAME))
        raise ValueError(f"unknown targets: {', '.join(unknown)}; known: {known}, bare")
    return [target for target in TARGETS if target.name in names]
