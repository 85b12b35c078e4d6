"""Benchmark: validate and store a batch of 10,000 64-bit primes.

``python -m bench.primes [--quick]`` prints JSON: the figures below measured
under PyPy and under CPython (each in a fresh process of the project's venv),
and CPython's time over PyPy's. ``--here`` measures only the running
interpreter. Three figures, each the best and the median of several runs after
one warm-up (PyPy's JIT needs it):

- ``validate``: the request schema plus the primality of every number,
  exactly what ``POST /primes`` does before touching the database;
- ``store``: :meth:`PrimeStore.insert` of the batch into an empty temp
  SQLite file (one transaction);
- ``validate_store``: the two together.

The primes are consecutive primes from a seeded random start in
[2**63, 2**64), found with the same primality function (not timed).
"""

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from typing import Callable
from typing import List

from bench.collatz import ROOT
from bench.collatz import interpreter
from core.primality import is_prime
from db.primes import PrimeStore
from db.schema import create_schema
from db.sql import Database
from resources.primes import MAX_BATCH
from resources.primes import PrimesIn
from resources.primes import check_primes

SEED = 6


def batch_of_primes(count: int, seed: int = SEED) -> List[int]:
    """``count`` consecutive primes from a seeded random odd start in [2**63, 2**64)."""
    n = random.Random(seed).randrange(2**63, 2**64 - 2**40) | 1
    found = []
    while len(found) < count:
        if is_prime(n):
            found.append(n)
        n += 2
    return found


def validate(numbers: List[int]) -> List[int]:
    """What the API does with a body before any database work."""
    loaded = PrimesIn().load({"primes": numbers})["primes"]
    check_primes(loaded)
    return loaded


def _timed(
    action: Callable[[Any], Any], setup: Callable[[], Any], repeats: int
) -> dict:
    """Best and median seconds of ``action(setup())`` over ``repeats`` runs."""
    times = []
    for run in range(repeats + 1):  # run 0 warms up
        prepared = setup()
        started = time.perf_counter()
        action(prepared)
        elapsed = time.perf_counter() - started
        if run:
            times.append(elapsed)
    return {
        "best_s": round(min(times), 6),
        "median_s": round(statistics.median(times), 6),
        "runs": repeats,
    }


def run(quick: bool) -> dict:
    """The figures under PyPy and CPython, and CPython's time over PyPy's."""
    results = {}
    for name, python in (
        ("pypy", interpreter("pypy3")),
        ("cpython", interpreter("python3")),
    ):
        if python is None:
            results[name] = {"available": False}
            continue
        command = [python, "-m", "bench.primes", "--here"] + (
            ["--quick"] if quick else []
        )
        out = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=1800
        )
        results[name] = json.loads(out.stdout)
    if "validate_store" in results["pypy"] and "validate_store" in results["cpython"]:
        results["cpython_over_pypy"] = {
            key: round(
                results["cpython"][key]["best_s"] / results["pypy"][key]["best_s"], 2
            )
            for key in ("validate", "store", "validate_store")
        }
    return results


def measure(quick: bool) -> dict:
    """Time validation, storing, and both, for a batch of 10,000 64-bit primes."""
    numbers = batch_of_primes(MAX_BATCH)
    repeats = 1 if quick else 10

    with tempfile.TemporaryDirectory(prefix="bench-primes-") as folder:
        databases = []

        def fresh_store() -> PrimeStore:
            # Every run stores into an empty file: the same batch twice is a 409.
            path = Path(folder) / f"primes-{len(databases)}.db"
            database = Database(f"sqlite:///{path}")
            create_schema(database.engine)
            databases.append(database)
            return PrimeStore(database)

        results = {
            "validate": _timed(lambda _: validate(numbers), lambda: None, repeats),
            "store": _timed(lambda store: store.insert(numbers), fresh_store, repeats),
            "validate_store": _timed(
                lambda store: store.insert(validate(numbers)), fresh_store, repeats
            ),
        }
        for database in databases:
            database.dispose()

    return {
        "benchmark": "primes",
        "interpreter": platform.python_implementation(),
        "python": platform.python_version(),
        "batch": len(numbers),
        "smallest": numbers[0],
        "largest": numbers[-1],
        "quick": quick,
        **results,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.primes", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument(
        "--here", action="store_true", help="measure only the running interpreter"
    )
    args = parser.parse_args(argv)
    json.dump((measure if args.here else run)(args.quick), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
