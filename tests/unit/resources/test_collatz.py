"""GET /collatz and /collatz/{k} through falcon.testing (no broker running)."""

import time

import pytest

from tests.support.problems import assert_problem
from tests.support.processes import free_port


def test_one_chain(client):
    result = client.simulate_get("/collatz/27")
    assert result.status_code == 200
    assert result.json == {"start": 27, "length": 112, "peak": 9232}


def test_one_chain_with_its_sequence(client):
    result = client.simulate_get("/collatz/13", params={"sequence": "true"})
    assert result.json == {
        "start": 13,
        "length": 10,
        "peak": 40,
        "sequence": [13, 40, 20, 10, 5, 16, 8, 4, 2, 1],
    }
    assert client.simulate_get("/collatz/1", params={"sequence": "true"}).json == {
        "start": 1,
        "length": 1,
        "peak": 1,
        "sequence": [1],
    }
    assert (
        "sequence"
        not in client.simulate_get("/collatz/13", params={"sequence": "false"}).json
    )


def test_sequence_only_for_chains_under_1000_terms(make_client):
    client = make_client(collatz_max_n=2**1000)
    params = {"sequence": "true"}
    shorter = client.simulate_get(f"/collatz/{2**998}", params=params).json
    assert shorter["length"] == 999
    assert len(shorter["sequence"]) == 999
    longer = client.simulate_get(f"/collatz/{2**999}", params=params).json
    assert longer == {"start": 2**999, "length": 1000, "peak": 2**999}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"n": ""},
        {"n": "0"},
        {"n": "-1"},
        {"n": "abc"},
        {"n": "1.5"},
        {"n": "1e3"},
        {"n": "1001"},
        {"n": str(10**30)},
    ],
)
def test_bad_n_is_422(make_client, params):
    client = make_client(collatz_max_n=1000)
    problem = assert_problem(client.simulate_get("/collatz", params=params), 422)
    assert list(problem["errors"]) == ["n"]


def test_n_at_the_bound_is_accepted_but_above_is_not(make_client):
    # Nothing listens on this port: accepted n reaches the client and times out.
    client = make_client(
        collatz_max_n=1000,
        collatz_timeout=0.2,
        collatz_frontend=f"tcp://127.0.0.1:{free_port()}",
    )
    assert client.simulate_get("/collatz", params={"n": "1000"}).status_code == 503
    assert client.simulate_get("/collatz", params={"n": "1001"}).status_code == 422


@pytest.mark.parametrize("k", ["0", "-5", "1001", str(10**30)])
def test_start_out_of_bounds_is_422(make_client, k):
    client = make_client(collatz_max_n=1000)
    problem = assert_problem(client.simulate_get(f"/collatz/{k}"), 422)
    assert list(problem["errors"]) == ["k"]


def test_bad_sequence_flag_is_422(client):
    result = client.simulate_get("/collatz/5", params={"sequence": "maybe"})
    problem = assert_problem(result, 422)
    assert list(problem["errors"]) == ["sequence"]


def test_start_that_is_not_an_integer_is_404(client):
    assert_problem(client.simulate_get("/collatz/abc"), 404)
    assert_problem(client.simulate_get("/collatz/1.5"), 404)


def test_no_broker_is_503_within_the_deadline(make_client):
    client = make_client(
        collatz_timeout=0.5, collatz_frontend=f"tcp://127.0.0.1:{free_port()}"
    )
    started = time.monotonic()
    problem = assert_problem(client.simulate_get("/collatz", params={"n": "1000"}), 503)
    assert time.monotonic() - started < 5
    assert "collatz" in problem["detail"]
    # The next request gets a fresh socket and the same clear answer.
    assert_problem(client.simulate_get("/collatz", params={"n": "10"}), 503)


def test_openapi_documents_both_operations(client):
    paths = client.simulate_get("/openapi.json").json["paths"]
    longest = paths["/collatz"]["get"]
    assert {"422", "503"} <= set(longest["responses"])
    chain = paths["/collatz/{k}"]["get"]
    assert chain["parameters"][0]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10**8,
    }
