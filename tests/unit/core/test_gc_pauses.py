import gc
import platform
import threading
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import Histogram

from core import gc_pauses


class Recorder:
    """A histogram that keeps what each label was given."""

    def __init__(self):
        self.seen = {"minor": [], "major": []}

    def labels(self, kind):
        return SimpleNamespace(observe=self.seen[kind].append)


@pytest.fixture(autouse=True)
def restore_gc():
    """Leave the interpreter's hooks (PyPy) or callbacks (CPython) as found."""
    hooks = getattr(gc, "hooks", None)
    callbacks = list(getattr(gc, "callbacks", ()))
    gc_pauses._PENDING.clear()
    yield
    if hooks is not None:
        hooks.reset()
    else:
        gc.callbacks[:] = callbacks
    gc_pauses._PENDING.clear()


def collect():
    gc.collect()
    # PyPy runs the hooks at its next safe point: give it some bytecodes.
    for _ in range(1000):
        pass


def test_a_full_collection_is_flushed_as_major_pauses():
    gc_pauses.watch()
    garbage = [[i] for i in range(200_000)]
    del garbage
    collect()
    recorder = Recorder()
    gc_pauses.flush(recorder)
    major = recorder.seen["major"]
    assert major and all(0 <= pause < 10 for pause in major)
    again = Recorder()
    gc_pauses.flush(again)  # flushed once
    # A minor collection may start in between (the flush allocates); a
    # major one needs far more allocation than that.
    assert again.seen["major"] == []


def test_a_collection_while_the_histogram_is_locked_does_not_deadlock():
    # The hooks may run inside prometheus_client's own lock (an allocation
    # there can start a collection): they must not observe, only record.
    histogram = Histogram(
        "pauses_seconds", "test", ["kind"], registry=CollectorRegistry()
    )
    gc_pauses.watch()
    done = threading.Event()

    def collect_holding_the_lock():
        with histogram.labels(kind="major")._sum._lock:
            collect()
        done.set()

    worker = threading.Thread(target=collect_holding_the_lock, daemon=True)
    worker.start()
    assert done.wait(10), "a collection inside the metrics lock deadlocked"
    gc_pauses.flush(histogram)
    assert histogram.labels(kind="major")._sum.get() > 0


def test_watching_twice_records_each_pause_once():
    gc_pauses.watch()
    gc_pauses.watch()
    collect()
    twice = Recorder()
    gc_pauses.flush(twice)
    gc_pauses.watch()
    assert twice.seen["major"]
    if platform.python_implementation() == "CPython":
        hooked = [cb for cb in gc.callbacks if hasattr(cb, "gc_pauses")]
        assert len(hooked) == 1


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="CPython")
def test_young_generations_are_minor_pauses():
    gc_pauses.watch()
    gc.collect(0)
    recorder = Recorder()
    gc_pauses.flush(recorder)
    assert len(recorder.seen["minor"]) == 1
    assert not recorder.seen["major"]


def stats(count, duration, low, high):
    return SimpleNamespace(
        count=count, duration=duration, duration_min=low, duration_max=high
    )


def flushed():
    recorder = Recorder()
    gc_pauses.flush(recorder)
    return recorder.seen["minor"]


def test_one_reported_pause_is_recorded_as_it_is():
    gc_pauses._batch("minor", stats(1, 0.002, 0.002, 0.002))
    assert flushed() == [0.002]


def test_several_reported_pauses_keep_their_count_sum_and_extremes():
    gc_pauses._batch("minor", stats(4, 0.010, 0.001, 0.005))
    seen = flushed()
    assert len(seen) == 4
    assert min(seen) == 0.001 and max(seen) == 0.005
    assert sum(seen) == pytest.approx(0.010)
