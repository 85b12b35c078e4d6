"""Benchmark: WebSocket fan-out of the push worker (``GET /ws``).

``python -m bench.ws [--quick]`` prints JSON; docs/performance/index.md says
how it measures.
"""

import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from typing import List
from typing import Optional
from typing import Tuple

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.uri import parse_uri

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

    def counts() -> dict:
        return {"clients": hub.clients, "dropped": hub.dropped}

    print(json.dumps({"port": server.address[1]}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words == ["counts"]:
            print(json.dumps(counts()), flush=True)
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
        answer = {
            "events": count,
            "last_id": number,
            "frame_bytes": sent_bytes,
            "rate": round(count / elapsed, 1),
            "publisher_late_ms": round(late * 1000, 1),
        }
        print(json.dumps(dict(answer, **counts())), flush=True)
    feed.close()
    server.stop()


# The client processes ------------------------------------------------------


def _connect(port: int) -> Tuple[socket.socket, ClientProtocol]:
    """A client of ``/ws`` that has read the hub's first frame (``stream``).

    Nothing is published while clients connect: no event follows it yet.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws"))
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    received = []
    while len(received) < 2:  # the handshake's response, then the first frame
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("closed during the handshake")
        protocol.receive_data(data)
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        received += protocol.events_received()
    return sock, protocol


def clients(port: int, count: int, timed: bool) -> None:
    """``count`` clients, driven by commands on stdin, answering JSON lines.

    Timed clients read as events come and time each from its publication:
    ``mark N`` starts with the event after id N, ``report`` gives the
    latencies (ms). The others read every 100 ms; ``bytes``: what each read.
    """
    selector = selectors.DefaultSelector()
    for number in range(count):
        sock, protocol = _connect(port)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, (number, protocol))
    print(json.dumps({"connected": count}), flush=True)
    received = [0] * count
    latencies: List[float] = []
    after = [None]  # timing the events after this id; None: not timing
    stop = threading.Event()

    def read() -> None:
        while not stop.wait(0 if timed else 0.1):
            for key, _ in selector.select(0.2 if timed else 0):
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                now = time.perf_counter()
                number, protocol = key.data
                received[number] += len(data)
                if not data:
                    selector.unregister(key.fileobj)
                elif timed:
                    protocol.receive_data(data)
                    for frame in protocol.events_received():
                        if frame.opcode is not Opcode.TEXT:
                            continue
                        event = json.loads(frame.data)
                        if after[0] is not None and event["id"] > after[0]:
                            published = float(event["new_val"]["body"])
                            latencies.append((now - published) * 1000)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    for line in sys.stdin:
        command, *args = line.split()
        if command == "mark":
            latencies.clear()
            after[0] = int(args[0])
        elif command == "report":
            after[0] = None
            answer = {"latencies": latencies, "events": len(latencies)}
            print(json.dumps(answer), flush=True)
        elif command == "bytes":
            print(json.dumps({"bytes": received}), flush=True)
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

    def tell(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def ask(self, command: Optional[str] = None) -> dict:
        """Its next line (after ``command``, if any), as JSON."""
        if command is not None:
            self.tell(command)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args} exited ({self.proc.wait()})")
        return json.loads(line)

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
    prober = _Child(sys.executable, "--time", str(port), str(probes))
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
        **common.spread(probed["latencies"]),
    }
    result["meets_target"] = bool(
        clients >= TARGET["clients"]
        and published["rate"] >= 0.98 * TARGET["events_per_s"]
        and result["p99_ms"] is not None
        and result["p99_ms"] <= TARGET["p99_ms"]
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
    elif role in (["--load"], ["--time"]):
        clients(int(sys.argv[2]), int(sys.argv[3]), timed=role == ["--time"])
    else:
        sys.exit(common.figure_main(__doc__, run))
