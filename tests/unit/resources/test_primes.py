"""The primes API through HTTP (falcon.testing): all-or-nothing batches, reads."""

import math

import pytest

from resources.primes import MAX_BATCH
from tests.support.problems import assert_problem

LARGEST = 2**64 - 59  # the largest prime below 2**64


def stored(client) -> list:
    """Every stored number, following the next links."""
    numbers, url = [], "/primes?limit=1000"
    while url:
        path, _, query = url.partition("?")
        page = client.simulate_get(path, query_string=query)
        assert page.status_code == 200
        numbers += page.json["items"]
        url = page.json["next"]
    return numbers


def post(client, numbers, path="/primes"):
    return client.simulate_post(path, json={"primes": numbers})


def first_primes(count: int) -> list:
    limit = 200_000
    flags = bytearray([1]) * limit
    flags[0] = flags[1] = 0
    for i in range(2, math.isqrt(limit) + 1):
        if flags[i]:
            flags[i * i :: i] = bytearray(len(range(i * i, limit, i)))
    return [n for n in range(limit) if flags[n]][:count]


# The seed's scenario, step by step.


def test_a_batch_with_one_composite_stores_nothing(client):
    problem = assert_problem(post(client, [11, 13, 15]), 422)
    assert problem["not_prime"] == [{"index": 2, "number": 15}]
    assert problem["errors"] == {"primes": {"2": ["Not a prime number."]}}
    assert stored(client) == []


def test_every_composite_is_listed_with_its_index(client):
    problem = assert_problem(post(client, [14, 15, 13]), 422)
    assert problem["not_prime"] == [
        {"index": 0, "number": 14},
        {"index": 1, "number": 15},
    ]
    assert "2 of the 3" in problem["detail"]
    assert stored(client) == []


def test_a_stored_number_rolls_the_whole_batch_back(client):
    first = post(client, [13])
    assert first.status_code == 201
    assert first.json == {"stored": [13], "count": 1}

    problem = assert_problem(post(client, [29, 13, 67]), 409)
    assert problem["duplicates"] == [{"index": 1, "number": 13, "reason": "stored"}]
    assert stored(client) == [13]  # 29 and 67 were not stored


def test_a_new_batch_is_stored_and_answered_in_the_order_sent(client):
    result = post(client, [67, 29, 11])
    assert result.status_code == 201
    assert result.json == {"stored": [67, 29, 11], "count": 3}
    assert stored(client) == [11, 29, 67]


def test_numbers_repeated_in_the_batch_are_a_conflict(client):
    problem = assert_problem(post(client, [7, 11, 7, 7]), 409)
    assert problem["duplicates"] == [
        {"index": 2, "number": 7, "reason": "repeated", "first_index": 0},
        {"index": 3, "number": 7, "reason": "repeated", "first_index": 0},
    ]
    assert stored(client) == []


def test_a_conflict_lists_stored_and_repeated_numbers_together(client):
    assert post(client, [13, 17]).status_code == 201
    problem = assert_problem(post(client, [13, 29, 29, 17, 31]), 409)
    assert problem["duplicates"] == [
        {"index": 0, "number": 13, "reason": "stored"},
        {"index": 2, "number": 29, "reason": "repeated", "first_index": 1},
        {"index": 3, "number": 17, "reason": "stored"},
    ]
    assert "3 of the 5" in problem["detail"]
    assert stored(client) == [13, 17]


def test_primality_is_checked_before_duplicates(client):
    assert post(client, [13]).status_code == 201
    problem = assert_problem(post(client, [13, 13, 21]), 422)
    assert problem["not_prime"] == [{"index": 2, "number": 21}]


# Types and ranges: 422 with errors per index, nothing stored.


@pytest.mark.parametrize(
    "value",
    [
        13.0,
        13.5,
        "13",
        True,
        False,
        None,
        [13],
        {"n": 13},
        1,
        0,
        -13,
        2**64,
        2**64 + 13,
    ],
    ids=repr,
)
def test_wrong_types_and_out_of_range_numbers_are_422(client, value):
    problem = assert_problem(post(client, [11, value, 13]), 422)
    assert list(problem["errors"]["primes"]) == ["1"]
    assert stored(client) == []


def test_every_bad_item_is_reported_by_index(client):
    problem = assert_problem(post(client, ["2", 3, 5.0, 7, True, 2**64]), 422)
    assert sorted(problem["errors"]["primes"], key=int) == ["0", "2", "4", "5"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"primes": []}, "Length must be between 1 and 10000."),
        ({}, "Missing data for required field."),
        ({"primes": None}, "Field may not be null."),
        ({"primes": 13}, "Not a valid list."),
        ({"primes": "13"}, "Not a valid list."),
        ({"primes": {"0": 13}}, "Not a valid list."),
    ],
)
def test_a_missing_or_empty_or_non_list_batch_is_422(client, body, message):
    problem = assert_problem(client.simulate_post("/primes", json=body), 422)
    assert problem["errors"] == {"primes": [message]}


def test_unknown_members_and_non_object_bodies_are_422(client):
    assert_problem(client.simulate_post("/primes", json={"primes": [2], "x": 1}), 422)
    assert_problem(client.simulate_post("/primes", json=[2, 3]), 422)
    assert stored(client) == []


def test_ten_thousand_numbers_are_accepted_and_one_more_is_refused_as_a_whole(client):
    numbers = first_primes(MAX_BATCH + 1)
    problem = assert_problem(post(client, numbers), 422)
    assert problem["errors"] == {"primes": ["Length must be between 1 and 10000."]}

    result = post(client, numbers[:MAX_BATCH])
    assert result.status_code == 201
    assert result.json["count"] == MAX_BATCH
    assert stored(client) == numbers[:MAX_BATCH]


def test_a_batch_of_composites_lists_every_one(client):
    numbers = [n * 3 for n in range(2, 2 + MAX_BATCH)]
    problem = assert_problem(post(client, numbers), 422)
    assert len(problem["not_prime"]) == MAX_BATCH
    assert problem["not_prime"][-1] == {"index": MAX_BATCH - 1, "number": numbers[-1]}


# The whole unsigned 64-bit range, stored and listed in order.


def test_numbers_across_the_signed_64_bit_boundary_keep_their_order(client):
    numbers = [LARGEST, 2**63 + 29, 2, 2**63 - 25, 2**61 - 1]
    assert post(client, numbers).status_code == 201
    assert stored(client) == sorted(numbers)
    for n in numbers:
        assert client.simulate_get(f"/primes/{n}").json == {
            "number": n,
            "prime": True,
            "stored": True,
        }
    problem = assert_problem(post(client, [2**63 + 29]), 409)
    assert problem["duplicates"] == [
        {"index": 0, "number": 2**63 + 29, "reason": "stored"}
    ]


def test_listing_pages_ascending_with_an_after_cursor(client):
    numbers = first_primes(25)
    assert post(client, list(reversed(numbers))).status_code == 201

    page = client.simulate_get("/primes", params={"limit": 10}).json
    assert page["items"] == numbers[:10]
    assert page["next"] == f"/primes?limit=10&after={numbers[9]}"

    params = {"limit": 10, "after": numbers[19]}
    last = client.simulate_get("/primes", params=params).json
    assert last == {"items": numbers[20:], "next": None}

    between = client.simulate_get("/primes", params={"after": 4, "limit": 2}).json
    assert between["items"] == [5, 7]


def test_an_empty_listing_has_no_next_link(client):
    assert client.simulate_get("/primes").json == {"items": [], "next": None}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "x"},
        {"after": -1},
        {"after": 2**64},
        {"after": "1.5"},
    ],
)
def test_bad_paging_parameters_are_422(client, params):
    assert_problem(client.simulate_get("/primes", params=params), 422)


# One number.


@pytest.mark.parametrize(
    "n, prime",
    [
        (1, False),
        (2, True),
        (15, False),
        (2**64 - 1, False),
        (LARGEST, True),
        (3825123056546413051, False),
    ],
)
def test_one_number_says_whether_it_is_prime_and_stored(client, n, prime):
    assert client.simulate_get(f"/primes/{n}").json == {
        "number": n,
        "prime": prime,
        "stored": False,
    }


def test_one_number_is_stored_after_its_batch(client):
    assert post(client, [13]).status_code == 201
    assert client.simulate_get("/primes/13").json["stored"] is True
    assert client.simulate_get("/primes/11").json["stored"] is False


@pytest.mark.parametrize("n", ["0", "-13", str(2**64), str(10**30)])
def test_a_number_out_of_range_is_422(client, n):
    problem = assert_problem(client.simulate_get(f"/primes/{n}"), 422)
    assert "n" in problem["errors"]


@pytest.mark.parametrize("n", ["abc", "13.0", "1e3", " 13"])
def test_a_path_that_is_not_an_integer_is_404(client, n):
    assert_problem(client.simulate_get(f"/primes/{n}"), 404)


# The seed's paths.


def test_the_seed_get_answer_is_kept(client):
    result = client.simulate_get("/supply_primes")
    assert result.status_code == 200
    assert result.json == {"response": "prime numbers insert API"}


def test_the_seed_post_path_behaves_like_post_primes(client):
    assert post(client, [11, 13], path="/supply_primes").json == {
        "stored": [11, 13],
        "count": 2,
    }
    problem = assert_problem(post(client, [29, 13], path="/supply_primes"), 409)
    assert problem["duplicates"] == [{"index": 1, "number": 13, "reason": "stored"}]
    assert_problem(post(client, [15], path="/supply_primes"), 422)
    assert stored(client) == [11, 13]


def test_the_operations_are_documented(client):
    paths = client.simulate_get("/openapi.json").json["paths"]
    assert set(paths["/primes"]) == {"get", "post"}
    assert set(paths["/supply_primes"]) == {"get", "post"}
    assert "get" in paths["/primes/{n}"]
    assert "409" in paths["/primes"]["post"]["responses"]
    body = paths["/primes"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PrimesIn"}
