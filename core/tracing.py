"""OpenTelemetry traces, off unless ``TRACING`` names an exporter.

A process calls :func:`start` once; until then :func:`tracer` and
:func:`traceparent` are None, so tracing that is off costs one check and never
imports OpenTelemetry. A trace crosses processes as the ``traceparent`` each
change stores (:func:`parent`). Usage: docs/operations/tracing.md
"""

import sys
from typing import TYPE_CHECKING
from typing import Any
from typing import Optional

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Tracer
    from opentelemetry.trace import TracerProvider

#: What ``TRACING`` may say.
EXPORTERS = ("off", "otlp", "console")

# Set together by install(); OpenTelemetry is imported only then, so a
# process that does not trace never loads it (0.3 s under CPython).
_provider: Optional["TracerProvider"] = None
_propagator: Any = None


def start(tracing: str, service: str) -> bool:
    """Trace this process as ``service`` when ``tracing`` (``TRACING``) is not off.

    Returns whether tracing is on. ``OTEL_SERVICE_NAME`` overrides ``service``.
    Spans still buffered are exported when the process exits.

    Raises:
        ValueError: ``tracing`` is not one of :data:`EXPORTERS`.
    """
    if tracing not in EXPORTERS:
        raise ValueError(
            f"TRACING must be one of {', '.join(EXPORTERS)}, got {tracing!r}"
        )
    if tracing == "off":
        return False
    # The SDK is imported only here: a process that does not trace never
    # loads it (nor protobuf, for OTLP).
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=_resource(service))
    provider.add_span_processor(BatchSpanProcessor(_exporter(tracing)))
    install(provider)
    return True


def install(provider: Optional["TracerProvider"]) -> None:
    """Trace with ``provider`` from now on (None: stop tracing); tests use it."""
    global _provider, _propagator
    if provider is not None:
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator,
        )

        _propagator = TraceContextTextMapPropagator()
    _provider = provider


def tracer(name: str) -> Optional["Tracer"]:
    """The tracer named ``name`` (a module), or None when tracing is off."""
    if _provider is None:
        return None
    return _provider.get_tracer(name)


def provider() -> Optional["TracerProvider"]:
    """The tracer provider of this process, or None when tracing is off."""
    return _provider


def traceparent() -> Optional[str]:
    """The current span as a W3C ``traceparent``; None when off or outside a span."""
    if _provider is None:
        return None
    carrier: dict = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def parent(value: Optional[str]) -> Optional["Context"]:
    """The context ``value`` (a traceparent) names; None: start a new trace."""
    if not value or _propagator is None:
        return None
    return _propagator.extract({"traceparent": value})


def _resource(service: str):
    from opentelemetry.sdk.resources import SERVICE_NAME
    from opentelemetry.sdk.resources import Resource

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
    # its fallback name "unknown_service" is replaced by the process's own.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    return resource


def _exporter(tracing: str):
    if tracing == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(
            out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


class Traced:
    """``target`` with a span around every call of its public methods.

    The span is ``<name>.<method>`` (kind client: a call to a store), under
    the current span; an exception is recorded on it and raised on.
    """

    def __init__(self, target, name: str, tracer: "Tracer"):
        from opentelemetry.trace import SpanKind

        self._target = target
        self._name = name
        self._tracer = tracer
        self._kind = SpanKind.CLIENT

    def __getattr__(self, attr: str):
        value = getattr(self._target, attr)
        if attr.startswith("_") or not callable(value):
            return value
        span_name = f"{self._name}.{attr}"
        start_span, kind = self._tracer.start_as_current_span, self._kind

        def call(*args, **kwargs):
            with start_span(span_name, kind=kind):
                return value(*args, **kwargs)

        return call
