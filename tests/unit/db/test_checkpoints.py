"""Checkpoints of the push worker's consumers, and the saver thread."""

import pytest

from db.checkpoints import CheckpointStore
from db.errors import Unavailable
from db.schema import create_schema
from db.sql import Database
from tests.support.processes import wait_until
from workers.push.checkpointer import Checkpointer


@pytest.fixture
def database(database_url):
    database = Database(database_url)
    create_schema(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def checkpoints(database):
    return CheckpointStore(database)


def test_an_unknown_consumer_has_no_checkpoint(checkpoints):
    assert checkpoints.load("push") is None


def test_saved_checkpoints_are_kept_per_consumer_and_overwritten(
    checkpoints, database_url
):
    checkpoints.save("push", 5)
    checkpoints.save("webhook:1", 3)
    checkpoints.save("push", 9)
    assert checkpoints.load("push") == 9
    assert checkpoints.load("webhook:1") == 3
    # Another process (a new engine) reads the same.
    other = Database(database_url)
    assert CheckpointStore(other).load("push") == 9
    other.dispose()


def test_load_prefix_and_delete(checkpoints):
    saved = [("push", 1), ("webhook:1", 2), ("webhook:12", 3), ("webhook_x", 4)]
    for name, seq in saved:
        checkpoints.save(name, seq)
    assert checkpoints.load_prefix("webhook:") == {"webhook:1": 2, "webhook:12": 3}
    checkpoints.delete("webhook:1")
    checkpoints.delete("webhook:404")  # no error
    assert checkpoints.load_prefix("webhook:") == {"webhook:12": 3}
    assert checkpoints.load("push") == 1


def test_checkpointer_saves_the_start_then_in_the_background_and_at_close(checkpoints):
    saver = Checkpointer(checkpoints, "push", 4, interval=0.05)
    saver.start()
    assert checkpoints.load("push") == 4
    saver.advance(10)
    wait_until(lambda: checkpoints.load("push") == 10, timeout=10, what="saved")
    saver.advance(11)
    saver.close()
    assert checkpoints.load("push") == 11 and saver.saved == 11


class DownStore:
    """A checkpoint store whose database is down until ``up`` is set."""

    def __init__(self):
        self.up = False
        self.saved = {}

    def save(self, consumer, seq):
        if not self.up:
            raise Unavailable("SQL database unavailable")
        self.saved[consumer] = seq


def test_checkpointer_retries_when_the_database_is_down(caplog):
    store = DownStore()
    saver = Checkpointer(store, "push", 1, interval=0.05)
    saver.start()  # the first save fails: logged, not raised
    saver.advance(2)
    assert "not saved" in caplog.text and saver.saved is None
    store.up = True
    wait_until(lambda: store.saved.get("push") == 2, timeout=10, what="saved later")
    saver.close()
