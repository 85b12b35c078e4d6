"""What every figure of the bench shares: interpreters, percentiles, stacks, wrk, k6."""

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import AbstractSet
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

import requests
import zmq
from prometheus_client.parser import text_string_to_metric_families

from bench import paths
from core.settings import default_workers
from loadtest.run import k6_binary
from loadtest.run import run_k6
from tests.support.live import addresses
from tests.support.live import child_env
from tests.support.processes import Process
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
_WRK_MARKER = "BENCH_JSON "
_VERSION_CODE = (
    "import platform, sys; pypy = getattr(sys, 'pypy_version_info', None); "
    "print(platform.python_implementation(), platform.python_version(), "
    "'(PyPy %d.%d.%d)' % pypy[:3] if pypy else '')"
)


# -- interpreters and arithmetic -----------------------------------------------


def interpreter(name: str) -> Optional[str]:
    """The venv's interpreter ``name`` (pypy3, python3), else one on PATH, else None."""
    candidate = ROOT / ".venv" / name / "bin" / "python"
    return str(candidate) if candidate.exists() else shutil.which(name)


def interpreters() -> Dict[str, str]:
    """``{"pypy": path, "cpython": path}`` for those found."""
    found = {"pypy": interpreter("pypy3"), "cpython": interpreter("python3")}
    return {impl: path for impl, path in found.items() if path}


def output(args: List[str], env: Optional[dict] = None, timeout: float = 1800) -> str:
    """What a command run in the checkout prints; RuntimeError if it fails."""
    out = subprocess.run(
        args,
        cwd=ROOT,
        env=env or dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode:
        raise RuntimeError(f"{' '.join(args[:4])} failed:\n{out.stderr[-2000:]}")
    return out.stdout.strip()


def version(python: str) -> str:
    """``'PyPy 3.9.16 (PyPy 7.3.11)'`` or ``'CPython 3.11.7'``."""
    return output([python, "-c", _VERSION_CODE], timeout=60)


def workers(python: str) -> int:
    """Gunicorn's default worker count for ``python`` on this machine."""
    return default_workers(version(python).split()[0], os.cpu_count() or 1)


def import_error(python: str, *modules: str) -> Optional[str]:
    """Why ``python`` cannot import ``modules`` (its error's last line), or None."""
    try:
        output([python, "-c", "import " + ", ".join(modules)], timeout=120)
    except RuntimeError as ex:
        return str(ex).strip().splitlines()[-1]
    return None


def run_in(python: str, function: str, *args):
    """``function(*args)``, say ``"bench.primes:measure"``, in a fresh ``python``."""
    module, name = function.split(":")
    code = (
        f"import json, sys; from {module} import {name}; "
        f"print(json.dumps({name}(*json.loads(sys.argv[1]))))"
    )
    out = output([python, "-c", code, json.dumps(args)])
    return json.loads(out.splitlines()[-1])


def percentile(values: List[float], p: float) -> Optional[float]:
    """The nearest-rank ``p``-th percentile (0 < p <= 100): a value, or None."""
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = -(-p * len(ordered) // 100)  # ceiling without float error
    return ordered[max(int(rank), 1) - 1]


def spread(values_ms: List[float]) -> dict:
    """p50, p99 and max of milliseconds, rounded (None for no values)."""
    shown = {"p50_ms": percentile(values_ms, 50), "p99_ms": percentile(values_ms, 99)}
    shown["max_ms"] = max(values_ms, default=None)
    return {key: None if v is None else round(v, 2) for key, v in shown.items()}


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """``a / b`` to two decimals, or None without both."""
    return round(a / b, 2) if a and b else None


def cpu_seconds(sessions, pids: AbstractSet[int] = frozenset()) -> float:
    """User + system CPU seconds of the live processes in ``sessions``, and of
    ``pids`` and their children (Linux)."""
    total = 0
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue  # the process ended meanwhile
        # After the parenthesised name: parent is the 2nd field, session the
        # 4th, utime the 12th.
        fields = stat[stat.rindex(")") + 2 :].split() if stat else ()
        if fields and (
            int(fields[3]) in sessions or {int(entry.name), int(fields[1])} & pids
        ):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def get_json(url: str) -> Optional[dict]:
    """The JSON answer of ``GET url``, or None when there is none (yet)."""
    try:
        return requests.get(url, timeout=2).json()
    except (requests.RequestException, ValueError):
        return None


#: The servers' histogram of garbage-collector pauses (core/gc_pauses.py).
GC_PAUSES = "python_gc_pause_seconds"


def gc_samples(url: str) -> Optional[Dict[tuple, float]]:
    """The server's GC pause samples, ``(suffix, kind, le) -> value``, if readable."""
    try:
        answer = requests.get(url + "/metrics", timeout=10)
    except requests.RequestException:
        return None
    if answer.status_code != 200:
        return None
    return {
        (s.name[len(GC_PAUSES) :], s.labels["kind"], s.labels.get("le")): s.value
        for family in text_string_to_metric_families(answer.text)
        if family.name == GC_PAUSES
        for s in family.samples
    } or None


def gc_between(before: Optional[dict], after: Optional[dict]) -> Optional[dict]:
    """Per kind, the pauses between two scrapes: count, ms, the longest's bucket.

    ``longest_ms`` is the upper bound of the smallest bucket holding every
    pause (None: longer than the last bucket).
    """
    if not (before and after):
        return None

    def grew(suffix: str, kind: str, le: Optional[str] = None) -> float:
        key = (suffix, kind, le)
        return after.get(key, 0.0) - before.get(key, 0.0)

    summary = {}
    for kind in ("minor", "major"):
        count = grew("_count", kind)
        bounds = sorted(
            (le for (suffix, k, le) in after if suffix == "_bucket" and k == kind),
            key=float,
        )
        longest = next((b for b in bounds if grew("_bucket", kind, b) >= count), None)
        summary[kind] = {
            "pauses": int(count),
            "ms": round(grew("_sum", kind) * 1000, 1),
            "longest_ms": None if longest in (None, "+Inf") else float(longest) * 1000,
        }
    return summary


def describe_gc(gc: Optional[dict]) -> str:
    """``minor 12 (340 ms, <= 50), major 0`` for the printed line and the report."""
    if not gc:
        return ""
    parts = []
    for kind, seen in gc.items():
        part = f"{kind} {seen['pauses']}"
        if seen["pauses"]:
            top = seen["longest_ms"]
            part += f" ({seen['ms']:g} ms, {'> 100' if top is None else f'<= {top:g}'})"
        parts.append(part)
    return ", ".join(parts)


def figure_main(doc: str, run: Callable[[bool], dict]) -> int:
    """A figure module's command line: ``--quick``, ``--json PATH``; prints JSON."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--json", type=Path, help="also write the JSON there")
    args = parser.parse_args()
    text = json.dumps(run(args.quick), indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


# -- the processes measured -----------------------------------------------------


class StartError(RuntimeError):
    """A process of a stack did not come up; the message holds its log."""


def prepare_database(python: str, database: Path, salaries=False, env=None) -> None:
    """``python -m api init-db`` (and ``import-salaries``) into ``database``."""
    env = dict(env or os.environ, PYTHONPATH=str(ROOT), LOG_LEVEL="warning")
    env["DATABASE_URL"] = f"sqlite:///{database}"
    for command in ("init-db", "import-salaries")[: 1 + salaries]:
        output([python, "-m", "api", command], env, timeout=600)
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a copy has every row


class Stack:
    """Gunicorn under ``python`` as ``make serve`` runs it, in ``folder``, free ports.

    With ``collatz`` workers (and their broker) and the push worker if asked;
    ``database`` is copied in, or made with ``init-db``. ``env`` wins.
    """

    def __init__(
        self,
        python: str,
        folder: Path,
        *,
        app: str = "api.wsgi:app",
        env: Optional[Dict[str, str]] = None,
        database: Optional[Path] = None,
        collatz: int = 0,
        push: bool = False,
        ready_path: str = "/health",
        database_pids: Sequence[int] = (),
    ):
        self.python, self.folder, self.app = python, folder, app
        #: A database server's processes, whose CPU per request is measured too.
        self.database_pids = set(database_pids)
        self.collatz, self.push, self.ready_path = collatz, push, ready_path
        ports = addresses(folder)
        self.port = int(ports["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.sse_url = "http://" + ports["PUSH_SSE_BIND"]
        self.pub_endpoint = ports["PUSH_PUB_ENDPOINT"]
        (folder / "var").mkdir(parents=True, exist_ok=True)
        self.database = folder / "var" / "api.db"
        if database is not None:
            shutil.copyfile(database, self.database)
        self.env = child_env(
            folder,
            {
                "HOST": "127.0.0.1",
                # Trusted clients, no limits: the figures are of the paths.
                "AUTH": "off",
                "COLLATZ_RATE_LIMIT": "off",
                "DATABASE_URL": f"sqlite:///{self.database}",
                "LOG_LEVEL": "warning",
                "PUBLIC_BASE_URL": self.url,
                **(env or {}),
            },
        )
        self.processes: Dict[str, Process] = {}

    def spawn(self, name: str, *args: str, ready: str = "") -> None:
        """Start ``python ARGS``; with ``ready`` (a URL), return once it answers."""
        process = Process(
            [self.python, *args], self.env, self.folder / f"{name}.log", self.folder
        )
        process.start()
        self.processes[name] = process
        if not ready:
            return
        try:
            wait_until(lambda: process.check() or get_json(ready), 60, 0.1, what=ready)
        except (RuntimeError, TimeoutError) as ex:
            self.stop()
            raise StartError(f"{ex}\n{process.log_tail()}") from None

    def start(self) -> "Stack":
        """Start everything; return once gunicorn (and the push worker) answer."""
        if not self.database.exists():
            try:
                prepare_database(self.python, self.database, env=self.env)
            except RuntimeError as ex:
                raise StartError(f"init-db failed: {ex}") from None
        if self.collatz:
            self.start_collatz(self.collatz)
        ready = self.url + self.ready_path
        self.spawn("gunicorn", "-m", "api", "serve", self.app, ready=ready)
        if self.push:
            self.start_worker()
        return self

    def start_collatz(self, workers: int) -> None:
        """The collatz broker and ``workers`` workers (not waited for)."""
        self.spawn("collatz_broker", "-m", "workers.collatz.broker")
        for n in range(workers):
            self.spawn(f"collatz_worker{n}", "-m", "workers.collatz.worker")

    def start_worker(self) -> None:
        """(Re)start the push worker; return once it answers."""
        self.spawn("push", "-m", "workers.push", ready=self.sse_url + "/health")

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by every process of the stack."""
        return cpu_seconds({p.proc.pid for p in self.processes.values() if p.proc})

    def stop(self) -> None:
        """Gunicorn first (it is the collatz client), then the rest."""
        for process in reversed(list(self.processes.values())):
            process.stop()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- wrk, and the warm-up to the plateau ------------------------------------------


class NotMeasured(RuntimeError):
    """A figure cannot be made: a path it needs is not available (says which)."""


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result line."""


def wrk(
    url: str,
    path: str,
    *,
    seconds: float,
    connections: int = 16,
    threads: int = 1,
    method: str = "GET",
    body: Optional[str] = None,
    body_file: Optional[Path] = None,
    headers: Optional[Dict[str, str]] = None,
    counter: int = 1,
) -> dict:
    """wrk with bench/wrk.lua on ``url + path`` (whole seconds, at least 1).

    Bodies are JSON unless ``headers`` say otherwise.
    """
    binary = shutil.which("wrk")
    if binary is None:
        raise WrkError("wrk is not installed. Run: sudo apt-get install -y wrk")
    if body is not None or body_file:
        headers = {"Content-Type": "application/json", **(headers or {})}
    env = dict(
        os.environ,
        BENCH_PATH=path,
        BENCH_METHOD=method,
        BENCH_THREADS=str(threads),
        BENCH_COUNTER=str(counter),
        BENCH_BODY=body or "",
        BENCH_BODY_FILE=str(body_file or ""),
    )
    seconds = max(1, round(seconds))
    options = [f"-t{threads}", f"-c{max(connections, threads)}", f"-d{seconds}s"]
    for name, value in (headers or {}).items():
        options += ["-H", f"{name}: {value}"]
    options += ["--timeout=10s", "-s", str(HERE / "wrk.lua"), url.rstrip("/") + "/"]
    done = subprocess.run(
        [binary, *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=seconds + 70,
    )
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}:\n{done.stdout[-2000:]}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> dict:
    """``{rps, requests, seconds, errors, latency_ms}`` from wrk.lua's result line.

    ``errors`` counts by kind (statuses >= 400 are ``status``) with a ``total``.
    """
    line = next((ln for ln in output.splitlines() if ln.startswith(_WRK_MARKER)), None)
    if line is None:
        raise WrkError(f"no {_WRK_MARKER.strip()} line in wrk's output:\n{output}")
    raw = json.loads(line[len(_WRK_MARKER) :])
    seconds = raw["duration_us"] / 1e6
    errors = dict(raw["errors"], total=sum(raw["errors"].values()))
    return {
        "rps": raw["requests"] / seconds if seconds > 0 else 0.0,
        "requests": raw["requests"],
        "seconds": seconds,
        "errors": errors,
        "latency_ms": {k: v / 1000.0 for k, v in raw["latency_us"].items()},
    }


#: The plateau: the best of the last slices within this of the best before them.
PLATEAU_SLICES = 3
PLATEAU_TOLERANCE = 0.05
#: Unique-body targets get bodies for this many requests per second.
MAX_WRITE_RATE = 10_000
#: Where ``{i}`` counters and unique prime bodies start per phase, far apart
#: so measured values are in no cache; each warm-up slice starts a stride on.
_COUNTER = {"warmup": (300_001, 100_000), "measure": (100_001, 0)}
_BODIES = {"warmup": (2 * 10**9, 10**7), "measure": (10**9, 0)}


def levelled_off(rates: List[float]) -> bool:
    """Whether the rate stopped climbing (noise jitters; it does not climb)."""
    if len(rates) <= PLATEAU_SLICES:
        return False
    before, last = rates[:-PLATEAU_SLICES], rates[-PLATEAU_SLICES:]
    return max(last) <= max(before) * (1 + PLATEAU_TOLERANCE)


def describe_warmup(warmed: Optional[dict]) -> str:
    """A warm-up as the report and the progress lines show it."""
    if not warmed:
        return ""
    text = f"{warmed['seconds']:.0f} s, {warmed['requests_per_worker']:,}/worker"
    return text + ("" if warmed["plateau"] else ", no plateau")


@dataclasses.dataclass
class Measurer:
    """Warms a bench.paths.Target up to its plateau (docs/performance), then wrk."""

    workdir: Path
    warmup: float
    duration: float
    connections: int = 16
    threads: int = 1
    warmup_slice: float = 3.0
    server_warmup: float = 0.0
    min_requests: int = 0
    _warm_servers: set = dataclasses.field(default_factory=set, repr=False)

    def settings(self) -> dict:
        """The knobs, for the report."""
        knobs = dataclasses.asdict(self)
        return {k: v for k, v in knobs.items() if k not in ("workdir", "_warm_servers")}

    def _wrk(self, url, target, path, headers, phase, seconds, part=0) -> dict:
        body_file = None
        if target.bodies:
            start, stride = _BODIES[phase]
            body_file = self.workdir / f"{target.name}-{phase}-{part}.bodies"
            if not body_file.exists():
                count = int(MAX_WRITE_RATE * max(seconds, 1)) + 1
                bodies = target.bodies(count, start + part * stride)
                body_file.write_text("\n".join(bodies) + "\n")
        start, stride = _COUNTER[phase]
        return wrk(
            url,
            path,
            seconds=seconds,
            connections=self.connections,
            threads=self.threads,
            method=target.method,
            body=target.body,
            body_file=body_file,
            headers=headers,
            counter=start + part * stride,
        )

    def warm_up(self, url, target, path, headers, limit, needed, workers) -> dict:
        """Slices until the rate levels off and ``needed`` requests were served."""
        rates: List[float] = []
        served = 0
        started = time.monotonic()
        while not (served >= needed and levelled_off(rates)):
            left = limit - (time.monotonic() - started)
            if left < 1:
                break
            seconds = min(self.warmup_slice, left)
            result = self._wrk(
                url, target, path, headers, "warmup", seconds, len(rates)
            )
            rates.append(round(result["rps"], 1))
            served += result["requests"]
        return {
            "seconds": round(time.monotonic() - started, 1),
            "slice_rps": rates,
            "plateau": served >= needed and levelled_off(rates),
            "requests_per_worker": served // max(workers, 1),
        }

    def measure(
        self,
        url: str,
        target,
        path: str,
        *,
        headers: Optional[Dict[str, str]] = None,
        label: str = "",
        stack: Optional[Stack] = None,
        workers: int = 1,
        jit: bool = True,
    ) -> dict:
        """Warm up, measure, print one line; the result (``stack``: its CPU/request)."""
        print(f"  {label:<18} {target.label:<44}", end=" ", flush=True)
        warmup = self.warmup
        if url not in self._warm_servers:
            warmup += self.server_warmup
            self._warm_servers.add(url)
        warmed = None
        if warmup > 0:
            per_worker = self.min_requests if jit else 0
            if target.warm_requests is not None:
                per_worker = min(per_worker, target.warm_requests)
            needed = per_worker * workers
            warmed = self.warm_up(url, target, path, headers, warmup, needed, workers)
        database = stack.database_pids if stack else set()
        cpu_before = stack.cpu_seconds() if stack else None
        db_before = cpu_seconds(set(), database) if database else None
        gc_before = gc_samples(stack.url) if stack else None
        result = self._wrk(url, target, path, headers, "measure", self.duration)
        served = result["requests"] or None
        if stack:
            cpu = (stack.cpu_seconds() - cpu_before) * 1000
            result["cpu_ms_per_request"] = cpu / served if served else None
            result["gc"] = gc_between(gc_before, gc_samples(stack.url))
        if db_before is not None and served:
            db_cpu = (cpu_seconds(set(), database) - db_before) * 1000
            result["database_cpu_ms_per_request"] = db_cpu / served
        latency, errors = result["latency_ms"], result["errors"]["total"]
        cpu = result.get("cpu_ms_per_request")
        db_cpu = result.get("database_cpu_ms_per_request")
        gc = describe_gc(result.get("gc"))
        print(
            f"{result['rps']:>10,.0f} req/s  p50 {latency['p50']:7.2f} ms  "
            f"p99 {latency['p99']:7.2f} ms"
            + (f"  cpu {cpu:.3f} ms/req" if cpu is not None else "")
            + (f" (database {db_cpu:.3f})" if db_cpu is not None else "")
            + (f"  gc {gc}" if gc else "")
            + (f"  errors {errors}" if errors else "")
            + (f"  (warm-up {describe_warmup(warmed)})" if warmed else ""),
            flush=True,
        )
        return {"available": True, "path": path, "warmup": warmed, **result}

    def measure_all(
        self, stack: Stack, targets, label: str, workers: int, jit=True, every=False
    ):
        """:meth:`measure` of each ``{key: paths.Target}`` on ``stack``, by key.

        One the app does not offer is not available (with ``every``, a figure
        that compares them all, :class:`NotMeasured` is raised); an export's
        rows count.
        """
        api, results = paths.Api(stack.url), {}
        for key, target in targets.items():
            try:
                path = target.prepare(api)
                rows = target.rows(api) if target.rows else None
            except paths.NotAvailable as ex:
                if every:
                    raise NotMeasured(f"{label}: {target.label}: {ex}") from ex
                results[key] = unavailable(str(ex), label, target.label)
                continue
            result = self.measure(
                stack.url,
                target,
                path,
                label=label,
                stack=stack,
                workers=workers,
                jit=jit,
            )
            if rows:
                result.update(rows_per_request=rows, rows_per_s=result["rps"] * rows)
            results[key] = result
        return results


def unavailable(reason: str, label: str = "", what: str = "") -> dict:
    """The result of what cannot be measured, printed as one line."""
    print(f"  {label:<18} {what:<44} not available: {reason}", flush=True)
    return {"available": False, "reason": reason}


# -- push latency: events timed on arrival, writes sent by k6 ----------------------


class Arrivals:
    """Each note id's arrival (``time.time()``, k6's clock) on a SUB socket or SSE."""

    def __init__(self, stack: Stack, channel: str):
        self.at: Dict[str, float] = {}
        self.count = 0
        self._stop = threading.Event()
        if channel == "sub":
            self._sock = zmq.Context.instance().socket(zmq.SUB)
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.setsockopt(zmq.RCVHWM, 0)
            self._sock.setsockopt(zmq.SUBSCRIBE, b"note.")
            self._sock.connect(stack.pub_endpoint)
            health = stack.sse_url + "/health"
            wait_until(
                lambda: "note." in (get_json(health) or {}).get("pub_topics", ()),
                30,
                what="a subscriber",
            )
            target = self._read_sub
        else:
            parts = urllib.parse.urlsplit(stack.sse_url)
            self._sock = socket.create_connection((parts.hostname, parts.port), 5)
            request = f"GET /events HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n"
            self._sock.sendall(request.encode())
            self._sock.settimeout(0.2)
            target = self._read_sse
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        time.sleep(0.3)  # the stream is open before the first write

    def _seen(self, data: bytes, now: float) -> None:
        note = json.loads(data)["new_val"]
        self.count += 1
        if note is not None:
            self.at.setdefault(note["id"], now)

    def _read_sub(self) -> None:
        while not self._stop.is_set():
            if self._sock.poll(100):
                _topic, data = self._sock.recv_multipart()
                self._seen(data, time.time())

    def _read_sse(self) -> None:
        # A raw socket: each read is stamped as it arrives (an HTTP library's
        # line iterator reads byte by byte, too slow at 500 events/s).
        pending = b""
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            now = time.time()
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                if line.startswith(b"data:"):
                    self._seen(line[5:], now)

    def wait_for(self, note_ids, timeout: float = 60) -> None:
        wait_until(lambda: all(n in self.at for n in note_ids), timeout, what="events")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def k6() -> Optional[str]:
    """k6: beside this interpreter, on PATH, or the CPython venv's (its wheel)."""
    wheel = ROOT / ".venv" / "python3" / "bin" / "k6"
    return k6_binary() or (str(wheel) if wheel.exists() else None)


def _epoch(stamp: str) -> float:
    """Seconds since the epoch of k6's ``2024-05-01T12:00:00.123456789Z``."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    moment = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp() + float("0." + (fraction or "0"))


def post_notes(url: str, rate: float, seconds: float, folder: Path) -> dict:
    """k6's figures of ``POST /notes`` at ``rate``/s, and ``answered``: id -> time."""
    out = folder / f"writes-{time.monotonic_ns()}.json"
    summary = out.with_suffix(".summary.json")
    done = run_k6(
        url,
        summary,
        rate=rate,
        duration=f"{max(1, round(seconds))}s",
        script=HERE / "writes.js",
        k6=k6(),
        args=["--out", f"json={out}"],
        timeout=seconds + 120,
    )
    answered = {}
    with out.open() as points:
        for line in points:
            if '"note_answered"' in line and '"Point"' in line:
                data = json.loads(line)["data"]
                answered[data["tags"]["id"]] = _epoch(data["time"])
    out.unlink()
    summary.unlink(missing_ok=True)
    latency = done.metric("http_req_duration")
    iterations = done.metric("iterations")
    return {
        "asked_rate": rate,
        "achieved_rate": round(iterations.get("rate", 0.0), 1),
        "sent": int(iterations.get("count", 0)),
        "created": len(answered),
        "dropped": int(done.metric("dropped_iterations").get("count", 0)),
        "failed": done.metric("http_req_failed").get("passes", 0),
        "post_latency_ms": {
            key: round(latency[key], 2)
            for key in ("med", "p(99)", "max")
            if key in latency
        },
        "answered": answered,
    }


def timed_writes(stack, folder, rate, seconds, channels, patience=10.0) -> dict:
    """k6's figures of :func:`post_notes`, and each channel's :func:`push_delays`.

    ``channels``: Arrivals by name, following the stack's events already.
    """
    load = post_notes(stack.url, rate, seconds, folder)
    answered = load.pop("answered")
    for arrivals in channels.values():
        try:
            arrivals.wait_for(answered, patience)
        except TimeoutError:
            pass  # the missing ones are counted
    return {**load, **{k: push_delays(answered, a) for k, a in channels.items()}}


def push_delays(answered: Dict[str, float], arrivals: Arrivals) -> dict:
    """POST answer -> event arrival per note: p50, p99, max, and how many missing."""
    ms = [
        max(0.0, arrivals.at[note] - at) * 1000
        for note, at in answered.items()
        if note in arrivals.at
    ]
    return {"events": len(ms), "missing": len(answered) - len(ms), **spread(ms)}
