"""POST /stream-tickets: a ticket for the caller's key, with the set lifetime."""

import time

import pytest

from core import tickets
from db.keys import KeyStore
from db.server_secrets import ServerSecrets
from tests.support.problems import assert_problem


def test_the_api_issues_a_ticket_for_the_callers_key(make_client, database):
    client = make_client(scope="read")
    answer = client.simulate_post("/stream-tickets")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json["expires_in"] == tickets.TTL_SECONDS
    secret = ServerSecrets(database).get(tickets.SECRET_NAME)
    (key,) = KeyStore(database).list()
    assert tickets.verify(secret, answer.json["ticket"], time.time()) == key.id


def test_with_auth_off_the_ticket_names_no_key(make_client, database):
    client = make_client(auth="off")
    answer = client.simulate_post("/stream-tickets")
    secret = ServerSecrets(database).get(tickets.SECRET_NAME)
    assert tickets.verify(secret, answer.json["ticket"], time.time()) == 0


def test_a_ticket_needs_a_key(make_client):
    client = make_client(scope=None)
    problem = assert_problem(client.simulate_post("/stream-tickets"), 401)
    assert "read" in problem["detail"]


def test_the_ticket_ttl_is_a_setting(make_client):
    client = make_client(scope="read", stream_ticket_ttl=5)
    assert client.simulate_post("/stream-tickets").json["expires_in"] == 5
    with pytest.raises(ValueError, match="STREAM_TICKET_TTL"):
        make_client(stream_ticket_ttl=0)
