"""Stream tickets: signed and checked (core.tickets)."""

import pytest

from core import tickets

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
