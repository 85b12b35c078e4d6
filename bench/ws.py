"""WebSocket fan-out of the push worker, ``GET /ws`` (docs/performance)."""

import json
import os
import selectors
import socket
import subprocess
import sys
import time
from typing import Tuple

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.uri import parse_uri

from bench import common

#: Clients that time every event (the rest only read).
PROBES = 20
TARGET = {"clients": 1000, "events_per_s": 200, "p99_ms": 50.0}
#: (clients, events/s) per level: quick, full.
LEVELS = {True: ((100, 50),), False: ((100, 200), (1000, 50), (1000, 200))}
STAMP = "2030-01-01T00:00:00.000Z"


def serve(clients: int, rate: float, warmup: float, seconds: float) -> None:
    """The server: its port; once ``clients`` are in, the events; then its drops."""
    from core import wire
    from workers.push.feed import EventFeed
    from workers.push.sse import SseServer
    from workers.push.ws import WebSocketHub
    from workers.push.ws import text_frame

    # A feed that remembers a run's worth of events, with no store: the
    # clients are new readers, which never replay. Pings off (the load
    # clients do not answer them).
    feed = EventFeed(None, 0, capacity=100000)
    hub = WebSocketHub(ping_interval=3600, ping_timeout=3600)
    server = SseServer("127.0.0.1:0", lambda: {"status": "ok"}, hub=hub)
    server.start(feed)
    print(json.dumps({"port": server.address[1]}), flush=True)
    deadline = time.monotonic() + 60
    while hub.clients < clients and time.monotonic() < deadline:
        time.sleep(0.1)  # the hub adopts each connection on its loop
    connected, dropped = hub.clients, hub.dropped
    number = frame_bytes = 0
    for title, length in (("warm-up", warmup), ("measured", seconds)):
        count, late, start = int(rate * length), 0.0, time.perf_counter()
        for index in range(count):
            wait = start + index / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            late = max(late, -wait)
            number += 1
            note = {"id": f"{number:032x}", "title": title}
            note.update(body=f"{time.perf_counter():.6f}", created_at=STAMP)
            event = {"id": number, "type": "note.created", "old_val": None}
            event.update(new_val=dict(note, updated_at=STAMP), ts=STAMP)
            frame_bytes += len(text_frame(wire.encode(event)))
            feed.publish(event)
    elapsed = time.perf_counter() - start
    published = {"events": count, "frame_bytes": frame_bytes, "connected": connected}
    published.update(rate=round(count / elapsed, 1), late_ms=round(late * 1000, 1))
    print(json.dumps(published), flush=True)
    for _line in sys.stdin:
        print(json.dumps({"dropped": hub.dropped - dropped}), flush=True)
    feed.close()
    server.stop()


def _connect(port: int) -> Tuple[socket.socket, ClientProtocol]:
    """A client of ``/ws`` that has read the hub's first frame (``stream``)."""
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
    """``count`` clients; what they read once the bytes named on stdin came (<= 5 s)."""
    selector = selectors.DefaultSelector()
    for _ in range(count):
        sock, protocol = _connect(port)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, protocol)
    selector.register(sys.stdin, selectors.EVENT_READ)
    print(json.dumps({"connected": count}), flush=True)
    read = {"bytes": 0, "latencies": []}
    expected = deadline = float("inf")
    while read["bytes"] < expected and time.monotonic() < deadline:
        if not timed:
            time.sleep(0.1)  # the load clients read lazily
        for key, _ in selector.select(0.2 if timed else 0):
            if key.fileobj is sys.stdin:
                expected = int(sys.stdin.readline() or 0)
                deadline = time.monotonic() + 5
                continue
            try:
                data = key.fileobj.recv(1 << 20)
            except BlockingIOError:
                continue
            now = time.perf_counter()
            read["bytes"] += len(data)
            if not data:
                selector.unregister(key.fileobj)
            elif timed:
                key.data.receive_data(data)
                notes = [
                    json.loads(frame.data)["new_val"]
                    for frame in key.data.events_received()
                    if frame.opcode is Opcode.TEXT
                ]
                read["latencies"] += [
                    (now - float(note["body"])) * 1000
                    for note in notes
                    if note["title"] == "measured"
                ]
    print(json.dumps(read), flush=True)


class _Child:
    """A process of this module speaking JSON lines over stdin/stdout."""

    def __init__(self, python: str, *args):
        self.proc = subprocess.Popen(
            [python, "-m", "bench.ws", *map(str, args)],
            cwd=common.ROOT,
            env=dict(os.environ, PYTHONPATH=str(common.ROOT), LOG_LEVEL="warning"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, line: str = "") -> dict:
        """Its next line (after sending ``line``, if any), as JSON."""
        if line:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"{self.proc.args} exited ({self.proc.wait()})")
        return json.loads(answer)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def level(python: str, clients: int, rate: float, quick: bool) -> dict:
    """One ``(clients, rate)`` level: a server under ``python``, and its clients."""
    warmup, seconds = (2.0, 3.0) if quick else (5.0, 10.0)
    probes = min(PROBES, clients)
    children = [_Child(python, "--serve", clients, rate, warmup, seconds)]
    try:
        port = children[0].ask()["port"]
        for role, count in (("--load", clients - probes), ("--time", probes)):
            children.append(_Child(sys.executable, role, port, count))
            children[-1].ask()
        server, loaders, prober = children
        published = server.ask()
        time.sleep(1.0)  # the last events' way to the clients
        probed = prober.ask("0")
        # Every byte of both runs, per load client (they read lazily).
        expected = published["frame_bytes"] * (clients - probes)
        got = loaders.ask(str(expected))["bytes"]
        dropped = server.ask("dropped")["dropped"]
    finally:
        for child in children:
            child.close()
    result = {
        "clients": clients,
        "events_per_s_asked": rate,
        "events_per_s_published": published["rate"],
        "publisher_late_ms": published["late_ms"],
        "seconds": seconds,
        "frames_per_s": round(published["rate"] * clients),
        "probe_events": len(probed["latencies"]),
        "probe_events_expected": published["events"] * probes,
        "load_delivered_share": round(got / expected, 4) if expected else None,
        "connected": published["connected"],
        "dropped": dropped,
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
        results[impl] = [level(python, c, r, quick) for c, r in LEVELS[quick]]
    return results


if __name__ == "__main__":
    role, args = sys.argv[1:2], sys.argv[2:]
    if role == ["--serve"]:
        serve(int(args[0]), *map(float, args[1:]))
    elif role in (["--load"], ["--time"]):
        clients(int(args[0]), int(args[1]), timed=role == ["--time"])
    else:
        sys.exit(common.figure_main(__doc__, run))
