"""This project against the FastAPI peer on the same three paths (docs/performance)."""

import sys
import tempfile
from pathlib import Path

from bench import common
from bench import paths

TARGETS = {
    name: paths.BY_NAME[name] for name in ("notes-get", "notes-post", "redirect")
}
PEER_WORKERS = 2
RATIO = 2.0
PEER_MODULES = ("fastapi", "uvicorn", "uvloop", "orjson")
UVICORN = ["-m", "uvicorn", "bench.peer_app:app", "--host", "127.0.0.1"]
UVICORN += ["--workers", str(PEER_WORKERS), "--loop", "uvloop", "--http", "httptools"]
UVICORN += ["--no-access-log", "--log-level", "warning"]


def run(quick: bool) -> dict:
    """Both sides' figures per path, the ratio and the p99s."""
    pypy, cpython = common.interpreter("pypy3"), common.interpreter("python3")
    missing = common.import_error(cpython or "python3", *PEER_MODULES)
    if pypy is None or missing:
        reason = f"{missing or 'no PyPy'} (make bench installs it)"
        return {"available": False, "reason": reason}
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
            ours = measurer.measure_all(stack, TARGETS, "ours", workers, every=True)
        # The peer's stack: its uvicorn alone, on its own SQLite file.
        env = {"PEER_DATABASE": str(folder / "peer.db")}
        peer = common.Stack(cpython, folder / "peer", env=env)
        try:
            ready = peer.url + "/notes/none"  # a 404, as JSON
            peer.spawn("uvicorn", *UVICORN, "--port", str(peer.port), ready=ready)
            theirs = measurer.measure_all(
                peer, TARGETS, "FastAPI", PEER_WORKERS, False, every=True
            )
        finally:
            peer.stop()
    rows = []
    for name, target in TARGETS.items():
        a, b = ours[name], theirs[name]
        rows.append(
            {
                "path": target.label,
                "ours_rps": round(a["rps"]),
                "peer_rps": round(b["rps"]),
                "ratio": common.ratio(a["rps"], b["rps"]),
                "ours_p99_ms": round(a["latency_ms"]["p99"], 2),
                "peer_p99_ms": round(b["latency_ms"]["p99"], 2),
                "errors": a["errors"]["total"] + b["errors"]["total"],
                "ours_p50_ms": round(a["latency_ms"]["p50"], 2),
                "ours_gc": common.describe_gc(a.get("gc")),
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
