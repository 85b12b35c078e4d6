"""Open-loop load at a fixed request rate, with honest latency percentiles.

``python -m bench.load --url http://host:8000 --path /health --rate 500 --duration 30``

Request ``i`` is due at ``start + i / rate`` whatever happened to the ones
before it, and its latency is measured from that *intended* time, not from
when a connection became free to send it. A closed-loop tool (wrk, ab) waits
for an answer before sending the next request, so when the server stalls it
simply stops asking and the stall hides in a handful of samples ("coordinated
omission"); here every request that should have been sent during the stall
counts the wait it would have seen.

Requests go out over a pool of keep-alive connections, one thread each
(``--connections``); when all are busy, due requests queue and the queueing is
part of their latency. Standard library only.
"""

import argparse
import collections
import http.client
import json
import math
import queue
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from typing import Dict
from typing import List
from typing import Optional

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


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
    latency = {}
    if ordered:
        latency = {f"p{p:g}": percentile(ordered, p) * 1000 for p in PERCENTILES}
        latency["max"] = ordered[-1] * 1000
        latency["mean"] = sum(ordered) / answered * 1000
    return {
        "due": due,
        "answered": answered,
        "errors": dict(errors),
        "error_count": sum(errors.values()),
        "unfinished": max(due - answered - failed_without_answer, 0),
        "elapsed_s": elapsed,
        "achieved_rate": answered / elapsed if elapsed > 0 else 0.0,
        "latency_ms": latency,
    }


class _Client:
    """One keep-alive connection (per thread); reconnects after any failure."""

    def __init__(self, url: str, timeout: float):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"--url must be http:// or https://, not {url!r}")
        self.factory = (
            http.client.HTTPSConnection
            if parts.scheme == "https"
            else http.client.HTTPConnection
        )
        self.netloc = parts.netloc
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.connection = None

    def send(
        self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str]
    ) -> int:
        reused = self.connection is not None
        try:
            return self._send(method, path, body, headers)
        except _STALE:
            # The server closed an idle keep-alive connection before this
            # request reached it; a fresh connection is what any client does.
            if not reused:
                raise
        return self._send(method, path, body, headers)

    def _send(self, method, path, body, headers) -> int:
        if self.connection is None:
            self.connection = self.factory(self.netloc, timeout=self.timeout)
        try:
            self.connection.request(
                method, self.prefix + path, body=body, headers=headers
            )
            response = self.connection.getresponse()
            response.read()  # drain, so the connection can carry the next request
            return response.status
        except BaseException:
            self.connection.close()
            self.connection = None
            raise


_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _error_kind(ex: BaseException) -> str:
    if isinstance(ex, TimeoutError) or "timed out" in str(ex):
        return "timeout"
    return type(ex).__name__


class LoadRun:
    """One open-loop run; :meth:`run` returns the :func:`summarize` dict."""

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
        connections: int = 32,
        timeout: float = 10.0,
    ):
        self.url = url
        self.path = path if path.startswith("/") else "/" + path
        self.rate = rate
        self.duration = duration
        self.method = method.upper()
        self.body = body
        self.headers = dict(headers or {})
        if body is not None and not any(
            k.lower() == "content-type" for k in self.headers
        ):
            self.headers["Content-Type"] = "application/json"
        self.connections = max(1, connections)
        self.timeout = timeout
        _Client(url, timeout)  # validate the URL before any thread starts
        self._due: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self.latencies: List[float] = []
        self.errors: Dict[str, int] = collections.Counter()
        self.sent = 0
        self.lag_max = 0.0

    def _worker(self) -> None:
        client = _Client(self.url, self.timeout)
        while True:
            intended = self._due.get()
            if intended is None:
                return
            try:
                status = client.send(self.method, self.path, self.body, self.headers)
            except Exception as ex:  # every failure is counted, by kind
                with self._lock:
                    self.errors[_error_kind(ex)] += 1
                continue
            latency = time.perf_counter() - intended
            with self._lock:
                self.latencies.append(latency)
                if status >= 400:
                    self.errors[f"HTTP {status}"] += 1

    def run(self, progress=None) -> dict:
        """Send every due request on time, wait for the answers, summarize.

        ``progress(run, elapsed)`` is called about twice a second if given.
        """
        offsets = schedule(self.rate, self.duration)
        threads = [
            threading.Thread(target=self._worker, daemon=True)
            for _ in range(self.connections)
        ]
        for thread in threads:
            thread.start()
        start = time.perf_counter()
        next_report = start
        for offset in offsets:
            intended = start + offset
            now = time.perf_counter()
            if intended > now:
                time.sleep(intended - now)
            else:
                self.lag_max = max(self.lag_max, now - intended)
            self._due.put(intended)
            self.sent += 1
            if progress and time.perf_counter() >= next_report:
                progress(self, time.perf_counter() - start)
                next_report += 0.5
        for _ in threads:
            self._due.put(None)
        # Answers still missing this long after the last send are unfinished.
        deadline = time.perf_counter() + self.timeout + 1.0
        for thread in threads:
            while thread.is_alive() and time.perf_counter() < deadline:
                thread.join(0.5)
                if progress:
                    progress(self, time.perf_counter() - start)
        elapsed = time.perf_counter() - start
        with self._lock:
            summary = summarize(
                self.latencies, self.errors, due=len(offsets), elapsed=elapsed
            )
        summary.update(
            url=self.url,
            path=self.path,
            method=self.method,
            rate=self.rate,
            duration_s=self.duration,
            connections=self.connections,
            generator_lag_max_ms=self.lag_max * 1000,
        )
        return summary


def progress_line(run: LoadRun, elapsed: float) -> str:
    """``  12.0/30s  sent 1200  answered 1198  errors 0  p50 1.2 ms  p99 3.4 ms``."""
    with run._lock:
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
        f"due {summary['due']}  answered {summary['answered']}  "
        f"errors {summary['error_count']}  unfinished {summary['unfinished']}  "
        f"achieved {summary['achieved_rate']:.1f}/s",
    ]
    if summary["errors"]:
        lines.append(
            "errors: "
            + ", ".join(f"{kind} x{n}" for kind, n in sorted(summary["errors"].items()))
        )
    latency = summary["latency_ms"]
    if latency:
        lines.append(
            "latency (ms, from the intended send time): "
            + "  ".join(f"{name} {value:.2f}" for name, value in latency.items())
        )
    if summary["generator_lag_max_ms"] > 100:
        lines.append(
            f"note: this client fell up to {summary['generator_lag_max_ms']:.0f} ms"
            " behind its schedule; latencies still count from the schedule"
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
        default=32,
        help="connections (and threads) in the pool (default 32)",
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
