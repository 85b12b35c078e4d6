"""Smoke test of bench.push: it starts the stack, measures, returns numbers."""

import sys

from bench import push

TINY = {
    "latency": 3,
    "latency_warmup": 1,
    "live_s": 1,
    "live_warmup_s": 0,
    "backlog": 20,
    "load_rate": 20,
    "load_s": 1,
    "load_warmup_s": 0,
}


def test_measure_returns_every_figure():
    result = push.measure(sys.executable, quick=True, sizes=TINY)
    assert result["latency"]["count"] == 3
    assert 0 <= result["latency"]["p50_ms"] <= result["latency"]["max_ms"]
    assert result["live"]["notes"] > 0 and result["live"]["events_per_s"] > 0
    assert result["catch_up"]["changes"] == 20
    assert result["catch_up"]["events_per_s"] > 0
    under_load = result["under_load"]
    # k6 starts one write at 0 s and every 1/rate s to the end, inclusive.
    assert under_load["created"] == under_load["sent"] >= 20
    for channel in ("sub", "sse"):
        assert under_load[channel]["events"] == under_load["created"], under_load
        assert under_load[channel]["missing"] == 0
        assert 0 <= under_load[channel]["p50_ms"] <= under_load[channel]["max_ms"]
