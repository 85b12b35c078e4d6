"""The bench harness's shared helpers: percentiles, wrk and k6 output, the plateau.

Nothing here asserts how fast anything is.
"""

import sys
import types

import pytest

from bench import common
from bench import paths

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:8000/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.45ms    3.04ms  32.16ms   89.55%
  9800 requests in 2.00s, 1.2MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   4900.00
BENCH_JSON {"duration_us": 2000000, "requests": 9800, "bytes": 1200000, \
"errors": {"connect": 0, "read": 1, "write": 0, "status": 3, "timeout": 2}, \
"latency_us": {"min": 100, "mean": 1450.5, "max": 32160, "stdev": 3040.0, \
"p50": 900, "p90": 2500, "p99": 15000, "p99.9": 30000}}
"""


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert common.percentile(values, 50) == 50
    assert common.percentile(values, 90) == 90
    assert common.percentile(values, 99) == 99
    assert common.percentile(values, 99.9) == 100
    assert common.percentile(values, 100) == 100
    assert common.percentile([4, 1, 3, 2], 50) == 2  # sorts first
    assert common.percentile([1, 2, 3, 4], 51) == 3
    assert common.percentile([7], 99.9) == 7
    assert common.percentile([], 50) is None


@pytest.mark.parametrize("p", [0, -5, 100.1])
def test_percentile_refuses_out_of_range(p):
    with pytest.raises(ValueError):
        common.percentile([1, 2], p)


def test_push_delays_count_each_answered_note_once_and_the_missing():
    arrivals = type("Arrivals", (), {})()
    arrivals.at = {"a": 10.002, "b": 10.0005, "c": 9.9}  # c came before its answer
    delays = common.push_delays({"a": 10.0, "b": 10.0, "c": 10.0, "d": 10.0}, arrivals)
    assert delays["events"] == 3 and delays["missing"] == 1
    assert delays["p50_ms"] == pytest.approx(0.5)
    assert delays["max_ms"] == pytest.approx(2.0)


def test_k6_sample_times_are_read_to_the_nanosecond():
    assert common._epoch("1970-01-01T00:00:01.000000250Z") == pytest.approx(
        1.00000025, abs=1e-9
    )
    assert common._epoch("2024-05-01T12:00:00Z") == 1714564800.0


def test_wrk_output_is_parsed_from_the_done_hook_line():
    result = common.parse_wrk(WRK_OUTPUT)
    assert result["rps"] == pytest.approx(4900.0)
    assert result["requests"] == 9800
    assert result["seconds"] == pytest.approx(2.0)
    assert result["errors"] == {
        "connect": 0,
        "read": 1,
        "write": 0,
        "status": 3,
        "timeout": 2,
        "total": 6,
    }
    assert result["latency_ms"]["p50"] == pytest.approx(0.9)
    assert result["latency_ms"]["p99"] == pytest.approx(15.0)
    assert result["latency_ms"]["p99.9"] == pytest.approx(30.0)


def test_wrk_output_without_result_line_is_an_error():
    with pytest.raises(common.WrkError, match="BENCH_JSON"):
        common.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_a_rate_that_still_climbs_has_not_levelled_off():
    assert not common.levelled_off([100, 200, 400, 800, 1600])
    assert not common.levelled_off([1000, 1000, 1000])  # too few slices to tell
    assert not common.levelled_off([500, 900, 1000, 1020, 1100])  # +10 %: climbing


def test_a_rate_that_only_jitters_has_levelled_off():
    assert common.levelled_off([300, 900, 1000, 980, 1030, 990])
    assert common.levelled_off([1000, 800, 950, 1020])  # noise after the peak


def test_a_function_runs_in_a_fresh_interpreter_and_answers_json():
    assert common.run_in(sys.executable, "bench.common:ratio", 3, 2) == 1.5
    with pytest.raises(RuntimeError, match="p must be in"):
        common.run_in(sys.executable, "bench.common:percentile", [1], 0)


def test_an_import_error_says_what_is_missing():
    assert common.import_error(sys.executable, "json", "sqlite3") is None
    missing = common.import_error(sys.executable, "json", "no_such_module_here")
    assert "no_such_module_here" in missing


def _gc(minor_count, minor_sum, buckets):
    samples = {
        ("_count", "minor", None): minor_count,
        ("_sum", "minor", None): minor_sum,
    }
    samples.update({("_bucket", "minor", le): n for le, n in buckets.items()})
    samples.update({("_count", "major", None): 1.0, ("_sum", "major", None): 0.2})
    samples[("_bucket", "major", "+Inf")] = 1.0
    return samples


def test_gc_pauses_between_two_scrapes():
    before = _gc(10, 0.05, {"0.005": 10, "0.05": 10, "+Inf": 10})
    after = _gc(13, 0.11, {"0.005": 11, "0.05": 13, "+Inf": 13})
    gc = common.gc_between(before, after)
    assert gc["minor"] == {"pauses": 3, "ms": 60.0, "longest_ms": 50.0}
    assert gc["major"] == {"pauses": 0, "ms": 0.0, "longest_ms": None}
    assert common.describe_gc(gc) == "minor 3 (60 ms, <= 50), major 0"
    assert common.gc_between(None, after) is None


def test_a_pause_past_the_last_bucket_is_longer_than_it():
    before = _gc(0, 0.0, {"0.1": 0, "+Inf": 0})
    after = _gc(1, 0.3, {"0.1": 0, "+Inf": 1})
    gc = common.gc_between(before, after)
    assert gc["minor"]["longest_ms"] is None
    assert common.describe_gc(gc).startswith("minor 1 (300 ms, > 100)")


def test_a_figure_that_needs_every_path_says_which_one_is_missing(tmp_path):
    def missing(api):
        raise paths.NotAvailable("GET /gone answered 404")

    targets = {"gone": paths.Target("gone", "GET /gone", setup=missing)}
    stack = types.SimpleNamespace(url="http://127.0.0.1:9")
    measurer = common.Measurer(tmp_path, warmup=0, duration=1)
    skipped = measurer.measure_all(stack, targets, "ours", workers=1)
    assert skipped == {"gone": {"available": False, "reason": "GET /gone answered 404"}}
    with pytest.raises(
        common.NotMeasured, match="ours: GET /gone: GET /gone answered 404"
    ):
        measurer.measure_all(stack, targets, "ours", workers=1, every=True)
