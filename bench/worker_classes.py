"""Gunicorn worker classes under PyPy, with and without keep-alive.

The sync worker answers every request with ``Connection: close``, so each
request pays a TCP connect whatever the client asks; gthread and gevent keep
connections open. "Without keep-alive" sends ``Connection: close`` to every
worker class, which is what many load balancers and short-lived clients do.
"""

import subprocess
from pathlib import Path
from typing import List
from typing import Optional

from bench import paths
from bench.measure import Measurer
from bench.measure import unavailable
from bench.servers import Stack
from bench.servers import StartError

#: name -> environment; gthread's thread count is what the default would use.
CLASSES = {
    "sync": {"WORKER_CLASS": "sync", "THREADS": "1"},
    "gthread": {"WORKER_CLASS": "gthread", "THREADS": "4"},
    "gevent": {"WORKER_CLASS": "gevent", "THREADS": "1"},
}
KEEPALIVE = {"keep-alive": {}, "close": {"Connection": "close"}}

#: A database path for when the notes resource is not in this checkout.
READY = paths.Target("ready", "GET /ready (SQL ping)", "/ready")


def missing_reason(python: str, worker_class: str) -> Optional[str]:
    """Why ``worker_class`` cannot run under ``python``, or None if it can."""
    if worker_class != "gevent":
        return None
    done = subprocess.run(
        [python, "-c", "import gevent"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    if done.returncode == 0:
        return None
    last_line = (done.stdout.strip().splitlines() or ["import failed"])[-1]
    return (
        f"gevent does not import under this interpreter ({last_line}); "
        "make bench installs it from requirements-bench.txt"
    )


#: What each class is measured on: /health, and a database path (the first of
#: the alternatives the app offers).
SLOTS = [[paths.BY_NAME["health"]], [paths.BY_NAME["notes-get"], READY]]


def _prepare(api: paths.Api, alternatives: List[paths.Target]):
    reasons = []
    for target in alternatives:
        try:
            return target, target.prepare(api)
        except paths.NotAvailable as ex:
            reasons.append(f"{target.label}: {ex}")
    raise paths.NotAvailable("; ".join(reasons))


def compare(
    python: str,
    workdir: Path,
    measurer: Measurer,
    *,
    workers: int,
    database: Path,
    slots: List[List[paths.Target]] = SLOTS,
) -> dict:
    """Measure every class x connection mode x slot; the results as rows."""
    rows = []
    missing = {}
    for name, env in CLASSES.items():
        reason = missing_reason(python, name)
        if reason:
            missing[name] = reason
            print(f"  {name:<10} not available: {reason}", flush=True)
            continue
        stack = Stack(
            python,
            workdir / f"class-{name}",
            database=database,
            env={**env, "WORKERS": str(workers)},
        )
        try:
            stack.start()
        except StartError as ex:
            missing[name] = f"gunicorn did not start: {str(ex)[-500:]}"
            print(f"  {name:<10} not available: {missing[name]}", flush=True)
            continue
        try:
            api = paths.Api(stack.url)
            for alternatives in slots:
                try:
                    target, path = _prepare(api, alternatives)
                except paths.NotAvailable as ex:
                    unavailable(str(ex), alternatives[0], name)
                    continue
                for mode, headers in KEEPALIVE.items():
                    result = measurer.measure(
                        stack.url,
                        target,
                        path,
                        headers=headers,
                        label=f"{name}/{mode}",
                        cpu_seconds=stack.cpu_seconds,
                        workers=workers,
                    )
                    rows.append(
                        {
                            "worker_class": name,
                            "threads": int(env["THREADS"]),
                            "connection": mode,
                            "target": target.name,
                            "label": target.label,
                            **result,
                        }
                    )
        finally:
            stack.stop()
    return {"rows": rows, "not_available": missing}
