"""Generated input against the live app: no 5xx, every answer as documented.

Schemathesis reads ``/openapi.json`` from a real gunicorn (with the collatz
broker and a worker, so every backend is up) and, for every operation,
generates requests with Hypothesis: valid ones (positive) and ones that
break the document (negative: wrong types, out-of-range numbers, missing
fields, odd strings). Each answer must not be a 5xx and must match the
document: a listed status, its media type, its schema. Hypothesis runs
with a fixed seed (``derandomize``), and a failure prints the request that
caused it as a curl command.
"""

import dataclasses
import platform

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance

from tests.e2e.test_collatz import Cluster

#: Cases per operation and mode. Hypothesis runs about five times slower
#: under PyPy (its code is too varied for the JIT), so PyPy runs fewer.
CASES = 20 if platform.python_implementation() == "PyPy" else 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SOURCES = (
    '{"github": {"scheme": "github", "secret": "s3cret", "verify_token": "tok"},'
    ' "acme": {"scheme": "standard", '
    '"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}'
)


@dataclasses.dataclass
class Tally:
    cases: int = 0
    statuses: dict = dataclasses.field(default_factory=dict)


@pytest.fixture
def server(live_server, tmp_path):
    cluster = Cluster(tmp_path, timeout=10.0)
    try:
        cluster.start_broker()
        cluster.start_worker()
        yield live_server(
            env={
                **cluster.env,
                "WEBHOOK_SOURCES": SOURCES,
                # Generated n stay quick to answer; larger ones are a 422.
                "COLLATZ_MAX_N": "100000",
            },
            workers=2,
        )
    finally:
        cluster.stop()


# Two tests, so that a parallel run (pytest-xdist) can give them to two workers.
@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str
)
def test_generated_requests_get_no_5xx_and_documented_answers(server, mode):
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    tally = Tally()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    with requests.Session() as session:
        for operation in operations:
            _run(operation, mode, server.url, session, tally)
    print(
        f"\n{tally.cases} generated cases; statuses: {sorted(tally.statuses.items())}"
    )
    assert tally.cases >= 10 * CASES  # nothing was silently skipped
    assert not [status for status in tally.statuses if status >= 500]


def _run(operation, mode, base_url, session, tally):
    @hypothesis.settings(
        max_examples=CASES,
        derandomize=True,  # a fixed seed: the same cases on every run
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        response = case.call(base_url=base_url, session=session, timeout=30)
        tally.cases += 1
        tally.statuses[response.status_code] = (
            tally.statuses.get(response.status_code, 0) + 1
        )
        case.validate_response(response, checks=CHECKS)

    try:
        check()
    except hypothesis.errors.Unsatisfiable:
        # An operation with no parameters and no body has nothing to break.
        if mode is not GenerationMode.NEGATIVE:
            raise
