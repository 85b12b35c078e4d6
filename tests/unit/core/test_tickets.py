"""Stream tickets: signed and checked (core.tickets), their shared secret
(db.server_secrets), and ``POST /stream-tickets`` on the API."""

import threading
import time

import pytest

from core import tickets
from db.keys import KeyStore
from db.schema import create_schema
from db.server_secrets import ServerSecrets
from db.sql import Database
from tests.support.problems import assert_problem

SECRET = b"s" * 32
NOW = 1_767_225_600.5


def test_a_ticket_names_its_key_until_it_expires():
    ticket = tickets.issue(SECRET, 42, NOW, ttl=60)
    assert ticket.startswith("st1.42.")
    assert tickets.verify(SECRET, ticket, NOW) == 42
    assert tickets.verify(SECRET, ticket, NOW + 59) == 42
    assert tickets.verify(SECRET, ticket, NOW + 60) is None


def test_a_ticket_for_no_key_is_a_ticket_too():
    assert tickets.verify(SECRET, tickets.issue(SECRET, 0, NOW), NOW) == 0


def _tampered(ticket: str):
    version, key_id, expires, signature = ticket.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return [
        ".".join((version, "43", expires, signature)),  # another key
        ".".join((version, key_id, str(int(expires) + 3600), signature)),  # longer
        ".".join((version, key_id, expires, flipped)),
        ".".join(("st2", key_id, expires, signature)),
        ticket + "x",
        ticket[:-1],
        "",
        "st1.42",
        "st1.042." + expires + "." + signature,  # a second spelling of the id
        "fpa_" + "0" * 38,  # a key is no ticket
    ]


def test_a_tampered_forged_or_malformed_ticket_names_no_key():
    ticket = tickets.issue(SECRET, 42, NOW)
    for bad in _tampered(ticket):
        assert tickets.verify(SECRET, bad, NOW) is None, bad
    assert tickets.verify(b"another secret", ticket, NOW) is None


def test_a_ticket_lives_at_least_a_second():
    with pytest.raises(ValueError):
        tickets.issue(SECRET, 1, NOW, ttl=0)


@pytest.fixture
def database(database_url):
    database = Database(database_url)
    create_schema(database.engine)
    yield database
    database.dispose()


def test_the_secret_is_made_once_and_shared_by_every_process(database):
    first = ServerSecrets(database).get(tickets.SECRET_NAME)
    assert len(first) == 32
    assert ServerSecrets(database).get(tickets.SECRET_NAME) == first
    assert ServerSecrets(database).get("another") != first


def test_processes_that_ask_at_once_agree_on_one_secret(database):
    got = []
    barrier = threading.Barrier(6)

    def ask():
        barrier.wait()
        got.append(ServerSecrets(database).get(tickets.SECRET_NAME))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(got) == 6 and len(set(got)) == 1


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
