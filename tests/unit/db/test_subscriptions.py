"""POST /subscriptions/{id}/replay: which deliveries are queued, and the bad ranges."""

import datetime

import pytest
import sqlalchemy as sa

from db.subscriptions import AttemptRow
from db.subscriptions import SubscriptionStore
from tests.support.problems import assert_problem

T0 = datetime.datetime(2030, 1, 10, 12, 0, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)


def iso(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def store(database):
    return SubscriptionStore(database)


def attempt(store, sub_id, event_id, at, delivered, number=1):
    """One recorded attempt of ``event_id``, made at ``at``."""
    row = store.record_attempt(
        sub_id, str(event_id), "note.created", number, 500, 2.0, None, delivered
    )
    with store._db.session() as session:
        session.execute(
            sa.update(AttemptRow)
            .where(AttemptRow.id == row.id)
            .values(at=at.replace(tzinfo=None))
        )


@pytest.fixture
def history(client, store):
    """A subscription with five deliveries, one an hour from T0, some failed."""
    sub = client.simulate_post(
        "/subscriptions",
        json={"url": "https://hooks.example.com/", "events": ["*"]},
    ).json
    # event 1 ok; 2 failed twice; 3 failed then succeeded; 4 failed; 5 ok.
    attempt(store, sub["id"], 1, T0, True)
    attempt(store, sub["id"], 2, T0 + HOUR, False)
    attempt(store, sub["id"], 2, T0 + HOUR, False, 2)
    attempt(store, sub["id"], 3, T0 + 2 * HOUR, False)
    attempt(store, sub["id"], 3, T0 + 2 * HOUR, True, 2)
    attempt(store, sub["id"], 4, T0 + 3 * HOUR, False)
    attempt(store, sub["id"], 5, T0 + 4 * HOUR, True)
    return sub


def replay(client, sub_id, **body):
    return client.simulate_post(f"/subscriptions/{sub_id}/replay", json=body)


def queued_events(store, sub_id):
    return [r.event_id for r in store.pending_replays(sub_id)]


def test_every_delivery_in_the_range_is_queued_in_order(client, store, history):
    result = replay(
        client, history["id"], since=iso(T0 + HOUR), until=iso(T0 + 3 * HOUR)
    )
    assert result.status_code == 202
    assert result.json == {
        "subscription_id": history["id"],
        "since": "2030-01-10T13:00:00.000Z",
        "until": "2030-01-10T15:00:00.000Z",
        "only_failed": False,
        "queued": 3,
        "pending": 3,
        "next_since": None,
    }
    assert queued_events(store, history["id"]) == ["2", "3", "4"]


def test_only_failed_skips_deliveries_that_succeeded(client, store, history):
    result = replay(
        client,
        history["id"],
        since=iso(T0),
        until=iso(T0 + 4 * HOUR),
        only_failed=True,
    )
    assert result.json["queued"] == 2
    assert queued_events(store, history["id"]) == ["2", "4"]


def test_a_delivery_already_waiting_is_not_queued_twice(client, store, history):
    body = {"since": iso(T0), "until": iso(T0 + 4 * HOUR), "only_failed": True}
    assert replay(client, history["id"], **body).json["queued"] == 2
    again = replay(client, history["id"], since=iso(T0), until=iso(T0 + 4 * HOUR))
    assert (again.json["queued"], again.json["pending"]) == (3, 5)
    assert queued_events(store, history["id"]) == ["2", "4", "1", "3", "5"]


def test_until_defaults_to_now(client, history):
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    result = replay(client, history["id"], since=iso(since))
    assert result.status_code == 202 and result.json["queued"] == 0
    until = datetime.datetime.fromisoformat(result.json["until"].replace("Z", "+00:00"))
    assert (
        abs(until - datetime.datetime.now(datetime.timezone.utc)).total_seconds() < 60
    )


def test_a_large_range_is_queued_in_parts(store, history):
    first = store.queue_replay(history["id"], T0, T0 + 4 * HOUR, limit=2)
    assert (first.queued, first.next_since) == (2, T0 + 2 * HOUR)
    rest = store.queue_replay(history["id"], first.next_since, T0 + 4 * HOUR, limit=2)
    assert (rest.queued, rest.next_since) == (2, T0 + 4 * HOUR)
    last = store.queue_replay(history["id"], rest.next_since, T0 + 4 * HOUR, limit=2)
    assert (last.queued, last.next_since, last.pending) == (1, None, 5)
    assert queued_events(store, history["id"]) == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"since": iso(T0), "until": iso(T0 - HOUR)}, "until"),
        ({"since": iso(T0), "until": iso(T0 + datetime.timedelta(days=31))}, "until"),
        (
            {"since": iso(T0), "until": iso(T0 + HOUR), "only_failed": "yes"},
            "only_failed",
        ),
        ({"since": iso(T0), "until": iso(T0 + HOUR), "extra": 1}, "extra"),
    ],
)
def test_bad_ranges_are_422(client, history, body, field):
    problem = assert_problem(replay(client, history["id"], **body), 422)
    assert field in problem["errors"]


def test_thirty_days_exactly_is_fine(client, history):
    body = {"since": iso(T0), "until": iso(T0 + datetime.timedelta(days=30))}
    assert replay(client, history["id"], **body).json["queued"] == 5


def test_an_unknown_subscription_is_404(client):
    result = replay(client, 12345, since=iso(T0), until=iso(T0 + HOUR))
    assert_problem(result, 404)
    assert_problem(replay(client, 2**31, since=iso(T0)), 404)


def test_deleting_the_subscription_drops_its_replays(client, store, history):
    replay(client, history["id"], since=iso(T0), until=iso(T0 + 4 * HOUR))
    assert client.simulate_delete(f"/subscriptions/{history['id']}").status_code == 204
    assert store.pending_replays(history["id"]) == []
    assert store.replays_waiting() == []


def test_the_delivery_log_says_which_attempts_are_replays(client, store, history):
    store.record_attempt(
        history["id"], "2", "note.created", 1, 200, 3.0, None, True, replay=True
    )
    items = client.simulate_get(f"/subscriptions/{history['id']}/deliveries").json[
        "items"
    ]
    assert items[0]["event_id"] == "2" and items[0]["replay"] is True
    assert all(item["replay"] is False for item in items[1:])


def test_openapi_documents_replay_with_examples(client):
    operation = client.simulate_get("/openapi.json").json["paths"][
        "/subscriptions/{subscription_id}/replay"
    ]["post"]
    assert {"202", "404", "422"} <= set(operation["responses"])
    assert operation["requestBody"]["content"]["application/json"]["example"]
    assert operation["responses"]["202"]["content"]["application/json"]["example"]
