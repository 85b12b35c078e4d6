"""The garbage collector's pauses, observed into a Prometheus histogram.

Every pause stops the whole process, so each one is a request's latency
somewhere. Under PyPy the gc hooks report minor collections and the steps of
an incremental major collection; under CPython ``gc.callbacks`` bracket each
collection (generation 2 counts as major).

Design: docs/design/serving.md#garbage-collector-pauses
"""

import gc
import time
from typing import Any
from typing import Dict

#: Histogram buckets, in seconds: from a small minor collection to a long step.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


def observe(histogram: Any) -> None:
    """Observe this process's collections into ``histogram`` (label ``kind``).

    ``kind`` is ``minor`` or ``major``. Call it once per process; a forked
    child keeps its parent's hooks, so call it after the fork.
    """
    minor, major = histogram.labels(kind="minor"), histogram.labels(kind="major")
    hooks = getattr(gc, "hooks", None)
    if hooks is not None:
        hooks.on_gc_minor = lambda stats: _batch(minor, stats)
        hooks.on_gc_collect_step = lambda stats: _batch(major, stats)
        return
    started: Dict[str, float] = {}

    def callback(phase: str, info: Dict[str, int]) -> None:
        if phase == "start":
            started["at"] = time.perf_counter()
        elif "at" in started:
            pause = time.perf_counter() - started.pop("at")
            (major if info["generation"] == 2 else minor).observe(pause)

    # Called again (a second app in one process): the last histogram wins.
    gc.callbacks[:] = [cb for cb in gc.callbacks if not hasattr(cb, "gc_pauses")]
    callback.gc_pauses = True  # type: ignore[attr-defined]
    gc.callbacks.append(callback)


def _batch(child: Any, stats: Any) -> None:
    """Observe the pauses PyPy reports at once: their count, sum, min and max.

    The hook runs at the next safe point, so one call may stand for several
    pauses; the ones between the shortest and the longest are taken as equal.
    """
    count = stats.count
    if count == 1:
        child.observe(stats.duration)
        return
    child.observe(stats.duration_min)
    child.observe(stats.duration_max)
    if count > 2:
        rest = (stats.duration - stats.duration_min - stats.duration_max) / (count - 2)
        for _ in range(count - 2):
            child.observe(max(rest, 0.0))
