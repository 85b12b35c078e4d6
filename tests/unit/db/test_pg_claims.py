"""Subscription claims: one holder at a time, released when its session ends.

On a real PostgreSQL (``TEST_DATABASE_URL``), under whichever driver this
interpreter uses.
"""

import random

import pytest
import sqlalchemy as sa

from db.pg_claims import PgClaims
from db.sql import make_engine
from tests.support import live

pytestmark = pytest.mark.skipif(
    not live.TEST_DATABASE_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)"
)


@pytest.fixture
def key() -> int:
    """A subscription id of this test alone: tests in parallel share the server."""
    return random.randint(10**6, 2**31 - 1)


@pytest.fixture
def claims():
    made = []

    def make() -> PgClaims:
        made.append(PgClaims(live.TEST_DATABASE_URL))
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_one_holder_at_a_time_and_a_release_lets_another_in(claims, key):
    first, second = claims(), claims()
    assert first.acquire(key)
    assert first.acquire(key)  # held already
    assert not second.acquire(key)
    assert first.valid() and second.valid()
    first.release(key)
    assert second.acquire(key)
    assert not first.acquire(key)


def test_the_end_of_the_holders_session_releases_its_claims(claims, key):
    first, second = claims(), claims()
    assert first.acquire(key)
    first.close()  # as a killed worker's connection closing
    assert second.acquire(key)


def test_a_session_killed_under_the_holder_loses_its_claims(claims, key):
    holder, other = claims(), claims()
    assert holder.acquire(key)
    pid = holder._session().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    engine = make_engine(live.TEST_DATABASE_URL)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        engine.dispose()
    assert other.acquire(key)
    assert not holder.valid()  # the caller stops what it delivered
    assert holder.valid()  # a new session, holding nothing
    assert not holder.acquire(key)
