"""Checkpoints of the push worker's consumers, saved per consumer."""

import pytest

from db.checkpoints import CheckpointStore
from db.sql import Database


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
