"""Open-loop load at a fixed request rate, with honest latency percentiles.

``python -m bench.load --url http://host:8000 --path /health --rate 500 --duration 30``

Request ``i`` is due at ``start + i / rate`` whatever happened to the ones
before it. One thread runs a non-blocking event loop (``selectors``): each
due request goes out at once on an idle keep-alive connection or on a new
one (up to ``--connections`` open at a time), so a slow answer never delays
the next send. A closed-loop tool (wrk, ab) waits for an answer before
sending the next request, so when the server stalls it simply stops asking
and the stall hides in a handful of samples ("coordinated omission").

A latency counts from the moment the client took the request up, at its
due time unless the client itself was late: any wait for a connection
(when all ``--connections`` are busy with earlier requests, the server's
doing) is counted in full, as wrk2 does; the client's own lag (due time to
taking it up: its CPU, a busy machine) is not the server's and is not
counted. It is reported apart (``generator_lag_ms``), and a run whose
client fell behind (lag p99 over 2 ms, or under 95 % of the asked rate
sent) says so (``generator_behind``): the server did not get the asked
rate.

Standard library only; runs under any Python 3.9+ (PyPy sends faster).
"""

import argparse
import collections
import errno
import json
import math
import selectors
import socket
import sys
import time
import urllib.parse
from collections.abc import Sequence
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
#: The client is behind when its own lag's p99 is over this (ms) ...
LAG_LIMIT_MS = 2.0
#: ... or when it sent less than this share of the asked rate.
RATE_SHARE = 0.95


def schedule(rate: float, duration: float) -> List[float]:
    """Send offsets in seconds from the start: ``i / rate`` for every due request."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    count = int(math.floor(rate * duration + 1e-9))
    return [index / rate for index in range(count)]


def percentile(sorted_values: Sequence[float], p: float) -> Optional[float]:
    """The nearest-rank ``p``-th percentile of ascending ``sorted_values``, or None.

    The smallest value with at least ``p`` percent of the values at or below it;
    always one of the measured values, never an interpolation.
    """
    if not sorted_values:
        return None
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    rank = math.ceil(p / 100.0 * len(sorted_values) - 1e-9)
    return sorted_values[max(rank, 1) - 1]


def summarize(
    latencies: Sequence[float], errors: Dict[str, int], *, due: int, elapsed: float
) -> dict:
    """Counts, achieved rate and latency percentiles (ms) of a finished run.

    ``latencies`` are seconds, one per answered request (any status);
    ``errors`` counts failures by kind (``"HTTP 503"``, ``"timeout"``, ...).
    """
    ordered = sorted(latencies)
    failed_without_answer = sum(
        n for kind, n in errors.items() if not kind.startswith("HTTP")
    )
    answered = len(ordered)
    return {
        "due": due,
        "answered": answered,
        "errors": dict(errors),
        "error_count": sum(errors.values()),
        "unfinished": max(due - answered - failed_without_answer, 0),
        "elapsed_s": elapsed,
        "achieved_rate": answered / elapsed if elapsed > 0 else 0.0,
        "latency_ms": _distribution(ordered),
    }


def _distribution(ordered: Sequence[float]) -> Dict[str, float]:
    """Percentiles, max and mean in ms of ascending seconds (empty: {})."""
    if not ordered:
        return {}
    out = {f"p{p:g}": percentile(ordered, p) * 1000 for p in PERCENTILES}
    out["max"] = ordered[-1] * 1000
    out["mean"] = sum(ordered) / len(ordered) * 1000
    return out


class _Exchange:
    """One request on one connection: its bytes out, the answer in."""

    __slots__ = (
        "index",
        "due",
        "taken",
        "queued",
        "started",
        "deadline",
        "sock",
        "reused",
        "out",
        "inbox",
        "state",
    )

    def __init__(self, index: int, due: float, taken: float):
        self.index = index
        self.due = due
        self.taken = taken  # when the client took it up: latency counts from here
        self.queued = False  # it waited for a connection
        self.started = 0.0
        self.deadline = 0.0
        self.sock: Optional[socket.socket] = None
        self.reused = False
        self.out = memoryview(b"")
        self.inbox = bytearray()
        self.state = "connecting"


def parse_response(data: bytes, at_eof: bool):
    """``(status, body, keep_alive)`` once ``data`` holds a whole answer, else None.

    Understands Content-Length, chunked transfer encoding and bodies that
    end when the server closes (``at_eof``).
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(data[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    keep_alive = headers.get("connection") != "close" and head[0].startswith("HTTP/1.1")
    body = data[end + 4 :]
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(body) < length:
            return None
        return status, bytes(body[:length]), keep_alive
    if "chunked" in headers.get("transfer-encoding", ""):
        decoded = _dechunk(body)
        return None if decoded is None else (status, decoded, keep_alive)
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", keep_alive
    return (status, bytes(body), False) if at_eof else None


def _dechunk(body: bytes) -> Optional[bytes]:
    parts, position = [], 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(body[position:line_end]).split(b";")[0], 16)
        start = line_end + 2
        if size == 0:
            return b"".join(parts) if body.find(b"\r\n", start) >= 0 else None
        if len(body) < start + size + 2:
            return None
        parts.append(bytes(body[start : start + size]))
        position = start + size + 2


#: ``(index, status, body, answered_at)`` for each answer (perf_counter time).
AnswerHook = Callable[[int, int, bytes, float], None]


class LoadRun:
    """One open-loop run; :meth:`run` returns the :func:`summarize` dict.

    Args:
        url: Base URL, ``http://host[:port]`` (plain HTTP only, no TLS).
        path: Request path with its query.
        rate: Requests per second.
        duration: Seconds of sending.
        method, body, headers: The request.
        connections: Most connections open at once.
        timeout: Seconds an answer may take (from its due time).
        on_answer: Called with every answer (the push benchmark reads them).
        bodies: One body per request, used in turn instead of ``body``.
    """

    def __init__(
        self,
        url: str,
        path: str = "/",
        *,
        rate: float,
        duration: float,
        method: str = "GET",
        body: Optional[bytes] = None,
        headers: Optional[Dict[str, str]] = None,
        connections: int = 64,
        timeout: float = 10.0,
        on_answer: Optional[AnswerHook] = None,
        bodies: Optional[Callable[[int], bytes]] = None,
    ):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--url must be http://host[:port], not {url!r}")
        self.url = url
        self.address = (parts.hostname, parts.port or 80)
        self.prefix = parts.path.rstrip("/")
        self.path = path if path.startswith("/") else "/" + path
        self.rate = rate
        self.duration = duration
        self.method = method.upper()
        self.body = body
        self.headers = dict(headers or {})
        if (body is not None or bodies is not None) and not any(
            k.lower() == "content-type" for k in self.headers
        ):
            self.headers["Content-Type"] = "application/json"
        self.connections = max(1, connections)
        self.timeout = timeout
        self.on_answer = on_answer
        self.bodies = bodies
        self.latencies: List[float] = []
        self.lags: List[float] = []
        self.waited = 0  # requests that waited for a free connection
        self.errors: Dict[str, int] = collections.Counter()
        self.sent = 0
        self._host = parts.netloc
        self._fixed = None if bodies else self._request(body)

    def _request(self, body: Optional[bytes]) -> bytes:
        lines = [
            f"{self.method} {self.prefix}{self.path} HTTP/1.1",
            f"Host: {self._host}",
        ]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")

    # -- the loop ---------------------------------------------------------------

    def run(self, progress=None) -> dict:
        """Send every due request on time, wait for the answers, summarize.

        ``progress(run, elapsed)`` is called about twice a second if given.
        """
        offsets = schedule(self.rate, self.duration)
        self._selector = selectors.DefaultSelector()
        self._idle: List[socket.socket] = []
        self._open = 0
        self._waiting: collections.deque = collections.deque()
        self._inflight: Dict[int, _Exchange] = {}
        start = time.perf_counter()
        next_report = start + 0.5
        position = 0
        total = len(offsets)
        last_due = start + (offsets[-1] if offsets else 0.0)
        stop_at = last_due + self.timeout + 1.0
        while position < total or self._waiting or self._inflight:
            now = time.perf_counter()
            if now > stop_at:
                break
            while position < total and start + offsets[position] <= now:
                due = start + offsets[position]
                exchange = _Exchange(position, due, now)
                self.lags.append(now - due)
                position += 1
                if not self._dispatch(exchange, now):
                    exchange.queued = True
                    self.waited += 1
                    self._waiting.append(exchange)
            self._expire(now)
            wait = stop_at - now
            if position < total:
                wait = min(wait, start + offsets[position] - now)
            if self._inflight:
                wait = min(wait, 0.05)
            for key, _ in self._selector.select(max(wait, 0.0)):
                self._ready(key.data, time.perf_counter())
            if progress and time.perf_counter() >= next_report:
                progress(self, time.perf_counter() - start)
                next_report += 0.5
        elapsed = time.perf_counter() - start
        unfinished = len(self._inflight) + len(self._waiting)
        for exchange in list(self._inflight.values()):
            self._close(exchange)
        for sock in self._idle:
            sock.close()
        self._selector.close()
        summary = summarize(self.latencies, self.errors, due=total, elapsed=elapsed)
        summary["unfinished"] = unfinished
        lags = sorted(self.lags)
        lag = _distribution(lags)
        sent_share = self.sent / total if total else 1.0
        summary.update(
            url=self.url,
            path=self.path,
            method=self.method,
            rate=self.rate,
            duration_s=self.duration,
            connections=self.connections,
            sent=self.sent,
            waited_for_connection=self.waited,
            generator_lag_ms=lag,
            generator_behind=bool(
                (lag and lag["p99"] > LAG_LIMIT_MS) or sent_share < RATE_SHARE
            ),
        )
        return summary

    def _dispatch(self, exchange: _Exchange, now: float) -> bool:
        """Start sending ``exchange``; False when every connection is busy."""
        if self._idle:
            sock = self._idle.pop()
            exchange.reused = True
        elif self._open < self.connections:
            sock = self._connect()
            if sock is None:
                self._fail(exchange, "ConnectionRefusedError")
                return True
        else:
            return False
        exchange.sock = sock
        exchange.started = now
        exchange.deadline = exchange.due + self.timeout
        body = self.body if self.bodies is None else self.bodies(exchange.index)
        exchange.out = memoryview(self._fixed or self._request(body))
        exchange.state = "sending"
        self._inflight[exchange.index] = exchange
        self.sent += 1
        self._selector.register(sock, selectors.EVENT_WRITE, exchange)
        return True

    def _connect(self) -> Optional[socket.socket]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(self.address)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            return None
        self._open += 1
        return sock

    def _ready(self, exchange: _Exchange, now: float) -> None:
        if exchange.state == "sending":
            self._send(exchange)
        else:
            self._receive(exchange, now)

    def _send(self, exchange: _Exchange) -> None:
        try:
            sent = exchange.sock.send(exchange.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as ex:
            self._broken(exchange, ex)
            return
        exchange.out = exchange.out[sent:]
        if not exchange.out:
            exchange.state = "receiving"
            self._selector.modify(exchange.sock, selectors.EVENT_READ, exchange)

    def _receive(self, exchange: _Exchange, now: float) -> None:
        try:
            data = exchange.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as ex:
            self._broken(exchange, ex)
            return
        exchange.inbox += data
        try:
            answer = parse_response(exchange.inbox, at_eof=not data)
        except (ValueError, IndexError):
            self._fail(exchange, "BadResponse")
            return
        if answer is None:
            if not data:
                self._broken(exchange, ConnectionResetError("closed early"))
            return
        status, body, keep_alive = answer
        self.latencies.append(now - exchange.taken)
        if status >= 400:
            self.errors[f"HTTP {status}"] += 1
        if self.on_answer is not None:
            self.on_answer(exchange.index, status, body, now)
        self._finish(exchange, keep=keep_alive and bool(data))

    def _broken(self, exchange: _Exchange, ex: OSError) -> None:
        # An idle keep-alive connection the server closed meanwhile: any
        # client retries on a new one, and so does this one (once).
        if exchange.reused and not exchange.inbox:
            self._finish(exchange, keep=False, done=False)
            exchange.reused = False
            exchange.inbox = bytearray()
            if self._dispatch(exchange, time.perf_counter()):
                self.sent -= 1  # the same request, sent again
            else:
                self._waiting.appendleft(exchange)
            return
        self._fail(exchange, type(ex).__name__)

    def _fail(self, exchange: _Exchange, kind: str) -> None:
        self.errors[kind] += 1
        self._finish(exchange, keep=False)

    def _finish(self, exchange: _Exchange, keep: bool, done: bool = True) -> None:
        self._inflight.pop(exchange.index, None)
        sock = exchange.sock
        exchange.sock = None
        if sock is not None:
            self._selector.unregister(sock)
            if keep:
                self._idle.append(sock)
            else:
                sock.close()
                self._open -= 1
        if done:
            self._next_waiting()

    def _close(self, exchange: _Exchange) -> None:
        self._finish(exchange, keep=False, done=False)

    def _next_waiting(self) -> None:
        now = time.perf_counter()
        while self._waiting and (self._idle or self._open < self.connections):
            self._dispatch(self._waiting.popleft(), now)

    def _expire(self, now: float) -> None:
        for exchange in [e for e in self._inflight.values() if e.deadline < now]:
            self._fail(exchange, "timeout")


def progress_line(run: LoadRun, elapsed: float) -> str:
    """``  12.0/30s  sent 1200  answered 1198  errors 0  p50 1.2 ms  p99 3.4 ms``."""
    ordered = sorted(run.latencies)
    errors = sum(run.errors.values())
    text = (
        f"{elapsed:6.1f}/{run.duration:g}s  sent {run.sent}  "
        f"answered {len(ordered)}  errors {errors}"
    )
    if ordered:
        text += (
            f"  p50 {percentile(ordered, 50) * 1000:.1f} ms"
            f"  p99 {percentile(ordered, 99) * 1000:.1f} ms"
        )
    return text


def _terminal_progress(stream):
    if not stream.isatty():
        return None

    def show(run: LoadRun, elapsed: float) -> None:
        stream.write("\r\x1b[K" + progress_line(run, elapsed))
        stream.flush()

    return show


def format_summary(summary: dict) -> str:
    """The end-of-run report, for humans."""
    lines = [
        f"{summary['method']} {summary['url'].rstrip('/')}{summary['path']}  "
        f"rate {summary['rate']:g}/s for {summary['duration_s']:g} s, "
        f"{summary['connections']} connections",
        f"due {summary['due']}  sent {summary['sent']}  answered "
        f"{summary['answered']}  errors {summary['error_count']}  unfinished "
        f"{summary['unfinished']}  achieved {summary['achieved_rate']:.1f}/s "
        f"(asked {summary['rate']:g}/s)",
    ]
    if summary["errors"]:
        lines.append(
            "errors: "
            + ", ".join(f"{kind} x{n}" for kind, n in sorted(summary["errors"].items()))
        )
    latency = summary["latency_ms"]
    if latency:
        lines.append(
            "latency (ms, waits for a connection included): "
            + "  ".join(f"{name} {value:.2f}" for name, value in latency.items())
        )
    lag = summary["generator_lag_ms"]
    if lag:
        lines.append(
            "this client's own lag (ms, not counted above): "
            + "  ".join(f"{name} {value:.2f}" for name, value in lag.items())
        )
    if summary["generator_behind"]:
        lines.append(
            "warning: this client fell behind its schedule (its own lag p99 over "
            f"{LAG_LIMIT_MS:g} ms, or under {RATE_SHARE:.0%} of the rate sent): "
            "the server did not get the asked rate; use fewer requests/s or a "
            "faster interpreter (PyPy)"
        )
    return "\n".join(lines)


def _header(text: str):
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--header wants 'Name: value', not {text!r}")
    return name.strip(), value.strip()


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", required=True, help="base URL, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument("--path", default="/", help="request path (default /)")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds (default 10)"
    )
    parser.add_argument("--method", default="GET", help="HTTP method (default GET)")
    parser.add_argument(
        "--body",
        help="request body; @FILE reads it from a file "
        "(Content-Type defaults to application/json)",
    )
    parser.add_argument(
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="'NAME: VALUE'",
        help="extra header (repeatable)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=64,
        help="most connections open at once (default 64); a due request "
        "waits when all are busy, and its wait counts",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per request (default 10)"
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the summary as JSON to FILE ('-' for standard output)",
    )
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the load described by ``argv``; exit status 1 if any request failed."""
    args = parse_args(argv)
    body = None
    if args.body is not None:
        if args.body.startswith("@"):
            with open(args.body[1:], "rb") as source:
                body = source.read()
        else:
            body = args.body.encode()
    run = LoadRun(
        args.url,
        args.path,
        rate=args.rate,
        duration=args.duration,
        method=args.method,
        body=body,
        headers=dict(args.header),
        connections=args.connections,
        timeout=args.timeout,
    )
    progress = _terminal_progress(sys.stderr)
    summary = run.run(progress)
    if progress:
        sys.stderr.write("\n")
    if args.json == "-":
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
        if args.json:
            with open(args.json, "w") as out:
                json.dump(summary, out, indent=2)
    return 1 if summary["error_count"] or summary["unfinished"] else 0


if __name__ == "__main__":
    sys.exit(main())
