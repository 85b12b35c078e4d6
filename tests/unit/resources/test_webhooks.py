"""Inbound webhooks over HTTP: /webhooks/{source} and /webhooks/deliveries."""

import json
import threading
import time
import urllib.parse

import pytest

from core import signatures
from db.sql import Database
from db.stores import open_stores
from db.webhooks import WebhookStore
from tests.support.problems import assert_problem
from tests.support.processes import wait_until
from workers.webhooks.handlers import HandlerContext
from workers.webhooks.handlers import registry
from workers.webhooks.runner import HandlerRunner

GITHUB_SECRET = "It's a Secret to Everybody"
ACME_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SOURCES = json.dumps(
    {
        "github": {
            "scheme": "github",
            "secret": GITHUB_SECRET,
            "verify_token": "let-me-in",
        },
        "acme": {"scheme": "standard", "secret": ACME_SECRET},
    }
)
ISSUE = {
    "action": "opened",
    "issue": {
        "title": "Crash on start",
        "body": "It crashes.\nEvery time.",
        "html_url": "https://github.com/o/r/issues/7",
    },
}


@pytest.fixture
def client(make_client):
    return make_client(webhook_sources=SOURCES)


@pytest.fixture
def stores(settings):
    """The test database's stores for the handlers; closed after the runners."""
    opened = open_stores(settings)
    yield opened
    opened.close()


@pytest.fixture
def runner(settings, stores):  # noqa: ARG001 (closed after the runners stop)
    """Factory: run the real handler runner in a thread on the test database."""
    running = []

    def start(context: HandlerContext) -> None:
        database = Database(settings.database_url)
        runner = HandlerRunner(
            WebhookStore(database), registry, context, poll_interval=0.02
        )
        stop = threading.Event()
        thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread, database))

    yield start
    for stop, thread, database in running:
        stop.set()
        thread.join(10)
        database.dispose()


def post_github(
    client,
    payload,
    event="ping",
    delivery="d-1",
    secret=GITHUB_SECRET,
    body=None,
    headers=None,
):
    body = json.dumps(payload).encode() if body is None else body
    sent = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signatures.github_sign(secret, body),
    }
    sent.update(headers or {})
    return client.simulate_post(
        "/webhooks/github",
        body=body,
        headers={k: v for k, v in sent.items() if v is not None},
    )


def post_standard(
    client, payload, msg_id="msg_1", timestamp=None, secret=ACME_SECRET, headers=None
):
    body = json.dumps(payload).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    sent = {"Content-Type": "application/json"}
    sent.update(signatures.standard_headers(secret, msg_id, timestamp, body))
    sent.update(headers or {})
    return client.simulate_post(
        "/webhooks/acme",
        body=body,
        headers={k: v for k, v in sent.items() if v is not None},
    )


def deliveries(client, **params):
    result = client.simulate_get("/webhooks/deliveries", params=params)
    assert result.status_code == 200
    return result.json["items"]


# Accepted deliveries


def test_signed_github_delivery_is_stored_and_accepted(client):
    result = post_github(client, {"zen": "Keep it simple.", "hook_id": 42})
    assert result.status_code == 202
    assert result.json["id"] == "d-1"
    assert result.json["source"] == "github"
    assert result.json["event"] == "ping"
    assert result.json["status"] == "pending"
    [stored] = deliveries(client)
    assert stored["id"] == "d-1" and stored["status"] == "pending"
    assert stored["received_at"].endswith("Z")


def test_signed_standard_delivery_is_stored_and_accepted(client):
    result = post_standard(client, {"type": "ping", "data": {}})
    assert result.status_code == 202
    assert result.json["id"] == "msg_1"
    assert result.json["event"] == "ping"
    assert [d["source"] for d in deliveries(client)] == ["acme"]


def test_github_form_encoded_payload_is_accepted(client):
    body = urllib.parse.urlencode({"payload": json.dumps({"zen": "x"})}).encode()
    result = post_github(
        client,
        None,
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert result.status_code == 202


def test_unknown_event_is_accepted_stored_and_ignored(client):
    result = post_github(client, {"ref": "main"}, event="push")
    assert result.status_code == 202
    assert result.json["status"] == "ignored"
    assert "push" in result.json["outcome"]["ignored"]
    assert deliveries(client, status="ignored")[0]["id"] == "d-1"


def test_same_delivery_id_twice_is_stored_once_and_answered_200(client):
    first = post_github(client, {"zen": "a"})
    second = post_github(client, {"zen": "a"})
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json == first.json
    assert len(deliveries(client)) == 1


def test_delivery_ids_are_unique_per_source_not_globally(client):
    assert post_github(client, {}, delivery="same").status_code == 202
    assert post_standard(client, {"type": "ping"}, msg_id="same").status_code == 202
    assert len(deliveries(client)) == 2


# Refused deliveries: nothing is stored


@pytest.mark.parametrize(
    "case", ["wrong secret", "tampered body", "missing signature", "sha1 signature"]
)
def test_github_bad_signature_is_401_and_nothing_is_stored(client, case):
    payload = {"zen": "x"}
    body = json.dumps(payload).encode()
    if case == "wrong secret":
        result = post_github(client, payload, secret="guess")
    elif case == "tampered body":
        good = signatures.github_sign(GITHUB_SECRET, body)
        result = post_github(
            client, None, body=body + b" ", headers={"X-Hub-Signature-256": good}
        )
    elif case == "missing signature":
        result = post_github(client, payload, headers={"X-Hub-Signature-256": None})
    else:
        result = post_github(
            client, payload, headers={"X-Hub-Signature-256": "sha1=00"}
        )
    assert_problem(result, 401)
    assert deliveries(client) == []


@pytest.mark.parametrize(
    "case",
    [
        "wrong secret",
        "stale",
        "future",
        "missing id",
        "missing timestamp",
        "missing signature",
    ],
)
def test_standard_bad_signature_is_401_and_nothing_is_stored(client, case):
    payload = {"type": "ping"}
    now = int(time.time())
    if case == "wrong secret":
        result = post_standard(client, payload, secret=signatures.generate_secret())
    elif case == "stale":
        result = post_standard(client, payload, timestamp=now - 6 * 60)
    elif case == "future":
        result = post_standard(client, payload, timestamp=now + 6 * 60)
    else:
        header = "webhook-" + case.split()[1]
        result = post_standard(client, payload, headers={header: None})
    assert_problem(result, 401)
    assert deliveries(client) == []


def test_unknown_source_is_404_and_nothing_is_stored(client):
    body = b'{"zen": "x"}'
    result = client.simulate_post(
        "/webhooks/gitlab",
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "d-9",
            "X-Hub-Signature-256": signatures.github_sign(GITHUB_SECRET, body),
        },
    )
    assert_problem(result, 404)
    assert deliveries(client) == []


def test_signed_but_malformed_json_is_400(client):
    assert_problem(post_github(client, None, body=b'{"zen": '), 400)
    assert deliveries(client) == []


@pytest.mark.parametrize("header", ["X-GitHub-Delivery", "X-GitHub-Event"])
def test_github_delivery_without_id_or_event_is_400(client, header):
    assert_problem(post_github(client, {}, headers={header: None}), 400)


def test_standard_payload_without_a_type_is_400(client):
    assert_problem(post_standard(client, {"data": {}}), 400)


def test_signed_non_json_media_is_415(client):
    result = post_github(
        client, None, body=b"zen", headers={"Content-Type": "text/plain"}
    )
    assert_problem(result, 415)


def test_body_over_the_limit_is_413(make_client):
    client = make_client(webhook_sources=SOURCES, max_body_bytes=100)
    assert_problem(post_github(client, {"zen": "x" * 200}), 413)


def test_post_to_the_deliveries_list_is_405(client):
    assert_problem(client.simulate_post("/webhooks/deliveries", json={}), 405)


# Hub verification


def verify(client, source="github", **params):
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "let-me-in",
        "hub.challenge": "1158201444",
    }
    query.update(params)
    return client.simulate_get(
        f"/webhooks/{source}", params={k: v for k, v in query.items() if v is not None}
    )


def test_verification_echoes_the_challenge_as_text(client):
    result = verify(client)
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/plain")
    assert result.text == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.verify_token": "wrong"},
        {"hub.verify_token": None},
        {"hub.mode": "unsubscribe"},
        {"hub.challenge": None},
    ],
)
def test_verification_with_a_wrong_or_missing_value_is_403(client, params):
    assert_problem(verify(client, **params), 403)


def test_verification_of_a_source_without_a_token_is_403(client):
    assert_problem(verify(client, source="acme"), 403)


def test_verification_of_an_unknown_source_is_404(client):
    assert_problem(verify(client, source="nope"), 404)


# The delivery list


def test_deliveries_are_listed_newest_first_with_paging(client):
    for n in range(3):  # distinct bodies: the same one again would be a replay
        post_github(client, {"n": n}, delivery=f"d-{n}")
    first = client.simulate_get("/webhooks/deliveries", params={"limit": 2}).json
    assert [d["id"] for d in first["items"]] == ["d-2", "d-1"]
    assert first["next"]
    second = client.simulate_get(first["next"]).json
    assert [d["id"] for d in second["items"]] == ["d-0"]
    assert second["next"] is None


def test_deliveries_can_be_filtered_by_source(client):
    post_github(client, {})
    post_standard(client, {"type": "ping"})
    assert [d["source"] for d in deliveries(client, source="acme")] == ["acme"]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 500}, {"status": "odd"}, {"cursor": "x"}]
)
def test_bad_list_parameters_are_422(client, params):
    assert_problem(client.simulate_get("/webhooks/deliveries", params=params), 422)


# Handling, with the runner running


def test_runner_handles_a_delivery_and_records_the_outcome(client, runner):
    runner(HandlerContext())
    post_github(client, {"zen": "x", "hook_id": 42})
    handled = wait_until(
        lambda: [d for d in deliveries(client) if d["status"] == "processed"],
        timeout=10,
        what="delivery processed",
    )
    assert handled[0]["outcome"] == {"pong": True, "hook_id": 42}
    assert handled[0]["attempts"] == 1
    # A redelivery now answers with the recorded outcome.
    again = post_github(client, {"zen": "x", "hook_id": 42})
    assert again.status_code == 200
    assert again.json["status"] == "processed"
    assert again.json["outcome"] == {"pong": True, "hook_id": 42}


def notes_in(client):
    return client.simulate_get("/notes").json["items"]


def test_github_issue_opened_becomes_a_note(client, runner, stores):
    runner(HandlerContext(notes=stores.notes))
    assert post_github(client, ISSUE, event="issues").status_code == 202
    notes = wait_until(lambda: notes_in(client), timeout=10, what="note created")
    assert [(n["title"], n["body"]) for n in notes] == [
        ("Crash on start", "It crashes.\nEvery time.")
    ]
    done = wait_until(
        lambda: [d for d in deliveries(client) if d["status"] == "processed"],
        timeout=10,
        what="delivery processed",
    )
    assert done[0]["outcome"] == {
        "note_id": notes[0]["id"],
        "issue": "https://github.com/o/r/issues/7",
    }


def test_the_same_issue_delivered_twice_makes_one_note(client, runner, stores):
    runner(HandlerContext(notes=stores.notes))
    post_github(client, ISSUE, event="issues")
    post_github(client, ISSUE, event="issues")
    wait_until(
        lambda: deliveries(client)[0]["status"] == "processed",
        timeout=10,
        what="delivery processed",
    )
    assert len(notes_in(client)) == 1
