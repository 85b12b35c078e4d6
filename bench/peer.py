"""Benchmark: this project against the FastAPI peer on the same three paths.

``python -m bench.peer [--quick]`` prints JSON; docs/performance/index.md
says how it measures.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import common
from bench import paths
from tests.support.processes import Process
from tests.support.processes import free_port

TARGETS = [paths.BY_NAME[name] for name in ("notes-get", "notes-post", "redirect")]
PEER_WORKERS = 2
RATIO = 2.0


def start_peer(python: str, folder: Path) -> Process:
    """uvicorn serving bench/peer_app.py; returns once it answers."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(common.ROOT))
    env["PEER_DATABASE"] = str(folder / "peer.db")
    peer = Process(
        [python, "-m", "uvicorn", "bench.peer_app:app", "--host", "127.0.0.1"]
        + ["--port", str(port), "--workers", str(PEER_WORKERS), "--loop", "uvloop"]
        + ["--http", "httptools", "--no-access-log", "--log-level", "warning"],
        env,
        folder / "peer.log",
        folder,
    )
    peer.start()
    peer.url = f"http://127.0.0.1:{port}"
    common.wait_until(
        lambda: peer.check() or common.get_json(peer.url + "/notes/none"), 60
    )
    return peer


def measure_all(measurer, url: str, label: str, workers: int, jit: bool, stack=None):
    api = paths.Api(url)
    return {
        target.name: measurer.measure(
            url,
            target,
            target.prepare(api),
            label=label,
            stack=stack,
            workers=workers,
            jit=jit,
        )
        for target in TARGETS
    }


def run(quick: bool) -> dict:
    """Both sides' figures per path, the ratio and the p99s."""
    pypy, cpython = common.interpreter("pypy3"), common.interpreter("python3")
    missing = subprocess.run(
        [cpython or "python3", "-c", "import fastapi, uvicorn, uvloop, orjson"],
        capture_output=True,
        text=True,
    )
    if pypy is None or missing.returncode:
        reason = missing.stderr.strip().splitlines()[-1:] or ["no PyPy"]
        return {"available": False, "reason": f"{reason[0]} (make bench installs it)"}
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        folder = Path(tmp)
        measurer = common.Measurer(
            folder,
            warmup=0.0 if quick else 120.0,
            warmup_slice=10.0,
            duration=2.0 if quick else 10.0,
            threads=2,
            min_requests=0 if quick else 120_000,
        )
        workers = common.workers(pypy)
        with common.Stack(pypy, folder / "ours") as stack:
            ours = measure_all(measurer, stack.url, "ours", workers, True, stack)
        peer = start_peer(cpython, folder)
        try:
            theirs = measure_all(measurer, peer.url, "FastAPI", PEER_WORKERS, False)
        finally:
            peer.stop()
    rows = []
    for target in TARGETS:
        a, b = ours[target.name], theirs[target.name]
        rows.append(
            {
                "path": target.label,
                "ours_rps": round(a["rps"]),
                "peer_rps": round(b["rps"]),
                "ratio": common.ratio(a["rps"], b["rps"]),
                "ours_p99_ms": round(a["latency_ms"]["p99"], 2),
                "peer_p99_ms": round(b["latency_ms"]["p99"], 2),
                "errors": a["errors"]["total"] + b["errors"]["total"],
            }
        )
    return {
        "benchmark": "peer",
        "ours_workers": workers,
        "target_ratio": RATIO,
        "rows": rows,
    }


if __name__ == "__main__":
    sys.exit(common.figure_main(__doc__, run))
