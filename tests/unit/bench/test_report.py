"""The benchmark harness: its arithmetic, wrk script, load generator, a smoke run.

Nothing here asserts how fast anything is; the e2e tests only check that
measuring works and produces well-formed results.
"""

import itertools
import json
import math
import shutil
import sys

import pytest

from bench import figures
from bench import load
from bench import measure
from bench import paths
from bench import primegen
from bench import report
from bench import wrk

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (make bench installs it)"
)


# --- load.py: schedule, percentiles, summary -----------------------------------------


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


# --- wrk output parsing --------------------------------------------------------------

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


def test_wrk_output_is_parsed_from_the_done_hook_line():
    result = wrk.parse(WRK_OUTPUT)
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
    with pytest.raises(wrk.WrkError, match="BENCH_JSON"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


# --- unique prime bodies -------------------------------------------------------------


def _is_prime(n):
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def test_small_primes():
    assert primegen.small_primes(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert primegen.small_primes(1) == []


def test_prime_batches_are_consecutive_primes_from_the_start():
    batches = primegen.batches(10**9, 30, 10)
    numbers = [n for batch in batches for n in batch]
    assert all(len(batch) == 10 for batch in batches)
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 1_000_000_007  # the first prime above 10**9
    assert all(_is_prime(n) for n in numbers)
    # nothing skipped between them (small windows force segment boundaries)
    gen = primegen.primes_from(10**9, window=97)
    assert [next(gen) for _ in range(len(numbers))] == numbers


def test_prime_batches_cross_a_window_boundary_without_gaps():
    crossing = itertools.islice(primegen.primes_from(2, window=10), 10)
    assert list(crossing) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


def test_primes_target_makes_distinct_json_bodies():
    target = paths.BY_NAME["primes"]
    bodies = [json.loads(body)["primes"] for body in target.bodies(5, 10**9)]
    flat = [n for batch in bodies for n in batch]
    assert len(flat) == len(set(flat)) == 5 * paths.PRIMES_PER_BATCH


# --- targets, report, figures --------------------------------------------------------


def test_unknown_target_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="health"):
        paths.by_name(["health", "nope"])
    assert [t.name for t in paths.by_name(["notes-get", "health", "bare"])] == [
        "health",
        "notes-get",
    ]


def _result(rps, errors=0):
    return {
        "available": True,
        "rps": rps,
        "errors": {"total": errors},
        "latency_ms": {"p50": 1.0, "p99": 2.0},
    }


def _results():
    return {
        "interpreters": ["pypy3", "python3"],
        "versions": {"pypy3": "PyPy", "python3": "CPython"},
        "bare": {
            "name": "bare",
            "label": "bare",
            "results": {"pypy3": _result(10000), "python3": _result(4000)},
        },
        "paths": [
            {
                "name": "health",
                "label": "GET /health",
                "results": {"pypy3": _result(5000), "python3": _result(2000, errors=1)},
            },
            {
                "name": "notes-get",
                "label": "GET /notes/{id}",
                "results": {
                    "pypy3": {"available": False, "reason": "POST /notes answers 404"},
                    "python3": {
                        "available": False,
                        "reason": "POST /notes answers 404",
                    },
                },
            },
        ],
    }


def test_derived_ratio_and_share_of_the_ceiling():
    results = _results()
    report.derive(results)
    health = results["paths"][0]
    assert health["ratio"] == pytest.approx(2.5)
    assert health["ceiling_share"] == {
        "pypy3": pytest.approx(0.5),
        "python3": pytest.approx(0.5),
    }
    assert results["paths"][1]["ratio"] is None
    assert results["bare"]["ceiling_share"]["pypy3"] == pytest.approx(1.0)


def test_table_lists_measured_rows_and_says_why_others_are_missing():
    results = _results()
    report.derive(results)
    text = report.table(results)
    health_line = next(line for line in text.splitlines() if "GET /health" in line)
    assert "5,000" in health_line and "2,000 *" in health_line
    assert "2.50x" in health_line and "50%" in health_line
    assert "- GET /notes/{id}: POST /notes answers 404" in text
    assert "errors" in text


def test_missing_figure_module_is_reported_not_available():
    result = figures.run_one("no_such_figure", quick=True)
    assert result == {
        "available": False,
        "reason": "bench.no_such_figure is not in this checkout",
    }


def test_failing_figure_module_is_reported_with_its_error(monkeypatch):
    module = type(sys)("bench.broken_figure")

    def run(quick):
        raise RuntimeError("gcc not found")

    module.run = run
    monkeypatch.setitem(sys.modules, "bench.broken_figure", module)
    result = figures.run_one("broken_figure", quick=True)
    assert result == {"available": True, "error": "RuntimeError: gcc not found"}


# --- warm-up plateau, targets, figure rows -------------------------------------------


def test_a_rate_that_still_climbs_has_not_levelled_off():
    assert not measure.levelled_off([100, 200, 400, 800, 1600])
    assert not measure.levelled_off([1000, 1000, 1000])  # too few slices to tell
    assert not measure.levelled_off([500, 900, 1000, 1020, 1100])  # +10 %: climbing


def test_a_rate_that_only_jitters_has_levelled_off():
    assert measure.levelled_off([300, 900, 1000, 980, 1030, 990])
    assert measure.levelled_off([1000, 800, 950, 1020])  # noise after the peak


def _with(results, name, label, pypy, cpython):
    results["paths"].append(
        {"name": name, "label": label, "results": {"pypy3": pypy, "python3": cpython}}
    )


def test_targets_report_each_figure_and_whether_it_holds():
    results = _results()
    results["settings"] = {"connections": 16}
    _with(results, "notes-get", "GET /notes/{id}", _result(6000), _result(2000))
    del results["paths"][1]  # the unavailable notes-get of _results()
    post = _result(900)
    post["latency_ms"]["p99"] = 35.0
    post["errors"] = {"status": 2, "total": 2}
    _with(results, "notes-post", "POST /notes", post, _result(500))
    results["seed"] = {"figures": {"redirect": {"rps": 1000}}}
    _with(results, "redirect", "GET /{code}", _result(1500), _result(1000))
    goals = {goal["target"]: goal for goal in report.targets(results)}
    ratio = goals["PyPy/CPython, GET /notes/{id}"]
    assert ratio["holds"] is True and ratio["figure"].startswith("3.00x")
    assert goals["PyPy/CPython, POST /notes"]["holds"] is True  # 1.8x
    assert goals["PyPy/CPython, GET /{code}"]["holds"] is True  # exactly 1.5x
    share = goals["PyPy, GET /notes/{id} vs the bare app"]
    assert share["holds"] is True and share["figure"].startswith("60%")
    assert goals["PyPy, GET /{code} vs the bare app"]["holds"] is False  # 15 %
    post_goal = next(
        g for g in goals.values() if g["target"].startswith("POST /notes p99")
    )
    assert post_goal["holds"] is False and "35.0 ms, 2 errors" in post_goal["figure"]
    seed = next(g for g in goals.values() if "Pyster" in g["target"])
    assert seed["holds"] is False and seed["figure"].startswith("1.50x")
    table = report.targets_table(report.targets(results))
    assert "| target" in table and "**no**" in table


def test_targets_without_a_figure_say_so():
    results = _results()
    results["settings"] = {"connections": 16}
    results["figures"] = {"push": {"available": False, "reason": "not in checkout"}}
    goals = report.targets(results)
    push = [goal for goal in goals if "SSE" in goal["target"]][0]
    assert push["holds"] is None and "not in checkout" in push["figure"]


def test_a_figure_with_rows_is_shown_as_a_table():
    text = report.figures_table(
        {
            "rethinkdb": {
                "available": True,
                "result": {"rows": [{"path": "GET /notes/{id}", "rps": 1234.5}]},
            }
        }
    )
    assert "| path" in text and "1,234.50" in text
