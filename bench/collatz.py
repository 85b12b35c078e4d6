"""Collatz timings: the longest chain in 1..n under PyPy, CPython and C; 1 vs 2 workers.

``python -m bench.collatz [--quick]`` prints one JSON object. Every figure is
measured in this run, on this machine:

- ``interpreters``: ``core.collatz.longest_upto(n)`` in a fresh
  process of each interpreter (``.venv/pypy3``, ``.venv/python3``), best of
  the repeats, timed inside the process (start-up excluded, JIT warm-up
  included: every repeat is a fresh memo, and the first is a cold JIT).
- ``c``: bench/collatz.c, the same algorithm, built with ``gcc -O2`` into a
  temporary folder.
- ``workers``: one request for n through a broker with 1, then 2, fresh PyPy
  workers (after a warm-up request for a smaller n; best of the repeats), and
  the speed-up; ``workers_large_n`` the same once for n = 10**8 (not with
  ``--quick``). The workers' memos are not shared, so each worker computes
  the lengths of the small numbers its walks reach: 2 workers do more work
  in total than 1, which the workers' CPU seconds show.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict
from typing import List
from typing import Optional

import zmq

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
C_SOURCE = Path(__file__).resolve().parent / "collatz.c"

_TIME_MODULE = """
import json, sys, time
from core.collatz import longest_upto
n, repeats = int(sys.argv[1]), int(sys.argv[2])
best = None
for _ in range(repeats):
    started = time.perf_counter()
    number, length = longest_upto(n)
    seconds = time.perf_counter() - started
    best = seconds if best is None else min(best, seconds)
print(json.dumps({"n": n, "number": number, "length": length, "seconds": best}))
"""


def interpreter(name: str) -> Optional[str]:
    """The project's venv interpreter ``name`` (pypy3, python3), or one on PATH."""
    candidate = ROOT / ".venv" / name / "bin" / "python"
    return str(candidate) if candidate.exists() else shutil.which(name)


def time_module(python: str, n: int, repeats: int) -> dict:
    """Time the pure module in a fresh ``python`` process."""
    out = subprocess.run(
        [python, "-c", _TIME_MODULE, str(n), str(repeats)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(out.stdout)


def time_c(n: int, repeats: int, folder: Path) -> dict:
    """Build bench/collatz.c with gcc -O2 and time it."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return {"error": "gcc not found"}
    binary = folder / "collatz"
    subprocess.run(
        [gcc, "-O2", "-o", str(binary), str(C_SOURCE)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    out = subprocess.run(
        [str(binary), str(n), str(repeats)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(out.stdout)


def _request(
    context: zmq.Context, endpoint: str, frames: List[bytes], timeout: float
) -> Optional[List[bytes]]:
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart(frames)
        if sock.poll(timeout * 1000):
            return sock.recv_multipart()
        return None
    finally:
        sock.close()


def _cpu_seconds(pids: List[int]) -> Optional[float]:
    """CPU time (user + system) the processes used so far (Linux /proc), or None."""
    total = 0
    try:
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def time_workers(python: str, workers: int, n: int, folder: Path) -> dict:
    """Seconds for one request for n through a fresh broker with ``workers`` workers."""
    frontend = f"tcp://127.0.0.1:{free_port()}"
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        COLLATZ_FRONTEND=frontend,
        COLLATZ_BACKEND=f"tcp://127.0.0.1:{free_port()}",
        COLLATZ_TIMEOUT="600",
        LOG_LEVEL="warning",
    )
    modules = ["workers.collatz.broker"] + ["workers.collatz.worker"] * workers
    processes = []
    context = zmq.Context()
    try:
        for number, module in enumerate(modules):
            log = open(folder / f"{module}-{workers}-{number}.log", "wb")
            processes.append(
                subprocess.Popen(
                    [python, "-m", module],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        deadline = time.monotonic() + 60
        while True:
            pong = _request(context, frontend, [b"CZ1", b"PING"], 1.0)
            if pong is not None and json.loads(pong[2])["workers"] == workers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} worker(s) did not join within 60 s")
        # Warm the JIT of every worker on a smaller n first.
        _request(context, frontend, [str(max(n // 10, 1000) + 1).encode()], 600)
        worker_pids = [process.pid for process in processes[1:]]
        cpu_before = _cpu_seconds(worker_pids)
        started = time.perf_counter()
        reply = _request(context, frontend, [str(n).encode()], 600)
        seconds = time.perf_counter() - started
        cpu_after = _cpu_seconds(worker_pids)
        if reply is None or reply[0].startswith(b"error"):
            raise RuntimeError(f"the broker did not answer n={n}: {reply}")
        number, length = (int(part) for part in reply[0].split())
        cpu = None if None in (cpu_before, cpu_after) else cpu_after - cpu_before
        return {
            "workers": workers,
            "n": n,
            "number": number,
            "length": length,
            "seconds": seconds,
            "worker_cpu_seconds": cpu,
        }
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        context.destroy(linger=0)


def compare_workers(
    python: str, n: int, repeats: int, folder: Path, runs: List[dict]
) -> dict:
    """1 against 2 workers for n; every run is appended to ``runs``."""
    # Alternated, fresh processes each time: a load that comes and goes on
    # the machine falls on both counts alike; the best of each is kept.
    mine = [
        time_workers(python, workers, n, folder)
        for _ in range(repeats)
        for workers in (1, 2)
    ]
    runs.extend(mine)
    best = {
        count: min(
            (r for r in mine if r["workers"] == count), key=lambda r: r["seconds"]
        )
        for count in (1, 2)
    }
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


def run(quick: bool = False) -> Dict[str, object]:
    """Every figure in one dict (``quick``: n = 10**6 and one repeat)."""
    n = 10**6 if quick else 10**7
    repeats = 1 if quick else 3
    result: Dict[str, object] = {"n": n, "repeats": repeats, "cpus": os.cpu_count()}
    pypy, cpython = interpreter("pypy3"), interpreter("python3")
    with tempfile.TemporaryDirectory(prefix="bench-collatz-") as tmp:
        folder = Path(tmp)
        timings = {}
        for name, python in (("pypy", pypy), ("cpython", cpython)):
            timings[name] = (
                time_module(python, n, repeats)
                if python
                else {"error": "interpreter not found"}
            )
        timings["c"] = time_c(n, repeats, folder)
        result["interpreters"] = timings
        seconds = {name: t.get("seconds") for name, t in timings.items()}
        if seconds["pypy"] and seconds["cpython"]:
            result["cpython_over_pypy"] = round(seconds["cpython"] / seconds["pypy"], 2)
        if seconds["pypy"] and seconds["c"]:
            result["pypy_over_c"] = round(seconds["pypy"] / seconds["c"], 2)
        worker_python = pypy or sys.executable
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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.collatz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="n = 10**6, one repeat")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
