"""Shared fixtures: settings on a temp SQLite file, a TestClient, a live gunicorn."""

import dataclasses

import falcon.testing
import pytest

from api.app import create_app
from api.settings import Settings
from db.sql import Database
from db.sql import create_schema
from tests.live import LiveServer


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings for one test: its own SQLite file, nothing shared."""
    return Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}")


@pytest.fixture
def make_client(settings):
    """Factory: a TestClient for ``settings`` with optional overrides."""

    def make(**overrides) -> falcon.testing.TestClient:
        final = dataclasses.replace(settings, **overrides)
        database = Database(final.database_url)
        create_schema(database.engine)
        database.dispose()
        return falcon.testing.TestClient(create_app(final))

    return make


@pytest.fixture
def client(make_client) -> falcon.testing.TestClient:
    """A TestClient on the default test settings."""
    return make_client()


@pytest.fixture
def live_server(tmp_path):
    """Factory: start real gunicorn under this interpreter; stopped after the test."""
    servers = []

    def start(env=None, workers=2) -> LiveServer:
        server = LiveServer(tmp_path, env or {}, workers=workers)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
