"""Figure modules: one missing or failing is reported, not raised."""

import sys

from bench import figures


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
