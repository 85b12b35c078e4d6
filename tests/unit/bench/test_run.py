"""The bench runner: a figure that fails is reported, not fatal.

Nothing here asserts how fast anything is.
"""

import sys

from bench.run import run_figure


def test_failing_figure_module_is_reported_with_its_error(monkeypatch):
    module = type(sys)("bench.broken_figure")

    def run(quick):
        raise RuntimeError("gcc not found")

    module.run = run
    monkeypatch.setitem(sys.modules, "bench.broken_figure", module)
    result = run_figure("broken_figure", quick=True)
    assert result == {"error": "RuntimeError: gcc not found"}
