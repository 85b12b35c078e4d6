"""The push worker's tests share the SQL notes store they feed from."""

import pytest

from db.notes.sql import SqlNotesStore


@pytest.fixture
def store(database):
    """The SQL notes store on the test's database, polling often."""
    return SqlNotesStore(database, poll_interval=0.02)
