import gc
import platform
from types import SimpleNamespace

import pytest

from core import gc_pauses


class Recorder:
    """A histogram that keeps what each label was given."""

    def __init__(self):
        self.seen = {}

    def labels(self, kind):
        values = self.seen.setdefault(kind, [])
        return SimpleNamespace(observe=values.append)


@pytest.fixture(autouse=True)
def restore_gc():
    """Leave the interpreter's hooks (PyPy) or callbacks (CPython) as found."""
    hooks = getattr(gc, "hooks", None)
    callbacks = list(getattr(gc, "callbacks", ()))
    yield
    if hooks is not None:
        hooks.reset()
    else:
        gc.callbacks[:] = callbacks


def collect():
    gc.collect()
    # PyPy runs the hooks at its next safe point: give it some bytecodes.
    for _ in range(1000):
        pass


def test_a_full_collection_is_observed_as_major_pauses():
    recorder = Recorder()
    gc_pauses.observe(recorder)
    garbage = [[i] for i in range(200_000)]
    del garbage
    collect()
    major = recorder.seen["major"]
    assert major and all(0 <= pause < 10 for pause in major)


def test_a_second_call_replaces_the_first():
    first, second = Recorder(), Recorder()
    gc_pauses.observe(first)
    gc_pauses.observe(second)
    collect()
    assert second.seen["major"]
    assert not first.seen["major"]


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="CPython")
def test_young_generations_are_minor_pauses():
    recorder = Recorder()
    gc_pauses.observe(recorder)
    gc.collect(0)
    assert len(recorder.seen["minor"]) == 1
    assert not recorder.seen["major"]


def stats(count, duration, low, high):
    return SimpleNamespace(
        count=count, duration=duration, duration_min=low, duration_max=high
    )


def test_one_reported_pause_is_observed_as_it_is():
    seen = []
    gc_pauses._batch(
        SimpleNamespace(observe=seen.append), stats(1, 0.002, 0.002, 0.002)
    )
    assert seen == [0.002]


def test_several_reported_pauses_keep_their_count_sum_and_extremes():
    seen = []
    gc_pauses._batch(
        SimpleNamespace(observe=seen.append), stats(4, 0.010, 0.001, 0.005)
    )
    assert len(seen) == 4
    assert min(seen) == 0.001 and max(seen) == 0.005
    assert sum(seen) == pytest.approx(0.010)
