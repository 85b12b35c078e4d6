"""Prometheus metrics of the HTTP API: counts, latencies and requests in flight.

Under gunicorn, prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``,
set by gunicorn.conf.py) adds up the files of every worker, dead ones too;
without it the process's own registry is served. Labels are route templates,
never paths, so the number of series stays bounded.
"""

import time
from typing import Iterable

import falcon
import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import multiprocess
from prometheus_client.registry import Collector

from core import gc_pauses
from core.metrics import BuildInfo
from core.metrics import Processes

#: Route label of a request no route matched (Falcon's 404).
UNROUTED = "(none)"
#: Label combinations a worker keeps at hand (more are counted all the same).
MAX_SERIES = 1000
#: WSGI environ key where the route template is left for the access log.
ROUTE_ENVIRON_KEY = "api.route"

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request reaching the app to its answer, in seconds.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# livesum: the sum over the workers alive now (a dead worker's value goes).
IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "Requests being handled right now, over every worker.",
    multiprocess_mode="livesum",
)
GC_PAUSES = Histogram(
    "python_gc_pause_seconds",
    "Garbage-collector pauses of the workers, by kind (minor, major), in seconds.",
    ["kind"],
    buckets=gc_pauses.BUCKETS,
)
STORE_ERRORS = Counter(
    "store_errors_total",
    "Requests answered 503 because a store or backend was unavailable, by "
    "route and backend (sql, rethinkdb, collatz).",
    ["route", "backend"],
)
#: The backend of an unavailable store, by the module that raised the error.
BACKENDS = (
    ("db.rethink", "rethinkdb"),
    ("db.notes.rethink", "rethinkdb"),
    ("gateways.collatz", "collatz"),
    ("db", "sql"),
)


def route_of(req: falcon.Request) -> str:
    """The route template that matched ``req``, or UNROUTED."""
    return req.uri_template or UNROUTED


class Metrics:
    """Middleware: counts every request and times it, by route and status.

    Install it first, so that its ``process_response`` runs last and sees
    the final status (errors included). It keeps the series it has counted
    in (at most MAX_SERIES of them): ``labels()`` takes a lock and builds
    its key on every call (under PyPy in a gevent worker, 3% of a
    ``GET /notes/{id}``).
    """

    def __init__(self):
        self._series = {}

    def _of(self, method: str, route: str, status: int):
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            labels = (method, route, str(status))
            series = REQUESTS.labels(*labels), LATENCY.labels(*labels)
            if len(self._series) < MAX_SERIES:
                self._series[key] = series
        return series

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.metrics_started = time.perf_counter()
        IN_FLIGHT.inc()

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        started = getattr(req.context, "metrics_started", None)
        if started is None:
            return
        IN_FLIGHT.dec()
        route = req.env[ROUTE_ENVIRON_KEY] = route_of(req)
        count, latency = self._of(req.method, route, resp.status_code)
        count.inc()
        latency.observe(time.perf_counter() - started)
        gc_pauses.flush(GC_PAUSES)


def backend_of(error: BaseException) -> str:
    """The backend an Unavailable came from: sql, rethinkdb, collatz or other.

    Read from the module of the frame that raised it, the innermost one of
    its traceback: the stores raise it themselves (db.sql, db.notes.rethink,
    gateways.collatz, ...).
    """
    frame = error.__traceback__
    if frame is None:
        return "other"
    while frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "")
    for package, backend in BACKENDS:
        if module == package or module.startswith(package + "."):
            return backend
    return "other"


def count_store_error(req: falcon.Request, error: BaseException) -> None:
    """Count a 503 caused by an unavailable store (called by web.errors)."""
    STORE_ERRORS.labels(route_of(req), backend_of(error)).inc()


class _Own(Collector):
    """This process's registry, for a scrape without multiprocess mode."""

    def collect(self):
        return prometheus_client.REGISTRY.collect()


def exposition(extra: Iterable[Collector] = (), multiprocess_dir: str = "") -> bytes:
    """The text exposition of every worker's metrics, plus ``extra`` collectors.

    Args:
        extra: Collectors read at scrape time.
        multiprocess_dir: The folder the workers write their values to
            (``PROMETHEUS_MULTIPROC_DIR``); empty: this process's registry.
    """
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir:
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        # process_* of every gunicorn process, not of the one worker answering.
        registry.register(Processes())
    else:
        registry.register(_Own())  # its process_* are this process's
    registry.register(BuildInfo())
    for collector in extra:
        registry.register(collector)
    return prometheus_client.generate_latest(registry)


#: The exposition format's media type (text/plain; version=...).
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
