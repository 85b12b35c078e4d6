"""Warm up, then measure one target with wrk at fixed concurrency."""

import dataclasses
from pathlib import Path
from typing import Callable
from typing import Dict
from typing import Optional

from bench import wrk
from bench.paths import Target

#: Unique-body targets get enough bodies for this many requests per second;
#: beyond it bodies repeat and the server's 409s show up as errors.
MAX_WRITE_RATE = 10_000

#: Per phase, where ``{i}`` counters start: warm-up far from the measured
#: values so they are not in any cache when measured (collatz: n = 100001...).
_COUNTER_START = {"warmup": 300_001, "measure": 100_001}
#: Per phase, the first unique prime body (primes above 10**9 and 2 * 10**9).
_BODY_START = {"warmup": 2 * 10**9, "measure": 10**9}


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long and how hard to drive each target."""

    warmup: float
    duration: float
    connections: int
    threads: int
    timeout: float = 10.0
    #: Extra warm-up for the first path measured on a server: every gunicorn
    #: worker JIT-compiles the shared code (server loop, middleware) on its own.
    server_warmup: float = 0.0


class Measurer:
    """Runs wrk for targets; keeps generated body files in ``workdir``."""

    def __init__(self, settings: Settings, workdir: Path):
        self.settings = settings
        self.workdir = workdir
        self._body_files: Dict[str, Path] = {}
        self._warm_servers = set()

    def _body_file(self, target: Target, phase: str, seconds: float) -> Path:
        key = f"{target.name}-{phase}"
        if key not in self._body_files:
            count = int(MAX_WRITE_RATE * max(seconds, 1)) + 1
            path = self.workdir / f"{key}.bodies"
            path.write_text("\n".join(target.bodies(count, _BODY_START[phase])) + "\n")
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
    ) -> dict:
        body_file = self._body_file(target, phase, seconds) if target.bodies else None
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
            counter=_COUNTER_START[phase],
            timeout=self.settings.timeout,
        )

    def measure(
        self,
        base_url: str,
        target: Target,
        path: str,
        headers: Optional[Dict[str, str]] = None,
        label: str = "",
        cpu_seconds: Optional[Callable[[], Optional[float]]] = None,
    ) -> dict:
        """Warm up (unless 0 s), measure, print one line; the result dict.

        ``cpu_seconds`` (the server's CPU time so far) adds the server's CPU
        milliseconds per request to the result.
        """
        headers = headers or {}
        settings = self.settings
        print(f"  {label:<18} {target.label:<44}", end=" ", flush=True)
        warmup = settings.warmup
        if base_url not in self._warm_servers:
            warmup += settings.server_warmup
            self._warm_servers.add(base_url)
        if warmup > 0:
            self._wrk(base_url, target, path, "warmup", warmup, headers)
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
            + (f"  errors {errors}" if errors else ""),
            flush=True,
        )
        return {"available": True, "path": path, **result}


def unavailable(reason: str, target: Target, label: str = "") -> dict:
    """The result of a target that cannot be measured, printed as one line."""
    print(f"  {label:<18} {target.label:<44} not available: {reason}", flush=True)
    return {"available": False, "reason": reason}
