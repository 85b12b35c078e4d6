"""The longest Collatz chain in 1..n under PyPy, CPython, C; 1 vs 2 workers."""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from db.errors import Unavailable
from gateways.collatz import CollatzClient
from tests.support.processes import wait_until


def time_module(n: int, repeats: int) -> dict:
    """The best of ``repeats`` timings of the pure module (run in a fresh process)."""
    from core.collatz import longest_upto

    def timed() -> tuple:
        started = time.perf_counter()
        answer = longest_upto(n)
        return time.perf_counter() - started, answer

    best, (number, length) = min(timed() for _ in range(repeats))
    return {"n": n, "number": number, "length": length, "seconds": best}


def time_c(n: int, repeats: int, folder: Path) -> dict:
    """Build bench/collatz.c with gcc -O2 and time it."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return {"error": "gcc not found"}
    binary = folder / "collatz"
    source = str(common.HERE / "collatz.c")
    common.output([gcc, "-O2", "-o", str(binary), source], timeout=120)
    return json.loads(common.output([str(binary), str(n), str(repeats)]))


def time_workers(python: str, workers: int, n: int, folder: Path) -> dict:
    """Seconds for one request for n through a fresh broker with ``workers`` workers."""
    stack = common.Stack(python, folder / f"workers-{time.monotonic_ns()}")
    stack.env["COLLATZ_TIMEOUT"] = "600"
    client = CollatzClient(stack.env["COLLATZ_FRONTEND"], timeout=600)

    def joined() -> bool:
        try:
            return client.stats().get("workers") == workers
        except Unavailable:
            return False  # the broker is not up yet

    try:
        stack.start_collatz(workers)
        wait_until(joined, 60, what=f"{workers} worker(s) joining")
        client.longest(max(n // 10, 1000) + 1)  # every worker's JIT, on less
        pids = {p.proc.pid for name, p in stack.processes.items() if "worker" in name}
        cpu_before = common.cpu_seconds(pids)
        started = time.perf_counter()
        number, length = client.longest(n)
        seconds = time.perf_counter() - started
        cpu = common.cpu_seconds(pids) - cpu_before
        return {
            "workers": workers,
            "n": n,
            "number": number,
            "length": length,
            "seconds": seconds,
            "worker_cpu_seconds": cpu,
        }
    finally:
        client.close()
        stack.stop()


def compare_workers(python: str, n: int, repeats: int, folder: Path, runs) -> dict:
    """1 against 2 workers for n; every run is appended to ``runs``."""
    # Alternated, fresh processes each time: a load that comes and goes on
    # the machine falls on both counts alike; the best of each is kept.
    mine = [
        time_workers(python, workers, n, folder)
        for _ in range(repeats)
        for workers in (1, 2)
    ]
    runs.extend(mine)
    best = {}
    for timed in sorted(mine, key=lambda timed: timed["seconds"]):
        best.setdefault(timed["workers"], timed)
    return {
        "n": n,
        "interpreter": python,
        "1": best[1]["seconds"],
        "2": best[2]["seconds"],
        "speedup": round(best[1]["seconds"] / best[2]["seconds"], 2),
        # Work done, whatever else runs on the machine: two workers fill two
        # memos, so they do more work in total than one.
        "worker_cpu_seconds": {str(c): best[c]["worker_cpu_seconds"] for c in best},
    }


def run(quick: bool = False) -> dict:
    """Every figure in one dict (``quick``: n = 10**6 and one repeat)."""
    n = 10**6 if quick else 10**7
    repeats = 1 if quick else 3
    result = {"n": n, "repeats": repeats, "cpus": os.cpu_count()}
    pythons = common.interpreters()
    with tempfile.TemporaryDirectory(prefix="bench-collatz-") as tmp:
        folder = Path(tmp)
        timings = {
            name: common.run_in(python, "bench.collatz:time_module", n, repeats)
            for name, python in pythons.items()
        }
        timings["c"] = time_c(n, repeats, folder)
        result["interpreters"] = timings
        seconds = {name: t.get("seconds") for name, t in timings.items()}
        result["cpython_over_pypy"] = common.ratio(seconds["cpython"], seconds["pypy"])
        result["pypy_over_c"] = common.ratio(seconds["pypy"], seconds.get("c"))
        worker_python = pythons["pypy"]
        runs = []
        result["workers"] = compare_workers(worker_python, n, repeats, folder, runs)
        if not quick:
            # Above the workers' memo size (2**24) the work they share stops
            # growing with n, so the second worker pays off better.
            result["workers_large_n"] = compare_workers(
                worker_python, 10**8, 1, folder, runs
            )
        answers = {
            (t["number"], t["length"])
            for t in list(timings.values()) + runs
            if "number" in t and t["n"] == n
        }
        result["same_answer"] = len(answers) == 1
    # Other processes on the machine skew every figure; this says how busy it was.
    result["load_average"] = [round(load, 2) for load in os.getloadavg()]
    return result


if __name__ == "__main__":
    sys.exit(common.figure_main(__doc__, run))
