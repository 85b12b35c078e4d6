"""The hot paths ``make bench`` measures, one declarative entry each.

A path whose endpoint answers 404 or 405 is reported as not available.
"""

import dataclasses
import json
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

import requests

from bench import primegen

JSON_HEADERS = {"Content-Type": "application/json"}


class NotAvailable(Exception):
    """The app does not offer this path (``status``: the HTTP status that said so)."""

    def __init__(self, reason: str, status: Optional[int] = None):
        super().__init__(reason)
        self.status = status


class Api:
    """A few calls to the app under test, for setting data up."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url
        self.timeout = timeout

    def call(
        self, method: str, path: str, body: Optional[dict] = None
    ) -> requests.Response:
        """``method path`` with a JSON body; NotAvailable on 404 or 405."""
        response = requests.request(
            method,
            self.base_url + path,
            json=body,
            timeout=self.timeout,
            allow_redirects=False,
        )
        if response.status_code in (404, 405):
            raise NotAvailable(
                f"{method} {path} answers {response.status_code}", response.status_code
            )
        return response


@dataclasses.dataclass(frozen=True)
class Target:
    """One measured request: ``name`` keys the results, ``label`` is shown.

    ``path``'s ``{i}`` becomes a unique integer per request; ``setup(api)``
    prepares data and returns the path; ``bodies(count, start)`` makes
    unique bodies (``probe_body`` then checks the endpoint); ``needs`` names
    what the stack must provide (salaries, collatz); ``rows(api)``: rows per
    answer (an export); ``warm_requests``: requests per PyPy worker before
    its warm-up may end, when not the harness's default.
    """

    name: str
    label: str
    path: str = ""
    method: str = "GET"
    body: Optional[str] = None
    setup: Optional[Callable[[Api], str]] = None
    bodies: Optional[Callable[[int, int], List[str]]] = None
    probe_body: Optional[str] = None
    needs: Optional[str] = None
    rows: Optional[Callable[[Api], int]] = None
    warm_requests: Optional[int] = None

    @property
    def headers(self) -> Dict[str, str]:
        return JSON_HEADERS if self.body is not None or self.bodies else {}

    def prepare(self, api: Api) -> str:
        """Set data up, check the endpoint answers (else NotAvailable); the path."""
        path = self.setup(api) if self.setup else self.path
        probe_path = path.replace("{i}", "1")
        body = self.probe_body if self.bodies else self.body
        response = api.call(self.method, probe_path, json.loads(body) if body else None)
        if response.status_code >= 400:
            raise NotAvailable(
                f"{self.method} {probe_path} answers {response.status_code}",
                response.status_code,
            )
        return path


def _note(api: Api) -> str:
    created = api.call("POST", "/notes", {"title": "bench", "body": "read by wrk"})
    if created.status_code != 201:
        raise NotAvailable(f"POST /notes answers {created.status_code}")
    return f"/notes/{created.json()['id']}"


def _notes(api: Api) -> str:
    for n in range(30):
        created = api.call("POST", "/notes", {"title": f"listed {n}", "body": "x"})
        if created.status_code != 201:
            raise NotAvailable(f"POST /notes answers {created.status_code}")
    return "/notes?limit=20"


def _police_rows(api: Api) -> int:
    return api.call("GET", "/departments/POLICE").json()["employees"]


def _link(api: Api) -> str:
    created = api.call("POST", "/links", {"url": "https://example.com/bench"})
    if created.status_code not in (200, 201):
        raise NotAvailable(f"POST /links answers {created.status_code}")
    return "/" + created.json()["code"]


PRIMES_PER_BATCH = 10


def _prime_bodies(count: int, start: int) -> List[str]:
    return [
        json.dumps({"primes": batch})
        for batch in primegen.batches(start, count, PRIMES_PER_BATCH)
    ]


TARGETS = [
    Target("health", "GET /health", "/health"),
    Target("notes-get", "GET /notes/{id}", setup=_note),
    Target(
        "notes-post",
        "POST /notes",
        "/notes",
        method="POST",
        body=json.dumps({"title": "bench", "body": "written by wrk"}),
    ),
    Target("notes-list", "GET /notes?limit=20", setup=_notes),
    Target(
        "notes-patch",
        "PATCH /notes/{id}",
        method="PATCH",
        body=json.dumps({"body": "patched by wrk"}),
        setup=_note,
    ),
    Target(
        "department", "GET /departments/POLICE", "/departments/POLICE", needs="salaries"
    ),
    Target(
        "employees",
        "GET /departments/POLICE/employees?limit=100",
        "/departments/POLICE/employees?limit=100",
        needs="salaries",
    ),
    Target(
        "dept-seed",
        "GET /dept/TREASURER (seed path: the whole department)",
        "/dept/TREASURER",
        needs="salaries",
    ),
    Target(
        "export",
        "GET /departments/POLICE/employees.ndjson (all)",
        "/departments/POLICE/employees.ndjson",
        needs="salaries",
        rows=_police_rows,
        warm_requests=100,
    ),
    Target("redirect", "GET /{code} (redirect)", setup=_link),
    Target(
        "links-create",
        "POST /links",
        "/links",
        method="POST",
        body=json.dumps({"url": "https://example.com/bench"}),
    ),
    Target(
        "primes",
        f"POST /primes ({PRIMES_PER_BATCH} new primes)",
        "/primes",
        method="POST",
        bodies=_prime_bodies,
        probe_body=json.dumps({"primes": [2, 3, 5, 7, 11]}),
    ),
    Target(
        "collatz-cached",
        "GET /collatz?n=100000 (cached)",
        "/collatz?n=100000",
        needs="collatz",
    ),
    Target(
        "collatz-uncached",
        "GET /collatz?n=... (uncached)",
        "/collatz?n={i}",
        needs="collatz",
    ),
]

BY_NAME = {target.name: target for target in TARGETS}

#: The bare Falcon app (bench/bare.py): the ceiling of this stack.
BARE = Target("bare", "bare Falcon app (ceiling)", "/")


def by_name(names: List[str]) -> List[Target]:
    """The targets named (in TARGETS order); ValueError naming unknown ones."""
    known = {target.name for target in TARGETS}
    unknown = sorted(set(names) - known - {"bare"})
    if unknown:
        raise ValueError(
            f"unknown targets: {', '.join(unknown)}; known: "
            f"{', '.join(sorted(known))}, bare"
        )
    return [target for target in TARGETS if target.name in names]
