"""Rate limits on the API: the 429, its headers, who shares a bucket."""

import dataclasses
import re

import pytest

from api.app import create_app
from core.settings import Settings
from db.errors import Unavailable
from db.ratelimit import RateLimitStore
from tests.support.problems import assert_problem

LIMIT = re.compile(r'\A"(?P<name>[a-z]+)";r=(?P<r>\d+);t=(?P<t>\d+)\Z')


def shorten(client, **kwargs):
    return client.simulate_post(
        "/links", json={"url": "https://example.com/"}, **kwargs
    )


def limit_of(result) -> dict:
    match = LIMIT.match(result.headers["ratelimit"])
    assert match, result.headers["ratelimit"]
    return {"name": match["name"], "r": int(match["r"]), "t": int(match["t"])}


def test_off_by_default(client):
    for _ in range(5):
        result = shorten(client)
        assert result.status_code == 201
        assert "ratelimit" not in result.headers


def test_link_creation_gets_429_with_the_headers(make_client):
    client = make_client(rate_limit="3/minute")
    answers = [shorten(client) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert all(a.headers["ratelimit-policy"] == '"links";q=3;w=60' for a in answers)
    assert [limit_of(a)["r"] for a in answers] == [2, 1, 0]
    assert limit_of(answers[0])["t"] == 20
    refused = shorten(client)
    problem = assert_problem(refused, 429)
    assert problem["title"] == "Too Many Requests"
    assert "3 per 60 s" in problem["detail"]
    assert refused.headers["ratelimit-policy"] == '"links";q=3;w=60'
    wait = int(refused.headers["retry-after"])
    assert 18 <= wait <= 20
    assert limit_of(refused) == {"name": "links", "r": 0, "t": wait}
    # Reads and other writes are not limited in the links scope.
    assert client.simulate_get("/health").status_code == 200
    assert "ratelimit" not in client.simulate_get("/health").headers
    note = client.simulate_post("/notes", json={"title": "free"})
    assert note.status_code == 201 and "ratelimit" not in note.headers


def test_bulk_creation_counts_as_one_request(make_client):
    client = make_client(rate_limit="2/minute")
    links = [{"url": f"https://example.com/{n}"} for n in range(50)]
    first = client.simulate_post("/links/bulk", json={"links": links})
    assert first.status_code == 207 and limit_of(first)["r"] == 1
    assert shorten(client).status_code == 201
    assert_problem(client.simulate_post("/links/bulk", json={"links": links}), 429)


def test_anonymous_clients_are_told_apart_by_address(make_client):
    client = make_client(rate_limit="1/minute", auth="off")
    assert shorten(client, remote_addr="192.0.2.1").status_code == 201
    assert_problem(shorten(client, remote_addr="192.0.2.1"), 429)
    assert shorten(client, remote_addr="192.0.2.2").status_code == 201


def test_an_api_key_names_the_client_and_an_invented_header_does_not(make_client):
    first = make_client(rate_limit="1/minute")
    second = make_client(rate_limit="1/minute")
    same_address = {"remote_addr": "192.0.2.1"}
    assert shorten(first, **same_address).status_code == 201
    assert shorten(second, **same_address).status_code == 201
    assert_problem(shorten(first, **same_address), 429)
    # A header of the client's choosing makes no bucket of its own.
    invented = {"X-API-Key": "k2", "X-Forwarded-For": "192.0.2.9"}
    assert_problem(shorten(first, headers=invented, **same_address), 429)


def test_collatz_is_limited_per_client_by_default(make_client):
    client = make_client(collatz_rate_limit="2/minute", scope=None)
    for _ in range(2):  # a refused n costs a token too: it reached the app
        assert_problem(client.simulate_get("/collatz", params={"n": "0"}), 422)
    limited = client.simulate_get("/collatz", params={"n": "10"})
    assert_problem(limited, 429)
    assert limited.headers["ratelimit-policy"] == '"collatz";q=2;w=60'
    assert client.simulate_get("/collatz/27").status_code == 200  # not limited
    assert Settings().collatz_rate_limit == "60/minute"


def test_the_writes_scope_limits_every_write(make_client):
    client = make_client(rate_limit="2/minute", rate_limit_scope="writes")
    note = client.simulate_post("/notes", json={"title": "one"})
    assert note.headers["ratelimit-policy"] == '"writes";q=2;w=60'
    note_id = note.json["id"]
    assert client.simulate_get(f"/notes/{note_id}").status_code == 200  # a read
    assert client.simulate_delete(f"/notes/{note_id}").status_code == 204
    assert_problem(client.simulate_post("/primes", json={"primes": [7]}), 429)
    assert_problem(client.simulate_post("/links", json={"url": "example.com"}), 429)


def test_workers_share_the_buckets(make_client):
    # Two apps on one database stand for two gunicorn workers.
    first = make_client(rate_limit="2/minute")
    second = make_client(rate_limit="2/minute", key=first.api_key)
    assert shorten(first).status_code == 201
    assert shorten(second).status_code == 201
    assert_problem(shorten(first), 429)
    assert_problem(shorten(second), 429)


def test_a_database_failure_lets_requests_through(make_client, monkeypatch):
    client = make_client(rate_limit="1/minute")

    def down(*args, **kwargs):
        raise Unavailable("SQL database unavailable")

    monkeypatch.setattr(RateLimitStore, "take", down)
    assert shorten(client).status_code == 201
    assert shorten(client).status_code == 201


@pytest.mark.parametrize(
    "overrides, setting",
    [
        ({"rate_limit": "lots"}, "RATE_LIMIT"),
        ({"rate_limit": "5/minute", "rate_limit_scope": "reads"}, "RATE_LIMIT_SCOPE"),
    ],
)
def test_bad_settings_stop_the_app(settings, overrides, setting):
    with pytest.raises(ValueError, match=setting):
        create_app(dataclasses.replace(settings, **overrides))


def test_openapi_documents_429_where_it_can_happen(make_client):
    paths = (
        make_client(rate_limit="5/second").simulate_get("/openapi.json").json["paths"]
    )
    limited = paths["/links"]["post"]["responses"]["429"]
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(limited["headers"])
    assert "429" in paths["/links/bulk"]["post"]["responses"]
    assert "429" not in paths["/notes"]["post"]["responses"]
    assert "429" not in paths["/links/{code}"]["get"]["responses"]
    unlimited = make_client().simulate_get("/openapi.json").json["paths"]
    assert "429" not in unlimited["/links"]["post"]["responses"]


def test_behind_a_trusted_proxy_each_forwarded_client_has_a_bucket(make_client):
    client = make_client(rate_limit="1/minute", auth="off", trusted_proxies="10.0.0.2")

    def via_balancer(forwarded_for):
        return shorten(
            client,
            remote_addr="10.0.0.2",
            headers={"X-Forwarded-For": forwarded_for},
        )

    assert via_balancer("192.0.2.1").status_code == 201
    assert via_balancer("192.0.2.2").status_code == 201
    assert_problem(via_balancer("192.0.2.1"), 429)
    # A client that writes its own header still counts by the address the
    # balancer saw (the right-most entry), not by the one it invented.
    assert_problem(via_balancer("198.51.100.9, 192.0.2.2"), 429)
    # From an untrusted peer the header is ignored: the peer's bucket.
    spoofed = {"X-Forwarded-For": "198.51.100.10"}
    assert shorten(client, remote_addr="192.0.2.50", headers=spoofed).status_code == 201
    assert_problem(shorten(client, remote_addr="192.0.2.50", headers=spoofed), 429)
