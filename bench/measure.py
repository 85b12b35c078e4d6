"""Warm up to the JIT's plateau, then measure one target with wrk at fixed concurrency.

The warm-up runs wrk in short slices and stops once the rate has levelled
off: the best of the last ``PLATEAU_SLICES`` slices is no more than
``PLATEAU_TOLERANCE`` above the best slice before them (and the workers have
served ``min_requests_per_worker`` each), or when ``max_warmup`` seconds
have passed (the result then says the plateau was not reached). A fixed
warm-up time measured PyPy half-warm on the slower paths: each gunicorn
worker compiles its own code, from the requests it serves.
"""

import dataclasses
import time
from pathlib import Path
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

from bench import wrk
from bench.paths import Target

#: Unique-body targets get enough bodies for this many requests per second;
#: beyond it bodies repeat and the server's 409s show up as errors.
MAX_WRITE_RATE = 10_000

#: Per phase, where ``{i}`` counters start: warm-up far from the measured
#: values so they are not in any cache when measured (collatz: n = 100001...);
#: each warm-up slice starts ``_COUNTER_STRIDE`` further on.
_COUNTER_START = {"warmup": 300_001, "measure": 100_001}
_COUNTER_STRIDE = 100_000
#: Per phase, the first unique prime body (primes above 10**9 and 2 * 10**9);
#: each warm-up slice starts ``_BODY_STRIDE`` further on.
_BODY_START = {"warmup": 2 * 10**9, "measure": 10**9}
_BODY_STRIDE = 10**7
#: The plateau: the last slices' best within this fraction of the earlier best.
PLATEAU_SLICES = 3
PLATEAU_TOLERANCE = 0.05


def levelled_off(rates: List[float], tolerance: float = PLATEAU_TOLERANCE) -> bool:
    """Whether the rate stopped climbing: the last slices beat the earlier best
    by no more than ``tolerance`` (a noisy machine jitters; it does not climb)."""
    if len(rates) <= PLATEAU_SLICES:
        return False
    recent = max(rates[-PLATEAU_SLICES:])
    earlier = max(rates[:-PLATEAU_SLICES])
    return recent <= earlier * (1 + tolerance)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long and how hard to drive each target.

    ``warmup`` is the most warm-up seconds per path (0: none); the warm-up
    ends sooner at the plateau, in slices of ``warmup_slice`` seconds, once
    each worker has served ``min_requests_per_worker`` requests.
    """

    warmup: float
    duration: float
    connections: int
    threads: int
    timeout: float = 10.0
    #: Extra warm-up allowed for the first path measured on a server: every
    #: gunicorn worker JIT-compiles the shared code (server loop, middleware).
    server_warmup: float = 0.0
    warmup_slice: float = 3.0
    min_requests_per_worker: int = 5000


class Measurer:
    """Runs wrk for targets; keeps generated body files in ``workdir``."""

    def __init__(self, settings: Settings, workdir: Path):
        self.settings = settings
        self.workdir = workdir
        self._body_files: Dict[str, Path] = {}
        self._warm_servers = set()

    def _body_file(
        self, target: Target, phase: str, seconds: float, part: int = 0
    ) -> Path:
        key = f"{target.name}-{phase}-{part}"
        if key not in self._body_files:
            count = int(MAX_WRITE_RATE * max(seconds, 1)) + 1
            start = _BODY_START[phase] + part * _BODY_STRIDE
            path = self.workdir / f"{key}.bodies"
            path.write_text("\n".join(target.bodies(count, start)) + "\n")
            self._body_files[key] = path
        return self._body_files[key]

    def _wrk(
        self,
        base_url: str,
        target: Target,
        path: str,
        phase: str,
        seconds: float,
        headers: Dict[str, str],
        part: int = 0,
    ) -> dict:
        body_file = (
            self._body_file(target, phase, seconds, part) if target.bodies else None
        )
        return wrk.run(
            base_url,
            path,
            seconds=seconds,
            connections=self.settings.connections,
            threads=self.settings.threads,
            method=target.method,
            body=target.body,
            body_file=body_file,
            headers={**target.headers, **headers},
            counter=_COUNTER_START[phase] + part * _COUNTER_STRIDE,
            timeout=self.settings.timeout,
        )

    def warm_up(
        self,
        base_url: str,
        target: Target,
        path: str,
        headers: Dict[str, str],
        limit: float,
        workers: int,
        jit: bool = True,
    ) -> dict:
        """Drive the target in slices until its rate levels off (or ``limit`` s).

        Returns what it did: the slices' rates, the requests per worker, and
        whether the plateau was reached. ``jit``: the server compiles as it
        runs (PyPy), so each worker must also have served
        ``min_requests_per_worker`` requests.
        """
        settings = self.settings
        per_worker = settings.min_requests_per_worker
        if target.warm_requests is not None:
            per_worker = min(per_worker, target.warm_requests)
        needed = per_worker * workers if jit else 0
        rates: List[float] = []
        requests = 0
        started = time.monotonic()
        plateau = False
        while True:
            elapsed = time.monotonic() - started
            left = limit - elapsed
            if left < 1:
                break
            seconds = min(settings.warmup_slice, left)
            result = self._wrk(
                base_url, target, path, "warmup", seconds, headers, len(rates)
            )
            rates.append(result["rps"])
            requests += result["requests"]
            if requests >= needed and levelled_off(rates):
                plateau = True
                break
        return {
            "seconds": round(time.monotonic() - started, 1),
            "slice_rps": [round(rate, 1) for rate in rates],
            "requests_per_worker": requests // max(workers, 1),
            "plateau": plateau,
        }

    def measure(
        self,
        base_url: str,
        target: Target,
        path: str,
        headers: Optional[Dict[str, str]] = None,
        label: str = "",
        cpu_seconds: Optional[Callable[[], Optional[float]]] = None,
        workers: int = 1,
        jit: bool = True,
    ) -> dict:
        """Warm up (unless 0 s), measure, print one line; the result dict.

        ``cpu_seconds`` (the server's CPU time so far) adds the server's CPU
        milliseconds per request to the result; ``workers`` (the server's
        gunicorn workers) sizes the warm-up.
        """
        headers = headers or {}
        settings = self.settings
        print(f"  {label:<18} {target.label:<44}", end=" ", flush=True)
        warmup = settings.warmup
        if base_url not in self._warm_servers:
            warmup += settings.server_warmup
            self._warm_servers.add(base_url)
        warmed = None
        if warmup > 0:
            warmed = self.warm_up(base_url, target, path, headers, warmup, workers, jit)
        cpu_before = cpu_seconds() if cpu_seconds else None
        result = self._wrk(
            base_url, target, path, "measure", settings.duration, headers
        )
        cpu_after = cpu_seconds() if cpu_seconds else None
        if cpu_before is not None and cpu_after is not None and result["requests"]:
            result["cpu_ms_per_request"] = (
                (cpu_after - cpu_before) * 1000 / result["requests"]
            )
        latency = result["latency_ms"]
        errors = result["errors"]["total"]
        cpu = result.get("cpu_ms_per_request")
        print(
            f"{result['rps']:>10,.0f} req/s  p50 {latency['p50']:7.2f} ms  "
            f"p99 {latency['p99']:7.2f} ms"
            + (f"  cpu {cpu:.3f} ms/req" if cpu is not None else "")
            + (f"  errors {errors}" if errors else "")
            + (
                f"  (warm-up {warmed['seconds']:.0f} s, "
                f"{warmed['requests_per_worker']:,}/worker"
                + ("" if warmed["plateau"] else ", no plateau")
                + ")"
                if warmed
                else ""
            ),
            flush=True,
        )
        return {"available": True, "path": path, "warmup": warmed, **result}


def unavailable(reason: str, target: Target, label: str = "") -> dict:
    """The result of a target that cannot be measured, printed as one line."""
    print(f"  {label:<18} {target.label:<44} not available: {reason}", flush=True)
    return {"available": False, "reason": reason}
