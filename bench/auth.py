"""Benchmark: what checking an API key costs on ``GET /notes/{id}``.

``python -m bench.auth [--quick]`` starts two stacks as ``make serve`` does,
under PyPy (the target): one with ``AUTH=off`` (no key asked for) and one
with ``AUTH=on``, whose requests carry a ``read`` key. Each is warmed up
until its rate levels off, then wrk drives the two in turns, so both see
the same machine. The cost is ``1 - with_key / without`` of each turn,
the median over the turns (a turn's pair shares the machine's moment, which
the rates of separate turns do not). The target is a cost under 5%.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Dict
from typing import Optional

import requests

from bench import wrk
from bench.push import default_pythons
from bench.push import implementation
from bench.rethinkdb import measure_path
from bench.servers import ROOT
from bench.servers import Stack
from core.settings import default_workers

TARGET_COST = 0.05
SIZES = {
    True: {"window": 1.0, "max_windows": 6, "per_worker": 0, "duration": 1.0},
    False: {"window": 3.0, "max_windows": 40, "per_worker": 5000, "duration": 1.0},
}
#: Turns of wrk on each stack, and seconds per turn.
TURNS = {True: (3, 2), False: (11, 3)}


def _last_line(stack: Stack, *args: str) -> str:
    """The last line ``python ARGS`` prints, run in the stack's environment."""
    out = subprocess.run(
        [stack.python, *args],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1]


def _key(stack: Stack) -> str:
    """A new ``read`` key in the stack's database (``python -m api keys``)."""
    created = _last_line(
        stack, "-m", "api", "keys", "create", "--name", "bench", "--scopes", "read"
    )
    return created.split()[-1]


def _note(stack: Stack) -> str:
    """A note made in the stack's database through the store (keys aside)."""
    return _last_line(
        stack,
        "-c",
        "from core.settings import Settings; from db.stores import open_stores;"
        "s = open_stores(Settings.from_env()); "
        "print(s.notes.create('bench', 'a note to read').id); s.close()",
    )


def measure(python: str, quick: bool) -> dict:
    size = SIZES[quick]
    impl = "PyPy" if implementation(python) == "pypy" else "CPython"
    workers = default_workers(impl, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as folder:
        stacks: Dict[str, Stack] = {
            "without": Stack(python, Path(folder) / "off"),
            "with_key": Stack(python, Path(folder) / "on", env={"AUTH": "on"}),
        }
        headers: Dict[str, Optional[dict]] = {"without": None}
        paths = {}
        try:
            for name, stack in stacks.items():
                stack.start()
                paths[name] = f"/notes/{_note(stack)}"
            headers["with_key"] = {
                "Authorization": f"Bearer {_key(stacks['with_key'])}"
            }
            for name, stack in stacks.items():
                answer = requests.get(
                    stack.url + paths[name], headers=headers[name], timeout=10
                )
                answer.raise_for_status()  # the key works: 200, not 401
                measure_path(
                    stack.url, paths[name], size, workers, headers=headers[name]
                )
            rates: Dict[str, list] = {name: [] for name in stacks}
            turns, seconds = TURNS[quick]
            for _ in range(turns):
                for name, stack in stacks.items():
                    result = wrk.run(
                        stack.url,
                        paths[name],
                        seconds=seconds,
                        connections=16,
                        headers=headers[name],
                    )
                    if result["errors"]["total"]:
                        raise RuntimeError(f"{name}: {result['errors']}")
                    rates[name].append(round(result["rps"], 1))
        finally:
            for stack in stacks.values():
                stack.stop()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    cost = statistics.median(
        1 - with_key / without
        for with_key, without in zip(rates["with_key"], rates["without"])
    )
    return {
        "workers": workers,
        "rps": rates,
        "median_rps": medians,
        "cost": round(cost, 4),
        "target_cost": TARGET_COST,
        "met": cost < TARGET_COST,
    }


def run(quick: bool) -> dict:
    """Under PyPy when its virtualenv exists, else the first interpreter found."""
    pythons = default_pythons()
    python = next((p for p in pythons if "pypy" in p), pythons[0])
    return {
        "benchmark": "auth",
        "path": "GET /notes/{id}",
        "quick": quick,
        "interpreter": implementation(python),
        **measure(python, quick),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
