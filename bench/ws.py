"""Benchmark: WebSocket fan-out of the push worker (``GET /ws``).

``python -m bench.ws [--quick] [--json PATH]`` prints JSON (and writes it to
``--json``). For each interpreter (the project's ``.venv/pypy3`` and
``.venv/python3``) it starts a server process under it: the push worker's
HTTP server and WebSocket hub (``workers.push.sse.SseServer``) on an
``EventFeed``, the same code as the worker, with the events published by a
thread of that process at a fixed rate instead of read from a store (so
what is measured is the fan-out, not the API's write rate). Then, for each
level ``(clients, events/s)``:

- ``clients - PROBES`` load clients connect (one process, plain
  non-blocking sockets): each reads its socket every 100 ms, all that is
  there (as a busy browser tab would), and counts the bytes;
- ``PROBES`` probe clients connect (another process): they read as soon as
  a frame arrives and, for each event, take the time from its publication
  (the server writes ``time.perf_counter()`` into the event when it
  publishes it; the same monotonic clock in every process) to its arrival;
- the server publishes at the rate for a warm-up, then for the measured
  run; the probes' latencies of the measured run give p50, p99 and max;
  the load clients' bytes, against what the server sent, give the share of
  events delivered; the hub's count of dropped clients is reported.

Every client is served by the same hub loop, probes and load alike, in no
particular order, so the probes see what any client sees. The clients run
on the same 2 cores as the server: the figures are what this machine
reaches with both, not the server alone. Pings are off in the server here
(the load clients do not answer them); they cost one frame per client per
20 s in production.

Quick: 100 clients at 50 events/s, 2 s warm-up, 3 s measured; full: the
target (1,000 clients at 200 events/s, p99 <= 50 ms) and smaller levels,
5 s warm-up, 10 s measured each.
"""

import argparse
import base64
import json
import os
import platform
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from bench.collatz import interpreter
from bench.servers import ROOT

#: Clients that time every event (the rest only read).
PROBES = 20
TARGET = {"clients": 1000, "events_per_s": 200, "p99_ms": 50.0}
QUICK_LEVELS = ((100, 50),)
FULL_LEVELS = ((100, 200), (1000, 50), (1000, 200))


# The server process --------------------------------------------------------


class _NoLog:
    """The store side of the bench feed: no log (clients never resume)."""

    def last_seq(self) -> int:
        return 0

    def changes(self, **_kwargs):
        raise RuntimeError("the bench feed keeps every event in memory")


def _event(number: int) -> dict:
    """A note.created event like the worker's, its body the publication time."""
    stamp = "2030-01-01T00:00:00.000Z"
    return {
        "id": number,
        "type": "note.created",
        "old_val": None,
        "new_val": {
            "id": f"{number:032x}",
            "title": "bench",
            "body": f"{time.perf_counter():.6f}",
            "created_at": stamp,
            "updated_at": stamp,
        },
        "ts": stamp,
    }


def serve() -> None:
    """The server: reads commands on stdin, answers JSON lines on stdout.

    ``publish RATE SECONDS``: publish for that long at that rate, then
    answer how many events and their frames' bytes, and the hub's counts.
    """
    from core import wire
    from workers.push.feed import EventFeed
    from workers.push.sse import SseServer
    from workers.push.ws import WebSocketHub
    from workers.push.ws import text_frame

    # A feed that remembers a run's worth of events; pings off (see above).
    feed = EventFeed(_NoLog(), 0, capacity=100000)
    hub = WebSocketHub(ping_interval=3600, ping_timeout=3600)
    server = SseServer("127.0.0.1:0", lambda: {"status": "ok"}, hub=hub)
    server.start(feed)
    number = 0
    print(json.dumps({"port": server.address[1]}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "counts":
            print(json.dumps({"clients": hub.clients, "dropped": hub.dropped}))
            sys.stdout.flush()
            continue
        rate, seconds = float(words[1]), float(words[2])
        sent_bytes = 0
        count = int(rate * seconds)
        start = time.perf_counter()
        late = 0.0
        for index in range(count):
            due = start + index / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            else:
                late = max(late, -wait)
            number += 1
            event = _event(number)
            sent_bytes += len(text_frame(wire.encode(event)))
            feed.publish(event)
        elapsed = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "events": count,
                    "last_id": number,
                    "frame_bytes": sent_bytes,
                    "rate": round(count / elapsed, 1),
                    "publisher_late_ms": round(late * 1000, 1),
                    "clients": hub.clients,
                    "dropped": hub.dropped,
                }
            ),
            flush=True,
        )
    feed.close()
    server.stop()


# The client processes ------------------------------------------------------


def _handshake(port: int) -> Tuple[socket.socket, bytes]:
    """A connected, upgraded socket and what came after the 101's head."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode(errors="replace"))
    return sock, rest


def _frames(buffer: bytearray):
    """Yield ``(opcode, payload)`` of each complete frame; leave the rest."""
    offset = 0
    while len(buffer) - offset >= 2:
        opcode, length = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F
        start = offset + 2
        if length == 126:
            if len(buffer) - start < 2:
                break
            (length,) = struct.unpack_from("!H", buffer, start)
            start += 2
        elif length == 127:
            if len(buffer) - start < 8:
                break
            (length,) = struct.unpack_from("!Q", buffer, start)
            start += 8
        if len(buffer) - start < length:
            break
        yield opcode, bytes(buffer[start : start + length])
        offset = start + length
    del buffer[:offset]


def _greeting_size(sock: socket.socket, rest: bytes) -> int:
    """Read the hub's first frame (``stream``); the bytes after it."""
    buffer = bytearray(rest)
    while True:
        for _opcode, _payload in _frames(buffer):
            return len(buffer)
        buffer += sock.recv(4096)


def load_clients(port: int, count: int) -> None:
    """``count`` clients that read every 100 ms; reports bytes on command."""
    socks = []
    received = []
    for _ in range(count):
        sock, rest = _handshake(port)
        received.append(_greeting_size(sock, rest))
        sock.setblocking(False)
        socks.append(sock)
    print(json.dumps({"connected": count}), flush=True)
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            for index, sock in enumerate(socks):
                while True:
                    try:
                        data = sock.recv(1 << 20)
                    except BlockingIOError:
                        break
                    except OSError:
                        data = b""
                    if not data:
                        break
                    received[index] += len(data)
            stop.wait(0.1)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    for line in sys.stdin:
        if line.strip() == "bytes":
            print(json.dumps({"bytes": received}), flush=True)
    stop.set()
    thread.join()


def probe_clients(port: int, count: int) -> None:
    """``count`` clients that time each event; ``mark N``: the measured run is
    the events after id N; ``report``: their latencies (ms)."""
    selector = selectors.DefaultSelector()
    buffers: Dict[socket.socket, bytearray] = {}
    for _ in range(count):
        sock, rest = _handshake(port)
        buffer = bytearray(rest)
        list(_frames(buffer))  # the greeting
        sock.setblocking(False)
        buffers[sock] = buffer
        selector.register(sock, selectors.EVENT_READ)
    print(json.dumps({"connected": count}), flush=True)
    latencies: List[float] = []
    received = [0]
    after = [0]  # the measured run's events come after this id
    measuring = threading.Event()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for key, _ in selector.select(0.2):
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                now = time.perf_counter()
                buffer = buffers[key.fileobj]
                buffer += data
                for opcode, payload in _frames(buffer):
                    if opcode != 1:
                        continue
                    event = json.loads(payload)
                    if measuring.is_set() and event["id"] > after[0]:
                        published = float(event["new_val"]["body"])
                        latencies.append((now - published) * 1000)
                        received[0] += 1

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "mark":
            after[0] = int(rest[0])
            latencies.clear()
            received[0] = 0
            measuring.set()
        elif command == "report":
            measuring.clear()
            print(json.dumps({"latencies": latencies, "events": received[0]}))
            sys.stdout.flush()
    stop.set()
    thread.join()


# The driver ----------------------------------------------------------------


class _Child:
    """A process of this module speaking JSON lines over stdin/stdout."""

    def __init__(self, python: str, *args: str):
        self.proc = subprocess.Popen(
            [python, "-m", "bench.ws", *args],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT), LOG_LEVEL="warning"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: Optional[str] = None) -> dict:
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args} exited ({self.proc.wait()})")
        return json.loads(line)

    def tell(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def level(server: _Child, port: int, clients: int, rate: float, quick: bool) -> dict:
    """One ``(clients, rate)`` level against a running server."""
    warmup, seconds = (2.0, 3.0) if quick else (5.0, 10.0)
    probes = min(PROBES, clients)
    deadline = time.monotonic() + 10
    while server.ask("counts")["clients"] and time.monotonic() < deadline:
        time.sleep(0.1)  # the previous level's clients are going
    loaders = _Child(sys.executable, "--load", str(port), str(clients - probes))
    prober = _Child(sys.executable, "--probe", str(port), str(probes))
    try:
        loaders.ask()
        prober.ask()
        deadline = time.monotonic() + 30
        before = server.ask("counts")
        while before["clients"] < clients and time.monotonic() < deadline:
            time.sleep(0.1)  # the hub adopts each connection on its loop
            before = server.ask("counts")
        warm = server.ask(f"publish {rate} {warmup}")
        prober.tell(f"mark {warm['last_id']}")
        published = server.ask(f"publish {rate} {seconds}")
        time.sleep(1.0)  # the last events' way to the clients
        probed = prober.ask("report")
        # Every byte of both runs, per load client (they read lazily).
        expected = (warm["frame_bytes"] + published["frame_bytes"]) * (clients - probes)
        deadline = time.monotonic() + 5
        while True:  # the load clients read every 100 ms: give them time
            got = sum(loaders.ask("bytes")["bytes"])
            if got >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        after = server.ask("counts")
    finally:
        loaders.close()
        prober.close()
    latencies = probed["latencies"]
    result = {
        "clients": clients,
        "events_per_s_asked": rate,
        "events_per_s_published": published["rate"],
        "publisher_late_ms": published["publisher_late_ms"],
        "seconds": seconds,
        "frames_per_s": round(published["rate"] * clients),
        "probe_events": probed["events"],
        "probe_events_expected": published["events"] * probes,
        "load_delivered_share": round(got / expected, 4) if expected else None,
        "connected": before["clients"],
        "dropped": after["dropped"] - before["dropped"],
    }
    if latencies:
        result.update(
            p50_ms=round(statistics.median(latencies), 2),
            p99_ms=round(_percentile(latencies, 0.99), 2),
            max_ms=round(max(latencies), 2),
        )
    result["meets_target"] = bool(
        clients >= TARGET["clients"]
        and published["rate"] >= 0.98 * TARGET["events_per_s"]
        and result.get("p99_ms", float("inf")) <= TARGET["p99_ms"]
        and result["probe_events"] == result["probe_events_expected"]
        and result["dropped"] == 0
    )
    return result


def measure(python: str, quick: bool) -> dict:
    """Every level against one server process under ``python``."""
    server = _Child(python, "--serve")
    try:
        port = server.ask()["port"]
        levels = QUICK_LEVELS if quick else FULL_LEVELS
        return {
            "python": python,
            "levels": [level(server, port, c, r, quick) for c, r in levels],
        }
    finally:
        server.close()


def run(quick: bool) -> dict:
    """Fan-out under PyPy and CPython (server side); see the module docstring."""
    results = {
        "benchmark": "ws",
        "target": "1,000 clients x 200 events/s, p99 <= 50 ms",
        "probes": PROBES,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "client_python": sys.executable,
        "quick": quick,
    }
    for name in ("pypy3", "python3"):
        python = interpreter(name)
        results[name] = (
            {"available": False} if python is None else measure(python, quick)
        )
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ws", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="one small level")
    parser.add_argument(
        "--json",
        default=str(ROOT / "bench/results/ws.json"),
        help="where to write the JSON ('-': nowhere)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--probe", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.load:
        load_clients(*args.load)
        return 0
    if args.probe:
        probe_clients(*args.probe)
        return 0
    results = run(args.quick)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json != "-":
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
