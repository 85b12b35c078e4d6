"""The bench runner: a figure that is missing or fails is reported, not fatal.

Nothing here asserts how fast anything is.
"""

import sys

from bench.run import run_figure


def test_missing_figure_module_is_reported_not_available():
    result = run_figure("no_such_figure", quick=True)
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
    result = run_figure("broken_figure", quick=True)
    assert result == {"available": True, "error": "RuntimeError: gcc not found"}
