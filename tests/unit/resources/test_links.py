"""The shortener through HTTP (falcon.testing): every status it answers with."""

import dataclasses
import datetime
import hashlib
import re

import pytest
import sqlalchemy as sa
from falcon import inspect

from api.app import create_app
from core.codes import code_for_id
from core.codes import decode
from core.codes import id_for_code
from core.codes import is_reserved
from db.link_tables import Link
from db.sql import Database
from tests.support.problems import assert_problem
from tests.support.processes import wait_until
from tests.support.unsafe_urls import UNSAFE


def shorten(client, **body):
    return client.simulate_post("/links", json=body)


def in_seconds(seconds: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc)
    return (moment + datetime.timedelta(seconds=seconds)).isoformat()


def test_post_creates_a_link_with_location(client):
    result = shorten(client, url="https://example.com/page?x=1")
    assert result.status_code == 201
    link = result.json
    assert result.headers["location"] == f"/links/{link['code']}"
    assert link["url"] == "https://example.com/page?x=1"
    assert link["short_url"] == f"http://127.0.0.1:8000/{link['code']}"
    assert link["visits"] == 0
    assert link["expires_at"] is None and link["max_visits"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", link["created_at"])
    assert id_for_code(link["code"]) is not None


def test_a_url_without_scheme_gets_https(client):
    assert shorten(client, url="example.com/x").json["url"] == "https://example.com/x"


def test_idn_hosts_are_stored_as_punycode(client):
    link = shorten(client, url="https://bücher.example/straße").json
    assert link["url"] == "https://xn--bcher-kva.example/stra%C3%9Fe"
    assert client.simulate_get("/" + link["code"]).headers["location"] == link["url"]


def test_short_urls_use_the_public_base_url_not_the_host_header(make_client):
    # A name the server answers (ALLOWED_HOSTS) but not the one of its links.
    client = make_client(public_base_url="https://sho.rt/s/", allowed_hosts="api.test")
    result = client.simulate_post(
        "/links", json={"url": "example.com"}, headers={"Host": "api.test"}
    )
    assert result.json["short_url"] == "https://sho.rt/s/" + result.json["code"]


def test_consecutive_links_do_not_get_consecutive_codes(client):
    created = [
        shorten(client, url=f"https://example.com/{n}").json["code"] for n in range(5)
    ]
    numbers = [decode(code) for code in created]
    assert len(set(created)) == 5
    assert all(abs(a - b) > 1 for a, b in zip(numbers, numbers[1:]))


def test_same_url_twice_gives_two_links(client):
    first = shorten(client, url="https://example.com/")
    second = shorten(client, url="https://example.com/")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json["code"] != second.json["code"]


def test_reuse_returns_the_existing_link_with_200(client):
    first = shorten(client, url="https://example.com/")
    again = shorten(client, url="example.com", reuse=True)
    assert again.status_code == 200
    assert again.json["code"] == first.json["code"]


def test_reuse_without_a_match_creates(client):
    shorten(client, url="https://example.com/", max_visits=5)
    result = shorten(client, url="https://example.com/", reuse=True)
    assert result.status_code == 201  # the existing link has other limits


def test_reuse_skips_links_that_are_used_up_or_deleted(client):
    spent = shorten(client, url="https://example.com/", max_visits=1).json["code"]
    client.simulate_get("/" + spent)
    deleted = shorten(client, url="https://example.org/").json["code"]
    client.simulate_delete("/links/" + deleted)
    again_spent = shorten(client, url="https://example.com/", max_visits=1, reuse=True)
    again_deleted = shorten(client, url="https://example.org/", reuse=True)
    assert again_spent.status_code == 201 and again_spent.json["code"] != spent
    assert again_deleted.status_code == 201 and again_deleted.json["code"] != deleted


def test_reuse_with_an_alias_is_idempotent(client):
    first = shorten(client, url="https://example.com/", alias="spring-sale")
    again = shorten(client, url="https://example.com/", alias="spring-sale", reuse=True)
    other = shorten(client, url="https://example.org/", alias="spring-sale", reuse=True)
    assert (first.status_code, again.status_code) == (201, 200)
    assert_problem(other, 409)


def test_alias_link(client):
    result = shorten(client, url="https://example.com/", alias="spring-sale")
    assert result.status_code == 201
    assert result.json["code"] == "spring-sale"
    assert result.headers["location"] == "/links/spring-sale"
    assert client.simulate_get("/spring-sale").status_code == 302


def test_taken_alias_is_409(client):
    shorten(client, url="https://example.com/", alias="promo")
    problem = assert_problem(
        shorten(client, url="https://example.org/", alias="promo"), 409
    )
    assert problem["alias"] == "promo"


def test_aliases_are_case_sensitive(client):
    assert shorten(client, url="https://example.com/", alias="promo").status_code == 201
    assert shorten(client, url="https://example.org/", alias="PROMO").status_code == 201
    assert client.simulate_get("/PROMO").headers["location"] == "https://example.org/"


def test_the_generated_code_of_an_alias_link_does_not_reach_it(client, settings):
    shorten(client, url="https://example.com/", alias="promo")
    database = Database(settings.database_url)
    with database.session() as session:
        row_id = session.scalar(sa.select(Link.id).where(Link.alias == "promo"))
    database.dispose()
    assert_problem(client.simulate_get("/" + code_for_id(row_id)), 404)


@pytest.mark.parametrize("raw, reason", UNSAFE)
def test_unsafe_urls_are_422(client, raw, reason):
    problem = assert_problem(shorten(client, url=raw), 422)
    assert "url" in problem["errors"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/abc",
        "127.0.0.1/abc",
        "http://127.0.0.1:9999/",
        "http://2130706433/",
        "http://127.1/",
        "HTTP://127.0.0.1./x",
    ],
)
def test_links_to_the_shortener_itself_are_422(client, url):
    problem = assert_problem(shorten(client, url=url), 422)
    assert "this API itself" in problem["errors"]["url"][0]


def test_self_links_follow_the_public_host(make_client):
    client = make_client(public_base_url="https://BÜCHER.example")
    assert_problem(
        client.simulate_post("/links", json={"url": "xn--bcher-kva.example/x"}), 422
    )
    assert (
        client.simulate_post("/links", json={"url": "93.184.215.14/x"}).status_code
        == 201
    )


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "url"),
        ({"url": 5}, "url"),
        ({"url": "https://example.com/", "alias": "ab"}, "alias"),
        ({"url": "https://example.com/", "alias": "a/b"}, "alias"),
        ({"url": "https://example.com/", "alias": "x" * 65}, "alias"),
        ({"url": "https://example.com/", "alias": "abc\n"}, "alias"),
        ({"url": "https://example.com/", "alias": "abcdefg"}, "alias"),
        ({"url": "https://example.com/", "alias": "links"}, "alias"),
        ({"url": "https://example.com/", "alias": "Docs"}, "alias"),
        ({"url": "https://example.com/", "max_visits": 0}, "max_visits"),
        ({"url": "https://example.com/", "max_visits": 1.5}, "max_visits"),
        ({"url": "https://example.com/", "max_visits": "3"}, "max_visits"),
        ({"url": "https://example.com/", "expires_at": "tomorrow"}, "expires_at"),
        (
            {"url": "https://example.com/", "expires_at": "2000-01-01T00:00:00Z"},
            "expires_at",
        ),
        ({"url": "https://example.com/", "reuse": "perhaps"}, "reuse"),
        ({"url": "https://example.com/", "visits": 10}, "visits"),
    ],
)
def test_invalid_bodies_are_422(client, body, field):
    assert field in assert_problem(shorten(client, **body), 422)["errors"]


@pytest.mark.parametrize("alias", ["my-links", "notes2", "health_", "docsx", "x-y"])
def test_aliases_near_reserved_words_are_fine(client, alias):
    assert shorten(client, url="https://example.com/", alias=alias).status_code == 201


def test_null_optional_fields_are_accepted(client):
    result = shorten(
        client, url="https://example.com/", alias=None, expires_at=None, max_visits=None
    )
    assert result.status_code == 201


@pytest.mark.parametrize(
    "text, stored",
    [
        ("2999-01-01T00:00:00Z", "2999-01-01T00:00:00.000Z"),
        ("2999-01-01T00:00:00.250z", "2999-01-01T00:00:00.250Z"),
        ("2999-01-01T01:30:00+01:30", "2999-01-01T00:00:00.000Z"),
        ("2999-01-01", "2999-01-01T00:00:00.000Z"),
    ],
)
def test_expiry_is_iso_8601_and_stored_in_utc(client, text, stored):
    link = shorten(client, url="https://example.com/", expires_at=text).json
    assert link["expires_at"] == stored


def test_an_expiry_in_the_past_is_422(client):
    result = shorten(
        client, url="https://example.com/", expires_at="2000-01-01T00:00:00Z"
    )
    assert assert_problem(result, 422)["errors"] == {
        "expires_at": ["Must be in the future."]
    }


def test_naive_expiry_is_read_as_utc(client):
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    naive = (now + datetime.timedelta(days=1)).replace(microsecond=0)
    link = shorten(
        client, url="https://example.com/", expires_at=naive.isoformat()
    ).json
    assert link["expires_at"] == naive.isoformat() + ".000Z"


def test_non_json_post_is_415(client):
    result = client.simulate_post(
        "/links",
        body="url=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(result, 415)


def test_malformed_json_is_400(client):
    result = client.simulate_post(
        "/links", body='{"url": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(result, 400)


def test_wrong_method_is_405(client):
    assert_problem(client.simulate_put("/links", json={}), 405)
    assert_problem(client.simulate_post("/abc-def", json={}), 405)


def test_redirect_is_302_and_counts_the_visit(client):
    code = shorten(client, url="https://example.com/a%20b?q=%C3%BC").json["code"]
    result = client.simulate_get("/" + code)
    assert result.status_code == 302
    assert result.headers["location"] == "https://example.com/a%20b?q=%C3%BC"
    assert client.simulate_get("/links/" + code).json["visits"] == 1


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_status_follows_the_setting(make_client, status):
    client = make_client(redirect_status=status)
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    assert client.simulate_get("/" + code).status_code == status


def test_an_unsupported_redirect_status_stops_the_app(settings):
    with pytest.raises(ValueError, match="REDIRECT_STATUS"):
        create_app(dataclasses.replace(settings, redirect_status=303))


@pytest.mark.parametrize(
    "code",
    [
        "0000000",
        "ZZZZZZZ",
        "nosuchalias",
        "abc",
        "ab",
        "a.b",
        "%E2%82%AC",
        "x" * 65,
    ],
)
def test_unknown_codes_are_404(client, code):
    assert_problem(client.simulate_get("/" + code), 404)
    assert_problem(client.simulate_get(f"/links/{code}"), 404)
    assert_problem(client.simulate_get(f"/links/{code}/visits"), 404)
    assert_problem(client.simulate_delete(f"/links/{code}"), 404)


def test_used_up_link_is_410(client):
    code = shorten(client, url="https://example.com/", max_visits=2).json["code"]
    assert client.simulate_get("/" + code).status_code == 302
    assert client.simulate_get("/" + code).status_code == 302
    problem = assert_problem(client.simulate_get("/" + code), 410)
    assert "maximum" in problem["detail"]
    link = client.simulate_get("/links/" + code).json
    assert (link["visits"], link["max_visits"]) == (2, 2)  # refused visits do not count


def test_expired_link_is_410(client):
    code = shorten(client, url="https://example.com/", expires_at=in_seconds(2)).json[
        "code"
    ]
    statuses = []

    def expired() -> bool:
        statuses.append(client.simulate_get("/" + code).status_code)
        return statuses[-1] == 410

    wait_until(expired, timeout=10, what="the link to expire")
    assert statuses[0] == 302 and set(statuses) == {302, 410}
    assert "expired" in assert_problem(client.simulate_get("/" + code), 410)["detail"]
    assert client.simulate_get("/links/" + code).json["visits"] == statuses.count(302)


def test_get_link_shows_its_settings_and_count(client):
    created = shorten(
        client,
        url="https://example.com/",
        max_visits=10,
        expires_at="2999-01-01T00:00:00+02:00",
    ).json
    client.simulate_get("/" + created["code"])
    link = client.simulate_get("/links/" + created["code"])
    assert link.status_code == 200
    assert link.json == dict(created, visits=1)
    assert link.json["expires_at"] == "2998-12-31T22:00:00.000Z"


def test_visits_record_referrer_agent_and_a_salted_hash(make_client):
    client = make_client(visit_salt="pepper")
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    client.simulate_get(
        "/" + code,
        remote_addr="203.0.113.9",
        headers={"Referer": "https://news.example/", "User-Agent": "curl/8"},
    )
    client.simulate_get("/" + code, remote_addr="203.0.113.9")
    result = client.simulate_get(f"/links/{code}/visits")
    assert result.status_code == 200
    second, first = result.json["items"]
    assert first["referrer"] == "https://news.example/"
    assert first["user_agent"] == "curl/8"
    assert second["referrer"] is None
    expected = hashlib.sha256(b"pepper" + b"203.0.113.9").hexdigest()
    assert first["visitor"] == second["visitor"] == expected
    assert "203.0.113.9" not in result.text
    assert result.json["next"] is None


def test_behind_a_trusted_proxy_the_visitor_is_the_forwarded_client(make_client):
    client = make_client(visit_salt="pepper", trusted_proxies="10.0.0.0/24")
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    client.simulate_get("/" + code, remote_addr="10.0.0.2", headers=forwarded)
    client.simulate_get("/" + code, remote_addr="192.0.2.4", headers=forwarded)
    second, first = client.simulate_get(f"/links/{code}/visits").json["items"]
    assert first["visitor"] == hashlib.sha256(b"pepper203.0.113.9").hexdigest()
    assert second["visitor"] == hashlib.sha256(b"pepper192.0.2.4").hexdigest()


@pytest.mark.parametrize("max_visits", [None, 100])  # batched, counted
def test_visits_keep_the_referrers_scheme_host_and_path_only(client, max_visits):
    limit = {} if max_visits is None else {"max_visits": max_visits}
    code = shorten(client, url="example.com", **limit).json["code"]
    sent = [
        "https://mail.example/inbox/42?token=s3cret&session=abc#msg-7",
        "https://ann:pw@intranet.example:8443/wiki/page?q=salaries",
        "https://search.example/?q=private+terms",
        "https://news.example/story",
        "http://[::1/broken?token=s3cret",
    ]
    for referer in sent:
        client.simulate_get("/" + code, headers={"Referer": referer})
    visits = client.simulate_get(f"/links/{code}/visits").json["items"]
    assert [visit["referrer"] for visit in reversed(visits)] == [
        "https://mail.example/inbox/42",
        "https://intranet.example:8443/wiki/page",
        "https://search.example/",
        "https://news.example/story",
        None,  # not a URL: nothing of it is kept
    ]


def test_the_visitor_hash_needs_the_salt(make_client):
    client = make_client()  # no VISIT_SALT: a random one
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    client.simulate_get("/" + code, remote_addr="203.0.113.9")
    visitor = client.simulate_get(f"/links/{code}/visits").json["items"][0]["visitor"]
    assert visitor != hashlib.sha256(b"203.0.113.9").hexdigest()
    assert len(visitor) == 64


def test_long_referrer_and_agent_are_clipped(client):
    code = shorten(client, url="example.com").json["code"]
    client.simulate_get(
        "/" + code,
        headers={
            "Referer": "https://r.example/" + "r" * 5000,
            "User-Agent": "u" * 5000,
        },
    )
    visit = client.simulate_get(f"/links/{code}/visits").json["items"][0]
    assert len(visit["referrer"]) == 1024 and len(visit["user_agent"]) == 512


def test_visits_are_paginated_newest_first(client):
    code = shorten(client, url="example.com").json["code"]
    for n in range(7):
        client.simulate_get("/" + code, headers={"User-Agent": f"agent-{n}"})
    seen, path = [], f"/links/{code}/visits?limit=3"
    while path:
        page = client.simulate_get(path)
        assert page.status_code == 200
        assert len(page.json["items"]) <= 3
        seen += [visit["user_agent"] for visit in page.json["items"]]
        path = page.json["next"]
    assert seen == [f"agent-{n}" for n in reversed(range(7))]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=501", "limit=x", "before=0", "before=x"]
)
def test_bad_visit_queries_are_422(client, query):
    code = shorten(client, url="example.com").json["code"]
    assert_problem(client.simulate_get(f"/links/{code}/visits?{query}"), 422)


def test_delete_is_204_then_404_and_the_code_is_never_reused(client):
    first = shorten(client, url="https://example.com/").json["code"]
    client.simulate_get("/" + first)
    result = client.simulate_delete("/links/" + first)
    assert result.status_code == 204
    assert result.text == ""
    assert_problem(client.simulate_get("/" + first), 404)
    assert_problem(client.simulate_get("/links/" + first), 404)
    assert_problem(client.simulate_get(f"/links/{first}/visits"), 404)
    assert_problem(client.simulate_delete("/links/" + first), 404)
    later = {shorten(client, url="https://example.com/").json["code"] for _ in range(5)}
    assert first not in later


def test_a_deleted_alias_is_never_handed_out_again(client):
    shorten(client, url="https://example.com/", alias="promo")
    assert client.simulate_delete("/links/promo").status_code == 204
    assert_problem(client.simulate_get("/promo"), 404)
    assert_problem(shorten(client, url="https://example.com/", alias="promo"), 409)


def test_a_generated_code_equal_to_a_reserved_word_is_skipped(client, settings):
    # "collatz" is seven base62 characters, so some id would get it as its code.
    target = id_for_code("collatz")
    assert target is not None and code_for_id(target) == "collatz"
    database = Database(settings.database_url)
    with database.session() as session:  # make the next id the one that maps to it
        session.add(
            Link(
                id=target - 1,
                url="https://example.com/",
                visits=0,
                deleted=True,
                created_at=datetime.datetime(2020, 1, 1),
            )
        )
        if database.engine.dialect.name == "postgresql":  # a sequence does not follow
            session.execute(
                sa.text("SELECT setval(pg_get_serial_sequence('links', 'id'), :n)"),
                {"n": target - 1},
            )
    database.dispose()
    link = shorten(client, url="https://example.com/next").json
    assert link["code"] == code_for_id(target + 1)
    assert_problem(client.simulate_get("/links/collatz"), 404)


def test_no_route_of_the_app_can_be_shadowed_by_a_code_or_alias(client):
    app = client.app
    paths = [route.path for route in inspect.inspect_routes(app)]
    paths += [route.prefix for route in inspect.inspect_static_routes(app)]
    first_segments = {path.strip("/").split("/")[0] for path in paths}
    first_segments.discard("{code}")
    assert {"health", "ready", "openapi.json", "docs", "links"} <= first_segments
    assert [segment for segment in first_segments if not is_reserved(segment)] == []


def test_openapi_documents_the_shortener(client):
    paths = client.simulate_get("/openapi.json").json["paths"]
    assert set(paths["/links"]) == {"get", "post"}
    assert set(paths["/links/{code}"]) == {"get", "patch", "delete"}
    assert set(paths["/links/{code}/stats"]) == {"get"}
    assert set(paths["/links/{code}/qr"]) == {"get"}
    item = paths["/links/{code}"]
    for method in ("patch", "delete"):
        assert "If-Match" in [p["name"] for p in item[method]["parameters"]]
        assert "412" in item[method]["responses"]
    assert "ETag" in item["get"]["responses"]["200"]["headers"]
    assert "ETag" in item["patch"]["responses"]["200"]["headers"]
    qr = paths["/links/{code}/qr"]["get"]
    assert set(qr["responses"]["200"]["content"]) == {"image/png", "image/svg+xml"}
    assert qr["security"] == []  # public
    listing = [p["name"] for p in paths["/links"]["get"]["parameters"]]
    assert listing == ["limit", "before", "q", "expired", "spent"]
    assert "410" in paths["/{code}"]["get"]["responses"]
    assert "302" in paths["/{code}"]["get"]["responses"]
    assert "409" in paths["/links"]["post"]["responses"]
