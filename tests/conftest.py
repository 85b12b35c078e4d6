"""Shared fixtures: a fresh database per test, a TestClient, a live gunicorn.

Tests run on a temp SQLite file each. With ``TEST_DATABASE_URL`` set to a
PostgreSQL URL (``postgresql://user@host:port/db``) every test gets a schema
of its own in that database instead, dropped afterwards (see .ci/run).
"""

import dataclasses
import logging
import os

import falcon.testing
import pytest
import sqlalchemy as sa

from api.app import create_app
from core.settings import Settings
from db.keys import KeyStore
from db.schema import create_schema
from db.sql import Database
from db.sql import make_engine
from db.stores import open_stores
from tests.support import live
from tests.support.contract import ContractClient
from tests.support.notes_backends import _rethinkdb_session_table  # noqa: F401
from tests.support.notes_backends import notes_backend  # noqa: F401
from tests.support.notes_backends import rethinkdb_table  # noqa: F401

# RETHINKDB_URL names the tests' server (read above by notes_backends); the
# processes the tests start (gunicorn, workers, the bench harness) keep
# notes in SQL unless a test hands it to them.
os.environ.pop("RETHINKDB_URL", None)


class _ErrorsOf(logging.Handler):
    """The error records of one logger, taken by the test that checks them."""

    def __init__(self, name: str):
        super().__init__(logging.ERROR)
        self.logger = logging.getLogger(name)
        self.records = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list:
        messages = [record.getMessage() for record in self.records]
        self.records.clear()
        return messages


@pytest.fixture(autouse=True)
def statements_left_open():
    """A SQL statement left open (``db.sqlite`` closes it at check-in) fails the test.

    A test that leaves one on purpose takes the report with ``take()``.
    """
    errors = _ErrorsOf("db.sqlite")
    errors.logger.addHandler(errors)
    yield errors
    errors.logger.removeHandler(errors)
    assert errors.take() == []


@pytest.fixture
def database_url(tmp_path) -> str:
    """The URL of an empty database for one test (SQLite file or PostgreSQL schema)."""
    url = live.database_url(tmp_path)
    if not live.TEST_DATABASE_URL:
        yield url
        return
    schema = sa.engine.make_url(url).query["options"].split("=", 1)[1]
    engine = make_engine(live.TEST_DATABASE_URL)
    with engine.begin() as connection:  # the name is made by live.database_url
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield url
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def settings(database_url) -> Settings:
    """Settings for one test: its own database, nothing shared."""
    return Settings(database_url=database_url)


@pytest.fixture
def make_client(settings):
    """Factory: a TestClient for ``settings`` with optional overrides.

    Its requests carry ``key`` (``client.api_key``), by default a key of
    its own with ``scope`` (admin; None: no key).

    The apps' stores are closed after the test (queued visits are written,
    threads stop) while the test's database still exists.
    """
    opened = []

    def make(scope="admin", key=None, **overrides) -> falcon.testing.TestClient:
        final = dataclasses.replace(settings, **overrides)
        database = Database(final.database_url)
        create_schema(database.engine)
        if key is None and scope is not None and final.auth == "on":
            _, key = KeyStore(database).create(f"test-{len(opened)}-{scope}", scope)
        database.dispose()
        stores = open_stores(final)
        opened.append(stores)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        client = ContractClient(create_app(final, stores), headers=headers)
        client.api_key = key
        return client

    yield make
    for stores in opened:
        stores.close()


@pytest.fixture
def client(make_client) -> falcon.testing.TestClient:
    """A TestClient on the default test settings."""
    return make_client()


def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e starts real processes: mark it ``e2e``."""
    for item in items:
        if "e2e" in item.nodeid.split("/")[:2]:
            item.add_marker(pytest.mark.e2e)
