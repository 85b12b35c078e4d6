"""The bench report: derived ratios, tables and targets.

Nothing here asserts how fast anything is.
"""

import pytest

from bench import report


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


def _with(results, name, label, pypy, cpython):
    results["paths"].append(
        {"name": name, "label": label, "results": {"pypy3": pypy, "python3": cpython}}
    )


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


def test_tails_are_held_to_the_path_p50_and_the_bare_app_p99():
    results = _results()  # bare p99 2 ms; health p50 1 ms and p99 2 ms
    slow = _result(3000)
    slow["latency_ms"] = {"p50": 2.0, "p99": 12.0}  # 6x its p50
    _with(results, "redirect", "GET /{code}", slow, _result(1000))
    tails = {
        goal["target"]: goal
        for goal in report.targets(dict(results, settings={"connections": 16}))
        if "p99 against p50" in goal["target"]
    }
    health = tails["PyPy, GET /health: p99 against p50 and the bare app's p99"]
    assert health["holds"] is True and health["figure"].startswith("2.0 ms (2.0x")
    redirect = tails["PyPy, GET /{code}: p99 against p50 and the bare app's p99"]
    assert redirect["holds"] is False
    assert redirect["score"] == pytest.approx(10.0 / 12.0)
    unmeasured = tails["PyPy, GET /notes/{id}: p99 against p50 and the bare app's p99"]
    assert unmeasured["holds"] is None


def test_gc_pauses_are_listed_per_path_and_interpreter():
    results = _results()
    results["paths"][0]["results"]["pypy3"]["gc"] = {
        "minor": {"pauses": 12, "ms": 340.0, "longest_ms": 50.0},
        "major": {"pauses": 0, "ms": 0.0, "longest_ms": None},
    }
    text = report.gc_table(results)
    line = next(line for line in text.splitlines() if "GET /health" in line)
    assert "minor 12 (340 ms, <= 50), major 0" in line
    assert "GET /notes/{id}" not in text  # nothing was measured there


def _rethinkdb_figure(post_rps, push_p99):
    push = {
        "asked_rate": 500,
        "achieved_rate": 498.0,
        "p99_ms": push_p99,
        "missing": 0,
        "post_latency_ms": {"med": 3.0, "p(99)": 40.0},
    }
    pypy = {
        "get": {"rps": 9000.0},
        "sqlite_get": {"rps": 10000.0},
        "post": {"rps": post_rps},
        "sqlite_post": {"rps": 5000.0},
        "push": [dict(push, asked_rate=100), push],
    }
    return {"available": True, "result": {"results": {"pypy": pypy}}}


def test_rethinkdb_is_held_to_the_sqlite_figures_of_the_same_run():
    goals = {g["target"]: g for g in report._rethinkdb(_rethinkdb_figure(1200.0, 8.0))}
    get = goals["RethinkDB GET /notes/{id} req/s vs SQLite's, PyPy, one run"]
    assert get["holds"] is True and get["figure"].startswith("90%")
    post = goals["RethinkDB POST /notes req/s vs SQLite's, PyPy, one run"]
    assert post["holds"] is False and post["figure"].startswith("24%")
    push = next(g for g in goals.values() if "SSE p99" in g["target"])
    assert push["holds"] is True and push["figure"].startswith("8.0 ms, POST 40.0 ms")
    slow = report._rethinkdb(_rethinkdb_figure(2000.0, 12.0))
    assert [g["holds"] for g in slow] == [True, True, False]


def test_rethinkdb_targets_without_the_figure_say_so():
    unavailable = {"available": False, "reason": "no RethinkDB server"}
    goals = report._rethinkdb({"result": unavailable})
    assert len(goals) == 3
    assert all(g["holds"] is None and "no RethinkDB" in g["figure"] for g in goals)


def test_collatz_is_held_to_twice_the_c_time_of_the_same_run():
    def figure(pypy_s):
        times = {"pypy": {"seconds": pypy_s}, "c": {"seconds": 0.1}}
        return {"result": {"n": 10**7, "interpreters": times}}

    fast, slow = report._collatz(figure(0.19))[0], report._collatz(figure(0.21))[0]
    assert fast["holds"] is True and fast["figure"].startswith("1.90x (0.190 / 0.100 s")
    assert slow["holds"] is False and slow["threshold"] == "<= 2x"
    missing = report._collatz({"error": "RuntimeError: gcc not found"})[0]
    assert missing["holds"] is None and "gcc" in missing["figure"]


def test_targets_without_a_figure_say_so():
    results = _results()
    results["settings"] = {"connections": 16}
    results["figures"] = {"push": {"error": "FileNotFoundError: no k6"}}
    goals = report.targets(results)
    push = [goal for goal in goals if "SSE" in goal["target"]][0]
    assert push["holds"] is None and "no k6" in push["figure"]


def test_a_figure_with_rows_is_shown_as_a_table():
    text = report.figures_table(
        {
            "rethinkdb": {
                "result": {"rows": [{"path": "GET /notes/{id}", "rps": 1234.5}]},
            }
        }
    )
    assert "| path" in text and "1,234.50" in text
