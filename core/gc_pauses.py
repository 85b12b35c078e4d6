"""The garbage collector's pauses, for a Prometheus histogram.

Every pause stops the whole process, so each one is a request's latency
somewhere. Under PyPy the gc hooks report minor collections and the steps of
an incremental major collection; under CPython ``gc.callbacks`` bracket each
collection (generation 2 counts as major).

Design: docs/design/serving.md#garbage-collector-pauses
"""

import collections
import gc
import time
from typing import Any
from typing import Deque
from typing import Dict
from typing import Tuple

#: Histogram buckets, in seconds: from a small minor collection to a long step.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)

# A collection can start inside any allocation, even one made while a metrics
# lock is held: the hooks only append here (a deque takes no lock), and
# flush() observes later, from ordinary code. Bounded, in case nobody flushes.
_PENDING: Deque[Tuple[str, float]] = collections.deque(maxlen=10_000)


def watch() -> None:
    """Record this process's pauses until :func:`flush`; again after a fork."""
    hooks = getattr(gc, "hooks", None)
    if hooks is not None:
        hooks.on_gc_minor = lambda stats: _batch("minor", stats)
        hooks.on_gc_collect_step = lambda stats: _batch("major", stats)
        return
    started: Dict[str, float] = {}

    def callback(phase: str, info: Dict[str, int]) -> None:
        if phase == "start":
            started["at"] = time.perf_counter()
        elif "at" in started:
            kind = "major" if info["generation"] == 2 else "minor"
            _PENDING.append((kind, time.perf_counter() - started.pop("at")))

    # Called again (after a fork): one callback, not two.
    gc.callbacks[:] = [cb for cb in gc.callbacks if not hasattr(cb, "gc_pauses")]
    callback.gc_pauses = True  # type: ignore[attr-defined]
    gc.callbacks.append(callback)


def flush(histogram: Any) -> None:
    """Observe the pauses recorded so far into ``histogram`` (label ``kind``)."""
    while _PENDING:
        kind, seconds = _PENDING.popleft()
        histogram.labels(kind=kind).observe(seconds)


def _batch(kind: str, stats: Any) -> None:
    """Record the pauses PyPy reports at once: their count, sum, min and max.

    The hook runs at the next safe point, so one call may stand for several
    pauses; the ones between the shortest and the longest are taken as equal.
    """
    count = stats.count
    if count == 1:
        _PENDING.append((kind, stats.duration))
        return
    _PENDING.append((kind, stats.duration_min))
    _PENDING.append((kind, stats.duration_max))
    if count > 2:
        rest = (stats.duration - stats.duration_min - stats.duration_max) / (count - 2)
        _PENDING.extend([(kind, max(rest, 0.0))] * (count - 2))
