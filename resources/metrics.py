"""``GET /metrics``: Prometheus metrics of the API and of what it depends on.

The HTTP metrics of every gunicorn worker (:mod:`web.metrics`), and the push
worker's lag and the collatz broker's workers, queue and jobs, read from the
source at scrape time so they are right while that daemon is down.

Usage: docs/operations/metrics.md
"""

import falcon
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from db.checkpoints import CheckpointStore
from db.errors import Unavailable
from db.notes.base import NotesStore
from gateways.collatz import CollatzClient
from web import metrics
from web.auth import ADMIN
from web.auth import requires
from web.validation import validate

#: The push worker's checkpoint name (workers.push.worker.CONSUMER).
PUSH_CONSUMER = "push"


class Backends(Collector):
    """Reads the push worker's lag and the collatz broker's queue at scrape time."""

    def __init__(
        self, notes: NotesStore, checkpoints: CheckpointStore, collatz: CollatzClient
    ):
        self._notes = notes
        self._checkpoints = checkpoints
        self._collatz = collatz

    def collect(self):
        yield from self._push()
        yield from self._broker()

    def _push(self):
        up = GaugeMetricFamily(
            "push_stream_up", "1 if the change log and the checkpoint could be read."
        )
        try:
            head = self._notes.last_seq()
            checkpoint = self._checkpoints.load(PUSH_CONSUMER)
        except Unavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "push_head_seq", "Newest seq of the notes change stream.", value=head
        )
        if checkpoint is None:  # the push worker has never run
            return
        yield GaugeMetricFamily(
            "push_checkpoint_seq",
            "The push worker's checkpoint: the last seq it published.",
            value=checkpoint,
        )
        yield GaugeMetricFamily(
            "push_lag_events",
            "Changes the push worker has not published (head - checkpoint).",
            value=max(0, head - checkpoint),
        )

    def _broker(self):
        up = GaugeMetricFamily("collatz_broker_up", "1 if the collatz broker answers.")
        try:
            stats = self._collatz.stats()
        except Unavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for key, name, doc in (
            ("workers", "collatz_workers", "Collatz workers connected to the broker."),
            ("busy", "collatz_workers_busy", "Collatz workers computing a range."),
            ("queued", "collatz_queue_depth", "Ranges waiting for a free worker."),
            ("jobs", "collatz_jobs", "Requests (values of n) in progress."),
        ):
            if isinstance(stats.get(key), int):
                yield GaugeMetricFamily(name, doc, value=stats[key])


EXAMPLE = """\
# HELP http_requests_total HTTP requests answered, by method, route template and status.
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/notes/{note_id}",status="200"} 1027.0
http_requests_total{method="POST",route="/notes",status="201"} 311.0
# HELP http_requests_in_flight Requests being handled right now, over every worker.
# TYPE http_requests_in_flight gauge
http_requests_in_flight 1.0
# HELP push_lag_events Changes the push worker has not published (head - checkpoint).
# TYPE push_lag_events gauge
push_lag_events 0.0
# HELP collatz_queue_depth Ranges waiting for a free worker.
# TYPE collatz_queue_depth gauge
collatz_queue_depth 0.0
"""


class Metrics:
    """``GET /metrics``: the Prometheus text exposition."""

    def __init__(self, backends: Backends, multiprocess_dir: str = ""):
        self._backends = backends
        self._multiprocess_dir = multiprocess_dir

    @requires(ADMIN)
    @validate(
        response={"type": "string", "description": "Prometheus text format"},
        media_type="text/plain",
        examples={200: EXAMPLE},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Prometheus metrics: requests, latencies, push worker lag, collatz queue.

        Request counts and latency histograms by route template and status
        (summed over every gunicorn worker), requests in flight, store errors,
        the push worker's lag and the collatz broker's workers and queue.
        """
        resp.content_type = metrics.CONTENT_TYPE
        resp.data = metrics.exposition([self._backends], self._multiprocess_dir)
