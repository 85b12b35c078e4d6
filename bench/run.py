"""``make bench``: every hot path under PyPy and CPython in one run, then the figures.

It prints the tables and the targets, and writes ``bench/results/<name>.json``,
``.md`` and ``.png``; docs/performance/index.md says how it measures.
"""

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import List
from typing import Optional

from bench import common
from bench import paths
from bench import report
from bench import worker_classes
from core.settings import Settings as ServerSettings

#: Most seconds of warm-up per path (it ends at the plateau, usually sooner),
#: measured seconds, slices, and requests each PyPy worker serves first (fewer
#: measured GET /notes/{id} half-warm). The worker classes get at most 60/10 s.
FULL = {"warmup": 90.0, "duration": 10.0, "server_warmup": 60.0}
FULL.update(warmup_slice=3.0, min_requests=120_000)
QUICK = {"warmup": 0.0, "duration": 1.0, "server_warmup": 0.0}
QUICK.update(warmup_slice=0.5, min_requests=0)
#: The figure modules, ``bench.<name>.run(quick) -> dict``; quick runs a few.
#: Each also runs alone: ``python -m bench.<name> [--quick] [--json PATH]``.
FIGURES = ("peer", "primes", "collatz", "push", "rethinkdb", "links_bulk", "ws")
FIGURES += ("auth",)
QUICK_FIGURES = ("peer", "push")
RESULTS = common.ROOT / "bench" / "results"


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="no warm-up, 1 s per path, few figures")
    add("--out", type=Path, default=RESULTS)
    add("--name", help="file name stem (default: latest, or quick)")
    add(
        "--interpreter",
        action="append",
        metavar="NAME=PYTHON",
        help="an interpreter to measure (repeatable; default: both venvs)",
    )
    known = ", ".join(t.name for t in paths.TARGETS)
    add("--only", help=f"comma-separated paths (and 'bare'): {known}")
    add("--warmup", type=float, help="most warm-up seconds per path (0: none)")
    add("--duration", type=float, help="measured seconds per path")
    add("--server-warmup", type=float, help="extra warm-up for a server's first path")
    add("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py's)")
    add("--no-worker-classes", action="store_true")
    add("--figures", help=f"comma-separated figures (default: {', '.join(FIGURES)})")
    add("--no-figures", action="store_true")
    add("--no-chart", action="store_true", help="do not draw the PNG")
    return parser.parse_args(argv)


def chosen_interpreters(entries: Optional[List[str]]) -> dict:
    if not entries:
        return {name: common.interpreter(name) for name in ("pypy3", "python3")}
    # Absolute but not resolved: a venv's python is a symlink whose path is
    # what makes it use the venv.
    pairs = (entry.split("=", 1) for entry in entries)
    return {name: os.path.abspath(python) for name, python in pairs}


def run_figure(name: str, quick: bool) -> dict:
    """``bench.<name>.run(quick)``; never raises (one broken figure loses no other)."""
    started = time.monotonic()
    try:
        value = importlib.import_module(f"bench.{name}").run(quick)
    except Exception as ex:
        traceback.print_exc()
        return {"error": f"{type(ex).__name__}: {ex}"}
    return {"seconds": round(time.monotonic() - started, 1), "result": value}


def describe_machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [ln.split(":", 1)[1].strip() for ln in cpuinfo if ln[:10] == "model name"]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {
        "cores": os.cpu_count(),
        "cpu": (models or [None])[0],
        "memory_gib": round(memory, 1),
        "os": platform.platform(),
        "wrk": (wrk.splitlines() or [None])[0],
    }


class Run:
    """One benchmark run: its settings, its temp folder, its results."""

    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args, self.workdir = args, workdir
        self.interpreters = chosen_interpreters(args.interpreter)
        timings = dict(QUICK if args.quick else FULL)
        for knob in ("warmup", "duration", "server_warmup"):
            if getattr(args, knob) is not None:
                timings[knob] = getattr(args, knob)
        self.measurer = common.Measurer(workdir, **timings)
        classes = dict(timings, warmup=min(timings["warmup"], 60.0))
        classes["duration"] = min(timings["duration"], 10.0)
        self.class_measurer = common.Measurer(workdir, **classes)
        names = [n.strip() for n in (args.only or "").split(",") if n.strip()]
        names = names or [target.name for target in paths.TARGETS] + ["bare"]
        self.targets = {target.name: target for target in paths.by_name(names)}
        self.with_bare = "bare" in names
        server = ServerSettings.from_env()
        now = datetime.datetime.now(datetime.timezone.utc)
        self.results = {
            "started_at": now.isoformat(timespec="seconds"),
            "settings": {
                "quick": args.quick,
                **self.measurer.settings(),
                "workers": {},
                "worker_class": server.worker_class,
                "threads": server.threads,
                "class_warmup": classes["warmup"],
                "class_duration": classes["duration"],
            },
            "machine": describe_machine(),
            "interpreters": list(self.interpreters),
            "versions": {},
            "paths": [self._row(target) for target in self.targets.values()],
            "bare": self._row(paths.BARE),
            # The seed apps' figures, measured outside the project.
            "seed": json.loads((RESULTS / "seed.json").read_text()),
        }
        self.rows = {row["name"]: row for row in self.results["paths"]}
        self.rows["bare"] = self.results["bare"]

    @staticmethod
    def _row(target: paths.Target) -> dict:
        return {"name": target.name, "label": target.label, "results": {}}

    def execute(self) -> dict:
        """Run everything asked for; returns the results."""
        started = time.monotonic()
        workers = self.results["settings"]["workers"]
        for name, python in self.interpreters.items():
            self.results["versions"][name] = common.version(python)
            workers[name] = self.args.workers or common.workers(python)
        print("preparing the data set ...", flush=True)
        self.database = self.workdir / "dataset.db"
        first = next(iter(self.interpreters.values()))
        common.prepare_database(first, self.database, salaries=True)
        for name, python in self.interpreters.items():
            print(f"== {name}: {self.results['versions'][name]}", flush=True)
            if self.with_bare:
                self._measure(name, python, {"bare": paths.BARE}, app="bench.bare:app")
            self._measure(name, python, self.targets)
        report.derive(self.results)
        if not (self.args.no_worker_classes or self.args.quick):
            self._worker_classes()
        if not self.args.no_figures:
            names = QUICK_FIGURES if self.args.quick else FIGURES
            if self.args.figures:
                names = [name.strip() for name in self.args.figures.split(",")]
            print("== figures", flush=True)
            self.results["figures"] = {}
            for name in names:
                print(f"  figure {name} ...", flush=True)
                figure = run_figure(name, self.args.quick)
                self.results["figures"][name] = figure
                print(f"    {figure.get('result', figure)}", flush=True)
        self.results["elapsed_s"] = round(time.monotonic() - started, 1)
        return self.results

    def _measure(self, name: str, python: str, targets, app: str = "") -> None:
        """Each target under ``python`` on a stack of its own (``app``: not ours)."""
        workers = self.results["settings"]["workers"][name]
        options = {"app": app, "ready_path": "/"}
        if not app:
            collatz = any(target.collatz for target in targets.values())
            cores = os.cpu_count() or 2
            options = {"database": self.database, "collatz": cores if collatz else 0}
        folder = self.workdir / f"{name}-{'bare' if app else 'app'}"
        env = {"WORKERS": str(workers)}
        try:
            stack = common.Stack(python, folder, env=env, **options).start()
        except common.StartError as ex:
            reason = f"did not start: {str(ex)[-500:]}"
            measured = {
                key: common.unavailable(reason, name, target.label)
                for key, target in targets.items()
            }
        else:
            jit = self.results["versions"][name].startswith("PyPy")
            try:
                measured = self.measurer.measure_all(stack, targets, name, workers, jit)
            finally:
                stack.stop()
        for key, result in measured.items():
            self.rows[key]["results"][name] = result

    def _worker_classes(self) -> None:
        print("== gunicorn worker classes under PyPy", flush=True)
        versions = self.results["versions"]
        pypy = next((n for n, v in versions.items() if v.startswith("PyPy")), None)
        if pypy is None:
            return  # the comparison is of PyPy's workers
        workers = self.results["settings"]["workers"][pypy]
        self.results["worker_classes"] = {
            "interpreter": versions[pypy],
            "workers": workers,
            **worker_classes.compare(
                self.interpreters[pypy],
                self.workdir,
                self.class_measurer,
                workers=workers,
                database=self.database,
            ),
        }


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark; print the tables; write the JSON, Markdown and chart."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed. Run: sudo apt-get install -y wrk", file=sys.stderr)
        return 1
    name = args.name or ("quick" if args.quick else "latest")
    json_path = args.out / f"{name}.json"
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        results = Run(args, Path(folder)).execute()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    text = report.markdown(results)
    json_path.with_suffix(".md").write_text(text)
    print(f"\n{text}\nresults: {json_path} (and .md)")
    if not args.no_chart:
        # The chart needs matplotlib: CPython's venv has it, PyPy's has not.
        python = common.interpreter("python3") or sys.executable
        png = json_path.with_suffix(".png")
        try:
            common.run_in(python, "bench.chart:draw_file", str(json_path), str(png))
            print(f"chart:   {png}")
        except RuntimeError as ex:
            print(f"no chart: {(str(ex).strip().splitlines() or ['failed'])[-1]}")
    print(f"elapsed: {results['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
