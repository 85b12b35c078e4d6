"""The load generator's arithmetic: its schedule, percentiles and summary."""

import math

import pytest

from bench import load


def test_schedule_spaces_requests_evenly_from_zero():
    assert load.schedule(4, 1) == [0.0, 0.25, 0.5, 0.75]
    offsets = load.schedule(3, 2)
    assert len(offsets) == 6
    assert all(math.isclose(b - a, 1 / 3) for a, b in zip(offsets, offsets[1:]))


def test_schedule_counts_whole_requests_only():
    assert len(load.schedule(10, 0.35)) == 3
    assert len(load.schedule(1000, 0.3)) == 300  # no float rounding down to 299


@pytest.mark.parametrize("rate, duration", [(0, 1), (-1, 1), (1, 0)])
def test_schedule_refuses_non_positive_values(rate, duration):
    with pytest.raises(ValueError):
        load.schedule(rate, duration)


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert load.percentile(values, 50) == 50
    assert load.percentile(values, 90) == 90
    assert load.percentile(values, 99) == 99
    assert load.percentile(values, 99.9) == 100
    assert load.percentile(values, 100) == 100
    assert load.percentile([1, 2, 3, 4], 50) == 2
    assert load.percentile([1, 2, 3, 4], 51) == 3
    assert load.percentile([7], 99.9) == 7
    assert load.percentile([], 50) is None


@pytest.mark.parametrize("p", [0, -5, 100.1])
def test_percentile_refuses_out_of_range(p):
    with pytest.raises(ValueError):
        load.percentile([1, 2], p)


def test_summary_counts_answers_errors_and_unfinished():
    summary = load.summarize(
        [0.004, 0.001, 0.003, 0.002], {"HTTP 500": 1, "timeout": 2}, due=8, elapsed=2.0
    )
    assert summary["answered"] == 4
    assert summary["error_count"] == 3
    assert summary["unfinished"] == 2  # 8 due - 4 answered - 2 never answered
    assert summary["achieved_rate"] == 2.0
    assert summary["latency_ms"]["p50"] == pytest.approx(2.0)
    assert summary["latency_ms"]["p99.9"] == pytest.approx(4.0)
    assert summary["latency_ms"]["max"] == pytest.approx(4.0)
    assert summary["latency_ms"]["mean"] == pytest.approx(2.5)


def test_summary_of_nothing_answered_has_no_latency():
    summary = load.summarize([], {"ConnectionRefusedError": 3}, due=3, elapsed=1.0)
    assert summary["latency_ms"] == {}
    assert summary["unfinished"] == 0
