"""Benchmark: note changes pushed end to end, on the embedded store.

``python -m bench.push [--quick] [--python PATH ...]`` prints JSON. For each
interpreter (``--python``, repeatable; by default the project's
``.venv/pypy3`` and ``.venv/python3`` that exist, else the one running this)
it starts gunicorn (its default workers) and the push worker under that
interpreter on a temp SQLite file, and measures from this process:

- ``latency``: notes created one at a time with ``POST /notes``; for each,
  the time from the POST returning to its event arriving at the SUB client
  (p50, p99, max; a receiver thread timestamps arrivals). The API nudges
  the worker after each commit (PUSH_WAKE_ADDRESS), so it reads the change
  at once instead of at its next poll.
- ``live``: 4 client threads POST notes for a few seconds; events per
  second that reach the SUB client (the API's write rate bounds it).
- ``catch_up``: changes written while the worker is stopped, then forwarded
  by the restarted worker; events per second from the first to the last
  arrival: what the worker alone sustains, starting cold (no JIT warm-up,
  as after a crash).
- ``under_load``: ``POST /notes`` sent open-loop at a fixed rate (500/s;
  bench/load.py) after a warm-up at that rate, with a SUB client and an SSE
  client each in a process of its own (so the load generator cannot delay
  their clocks); for every note, the time from its POST's answer to its
  event arriving on each channel (p50, p99, max; ``time.perf_counter`` is
  the same monotonic clock in every process), the achieved write rate
  against the asked one, and the POSTs' own latency and errors.

Quick: 50 latency samples, 1 s of live load, a backlog of 500, 2 s at
100 writes/s (about 20 s per interpreter); full: 300, 6 s, 10,000, 20 s
warm-up then 10 s at 500 writes/s.

``run(quick)`` does the same and returns the dict, with the PyPy/CPython
ratios when both ran. The client side always runs under the interpreter
running this module, so only the server side changes between runs.
"""

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Dict
from typing import List
from typing import Optional

import requests
import zmq

from bench import load
from bench.servers import get_json
from tests.support.processes import Process
from tests.support.processes import free_port
from tests.support.processes import free_udp_port
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHONS = (
    ROOT / ".venv" / "pypy3" / "bin" / "python",
    ROOT / ".venv" / "python3" / "bin" / "python",
)


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
            AUTH="off",  # trusted clients: the figures are of the paths
            PORT=self.api_url.rsplit(":", 1)[1],
            PUSH_WAKE_ADDRESS=f"127.0.0.1:{free_udp_port()}",
            PUSH_PUB_ENDPOINT=self.pub_endpoint,
            PUSH_SSE_BIND=self.sse_url[len("http://") :],
        )
        self.gunicorn = Process(
            [python, "-m", "api", "serve"], env, folder / "gunicorn.log"
        )
        self.worker = Process([python, "-m", "workers.push"], env, folder / "push.log")

    def start(self) -> None:
        self.gunicorn.start()
        wait_until(
            lambda: self.gunicorn.check() or get_json(self.api_url + "/health"),
            60,
            what="gunicorn",
        )
        self.start_worker()

    def start_worker(self) -> None:
        self.worker.start()
        wait_until(
            lambda: self.worker.check() or self.health(),
            60,
            what="push worker",
        )

    def health(self) -> Optional[dict]:
        return get_json(self.sse_url + "/health")

    def wait_subscribed(self) -> None:
        wait_until(
            lambda: "note." in (self.health() or {}).get("pub_topics", ()),
            30,
            what="the SUB subscription",
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


def percentile_at(values: List[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of the sorted ``values``, by rounded rank."""
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
            wait_until(
                lambda n=note_id: n in receiver.arrivals,
                30,
                what="an event",
            )
            if i >= warmup:
                latencies.append(max(0.0, receiver.arrivals[note_id] - returned))
    ms = [value * 1000 for value in latencies]
    return {
        "count": count,
        "p50_ms": round(percentile_at(ms, 0.5), 2),
        "p99_ms": round(percentile_at(ms, 0.99), 2),
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
    wait_until(
        lambda: all(note_id in receiver.arrivals for note_id in made),
        60,
        what="every live event",
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
    wait_until(
        lambda: all(note_id in receiver.arrivals for note_id in made),
        120,
        what="the backlog",
    )
    times = receiver.times[before:]
    first, last = times[0], max(receiver.arrivals[note_id] for note_id in made)
    return {
        "changes": count,
        "events_per_s": round((count - 1) / max(last - first, 1e-9), 1),
    }


# -- under load: open-loop writes, receivers in processes of their own ---------


def receive(channel: str, where: str, out: str) -> None:
    """``python -m bench.push receive sub|sse WHERE OUT``: timestamp every event.

    Prints ``ready`` once connected; on SIGTERM writes ``note_id arrival``
    lines (``time.perf_counter``) to OUT and exits.
    """
    arrivals: Dict[str, float] = {}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if channel == "sub":
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"note.")
        sock.connect(where)
        print("ready", flush=True)
        while not stop.is_set():
            if sock.poll(100):
                _topic, body = sock.recv_multipart()
                now = time.perf_counter()
                note = json.loads(body)["new_val"]
                if note is not None:
                    arrivals.setdefault(note["id"], now)
    else:
        threading.Thread(
            target=_read_sse, args=(where, arrivals, stop), daemon=True
        ).start()
        stop.wait()
    with open(out, "w") as file:
        file.writelines(f"{note_id} {at!r}\n" for note_id, at in arrivals.items())


def _read_sse(url: str, arrivals: Dict[str, float], stop: threading.Event) -> None:
    # A plain socket: each read is timestamped as it arrives (an HTTP
    # library's line iterator reads byte by byte, too slow at 500 events/s).
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.sendall(
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    sock.settimeout(0.2)
    pending = b""
    ready = False
    while not stop.is_set():
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            return
        now = time.perf_counter()
        pending += data
        if not ready and b"\r\n\r\n" in pending:
            ready = True
            print("ready", flush=True)
            pending = pending.split(b"\r\n\r\n", 1)[1]
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                note = json.loads(line[5:])["new_val"]
                if note is not None:
                    arrivals.setdefault(note["id"], now)


class _ReceiverProcess:
    """``receive`` in a child process (this interpreter)."""

    def __init__(self, channel: str, where: str, folder: Path):
        self.out = folder / f"arrivals-{channel}.txt"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.push",
                "receive",
                channel,
                where,
                str(self.out),
            ],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"the {channel} receiver did not start")

    def arrivals(self) -> Dict[str, float]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        arrivals = {}
        for line in self.out.read_text().splitlines():
            note_id, at = line.split()
            arrivals[note_id] = float(at)
        return arrivals


def _post_load(stack: Stack, rate: float, seconds: float) -> tuple:
    """Open-loop POST /notes; (load summary, {note id: answered at})."""
    answers: Dict[int, tuple] = {}
    run = load.LoadRun(
        stack.api_url,
        "/notes",
        rate=rate,
        duration=seconds,
        method="POST",
        bodies=lambda i: b'{"title": "load %d", "body": "bench"}' % i,
        on_answer=lambda i, status, body, at: answers.__setitem__(
            i, (status, body, at)
        ),
        connections=256,
    )
    summary = run.run()
    answered = {
        json.loads(body)["id"]: at
        for status, body, at in answers.values()
        if status == 201
    }
    return summary, answered


def measure_under_load(
    stack: Stack, folder: Path, rate: float, seconds: float, warmup: float
) -> dict:
    """POST at ``rate`` for ``seconds`` (after ``warmup``); latency per channel."""
    if warmup:
        _post_load(stack, rate, warmup)  # the JIT of the API and the worker
    sub = _ReceiverProcess("sub", stack.pub_endpoint, folder)
    sse = _ReceiverProcess("sse", stack.sse_url + "/events", folder)
    stack.wait_subscribed()
    summary, answered = _post_load(stack, rate, seconds)
    time.sleep(2.0)  # the last events on their way
    channels = {"sub": sub.arrivals(), "sse": sse.arrivals()}
    result = {
        "asked_rate": rate,
        "seconds": seconds,
        "achieved_rate": round(summary["achieved_rate"], 1),
        "sent": summary["sent"],
        "created": len(answered),
        "post_errors": summary["errors"],
        "post_latency_ms": {k: round(v, 2) for k, v in summary["latency_ms"].items()},
        "generator_behind": summary["generator_behind"],
    }
    for name, arrivals in channels.items():
        ms = [
            max(0.0, arrivals[note_id] - at) * 1000
            for note_id, at in answered.items()
            if note_id in arrivals
        ]
        result[name] = {
            "events": len(ms),
            "missing": len(answered) - len(ms),
            "p50_ms": round(percentile_at(ms, 0.5), 2) if ms else None,
            "p99_ms": round(percentile_at(ms, 0.99), 2) if ms else None,
            "max_ms": round(max(ms), 2) if ms else None,
        }
    return result


#: How much each figure does: quick, full.
SIZES = {
    True: {
        "latency": 50,
        "latency_warmup": 10,
        "live_s": 1.0,
        "live_warmup_s": 0.5,
        "backlog": 500,
        "load_rate": 100,
        "load_s": 2.0,
        "load_warmup_s": 1.0,
    },
    False: {
        "latency": 300,
        "latency_warmup": 100,
        "live_s": 6.0,
        "live_warmup_s": 3.0,
        "backlog": 10000,
        "load_rate": 500,
        "load_s": 10.0,
        "load_warmup_s": 20.0,
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
            }
            if size.get("load_rate"):
                result["under_load"] = measure_under_load(
                    stack,
                    Path(folder),
                    size["load_rate"],
                    size["load_s"],
                    size["load_warmup_s"],
                )
            # The worker restarts for this one: a cold process, as after a crash.
            result["catch_up"] = measure_catch_up(stack, receiver, size["backlog"])
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
            "latency_p50": ratio_of(
                pypy["latency"]["p50_ms"], cpython["latency"]["p50_ms"]
            ),
            "live_events_per_s": ratio_of(
                pypy["live"]["events_per_s"], cpython["live"]["events_per_s"]
            ),
            "catch_up_events_per_s": ratio_of(
                pypy["catch_up"]["events_per_s"], cpython["catch_up"]["events_per_s"]
            ),
        }
    return out


def ratio_of(a: float, b: float) -> Optional[float]:
    """``a / b`` to two decimals, or None when ``b`` is 0."""
    return round(a / b, 2) if b else None


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["receive"]:
        receive(*argv[1:4])
        return 0
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
