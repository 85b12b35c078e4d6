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
    python, (turns, seconds) = pythons[impl], TURNS[quick]
    workers = common.workers(python)
    measurer = common.Measurer(
        Path(tempfile.gettempdir()),
        warmup=6.0 if quick else 120.0,
        warmup_slice=1.0 if quick else 3.0,
        duration=1.0,
        min_requests=0 if quick else 5000,
    )
    rates = {"without": [], "with_key": []}
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        off = common.Stack(python, Path(tmp) / "off")
        on = common.Stack(python, Path(tmp) / "on", env={"AUTH": "on"})
        with off, on:
            read = "-m api keys create --name bench --scopes read".split()
            key = _last_word(on, *read)
            stacks = {
                "without": (off, {}),
                "with_key": (on, {"Authorization": f"Bearer {key}"}),
            }
            notes = {}
            for name, (stack, headers) in stacks.items():
                path = notes[name] = f"/notes/{_last_word(stack, '-c', _NOTE)}"
                target = paths.Target(name, f"GET {path} ({name})", path)
                # Warmed up; a 401 (a key that does not work) shows as errors.
                measurer.measure(stack.url, target, path, headers=headers)
            for _ in range(turns):
                for name, (stack, headers) in stacks.items():
                    result = common.wrk(
                        stack.url, notes[name], seconds=seconds, headers=headers
                    )
                    if result["errors"]["total"]:
                        raise RuntimeError(f"{name}: {result['errors']}")
                    rates[name].append(round(result["rps"], 1))
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
