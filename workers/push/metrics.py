"""The push worker's Prometheus metrics, served on its own port (``GET /metrics``).

One process, so a registry of its own (not gunicorn's multiprocess folder):
events read from the change stream, SSE clients connected, webhook delivery
outcomes, at scrape time where the stream and the worker stand, and the
process's own ``process_*`` and ``api_build_info``.
"""

from typing import Any
from typing import Callable
from typing import Dict

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core import gc_pauses
from core.metrics import BuildInfo

REGISTRY = CollectorRegistry(auto_describe=False)
# One process: prometheus_client's own process_* collector fits.
ProcessCollector(registry=REGISTRY)
REGISTRY.register(BuildInfo())

GC_PAUSES = Histogram(
    "python_gc_pause_seconds",
    "Garbage-collector pauses of the push worker, by kind (minor, major), in seconds.",
    ["kind"],
    buckets=gc_pauses.BUCKETS,
    registry=REGISTRY,
)
EVENTS = Counter(
    "push_events_total",
    "Changes read from the notes change stream and published to the outputs.",
    registry=REGISTRY,
)
SSE_CLIENTS = Gauge(
    "push_sse_clients", "Server-Sent Events clients connected now.", registry=REGISTRY
)
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Events sent to webhook subscriptions, by outcome (delivered, failed: "
    "every attempt failed; disabled or gone: the subscription stopped).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "webhook_delivery_attempts_total",
    "HTTP attempts made to deliver events to webhook subscriptions.",
    registry=REGISTRY,
)


def count_delivery(result: Any) -> None:
    """Count one :class:`workers.webhooks.sender.DeliveryResult`."""
    if result.gone:
        outcome = "gone"
    elif result.delivered:
        outcome = "delivered"
    elif result.disabled:
        outcome = "disabled"
    else:
        outcome = "failed"
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    WEBHOOK_ATTEMPTS.inc(getattr(result, "attempts", 1))


class _State(Collector):
    """Where the stream and the worker stand, read when scraped."""

    def __init__(self, state: Callable[[], Dict[str, Any]]):
        self._state = state

    def collect(self):
        state = self._state()
        for key, name, doc in (
            ("newest", "push_head_seq", "Newest seq of the notes change stream."),
            ("published", "push_published_seq", "Last seq published on ZeroMQ."),
            ("checkpoint", "push_checkpoint_seq", "Last seq saved as checkpoint."),
            (
                "lag",
                "push_lag_events",
                "Changes not published yet: newest seq minus the checkpoint.",
            ),
        ):
            if state.get(key) is not None:
                yield GaugeMetricFamily(name, doc, value=state[key])
        # The WebSocket hub counts its own clients (workers/push/ws.py).
        if state.get("ws_clients") is not None:
            yield GaugeMetricFamily(
                "push_websocket_clients",
                "WebSocket clients connected now.",
                value=state["ws_clients"],
            )
            yield CounterMetricFamily(
                "push_websocket_dropped",
                "WebSocket clients dropped: too slow, or no answer to a ping.",
                value=state["ws_dropped"],
            )


def exposition(state: Callable[[], Dict[str, Any]]) -> bytes:
    """The worker's metrics in the Prometheus text format."""
    gc_pauses.flush(GC_PAUSES)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Registered())
    registry.register(_State(state))
    return prometheus_client.generate_latest(registry)


class _Registered(Collector):
    def collect(self):
        return REGISTRY.collect()


CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
