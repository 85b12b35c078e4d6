"""Traces of HTTP requests: Falcon's OpenTelemetry instrumentation, request ids.

``opentelemetry-instrumentation-falcon`` makes one server span per request
(named by method and route, with the HTTP attributes, joining the caller's
trace when the request carries a ``traceparent``). It instruments by
replacing ``falcon.App``, so :func:`instrument` runs before the app is
built, and only when tracing is on: an app built without it has no tracing
middleware at all. The response hook adds the request id (``X-Request-ID``,
the one in the logs) as the span's ``request.id``.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Span
    from opentelemetry.trace import TracerProvider

#: The span attribute that holds the request id.
REQUEST_ID = "request.id"


def _add_request_id(span: "Span", req, resp) -> None:
    request_id = req.context.get("request_id")
    if request_id is not None and span.is_recording():
        span.set_attribute(REQUEST_ID, request_id)


def instrument(provider: "TracerProvider") -> None:
    """Make every ``falcon.App`` built from now on trace with ``provider``.

    Once per process: a second call while instrumented changes nothing.
    """
    from opentelemetry.instrumentation.falcon import FalconInstrumentor

    instrumentor = FalconInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider, response_hook=_add_request_id)


def uninstrument() -> None:
    """Undo :func:`instrument` (the apps built meanwhile stop tracing too)."""
    from opentelemetry.instrumentation.falcon import FalconInstrumentor

    instrumentor = FalconInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
