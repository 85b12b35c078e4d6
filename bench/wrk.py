"""Run wrk with bench/wrk.lua and parse what it prints."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict
from typing import Optional

LUA_SCRIPT = Path(__file__).resolve().with_name("wrk.lua")
_MARKER = "BENCH_JSON "
INSTALL_HINT = "wrk is not installed. Run: sudo apt-get install -y wrk"


class WrkError(RuntimeError):
    """wrk did not run, or printed no result line."""


def wrk_binary() -> str:
    """The path of wrk, or WrkError saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(INSTALL_HINT)
    return path


def run(
    base_url: str,
    path: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    method: str = "GET",
    body: Optional[str] = None,
    body_file: Optional[Path] = None,
    headers: Optional[Dict[str, str]] = None,
    counter: int = 1,
    timeout: float = 10.0,
) -> dict:
    """Drive ``base_url + path`` at ``connections`` concurrent connections.

    Returns the parsed result (see :func:`parse`). wrk takes whole seconds, so
    ``seconds`` is rounded up to at least 1.
    """
    env = dict(os.environ)
    env.update(
        BENCH_PATH=path,
        BENCH_METHOD=method,
        BENCH_THREADS=str(threads),
        BENCH_COUNTER=str(counter),
        BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in (headers or {}).items()),
    )
    if body is not None:
        env["BENCH_BODY"] = body
    if body_file is not None:
        env["BENCH_BODY_FILE"] = str(body_file)
    args = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        str(LUA_SCRIPT),
        base_url.rstrip("/") + "/",
    ]
    done = subprocess.run(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=seconds + timeout + 60,
    )
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}:\n{done.stdout[-2000:]}")
    return parse(done.stdout)


def parse(output: str) -> dict:
    """Turn wrk's output into ``{rps, requests, seconds, errors, latency_ms}``.

    ``latency_ms`` holds min/mean/max/stdev/p50/p90/p99/p99.9 in milliseconds;
    ``errors`` counts socket errors, timeouts and responses >= 400 by kind, and
    ``errors["total"]`` sums them.
    """
    line = next((ln for ln in output.splitlines() if ln.startswith(_MARKER)), None)
    if line is None:
        raise WrkError(f"no {_MARKER.strip()} line in wrk's output:\n{output[-2000:]}")
    raw = json.loads(line[len(_MARKER) :])
    seconds = raw["duration_us"] / 1e6
    errors = dict(raw["errors"])
    errors["total"] = sum(errors.values())
    return {
        "rps": raw["requests"] / seconds if seconds > 0 else 0.0,
        "requests": raw["requests"],
        "seconds": seconds,
        "errors": errors,
        "latency_ms": {k: v / 1000.0 for k, v in raw["latency_us"].items()},
    }
