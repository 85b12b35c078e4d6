"""Benchmark: WebSocket fan-out of the push worker (``GET /ws``).

``python -m bench.ws [--quick]`` prints JSON. Under each interpreter, a
server process runs the push worker's HTTP server and WebSocket hub on an
``EventFeed`` fed at a fixed rate by a thread of its own (the fan-out, not
the API's write rate). Per level ``(clients, events/s)``: load clients
(one process) read every 100 ms and count bytes; ``PROBES`` probe clients
(another process) time each event from its publication (the server writes
``time.perf_counter()`` into it) to its arrival. The probes give p50, p99
and max; the load clients' bytes, the share delivered. Clients and server
share the 2 cores. Pings are off here (the load clients do not answer).
Quick: 100 clients at 50 events/s; full: up to the target, 1,000 clients
at 200 events/s with p99 <= 50 ms.
"""

import base64
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from bench import common

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
            cwd=common.ROOT,
            env=dict(os.environ, PYTHONPATH=str(common.ROOT), LOG_LEVEL="warning"),
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
            p50_ms=round(common.percentile(latencies, 50), 2),
            p99_ms=round(common.percentile(latencies, 99), 2),
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


def run(quick: bool) -> dict:
    """Fan-out under PyPy and CPython (server side)."""
    results = {
        "benchmark": "ws",
        "target": "1,000 clients x 200 events/s, p99 <= 50 ms",
        "probes": PROBES,
        "cpus": os.cpu_count(),
    }
    for impl, python in common.interpreters().items():
        server = _Child(python, "--serve")
        try:
            port = server.ask()["port"]
            levels = QUICK_LEVELS if quick else FULL_LEVELS
            results[impl] = [level(server, port, c, r, quick) for c, r in levels]
        finally:
            server.close()
    return results


if __name__ == "__main__":
    role = sys.argv[1:2]
    if role == ["--serve"]:
        serve()
    elif role == ["--load"]:
        load_clients(int(sys.argv[2]), int(sys.argv[3]))
    elif role == ["--probe"]:
        probe_clients(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(common.figure_main(__doc__, run))
