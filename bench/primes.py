"""Validating and storing a batch of 10,000 64-bit primes (docs/performance)."""

import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List

from bench import common
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


def run(quick: bool) -> dict:
    """The figures under PyPy and CPython, and CPython's time over PyPy's."""
    results = {
        impl: common.run_in(python, "bench.primes:measure", quick)
        for impl, python in common.interpreters().items()
    }
    if "pypy" in results and "cpython" in results:
        results["cpython_over_pypy"] = {
            key: common.ratio(
                results["cpython"][key]["best_s"], results["pypy"][key]["best_s"]
            )
            for key in ("validate", "store", "validate_store")
        }
    return results


def measure(quick: bool) -> dict:
    """Time validation, storing, and both, for a batch of 10,000 64-bit primes."""
    numbers = batch_of_primes(MAX_BATCH)
    repeats = 1 if quick else 10
    actions = {
        "validate": lambda store: validate(numbers),
        "store": lambda store: store.insert(numbers),
        "validate_store": lambda store: store.insert(validate(numbers)),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-primes-") as folder:
        for name, action in actions.items():
            times = []
            for run in range(repeats + 1):  # run 0 warms up
                # Every run stores into an empty file: the same batch twice is a 409.
                database = Database(f"sqlite:///{Path(folder) / f'{name}-{run}.db'}")
                create_schema(database.engine)
                store = PrimeStore(database)
                started = time.perf_counter()
                action(store)
                times.append(time.perf_counter() - started)
                database.dispose()
            results[name] = {
                "best_s": round(min(times[1:]), 6),
                "median_s": round(statistics.median(times[1:]), 6),
                "runs": repeats,
            }
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


if __name__ == "__main__":
    sys.exit(common.figure_main(__doc__, run))
