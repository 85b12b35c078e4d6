"""POST /links/bulk: one result per item, in order; the valid ones stored."""

import datetime

import pytest
import sqlalchemy as sa

from core.codes import code_for_id
from core.codes import id_for_code
from db.link_tables import Link
from db.sql import Database
from tests.support.problems import assert_problem


def bulk(client, links, **kwargs):
    return client.simulate_post("/links/bulk", json={"links": links}, **kwargs)


def stored_links(settings) -> int:
    database = Database(settings.database_url)
    with database.session(write=False) as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(Link))
    database.dispose()
    return count


def test_each_item_gets_its_result_in_order(client):
    result = bulk(
        client,
        [
            {"url": "https://example.com/a"},
            {"url": "javascript:alert(1)"},
            {"url": "example.com/b", "alias": "spring-sale"},
            {"url": "https://example.com/c", "max_visits": 0},
        ],
    )
    assert result.status_code == 207
    body = result.json
    assert [item["status"] for item in body["items"]] == [201, 422, 201, 422]
    assert [item["index"] for item in body["items"]] == [0, 1, 2, 3]
    assert (body["created"], body["reused"], body["failed"]) == (2, 0, 2)
    first, bad_url, alias, bad_visits = body["items"]
    assert first["link"]["url"] == "https://example.com/a"
    assert alias["link"]["code"] == "spring-sale"
    assert alias["link"]["url"] == "https://example.com/b"
    assert "url" in bad_url["problem"]["errors"]
    assert "max_visits" in bad_visits["problem"]["errors"]
    for item in (bad_url, bad_visits):
        problem = item["problem"]
        assert problem["status"] == 422 and problem["title"] == "Unprocessable Content"
        assert problem["type"] == "about:blank" and problem["detail"]
        assert "link" not in item
    # The created ones are real links.
    for code in (first["link"]["code"], "spring-sale"):
        assert client.simulate_get("/" + code).status_code == 302


def test_a_thousand_links_are_stored_with_distinct_codes(client, settings):
    links = [{"url": f"https://example.com/{n}"} for n in range(1000)]
    body = bulk(client, links).json
    assert body["created"] == 1000 and body["failed"] == 0
    codes = [item["link"]["code"] for item in body["items"]]
    assert len(set(codes)) == 1000
    assert [item["link"]["url"] for item in body["items"]] == [
        link["url"] for link in links
    ]
    assert client.simulate_get("/" + codes[737]).headers["location"] == (
        "https://example.com/737"
    )
    assert stored_links(settings) == 1000


def test_over_a_thousand_links_is_422_and_stores_nothing(client, settings):
    links = [{"url": f"https://example.com/{n}"} for n in range(1001)]
    problem = assert_problem(bulk(client, links), 422)
    assert "1,000" in problem["detail"] and "1,001" in problem["detail"]
    assert "links" in problem["errors"]
    assert stored_links(settings) == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "links"),
        ({"links": []}, "links"),
        ({"links": {"url": "https://example.com/"}}, "links"),
        ({"links": [{"url": "https://example.com/"}], "extra": 1}, "extra"),
        ([{"url": "https://example.com/"}], "_schema"),
    ],
)
def test_a_body_that_is_not_a_list_of_links_is_422(client, body, field):
    problem = assert_problem(client.simulate_post("/links/bulk", json=body), 422)
    assert field in problem["errors"]


def test_an_item_that_is_not_an_object_fails_alone(client):
    body = bulk(client, [5, None, {"url": "https://example.com/"}]).json
    assert [item["status"] for item in body["items"]] == [422, 422, 201]


def test_text_rule_applies_per_item(client):
    body = bulk(
        client, [{"url": "https://example.com/\u0000"}, {"url": "https://e.com/"}]
    ).json
    assert body["items"][0]["status"] == 422
    assert "NUL" in body["items"][0]["problem"]["errors"]["url"][0]
    assert body["items"][1]["status"] == 201


def test_a_taken_alias_is_409_for_that_item_only(client):
    client.simulate_post(
        "/links", json={"url": "https://example.com/", "alias": "promo"}
    )
    body = bulk(
        client,
        [
            {"url": "https://example.org/", "alias": "promo"},
            {"url": "https://example.org/2", "alias": "promo-2"},
        ],
    ).json
    conflict, created = body["items"]
    assert conflict["status"] == 409
    assert conflict["problem"]["alias"] == "promo"
    assert conflict["problem"]["title"] == "Conflict"
    assert created["status"] == 201
    assert client.simulate_get("/promo").headers["location"] == "https://example.com/"


def test_the_same_alias_twice_in_a_batch_goes_to_the_first(client):
    body = bulk(
        client,
        [
            {"url": "https://example.com/1", "alias": "twice"},
            {"url": "https://example.com/2", "alias": "twice"},
        ],
    ).json
    assert [item["status"] for item in body["items"]] == [201, 409]
    assert client.simulate_get("/twice").headers["location"] == "https://example.com/1"


def test_reuse_answers_200_with_the_existing_link(client):
    first = client.simulate_post("/links", json={"url": "https://example.com/"}).json
    body = bulk(
        client,
        [
            {"url": "example.com", "reuse": True},
            {"url": "https://example.com/new", "reuse": True},
        ],
    ).json
    reused, created = body["items"]
    assert reused["status"] == 200 and reused["link"]["code"] == first["code"]
    assert created["status"] == 201
    assert (body["created"], body["reused"]) == (1, 1)


def test_items_follow_the_rules_of_post_links(client):
    past = "2000-01-01T00:00:00Z"
    body = bulk(
        client,
        [
            {"url": "http://127.0.0.1:8000/x"},
            {"url": "http://10.0.0.1/"},
            {"url": "https://example.com/", "expires_at": past},
            {"url": "https://example.com/", "alias": "links"},
            {"url": "https://example.com/", "visits": 3},
        ],
    ).json
    errors = [item["problem"]["errors"] for item in body["items"]]
    assert [next(iter(e)) for e in errors] == [
        "url",
        "url",
        "expires_at",
        "alias",
        "visits",
    ]
    assert body["created"] == 0


def test_bulk_is_not_an_alias(client):
    result = client.simulate_post(
        "/links", json={"url": "https://example.com/", "alias": "bulk"}
    )
    assert "alias" in assert_problem(result, 422)["errors"]
    assert_problem(client.simulate_get("/links/bulk"), 405)


def test_a_body_over_the_limit_is_413(make_client):
    client = make_client(max_body_bytes=2000)
    links = [{"url": f"https://example.com/{n}"} for n in range(100)]
    assert_problem(bulk(client, links), 413)


def test_a_generated_code_equal_to_a_reserved_word_is_skipped(client, settings):
    target = id_for_code("collatz")
    database = Database(settings.database_url)
    with database.session() as session:  # make the next id the one that maps to it
        session.add(
            Link(
                id=target - 2,
                url="https://example.com/",
                visits=0,
                deleted=True,
                created_at=datetime.datetime(2020, 1, 1),
            )
        )
        if database.engine.dialect.name == "postgresql":
            session.execute(
                sa.text("SELECT setval(pg_get_serial_sequence('links', 'id'), :n)"),
                {"n": target - 2},
            )
    database.dispose()
    links = [{"url": f"https://example.com/{n}"} for n in range(3)]
    codes = [item["link"]["code"] for item in bulk(client, links).json["items"]]
    assert "collatz" not in codes
    assert codes[0] == code_for_id(target - 1)
    assert len(set(codes)) == 3
    for n, code in enumerate(codes):
        location = client.simulate_get("/" + code).headers["location"]
        assert location == f"https://example.com/{n}"
    assert_problem(client.simulate_get("/links/collatz"), 404)


def test_openapi_documents_bulk_with_examples(client):
    operation = client.simulate_get("/openapi.json").json["paths"]["/links/bulk"][
        "post"
    ]
    assert {"207", "400", "413", "415", "422"} <= set(operation["responses"])
    media = operation["requestBody"]["content"]["application/json"]
    assert media["example"]["links"]
    assert operation["responses"]["207"]["content"]["application/json"]["example"]
