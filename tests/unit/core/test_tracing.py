"""core.tracing: TRACING's values, the console exporter, traceparent round trips
and the store proxy."""

import json
import subprocess
import sys

import pytest
from opentelemetry.trace import StatusCode

from core import tracing
from tests.support.tracing import spans  # noqa: F401 (fixture)

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def stopped():
    """Tracing is off again after the test, whatever it started."""
    yield
    provider = tracing.provider()
    tracing.install(None)
    if provider is not None:
        provider.shutdown()


def test_off_starts_nothing(stopped):  # noqa: ARG001
    assert tracing.start("off", "svc") is False
    assert tracing.provider() is None
    assert tracing.tracer("x") is None
    assert tracing.traceparent() is None


def test_off_no_process_imports_opentelemetry():
    """The API's and the push worker's modules load without it."""
    script = (
        "import sys, api.app, api.cli, workers.push.worker; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"


def test_an_unknown_exporter_is_refused(stopped):  # noqa: ARG001
    with pytest.raises(ValueError, match="TRACING must be one of off, otlp, console"):
        tracing.start("jaeger", "svc")
    assert tracing.provider() is None


def test_console_prints_one_json_line_per_span(stopped, capsys, monkeypatch):  # noqa: ARG001
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert tracing.start("console", "the-service") is True
    with tracing.tracer(__name__).start_as_current_span("first"):
        pass
    with tracing.tracer(__name__).start_as_current_span("second"):
        pass
    tracing.provider().force_flush()
    lines = capsys.readouterr().out.splitlines()
    printed = [json.loads(line) for line in lines]
    assert [span["name"] for span in printed] == ["first", "second"]
    assert printed[0]["resource"]["attributes"]["service.name"] == "the-service"


def test_otel_service_name_wins(stopped, capsys, monkeypatch):  # noqa: ARG001
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    tracing.start("console", "the-service")
    with tracing.tracer(__name__).start_as_current_span("one"):
        pass
    tracing.provider().force_flush()
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["resource"]["attributes"]["service.name"] == "from-env"


def test_traceparent_names_the_current_span_and_parent_reads_it(spans):  # noqa: F811
    tracer = tracing.tracer(__name__)
    assert tracing.traceparent() is None  # outside any span
    with tracer.start_as_current_span("child", context=tracing.parent(CALLER)) as span:
        current = tracing.traceparent()
    context = span.get_span_context()
    assert current == f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
    assert current.split("-")[1] == CALLER.split("-")[1]
    assert span.parent.span_id == int(CALLER.split("-")[2], 16)
    assert tracing.parent(None) is None
    assert tracing.parent("") is None


class _Store:
    limit = 3

    def get(self, key):
        if key == "missing":
            raise KeyError(key)
        return key.upper()


def test_traced_wraps_each_public_call_in_a_span(spans):  # noqa: F811
    store = tracing.Traced(_Store(), "things", tracing.tracer(__name__))
    assert store.get("a") == "A"
    assert store.limit == 3
    with pytest.raises(KeyError):
        store.get("missing")
    ok, failed = spans.get_finished_spans()
    assert (ok.name, failed.name) == ("things.get", "things.get")
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
