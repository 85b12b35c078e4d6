"""``GET /links``: newest first, cursor paging, search and filters."""

import datetime
from urllib.parse import quote

import pytest

from db.links import LinkStore
from tests.support.problems import assert_problem


def shorten(client, **body) -> dict:
    result = client.simulate_post("/links", json=body)
    assert result.status_code == 201, result.text
    return result.json


def listed(client, query="") -> list:
    """The codes of every page of ``GET /links?query``, following ``next``."""
    codes, path = [], "/links" + (f"?{query}" if query else "")
    while path:
        page = client.simulate_get(path)
        assert page.status_code == 200, page.text
        codes += [link["code"] for link in page.json["items"]]
        path = page.json["next"]
    return codes


def test_links_are_listed_newest_first_as_get_shows_them(client):
    made = [shorten(client, url=f"https://example.com/{n}") for n in range(3)]
    client.simulate_get("/" + made[0]["code"])
    page = client.simulate_get("/links")
    assert page.status_code == 200
    assert page.json["next"] is None
    assert [link["code"] for link in page.json["items"]] == [
        link["code"] for link in reversed(made)
    ]
    assert page.json["items"][-1] == dict(made[0], visits=1)


def test_an_empty_list(client):
    assert client.simulate_get("/links").json == {"items": [], "next": None}


def test_pages_follow_next_and_links_made_meanwhile_shift_nothing(client):
    made = [shorten(client, url=f"https://example.com/{n}")["code"] for n in range(7)]
    first = client.simulate_get("/links?limit=3").json
    assert [link["code"] for link in first["items"]] == made[:3:-1]
    assert first["next"].startswith("/links?")
    newer = [shorten(client, url=f"https://example.org/{n}")["code"] for n in range(3)]
    rest = []
    path = first["next"]
    while path:
        page = client.simulate_get(path).json
        assert len(page["items"]) <= 3
        rest += [link["code"] for link in page["items"]]
        path = page["next"]
    assert rest == made[3::-1]  # none twice, none of the newer ones
    assert listed(client, "limit=2") == newer[::-1] + made[::-1]


def test_deleted_links_are_never_listed(client):
    kept = shorten(client, url="https://example.com/kept")["code"]
    gone = shorten(client, url="https://example.com/gone", alias="gone-link")["code"]
    assert client.simulate_delete("/links/" + gone).status_code == 204
    assert listed(client) == [kept]
    assert listed(client, "q=gone") == []


def test_search_matches_url_or_alias_in_any_case_or_a_whole_code(client):
    spring = shorten(client, url="https://shop.example/Spring-Sale?ref=mail")["code"]
    alias = shorten(client, url="https://example.org/x", alias="Summer-2025")["code"]
    other = shorten(client, url="https://example.net/")["code"]
    assert listed(client, "q=spring-sale") == [spring]
    assert listed(client, "q=SHOP.example") == [spring]
    assert listed(client, "q=summer") == [alias]
    assert listed(client, "q=example") == [other, alias, spring]
    assert listed(client, f"q={other}") == [other]  # its generated code
    assert listed(client, "q=nothing-like-it") == []


@pytest.mark.parametrize("text", ["%", "_", "50%25_off", "%25_"])
def test_search_wildcards_stand_for_themselves(client, text):
    plain = shorten(client, url="https://example.com/50-off")["code"]
    literal = shorten(client, url="https://example.com/50%25_off")["code"]
    assert listed(client, "q=" + quote(text)) == [literal]
    assert plain in listed(client, "q=50")


def test_search_escapes_backslashes(client):
    link = shorten(client, url="https://example.com/a\\b?c=d/e")  # \ stored as %5C
    assert link["url"] == "https://example.com/a%5Cb?c=d/e"
    assert listed(client, "q=" + quote("a%5Cb?c=d/")) == [link["code"]]
    shorten(client, url="https://example.com/ab")
    assert listed(client, "q=" + quote("a\\b")) == []


def test_expired_filters(client, settings, database):
    # Made by a store whose clock is two days back: its one-day expiry is past.
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    store = LinkStore(database, "salt", clock=lambda: past, flush_interval=0)
    expired = store.create(
        "https://example.com/old", expires_at=past + datetime.timedelta(days=1)
    ).code
    later = shorten(client, url="https://example.com/later", expires_at="2999-01-01")
    never = shorten(client, url="https://example.com/never")
    assert listed(client, "expired=true") == [expired]
    assert listed(client, "expired=false") == [never["code"], later["code"]]
    assert listed(client) == [never["code"], later["code"], expired]


def test_spent_filters_count_visits_exactly(client):
    spent = shorten(client, url="https://example.com/once", max_visits=1)["code"]
    fresh = shorten(client, url="https://example.com/twice", max_visits=2)["code"]
    free = shorten(client, url="https://example.com/free")["code"]
    for code in (spent, fresh, free):
        assert client.simulate_get("/" + code).status_code == 302
    assert listed(client, "spent=true") == [spent]
    assert listed(client, "spent=false") == [free, fresh]
    assert listed(client, "spent=true&expired=false") == [spent]
    assert listed(client, "spent=true&q=twice") == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "before=0",
        "before=x",
        "q=",
        "q=" + "x" * 201,
        "expired=perhaps",
        "spent=2",
    ],
)
def test_bad_list_queries_are_422(client, query):
    problem = assert_problem(client.simulate_get("/links?" + query), 422)
    assert query.split("=")[0] in problem["errors"]


def test_listing_needs_a_read_key(make_client):
    assert_problem(make_client(scope=None).simulate_get("/links"), 401)
    assert make_client(scope="read").simulate_get("/links").status_code == 200
