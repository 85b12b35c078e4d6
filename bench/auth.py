"""What an API key costs on ``GET /notes/{id}``, under PyPy (docs/performance)."""

import statistics
import sys
import tempfile
from pathlib import Path

from bench import common
from bench import paths

TARGET_COST = 0.05
#: Turns of wrk on each stack, and seconds per turn.
TURNS = {True: (3, 2), False: (11, 3)}
_NOTE = (
    "from core.settings import Settings; from db.stores import open_stores; "
    "s = open_stores(Settings.from_env()); "
    "print(s.notes.create('bench', 'a note to read').id); s.close()"
)


def _last_word(stack: common.Stack, *args: str) -> str:
    """The last word ``python ARGS`` prints in the stack's environment."""
    return common.output([stack.python, *args], stack.env, timeout=120).split()[-1]


def run(quick: bool) -> dict:
    pythons = common.interpreters()
    impl = "pypy" if "pypy" in pythons else next(iter(pythons))
    python = pythons[impl]
    workers = common.workers(python)
    measurer = common.Measurer(
        Path(tempfile.gettempdir()),
        warmup=6.0 if quick else 120.0,
        warmup_slice=1.0 if quick else 3.0,
        duration=1.0,
        min_requests=0 if quick else 5000,
    )
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as folder:
        stacks = {
            "without": common.Stack(python, Path(folder) / "off"),
            "with_key": common.Stack(python, Path(folder) / "on", env={"AUTH": "on"}),
        }
        headers = {"without": {}}
        try:
            for stack in stacks.values():
                stack.start()
            read = "-m api keys create --name bench --scopes read".split()
            key = _last_word(stacks["with_key"], *read)
            headers["with_key"] = {"Authorization": f"Bearer {key}"}
            targets = {}
            for name, stack in stacks.items():
                path = f"/notes/{_last_word(stack, '-c', _NOTE)}"
                targets[name] = paths.Target(name, f"GET {path} ({name})", path)
                # Warmed up; a 401 (a key that does not work) shows as errors.
                measurer.measure(stack.url, targets[name], path, headers=headers[name])
            rates = {name: [] for name in stacks}
            turns, seconds = TURNS[quick]
            for _ in range(turns):
                for name, stack in stacks.items():
                    url, path = stack.url, targets[name].path
                    result = common.wrk(
                        url, path, seconds=seconds, headers=headers[name]
                    )
                    if result["errors"]["total"]:
                        raise RuntimeError(f"{name}: {result['errors']}")
                    rates[name].append(round(result["rps"], 1))
        finally:
            for stack in stacks.values():
                stack.stop()
    cost = statistics.median(
        1 - with_key / without
        for with_key, without in zip(rates["with_key"], rates["without"])
    )
    return {
        "benchmark": "auth",
        "path": "GET /notes/{id}",
        "interpreter": impl,
        "workers": workers,
        "rps": rates,
        "median_rps": {name: statistics.median(v) for name, v in rates.items()},
        "cost": round(cost, 4),
        "target_cost": TARGET_COST,
        "met": cost < TARGET_COST,
    }


if __name__ == "__main__":
    sys.exit(common.figure_main(__doc__, run))
