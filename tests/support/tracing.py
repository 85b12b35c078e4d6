"""Traces in tests: spans kept in memory (an in-process tracer provider) or
received over OTLP/HTTP from real processes (decoded with opentelemetry-proto)."""

from typing import Dict
from typing import List

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core import tracing
from web.tracing import uninstrument


@pytest.fixture
def spans():
    """Tracing on for the test; the finished spans: ``spans.get_finished_spans()``.

    Afterwards tracing is off again and ``falcon.App`` is Falcon's own.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)
    uninstrument()
    provider.shutdown()


def otlp_spans(bodies: List[bytes]) -> List[Dict[str, object]]:
    """The spans of OTLP/HTTP protobuf export requests, flattened.

    Each: ``service``, ``name``, ``trace_id`` and ``span_id`` (hex),
    ``parent_id`` (hex, empty for a root) and ``attributes`` (a dict).
    """
    found = []
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = _attributes(resource_spans.resource.attributes)["service.name"]
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        {
                            "service": service,
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_id": span.parent_span_id.hex(),
                            "attributes": _attributes(span.attributes),
                        }
                    )
    return found


def _attributes(pairs) -> Dict[str, object]:
    values = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, kind) if kind else None
    return values
