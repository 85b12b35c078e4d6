"""``PATCH /links/{code}`` and the link's ETag: edits with If-Match."""

import datetime

import pytest

from db.links import LinkStore
from db.sql import Database
from tests.support.problems import assert_problem


def shorten(client, **body):
    result = client.simulate_post("/links", json=body)
    assert result.status_code == 201, result.text
    return result


def patch(client, code, body, etag=None):
    headers = {} if etag is None else {"If-Match": etag}
    return client.simulate_patch(f"/links/{code}", json=body, headers=headers)


@pytest.fixture
def link(client) -> dict:
    return shorten(client, url="https://example.com/spring").json


def test_create_and_read_send_the_version_as_etag(client):
    created = shorten(client, url="https://example.com/")
    assert created.headers["etag"] == '"1"'
    code = created.json["code"]
    assert client.simulate_get("/links/" + code).headers["etag"] == '"1"'
    reused = client.simulate_post(
        "/links", json={"url": "https://example.com/", "reuse": True}
    )
    assert reused.status_code == 200 and reused.headers["etag"] == '"1"'


def test_patch_changes_the_target_and_the_redirect_follows(client, link):
    result = patch(client, link["code"], {"url": "example.com/summer"})
    assert result.status_code == 200
    assert result.headers["etag"] == '"2"'
    assert result.json == dict(link, url="https://example.com/summer")
    redirect = client.simulate_get("/" + link["code"])
    assert redirect.headers["location"] == "https://example.com/summer"
    shown = client.simulate_get("/links/" + link["code"])
    assert shown.json["url"] == "https://example.com/summer"
    assert shown.headers["etag"] == '"2"'


def test_patch_sets_and_clears_expiry_and_limit(client, link):
    code = link["code"]
    both = {"expires_at": "2999-01-01T01:00:00+01:00", "max_visits": 2}
    changed = patch(client, code, both).json
    assert changed["expires_at"] == "2999-01-01T00:00:00.000Z"
    assert changed["max_visits"] == 2
    cleared = patch(client, code, {"expires_at": None, "max_visits": None}).json
    assert (cleared["expires_at"], cleared["max_visits"]) == (None, None)
    assert cleared["url"] == link["url"] and cleared["code"] == code


def test_a_limit_counts_the_visits_made_before_it(client, link):
    code = link["code"]
    for _ in range(3):  # batched: no limit yet
        assert client.simulate_get("/" + code).status_code == 302
    assert patch(client, code, {"max_visits": 4}).json["visits"] == 3
    assert client.simulate_get("/" + code).status_code == 302
    assert_problem(client.simulate_get("/" + code), 410)
    assert client.simulate_get("/links/" + code).json["visits"] == 4


def test_a_limit_at_or_below_the_visits_uses_the_link_up(client, link):
    client.simulate_get("/" + link["code"])
    assert patch(client, link["code"], {"max_visits": 1}).status_code == 200
    assert_problem(client.simulate_get("/" + link["code"]), 410)
    assert patch(client, link["code"], {"max_visits": 5}).status_code == 200
    assert client.simulate_get("/" + link["code"]).status_code == 302


def test_an_expired_link_can_be_given_a_new_expiry(client, settings):
    # Made by a store whose clock is two days back: its one-day expiry is past.
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    database = Database(settings.database_url)
    store = LinkStore(database, "salt", clock=lambda: past, flush_interval=0)
    code = store.create(
        "https://example.com/", expires_at=past + datetime.timedelta(days=1)
    ).code
    database.dispose()
    assert_problem(client.simulate_get("/" + code), 410)
    assert patch(client, code, {"expires_at": "2999-01-01"}).status_code == 200
    assert client.simulate_get("/" + code).status_code == 302


def test_if_match_with_the_current_etag_writes(client, link):
    result = patch(client, link["code"], {"max_visits": 9}, etag='"1"')
    assert result.status_code == 200 and result.headers["etag"] == '"2"'
    again = patch(client, link["code"], {"max_visits": 8}, etag='"7", "2"')
    assert again.status_code == 200 and again.headers["etag"] == '"3"'
    anything = patch(client, link["code"], {"max_visits": 7}, etag="*")
    assert anything.status_code == 200


@pytest.mark.parametrize(
    "etag", ['"2"', 'W/"1"', '"x"', '"99999999999"', '"-1"', '"1.0"']
)
def test_if_match_with_another_version_is_412_and_changes_nothing(client, link, etag):
    problem = assert_problem(patch(client, link["code"], {"max_visits": 9}, etag), 412)
    assert "If-Match" in problem["detail"]
    shown = client.simulate_get("/links/" + link["code"])
    assert shown.json["max_visits"] is None and shown.headers["etag"] == '"1"'


def test_two_writers_with_one_etag_one_wins(client, link):
    first = patch(client, link["code"], {"url": "https://example.com/a"}, '"1"')
    second = patch(client, link["code"], {"url": "https://example.com/b"}, '"1"')
    assert first.status_code == 200
    assert_problem(second, 412)
    shown = client.simulate_get("/links/" + link["code"]).json
    assert shown["url"] == "https://example.com/a"


def test_visits_do_not_change_the_etag(client, link):
    client.simulate_get("/" + link["code"])
    assert client.simulate_get("/links/" + link["code"]).headers["etag"] == '"1"'
    assert patch(client, link["code"], {"max_visits": 5}, '"1"').status_code == 200


def test_an_alias_link_is_edited_by_its_alias(client):
    shorten(client, url="https://example.com/", alias="spring-sale")
    result = patch(client, "spring-sale", {"url": "https://example.org/"})
    assert result.json["code"] == "spring-sale"
    assert client.simulate_get("/spring-sale").headers["location"] == (
        "https://example.org/"
    )


def test_delete_honours_if_match(client, link):
    code = link["code"]
    patch(client, code, {"max_visits": 5})
    stale = client.simulate_delete("/links/" + code, headers={"If-Match": '"1"'})
    assert_problem(stale, 412)
    assert client.simulate_get("/" + code).status_code == 302
    current = client.simulate_delete("/links/" + code, headers={"If-Match": '"2"'})
    assert current.status_code == 204
    assert_problem(client.simulate_get("/links/" + code), 404)


@pytest.mark.parametrize("code", ["0000000", "nosuchalias", "a.b"])
def test_unknown_or_deleted_links_are_404_whatever_if_match_says(client, code):
    assert_problem(patch(client, code, {"max_visits": 1}), 404)
    assert_problem(patch(client, code, {"max_visits": 1}, '"1"'), 404)


def test_a_deleted_link_cannot_be_edited(client, link):
    client.simulate_delete("/links/" + link["code"])
    assert_problem(patch(client, link["code"], {"max_visits": 1}), 404)


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "_schema"),
        ({"url": None}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "http://127.0.0.1:8000/x"}, "url"),  # the shortener itself
        ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "soon"}, "expires_at"),
        ({"max_visits": 0}, "max_visits"),
        ({"max_visits": "5"}, "max_visits"),
        ({"max_visits": 2**31}, "max_visits"),
        ({"alias": "new-alias"}, "alias"),
        ({"visits": 0}, "visits"),
        ({"code": "abcdefg"}, "code"),
    ],
)
def test_invalid_patches_are_422_and_change_nothing(client, link, body, field):
    problem = assert_problem(patch(client, link["code"], body), 422)
    assert field in problem["errors"]
    assert client.simulate_get("/links/" + link["code"]).json == link


def test_non_json_patch_is_415(client, link):
    result = client.simulate_patch(
        "/links/" + link["code"],
        body="max_visits=3",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(result, 415)


def test_patch_needs_a_write_key(make_client, link):
    reader = make_client(scope="read")
    assert_problem(patch(reader, link["code"], {"max_visits": 1}), 403)
    assert_problem(make_client(scope=None).simulate_patch("/links/x", json={}), 401)
