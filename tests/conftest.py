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
from requests.adapters import HTTPAdapter

from api.app import create_app
from core.settings import Settings
from db.keys import KeyStore
from db.schema import create_schema
from db.sql import Database
from db.sql import make_engine
from db.stores import open_stores
from gateways.collatz import CollatzClient
from tests.support import descriptors
from tests.support import live
from tests.support.contract import ContractClient
from tests.support.notes_backends import _rethinkdb_session_table  # noqa: F401
from tests.support.notes_backends import notes_backend  # noqa: F401
from tests.support.notes_backends import rethinkdb_table  # noqa: F401

# RETHINKDB_URL names the tests' server (read above by notes_backends); the
# processes the tests start (gunicorn, workers, the bench harness) keep
# notes in SQL unless a test hands it to them.
os.environ.setdefault("TEST_RETHINKDB_URL", os.environ.pop("RETHINKDB_URL", ""))
# A process started without addresses of its own (the bench harness's, a
# command's) gets the session's free ports, never make serve's defaults.
os.environ.update(live.addresses(None))


#: Descriptors a test may leave open: one made once per process on first use
#: stays (ZeroMQ's shared context holds 5).
DESCRIPTOR_ALLOWANCE = 8
#: Descriptors a test may leave to the garbage collector, which PyPy runs
#: late: more is a pattern that piles up (a test leaves 10 at most now).
GARBAGE_ALLOWANCE = 50


@pytest.fixture(autouse=True, scope="session")
def http_closes_its_sockets():
    """Closing a requests session closes its sockets (see close_adapter)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HTTPAdapter, "close", descriptors.close_adapter)
        yield


@pytest.fixture(autouse=True)
def closes_its_descriptors():
    """A test fails that leaves descriptors open once its fixtures are closed.

    More than DESCRIPTOR_ALLOWANCE still open after a garbage collection, or
    more than GARBAGE_ALLOWANCE before it. Its fixtures are closed first (they
    are set up after this one).
    """
    if not descriptors.available():
        yield
        return
    before = descriptors.open_descriptors()
    yield
    garbage = descriptors.open_descriptors() - before
    if len(garbage) > GARBAGE_ALLOWANCE:
        pytest.fail(
            f"the test left {len(garbage)} descriptors to the garbage collector "
            f"(close them): {sorted(what for _, what in garbage)[:20]}"
        )
    left = descriptors.opened_since(before, DESCRIPTOR_ALLOWANCE)
    if left:
        names = sorted(what for _, what in left)
        pytest.fail(f"the test left {len(left)} descriptors open: {names[:20]}")


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
def database(database_url) -> Database:
    """The test's database (:func:`database_url`) at the newest revision."""
    database = Database(database_url)
    create_schema(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:  # noqa: ARG001 (makes the schema)
    """Settings for one test: its own database and free ports, nothing shared.

    Not one address is a default: those are ``make serve``'s, and a test on
    them would talk to a ``make serve`` running beside the tests.
    """
    return live.settings_for(tmp_path)


@pytest.fixture(autouse=True)
def collatz_clients(monkeypatch, closes_its_descriptors):  # noqa: ARG001 (closed first)
    """Every collatz client a test makes (an app's too), closed after the test.

    An app makes its own client; one left to the collector is finalized at
    any point of a later test, and ending a ZeroMQ context with a socket still
    open blocks (``zmq_ctx_term``). ``close`` ends it at once (LINGER 0).
    """
    made = []
    init = CollatzClient.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(CollatzClient, "__init__", recording_init)
    yield made
    for client in made:
        client.close()


@pytest.fixture
def make_client(settings):
    """Factory: a TestClient for ``settings`` with optional overrides.

    Its requests carry ``key`` (``client.api_key``), by default a key of
    its own with ``scope`` (admin; None: no key).

    The apps' stores are closed after the test (queued visits are written,
    threads stop) while the test's database still exists; their collatz
    clients too (:func:`collatz_clients`).
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
