"""Benchmark: ``POST /links/bulk`` with 1,000 links, end to end.

``python -m bench.links_bulk [--quick] [--json PATH]`` starts gunicorn as
``make serve`` does (``gunicorn.conf.py``, its defaults: one worker per core
under PyPy, gevent) under PyPy and under CPython, each on a fresh SQLite
file, and times requests of 1,000 new links each (every URL distinct, no
alias) from the answer's first byte sent to its last byte read. It warms
up first (PyPy's JIT compiles per worker: the warm-up runs until every
worker has served ``warmup`` requests' worth), then measures ``requests``
requests one after another. Prints JSON (and writes it to ``--json``):
per interpreter, the cold first request, then best, median, p90 and worst
seconds per request and links per second; the target (1,000 links in under
1 s) holds when the worst measured request is under 1 s.
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator
from typing import List

import requests

from bench.collatz import interpreter
from bench.servers import ROOT
from bench.servers import Stack
from db.schema import create_schema
from db.sql import Database

LINKS = 1000
TARGET_SECONDS = 1.0


def _batches(prefix: str) -> Iterator[dict]:
    number = 0
    while True:
        yield {
            "links": [
                {"url": f"https://example.com/{prefix}/{number}/{n}"}
                for n in range(LINKS)
            ]
        }
        number += 1


def _post(session: requests.Session, url: str, body: dict) -> float:
    started = time.perf_counter()
    answer = session.post(url + "/links/bulk", json=body, timeout=60)
    elapsed = time.perf_counter() - started
    if answer.status_code != 207 or answer.json()["created"] != LINKS:
        raise RuntimeError(
            f"bulk create failed: {answer.status_code} {answer.text[:300]}"
        )
    return elapsed


def measure(python: str, quick: bool, folder: Path) -> dict:
    """Start gunicorn under ``python`` and time bulk creates against it."""
    database_path = folder / "var" / "api.db"
    database_path.parent.mkdir(parents=True)
    database = Database(f"sqlite:///{database_path}")
    create_schema(database.engine)
    database.dispose()
    warmup = 4 if quick else 40
    count = 5 if quick else 30
    with Stack(python, folder, database=database_path) as stack:
        batches = _batches(folder.name)
        with requests.Session() as session:
            first = _post(session, stack.url, next(batches))
            for _ in range(warmup):
                _post(session, stack.url, next(batches))
            times: List[float] = [
                _post(session, stack.url, next(batches)) for _ in range(count)
            ]
    times.sort()
    return {
        "python": python,
        "first_request_s": round(first, 4),
        "warmup_requests": warmup,
        "requests": count,
        "best_s": round(times[0], 4),
        "median_s": round(statistics.median(times), 4),
        "p90_s": round(times[int(0.9 * (len(times) - 1))], 4),
        "worst_s": round(times[-1], 4),
        "links_per_s_median": round(LINKS / statistics.median(times)),
        "under_1s": times[-1] < TARGET_SECONDS,
    }


def run(quick: bool) -> dict:
    """Bulk creates under PyPy and CPython; CPython's median over PyPy's."""
    results = {
        "benchmark": "links_bulk",
        "links_per_request": LINKS,
        "target": f"{LINKS} links in under {TARGET_SECONDS:g} s",
        "machine": platform.machine(),
        "quick": quick,
    }
    for name in ("pypy3", "python3"):
        python = interpreter(name)
        if python is None:
            results[name] = {"available": False}
            continue
        with tempfile.TemporaryDirectory(prefix=f"bench-bulk-{name}-") as tmp:
            results[name] = measure(python, quick, Path(tmp))
    pypy, cpython = results.get("pypy3", {}), results.get("python3", {})
    if "median_s" in pypy and "median_s" in cpython:
        results["cpython_over_pypy"] = round(cpython["median_s"] / pypy["median_s"], 2)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.links_bulk", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="few requests")
    parser.add_argument(
        "--json",
        default=str(ROOT / "bench/results/links_bulk.json"),
        help="where to write the JSON ('-': nowhere)",
    )
    args = parser.parse_args(argv)
    results = run(args.quick)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json != "-":
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
