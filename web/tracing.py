"""Traces of HTTP requests: Falcon's OpenTelemetry instrumentation, request ids.

The instrumentation replaces ``falcon.App``, so :func:`instrument` runs before
the app is built, and only when tracing is on; the response hook records the
request id as the span's ``request.id``. Usage: docs/operations/tracing.md
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
