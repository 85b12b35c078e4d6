"""API keys for the tests' own servers."""

from pathlib import Path

from db.keys import KeyStore
from db.schema import create_schema
from db.sql import Database
from tests.support.live import database_url


def make_key(tmp_path: Path, scope: str = "admin", name: str = "") -> str:
    """A new API key with ``scope`` in the database of the test of ``tmp_path``."""
    database = Database(database_url(tmp_path))
    try:
        create_schema(database.engine)
        return KeyStore(database).create(name or f"test-{scope}", scope)[1]
    finally:
        database.dispose()
