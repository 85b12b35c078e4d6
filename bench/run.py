"""``make bench``: every hot path under PyPy and CPython, side by side, in one run.

For each interpreter it starts the API as ``make serve`` does (gunicorn with
gunicorn.conf.py and its defaults: the interpreter's default number of
workers, no access log; its own port and copy of the prepared database,
collatz broker and workers when the checkout has them) and a bare Falcon app
served the same way as the ceiling; warms each path up until its rate levels
off (the JIT's plateau, bench/measure.py), then drives it with wrk at fixed
concurrency. Then it compares gunicorn worker classes under PyPy and runs the
figure modules (bench/primes.py, collatz.py, push.py, rethinkdb.py). It
prints the tables, the performance targets with their figures and whether
each holds, and writes ``bench/results/<name>.json``, ``.md`` and ``.png``.

Run ``python -m bench.run --help`` for the knobs; ``make bench QUICK=1`` is
the short run.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict
from typing import List
from typing import Optional

from bench import dataset
from bench import figures
from bench import machine
from bench import paths
from bench import report
from bench import worker_classes
from bench import wrk
from bench.measure import Measurer
from bench.measure import Settings
from bench.measure import unavailable
from bench.servers import ROOT
from bench.servers import Stack
from bench.servers import StartError
from bench.servers import has_module
from core.settings import Settings as ServerSettings
from core.settings import default_workers

DEFAULT_INTERPRETERS = {
    "pypy3": str(ROOT / ".venv" / "pypy3" / "bin" / "python"),
    "python3": str(ROOT / ".venv" / "python3" / "bin" / "python"),
}
#: Seconds of measurement, and the most seconds of warm-up per path (it ends
#: at the plateau, usually far sooner; see bench/measure.py).
FULL = {
    "warmup": 90.0,
    "duration": 10.0,
    "server_warmup": 60.0,
    "warmup_slice": 3.0,
    "class_warmup": 60.0,
    "class_duration": 10.0,
}
QUICK = {
    "warmup": 1.0,
    "duration": 1.0,
    "server_warmup": 0.0,
    "warmup_slice": 0.5,
    "class_warmup": 1.0,
    "class_duration": 1.0,
}
#: Requests each PyPy worker serves before a plateau may be declared (the
#: JIT compiles from what it has run; CPython has nothing to warm). Fewer
#: measured GET /notes/{id} half-warm: a rate that stops climbing for a few
#: slices is not yet the JIT's plateau (docs/performance/index.md).
MIN_REQUESTS_PER_WORKER = {"full": 120_000, "quick": 0}
#: Where the seed apps' own figures are kept (measured outside the project).
SEED_FIGURES = ROOT / "bench" / "results" / "seed.json"
#: How long a path may answer 503 while its backend comes up (collatz workers).
BACKEND_PATIENCE = 30.0
COLLATZ_MODULES = ("workers.collatz.broker", "workers.collatz.worker")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short warm-ups and runs (under two minutes; noisy)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results",
        help="folder for NAME.json and NAME.png (default bench/results)",
    )
    parser.add_argument("--name", help="file name stem (default: latest, or quick)")
    parser.add_argument(
        "--interpreter",
        action="append",
        metavar="NAME=PYTHON",
        help="an interpreter to measure (repeatable; default "
        "pypy3 and python3 from .venv/)",
    )
    parser.add_argument(
        "--only",
        help="comma-separated path names (and 'bare'); "
        f"known: {', '.join(t.name for t in paths.TARGETS)}",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        help="most seconds of warm-up per path (it ends at the plateau; 0: none)",
    )
    parser.add_argument("--duration", type=float, help="measured seconds per path")
    parser.add_argument(
        "--server-warmup",
        type=float,
        help="extra warm-up before the first path on each server",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="concurrent connections wrk keeps open (default 16)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (default 1)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="gunicorn workers per server (default: gunicorn.conf.py's default "
        "for each interpreter: one per core under PyPy, 2 x cores + 1 under "
        "CPython)",
    )
    parser.add_argument(
        "--seed",
        type=Path,
        default=SEED_FIGURES,
        help="JSON of the seed apps' figures, measured outside the project "
        "(default bench/results/seed.json; see docs/performance/index.md)",
    )
    parser.add_argument(
        "--no-worker-classes",
        action="store_true",
        help="skip the worker-class comparison",
    )
    parser.add_argument(
        "--no-figures",
        action="store_true",
        help="skip bench/primes.py, collatz.py, push.py",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG")
    parser.add_argument(
        "--chart-python",
        help="interpreter with matplotlib (default: the python3 one, else this one)",
    )
    return parser.parse_args(argv)


def _interpreters(args: argparse.Namespace) -> Dict[str, str]:
    if not args.interpreter:
        chosen = dict(DEFAULT_INTERPRETERS)
    else:
        chosen = {}
        for entry in args.interpreter:
            name, sep, python = entry.partition("=")
            if not sep or not name or not python:
                raise SystemExit(f"--interpreter wants NAME=PYTHON, not {entry!r}")
            # Absolute but not resolved: a venv's python is a symlink whose
            # path is what makes it use the venv.
            chosen[name] = os.path.abspath(python)
    for name, python in chosen.items():
        if not Path(python).exists():
            raise SystemExit(
                f"{name}: {python} does not exist; `make bench` creates "
                f"the virtualenvs (or: make test PY={name})"
            )
    return chosen


def _prepare(target: paths.Target, api: paths.Api) -> str:
    """``target.prepare``, retried while its backend answers 503 (workers starting)."""
    deadline = time.monotonic() + BACKEND_PATIENCE
    while True:
        try:
            return target.prepare(api)
        except paths.NotAvailable as ex:
            if ex.status != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class Run:
    """One benchmark run: its settings, its temp folder, its results."""

    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.interpreters = _interpreters(args)
        timings = QUICK if args.quick else FULL
        warmup = timings["warmup"] if args.warmup is None else args.warmup
        duration = timings["duration"] if args.duration is None else args.duration
        server_warmup = (
            timings["server_warmup"]
            if args.server_warmup is None
            else args.server_warmup
        )
        self.min_requests = MIN_REQUESTS_PER_WORKER["quick" if args.quick else "full"]
        self.measurer = Measurer(
            Settings(
                warmup,
                duration,
                args.connections,
                args.threads,
                server_warmup=server_warmup,
                warmup_slice=timings["warmup_slice"],
                min_requests_per_worker=self.min_requests,
            ),
            workdir,
        )
        self.class_measurer = Measurer(
            Settings(
                min(warmup, timings["class_warmup"]),
                min(duration, timings["class_duration"]),
                args.connections,
                args.threads,
                server_warmup=server_warmup,
                warmup_slice=timings["warmup_slice"],
                min_requests_per_worker=self.min_requests,
            ),
            workdir,
        )
        if args.only:
            names = [name.strip() for name in args.only.split(",") if name.strip()]
        else:
            names = [target.name for target in paths.TARGETS] + ["bare"]
        self.targets = paths.by_name(names)
        self.with_bare = "bare" in names
        server_settings = ServerSettings.from_env()
        self.results = {
            "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "settings": {
                "quick": args.quick,
                "warmup": warmup,
                "duration": duration,
                "server_warmup": server_warmup,
                "connections": args.connections,
                "wrk_threads": args.threads,
                "workers": {},
                "warmup_slice": timings["warmup_slice"],
                "min_requests_per_worker": self.min_requests,
                "worker_class": server_settings.worker_class,
                "threads": server_settings.threads,
                "class_warmup": self.class_measurer.settings.warmup,
                "class_duration": self.class_measurer.settings.duration,
            },
            "machine": machine.describe(),
            "interpreters": list(self.interpreters),
            "versions": {},
            "paths": [self._row(target) for target in self.targets],
            "bare": self._row(paths.BARE),
            "seed": _seed_figures(args.seed),
        }

    @staticmethod
    def _row(target: paths.Target) -> dict:
        return {
            "name": target.name,
            "label": target.label,
            "method": target.method,
            "results": {},
        }

    def execute(self) -> dict:
        """Run everything asked for; returns the results (also kept on self)."""
        started = time.monotonic()
        cores = os.cpu_count() or 1
        for name, python in self.interpreters.items():
            version = machine.interpreter(python)
            self.results["versions"][name] = version
            implementation = "PyPy" if version.startswith("PyPy") else "CPython"
            self.results["settings"]["workers"][name] = self.args.workers or (
                default_workers(implementation, cores)
            )
        first_python = next(iter(self.interpreters.values()))
        print("preparing the data set ...", flush=True)
        self.database, self.missing = dataset.prepare(
            first_python, self.workdir / "dataset"
        )
        for name, python in self.interpreters.items():
            print(f"== {name}: {self.results['versions'][name]}", flush=True)
            if self.with_bare:
                self._bare(name, python)
            self._api(name, python)
        report.derive(self.results)
        if not self.args.no_worker_classes:
            self._worker_classes()
        if not self.args.no_figures:
            print("== figures", flush=True)
            self.results["figures"] = figures.run_all(self.args.quick)
        self.results["elapsed_s"] = round(time.monotonic() - started, 1)
        return self.results

    def _workers(self, name: str) -> int:
        return self.results["settings"]["workers"][name]

    def _jit(self, name: str) -> bool:
        return self.results["versions"][name].startswith("PyPy")

    def _bare(self, name: str, python: str) -> None:
        row = self.results["bare"]
        stack = Stack(
            python,
            self.workdir / f"{name}-bare",
            app="bench.bare:app",
            ready_path="/",
            env={"WORKERS": str(self._workers(name))},
        )
        try:
            stack.start()
        except StartError as ex:
            row["results"][name] = unavailable(f"did not start: {ex}", paths.BARE, name)
            return
        try:
            row["results"][name] = self.measurer.measure(
                stack.url,
                paths.BARE,
                "/",
                label=name,
                cpu_seconds=stack.cpu_seconds,
                workers=self._workers(name),
                jit=self._jit(name),
            )
        finally:
            stack.stop()

    def _collatz_reason(self) -> Optional[str]:
        if not any(target.needs == "collatz" for target in self.targets):
            return "not asked for"
        absent = [module for module in COLLATZ_MODULES if not has_module(module)]
        if absent:
            return f"{', '.join(absent)} not in this checkout"
        return None

    def _start_api(self, name: str, python: str):
        """The API stack (with collatz processes if possible) or None, and a reason."""
        env = {"WORKERS": str(self._workers(name))}
        collatz_reason = self._collatz_reason()
        workers = 0 if collatz_reason else (os.cpu_count() or 2)
        stack = Stack(
            python,
            self.workdir / name,
            env=env,
            collatz_workers=workers,
            database=self.database,
        )
        try:
            return stack.start(), collatz_reason
        except StartError as ex:
            if not workers:
                return None, f"the API did not start: {str(ex)[-500:]}"
            collatz_reason = f"the collatz processes did not start: {str(ex)[-300:]}"
            print(f"  {collatz_reason}", flush=True)
        stack = Stack(
            python, self.workdir / f"{name}-no-collatz", env=env, database=self.database
        )
        try:
            return stack.start(), collatz_reason
        except StartError as ex:
            return None, f"the API did not start: {str(ex)[-500:]}"

    def _api(self, name: str, python: str) -> None:
        stack, collatz_reason = self._start_api(name, python)
        rows = {row["name"]: row for row in self.results["paths"]}
        if stack is None:
            for target in self.targets:
                rows[target.name]["results"][name] = unavailable(
                    collatz_reason, target, name
                )
            return
        try:
            api = paths.Api(stack.url)
            for target in self.targets:
                rows[target.name]["results"][name] = self._target(
                    stack, api, target, name, collatz_reason
                )
        finally:
            stack.stop()

    def _target(
        self,
        stack: Stack,
        api: paths.Api,
        target: paths.Target,
        name: str,
        collatz_reason: Optional[str],
    ) -> dict:
        if target.needs == "salaries" and self.missing["salaries"]:
            return unavailable(self.missing["salaries"], target, name)
        if target.needs == "collatz" and collatz_reason:
            return unavailable(collatz_reason, target, name)
        try:
            path = _prepare(target, api)
            rows = target.rows(api) if target.rows else None
        except paths.NotAvailable as ex:
            return unavailable(str(ex), target, name)
        result = self.measurer.measure(
            stack.url,
            target,
            path,
            label=name,
            cpu_seconds=stack.cpu_seconds,
            workers=self._workers(name),
            jit=self._jit(name),
        )
        if rows:
            result["rows_per_request"] = rows
            result["rows_per_s"] = result["rps"] * rows
        return result

    def _worker_classes(self) -> None:
        pypy = next(
            (
                name
                for name, version in self.results["versions"].items()
                if version.startswith("PyPy")
            ),
            None,
        )
        print("== gunicorn worker classes under PyPy", flush=True)
        if pypy is None:
            self.results["worker_classes"] = {
                "rows": [],
                "not_available": {"all": "no PyPy interpreter in this run"},
            }
            print("  not available: no PyPy interpreter in this run", flush=True)
            return
        slots = worker_classes.SLOTS[:1] if self.args.quick else worker_classes.SLOTS
        self.results["worker_classes"] = {
            "interpreter": self.results["versions"][pypy],
            "workers": self._workers(pypy),
            **worker_classes.compare(
                self.interpreters[pypy],
                self.workdir,
                self.class_measurer,
                workers=self._workers(pypy),
                database=self.database,
                slots=slots,
            ),
        }


def _seed_figures(path: Path) -> Optional[dict]:
    """The seed apps' figures (measured outside the project), if recorded."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _chart_python(args: argparse.Namespace, interpreters: Dict[str, str]) -> str:
    if args.chart_python:
        return args.chart_python
    return interpreters.get("python3", sys.executable)


def draw_chart(python: str, json_path: Path, png_path: Path) -> Optional[str]:
    """Run bench.chart under ``python``; the reason when no PNG was drawn."""
    done = subprocess.run(
        [python, "-m", "bench.chart", str(json_path), str(png_path)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        return (done.stdout.strip().splitlines() or ["bench.chart failed"])[-1]
    return None


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark; print the tables; write the JSON and the chart."""
    args = parse_args(argv)
    try:
        wrk.wrk_binary()
    except wrk.WrkError as ex:
        print(ex, file=sys.stderr)
        return 1
    name = args.name or ("quick" if args.quick else "latest")
    json_path = args.out / f"{name}.json"
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        run = Run(args, Path(folder))
        results = run.execute()
    report.write_json(results, json_path)
    text = report.markdown(results)
    json_path.with_suffix(".md").write_text(text)
    print("\n" + text)
    print(f"results: {json_path} (and .md)")
    if not args.no_chart:
        png_path = json_path.with_suffix(".png")
        problem = draw_chart(_chart_python(args, run.interpreters), json_path, png_path)
        print(f"chart:   {png_path}" if problem is None else f"no chart: {problem}")
    print(f"elapsed: {results['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
