"""Benchmark: note changes pushed end to end, on the embedded store.

``python -m bench.push [--quick] [--python PATH ...]`` prints JSON. For each
interpreter (``--python``, repeatable; by default the project's
``.venv/pypy3`` and ``.venv/python3`` that exist, else the one running this)
it starts gunicorn (2 workers) and the push worker under that interpreter on
a temp SQLite file, and measures from this process, with a SUB socket:

- ``latency``: notes created one at a time with ``POST /notes``; for each,
  the time from the POST returning to its event arriving at the SUB client
  (p50, p99, max; a receiver thread timestamps arrivals). The embedded
  store's log is polled every 50 ms, which sets most of it.
- ``live``: 4 client threads POST notes for a few seconds; events per
  second that reach the SUB client (the API's write rate bounds it).
- ``catch_up``: changes written while the worker is stopped, then forwarded
  by the restarted worker; events per second from the first to the last
  arrival: what the worker alone sustains, starting cold (no JIT warm-up,
  as after a crash).

Quick: 100 latency samples, 2 s of live load, a backlog of 2,000 (about
15 s per interpreter); full: 300, 6 s, 10,000.

``run(quick)`` does the same and returns the dict, with the PyPy/CPython
ratios when both ran. The client side always runs under the interpreter
running this module, so only the server side changes between runs.
"""

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict
from typing import List
from typing import Optional

import requests
import zmq

from bench.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHONS = (
    ROOT / ".venv" / "pypy3" / "bin" / "python",
    ROOT / ".venv" / "python3" / "bin" / "python",
)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s")
        time.sleep(0.05)


def _get_json(url: str) -> Optional[dict]:
    try:
        return requests.get(url, timeout=2).json()
    except (requests.RequestException, ValueError):
        return None


class _Proc:
    """A child process logging to a file, stopped with SIGTERM (SIGKILL after 20 s)."""

    def __init__(self, args: List[str], env: Dict[str, str], log: Path):
        self.args, self.env, self.log = args, env, log
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{' '.join(self.args)} exited:\n"
                f"{self.log.read_text(errors='replace')[-3000:]}"
            )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Stack:
    """Gunicorn and the push worker under ``python``, on one temp database."""

    def __init__(self, python: str, folder: Path):
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.sse_url = f"http://127.0.0.1:{free_port()}"
        self.pub_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.database_url = f"sqlite:///{folder / 'bench.db'}"
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            LOG_LEVEL="warning",
            DATABASE_URL=self.database_url,
            RETHINKDB_URL="",  # this figure is the embedded store's
            HOST="127.0.0.1",
            PORT=self.api_url.rsplit(":", 1)[1],
            WORKERS="2",
            PUSH_PUB_ENDPOINT=self.pub_endpoint,
            PUSH_SSE_BIND=self.sse_url[len("http://") :],
        )
        self.gunicorn = _Proc(
            [
                python,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--access-logfile",
                os.devnull,
                "api.app:app",
            ],
            env,
            folder / "gunicorn.log",
        )
        self.worker = _Proc([python, "-m", "workers.push"], env, folder / "push.log")

    def start(self) -> None:
        self.gunicorn.start()
        _wait(
            lambda: self.gunicorn.check() or _get_json(self.api_url + "/health"),
            60,
            "gunicorn",
        )
        self.start_worker()

    def start_worker(self) -> None:
        self.worker.start()
        _wait(lambda: self.worker.check() or self.health(), 60, "push worker")

    def health(self) -> Optional[dict]:
        return _get_json(self.sse_url + "/health")

    def wait_subscribed(self) -> None:
        _wait(
            lambda: "note." in (self.health() or {}).get("pub_topics", ()),
            30,
            "the SUB subscription",
        )

    def stop(self) -> None:
        self.worker.stop()
        self.gunicorn.stop()


class Receiver:
    """A SUB socket read by a thread that timestamps every event on arrival."""

    def __init__(self, endpoint: str):
        self._socket = zmq.Context.instance().socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RECONNECT_IVL, 50)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"note.")
        self._socket.connect(endpoint)
        self.arrivals: Dict[str, float] = {}  # note id -> arrival time
        self.times: List[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._socket.poll(100):
                continue
            while True:
                try:
                    _topic, body = self._socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                now = time.perf_counter()
                self.times.append(now)
                note = json.loads(body)["new_val"]
                if note is not None:
                    self.arrivals.setdefault(note["id"], now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()


def _percentile(values: List[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _post(session: requests.Session, url: str, title: str) -> str:
    response = session.post(url, json={"title": title, "body": "bench"}, timeout=30)
    response.raise_for_status()
    return response.json()["id"]


def measure_latency(stack: Stack, receiver: Receiver, count: int, warmup: int) -> dict:
    """POST, then wait for the event, ``count`` times (after ``warmup`` unmeasured)."""
    url = stack.api_url + "/notes"
    latencies = []
    with requests.Session() as session:
        for i in range(warmup + count):
            note_id = _post(session, url, f"latency {i}")
            returned = time.perf_counter()
            _wait(lambda n=note_id: n in receiver.arrivals, 30, "an event")
            if i >= warmup:
                latencies.append(max(0.0, receiver.arrivals[note_id] - returned))
    ms = [value * 1000 for value in latencies]
    return {
        "count": count,
        "p50_ms": round(_percentile(ms, 0.5), 2),
        "p99_ms": round(_percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.mean(ms), 2),
    }


def measure_live(
    stack: Stack, receiver: Receiver, seconds: float, clients: int = 4
) -> dict:
    """``clients`` threads POST for ``seconds``; the rate events reach the SUB."""
    url = stack.api_url + "/notes"
    made: List[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(number: int) -> None:
        with requests.Session() as session:
            i = 0
            while time.perf_counter() < stop_at:
                note_id = _post(session, url, f"live {number}-{i}")
                with lock:
                    made.append(note_id)
                i += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _wait(
        lambda: all(note_id in receiver.arrivals for note_id in made),
        60,
        "every live event",
    )
    last = max(receiver.arrivals[note_id] for note_id in made)
    return {
        "clients": clients,
        "notes": len(made),
        "posts_per_s": round(len(made) / seconds, 1),
        "events_per_s": round(len(made) / (last - started), 1),
    }


def measure_catch_up(stack: Stack, receiver: Receiver, count: int) -> dict:
    """Write ``count`` changes while the worker is stopped; how fast it sends them."""
    from db.notes.sql import SqlNotesStore
    from db.sql import Database

    stack.worker.stop()  # SIGTERM: it checkpoints everything it sent
    database = Database(stack.database_url)
    store = SqlNotesStore(database)
    made = [store.create(f"backlog {i}", "bench").id for i in range(count)]
    database.dispose()
    before = len(receiver.times)
    stack.start_worker()  # waits for the SUB client to reconnect, then sends
    _wait(
        lambda: all(note_id in receiver.arrivals for note_id in made),
        120,
        "the backlog",
    )
    times = receiver.times[before:]
    first, last = times[0], max(receiver.arrivals[note_id] for note_id in made)
    return {
        "changes": count,
        "events_per_s": round((count - 1) / max(last - first, 1e-9), 1),
    }


#: How much each figure does: quick, full.
SIZES = {
    True: {
        "latency": 50,
        "latency_warmup": 10,
        "live_s": 1.0,
        "live_warmup_s": 0.5,
        "backlog": 500,
    },
    False: {
        "latency": 300,
        "latency_warmup": 100,
        "live_s": 6.0,
        "live_warmup_s": 3.0,
        "backlog": 10000,
    },
}


def measure(python: str, quick: bool, sizes: Optional[dict] = None) -> dict:
    """Every figure for the server side running under ``python``."""
    size = sizes or SIZES[quick]
    with tempfile.TemporaryDirectory(prefix="bench-push-") as folder:
        stack = Stack(python, Path(folder))
        receiver = None
        try:
            stack.start()
            receiver = Receiver(stack.pub_endpoint)
            stack.wait_subscribed()
            latency = measure_latency(
                stack, receiver, size["latency"], warmup=size["latency_warmup"]
            )
            if size["live_warmup_s"]:
                measure_live(stack, receiver, size["live_warmup_s"])  # JIT warm-up
            result = {
                "latency": latency,
                "live": measure_live(stack, receiver, size["live_s"]),
                # The worker restarts for this one: a cold process, as after a crash.
                "catch_up": measure_catch_up(stack, receiver, size["backlog"]),
            }
        finally:
            if receiver is not None:
                receiver.close()
            stack.stop()
    return result


def implementation(python: str) -> str:
    """``pypy`` or ``cpython`` (lower case) for an interpreter path."""
    out = subprocess.run(
        [python, "-c", "import platform; print(platform.python_implementation())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip().lower()


def default_pythons() -> List[str]:
    """The project's PyPy and CPython virtualenvs that exist, else this interpreter."""
    found = [str(path) for path in VENV_PYTHONS if path.exists()]
    return found or [sys.executable]


def run(quick: bool, pythons: Optional[List[str]] = None) -> dict:
    """Measure under each interpreter; ratios PyPy/CPython when both ran."""
    results = {}
    for python in pythons or default_pythons():
        results[implementation(python)] = {"python": python, **measure(python, quick)}
    out = {
        "benchmark": "push",
        "store": "embedded (SQLite)",
        "quick": quick,
        "client": platform.python_implementation(),
        "results": results,
    }
    if "pypy" in results and "cpython" in results:
        pypy, cpython = results["pypy"], results["cpython"]
        out["pypy_over_cpython"] = {
            "latency_p50": _ratio(
                pypy["latency"]["p50_ms"], cpython["latency"]["p50_ms"]
            ),
            "live_events_per_s": _ratio(
                pypy["live"]["events_per_s"], cpython["live"]["events_per_s"]
            ),
            "catch_up_events_per_s": _ratio(
                pypy["catch_up"]["events_per_s"], cpython["catch_up"]["events_per_s"]
            ),
        }
    return out


def _ratio(a: float, b: float) -> Optional[float]:
    return round(a / b, 2) if b else None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.push", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument(
        "--python",
        action="append",
        metavar="PATH",
        help="interpreter of the API and the worker (repeatable)",
    )
    args = parser.parse_args(argv)
    json.dump(run(args.quick, args.python), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
