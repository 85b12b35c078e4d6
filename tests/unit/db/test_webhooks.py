"""GitHub signs the body only: the same body under a new delivery id is a replay."""

import collections
import concurrent.futures
import datetime
import json
import threading
import time

import sqlalchemy as sa

from core import signatures
from db.sql import Database
from db.webhooks import InboundDelivery
from tests.support.problems import assert_problem

SECRET = "s3cret"
ACME = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SOURCES = json.dumps(
    {
        "github": {"scheme": "github", "secret": SECRET},
        "acme": {"scheme": "standard", "secret": ACME},
    }
)
BODY = b'{"zen": "Keep it simple.", "hook_id": 1}'


def github(client, delivery_id, body=BODY):
    return client.simulate_post(
        "/webhooks/github",
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signatures.github_sign(SECRET, body),
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": delivery_id,
        },
    )


def delivered_ids(client):
    return [d["id"] for d in client.simulate_get("/webhooks/deliveries").json["items"]]


def test_the_same_body_under_a_new_delivery_id_is_refused(make_client):
    client = make_client(webhook_sources=SOURCES)
    assert github(client, "d-1").status_code == 202
    problem = assert_problem(github(client, "d-2"), 409)
    assert problem["replay_of"] == "d-1"
    assert delivered_ids(client) == ["d-1"]  # the replay stored nothing
    assert github(client, "d-1").status_code == 200  # a redelivery: same id
    assert github(client, "d-3", BODY + b" ").status_code == 202  # other bytes


def test_of_twelve_copies_sent_at_once_exactly_one_runs(make_client):
    # One app shared by twelve threads, as a worker's greenlets or threads
    # share it; the database decides (SQLite here, PostgreSQL in CI).
    client = make_client(webhook_sources=SOURCES)
    start = threading.Barrier(12)

    def send(number):
        start.wait(timeout=10)
        return github(client, f"d-{number}")

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, range(12)))
    statuses = collections.Counter(answer.status_code for answer in answers)
    assert statuses == {202: 1, 409: 11}
    (stored,) = delivered_ids(client)
    assert {answer.json.get("replay_of") for answer in answers} == {None, stored}


def test_the_window_ends_and_zero_turns_the_check_off(make_client, settings):
    client = make_client(webhook_sources=SOURCES, webhook_replay_window=60.0)
    assert github(client, "d-1").status_code == 202
    database = Database(settings.database_url)
    with database.session() as session:  # the first one is two minutes old now
        for row in session.scalars(sa.select(InboundDelivery)):
            row.received_at -= datetime.timedelta(seconds=120)
    database.dispose()
    assert github(client, "d-2").status_code == 202
    off = make_client(webhook_sources=SOURCES, webhook_replay_window=0.0)
    assert github(off, "d-3").status_code == 202


def test_standard_webhooks_are_not_checked_for_it(make_client):
    # Their signature covers the id and a timestamp: a new id needs the secret.
    client = make_client(webhook_sources=SOURCES)
    body = b'{"type": "ping", "data": {}}'
    for msg_id in ("msg-1", "msg-2"):
        headers = {
            "Content-Type": "application/json",
            **signatures.standard_headers(ACME, msg_id, int(time.time()), body),
        }
        result = client.simulate_post("/webhooks/acme", body=body, headers=headers)
        assert result.status_code == 202
