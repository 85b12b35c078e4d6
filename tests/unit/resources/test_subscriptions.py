"""Outbound subscriptions through HTTP: /subscriptions and its items."""

import pytest
from openapi_spec_validator import validate as validate_spec

from core.signatures import decode_secret
from db.subscriptions import SubscriptionStore
from tests.support.problems import assert_problem

URL = "https://hooks.example.com/notes"


@pytest.fixture
def store(database):
    """The subscription store of the client's database, beside the API."""
    return SubscriptionStore(database)


def create(client, url=URL, events=("note.created",)):
    return client.simulate_post(
        "/subscriptions", json={"url": url, "events": list(events)}
    )


def test_create_answers_201_with_location_and_the_secret_once(client):
    result = create(client, events=["note.created", "note.deleted"])
    assert result.status_code == 201
    body = result.json
    assert result.headers["location"] == f"/subscriptions/{body['id']}"
    assert body["url"] == URL
    assert body["events"] == ["note.created", "note.deleted"]
    assert body["active"] is True and body["failure_count"] == 0
    assert body["secret"].startswith("whsec_")
    assert len(decode_secret(body["secret"])) == 32
    shown = client.simulate_get(result.headers["location"]).json
    assert "secret" not in shown
    assert shown["id"] == body["id"]


def test_every_subscription_gets_its_own_secret(client):
    assert create(client).json["secret"] != create(client).json["secret"]


def test_wildcards_and_duplicates(client):
    body = create(client, events=["note.*", "*", "note.*"]).json
    assert body["events"] == ["note.*", "*"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"events": ["note.created"]}, "url"),
        ({"url": URL}, "events"),
        ({"url": URL, "events": []}, "events"),
        ({"url": URL, "events": ["note.exploded"]}, "events"),
        ({"url": URL, "events": "note.created"}, "events"),
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
        ({"url": "javascript:alert(1)", "events": ["*"]}, "url"),
        ({"url": "http:///no-host", "events": ["*"]}, "url"),
        ({"url": "https://user:pw@example.com/", "events": ["*"]}, "url"),
        ({"url": "https://example.com:99999/", "events": ["*"]}, "url"),
        ({"url": "https://example.com/a b", "events": ["*"]}, "url"),
        ({"url": "/relative", "events": ["*"]}, "url"),
        ({"url": "https://example.com/" + "x" * 2048, "events": ["*"]}, "url"),
        ({"url": URL, "events": ["*"], "secret": "mine"}, "secret"),
    ],
)
def test_invalid_subscriptions_are_422_with_the_field(client, body, field):
    problem = assert_problem(client.simulate_post("/subscriptions", json=body), 422)
    assert field in problem["errors"]


def test_list_is_paged_and_shows_no_secrets(client):
    ids = [create(client).json["id"] for _ in range(3)]
    first = client.simulate_get("/subscriptions", params={"limit": 2}).json
    assert [s["id"] for s in first["items"]] == ids[:2]
    second = client.simulate_get(first["next"]).json
    assert [s["id"] for s in second["items"]] == ids[2:]
    assert second["next"] is None
    assert all("secret" not in s for s in first["items"] + second["items"])


def test_delete_then_the_subscription_is_gone(client):
    location = create(client).headers["location"]
    assert client.simulate_delete(location).status_code == 204
    assert_problem(client.simulate_get(location), 404)
    assert_problem(client.simulate_delete(location), 404)
    assert_problem(client.simulate_get(location + "/deliveries"), 404)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_or_malformed_id_is_404(client, method):
    for path in ("/subscriptions/999", "/subscriptions/abc"):
        assert_problem(
            client.simulate_request(method, path, json={"active": True}), 404
        )


def test_patch_changes_url_and_events(client):
    location = create(client).headers["location"]
    changed = client.simulate_patch(
        location, json={"url": "http://other.example/h", "events": ["note.updated"]}
    )
    assert changed.status_code == 200
    assert changed.json["url"] == "http://other.example/h"
    assert changed.json["events"] == ["note.updated"]


@pytest.mark.parametrize(
    "body", [{}, {"active": "yes"}, {"url": "ftp://x/"}, {"failure_count": 0}]
)
def test_invalid_patch_is_422(client, body):
    location = create(client).headers["location"]
    assert_problem(client.simulate_patch(location, json=body), 422)


def test_a_disabled_subscription_is_re_enabled_with_patch(client, store):
    subscription_id = create(client).json["id"]
    for _ in range(3):
        store.record_delivery(subscription_id, delivered=False, max_failures=3)
    disabled = client.simulate_get(f"/subscriptions/{subscription_id}").json
    assert disabled["active"] is False
    assert disabled["failure_count"] == 3
    assert disabled["disabled_at"]
    enabled = client.simulate_patch(
        f"/subscriptions/{subscription_id}", json={"active": True}
    )
    assert enabled.status_code == 200
    assert enabled.json["active"] is True
    assert enabled.json["failure_count"] == 0
    assert enabled.json["disabled_at"] is None


def test_pause_with_patch_active_false(client):
    location = create(client).headers["location"]
    paused = client.simulate_patch(location, json={"active": False}).json
    assert paused["active"] is False


def test_attempts_are_listed_newest_first(client, store):
    subscription_id = create(client).json["id"]
    store.record_attempt(
        subscription_id, "evt-1", "note.created", 1, 503, 12.5, "HTTP 503", False
    )
    store.record_attempt(
        subscription_id,
        "evt-1",
        "note.created",
        2,
        None,
        3000.0,
        "timed out (limit 3s)",
        False,
    )
    store.record_attempt(
        subscription_id, "evt-1", "note.created", 3, 204, 8.25, None, True
    )
    page = client.simulate_get(
        f"/subscriptions/{subscription_id}/deliveries", params={"limit": 2}
    ).json
    assert [
        (a["attempt"], a["status_code"], a["delivered"]) for a in page["items"]
    ] == [(3, 204, True), (2, None, False)]
    assert page["items"][1]["error"] == "timed out (limit 3s)"
    assert page["items"][0]["latency_ms"] == 8.25
    rest = client.simulate_get(page["next"]).json
    assert [a["attempt"] for a in rest["items"]] == [1]
    assert rest["next"] is None


def test_store_matching_follows_events_and_active(store):
    created = store.create("http://a/", ["note.created"], "whsec_AAAA")
    every = store.create("http://b/", ["note.*"], "whsec_AAAA")
    paused = store.create("http://c/", ["*"], "whsec_AAAA")
    store.update(paused.id, active=False)
    assert [s.id for s in store.matching("note.created")] == [created.id, every.id]
    assert [s.id for s in store.matching("note.deleted")] == [every.id]


def test_openapi_document_is_valid_and_describes_the_webhook_routes(client):
    spec = client.simulate_get("/openapi.json").json
    validate_spec(spec)
    for path in (
        "/webhooks/{source}",
        "/webhooks/deliveries",
        "/subscriptions",
        "/subscriptions/{subscription_id}",
        "/subscriptions/{subscription_id}/deliveries",
    ):
        assert path in spec["paths"]
    assert "202" in spec["paths"]["/webhooks/{source}"]["post"]["responses"]
