"""``POST /links/bulk`` with 1,000 links, end to end (docs/performance)."""

import sys
import tempfile
import time
from itertools import count
from pathlib import Path

import requests

from bench import common

LINKS = 1000
TARGET_SECONDS = 1.0


def measure(python: str, quick: bool, folder: Path) -> dict:
    warmup, measured = (4, 5) if quick else (40, 30)
    numbers = count()

    def post(session: requests.Session, url: str) -> float:
        batch = next(numbers)
        body = {
            "links": [{"url": f"https://example.com/{batch}/{n}"} for n in range(LINKS)]
        }
        started = time.perf_counter()
        answer = session.post(url + "/links/bulk", json=body, timeout=60)
        elapsed = time.perf_counter() - started
        if answer.status_code != 207 or answer.json()["created"] != LINKS:
            raise RuntimeError(f"bulk create: {answer.status_code} {answer.text[:300]}")
        return elapsed

    with common.Stack(python, folder) as stack, requests.Session() as session:
        first = post(session, stack.url)
        for _ in range(warmup):
            post(session, stack.url)
        times = [post(session, stack.url) for _ in range(measured)]
    return {
        "python": python,
        "first_request_s": round(first, 4),
        "warmup_requests": warmup,
        "requests": measured,
        "best_s": round(min(times), 4),
        "median_s": round(common.percentile(times, 50), 4),
        "p90_s": round(common.percentile(times, 90), 4),
        "worst_s": round(max(times), 4),
        "links_per_s_median": round(LINKS / common.percentile(times, 50)),
        "under_1s": max(times) < TARGET_SECONDS,
    }


def run(quick: bool) -> dict:
    """Bulk creates under PyPy and CPython; CPython's median over PyPy's."""
    results = {"benchmark": "links_bulk", "links_per_request": LINKS}
    results["target"] = f"{LINKS} links in under {TARGET_SECONDS:g} s"
    for impl, python in common.interpreters().items():
        with tempfile.TemporaryDirectory(prefix=f"bench-bulk-{impl}-") as tmp:
            results[impl] = measure(python, quick, Path(tmp))
    if "pypy" in results and "cpython" in results:
        results["cpython_over_pypy"] = common.ratio(
            results["cpython"]["median_s"], results["pypy"]["median_s"]
        )
    return results


if __name__ == "__main__":
    sys.exit(common.figure_main(__doc__, run))
