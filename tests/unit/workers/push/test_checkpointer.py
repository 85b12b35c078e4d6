"""The push worker's checkpoint saver thread: in the background, at close, on retry."""

import pytest

from db.checkpoints import CheckpointStore
from db.errors import Unavailable
from tests.support.processes import wait_until
from workers.push.checkpointer import Checkpointer


@pytest.fixture
def checkpoints(database):
    return CheckpointStore(database)


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
