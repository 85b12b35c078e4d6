"""Traces of API requests (TRACING): a span per request with its request id, a
span per notes store call, the trace context written with each change; and
nothing at all when tracing is off."""

import contextlib
import dataclasses

import falcon
from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from core.tracing import parent
from db.stores import open_stores
from tests.support.tracing import spans  # noqa: F401 (fixture)
from web.tracing import REQUEST_ID

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def changes_of(settings, **overrides) -> list:
    """Every change the notes store of ``settings`` logged."""
    stores = open_stores(dataclasses.replace(settings, **overrides))
    try:
        changes = stores.notes.changes(since=0, timeout=0.5)
        with contextlib.closing(changes):
            return list(changes)
    finally:
        stores.close()


def test_post_notes_is_a_span_with_the_request_id(spans, notes_backend, make_client):  # noqa: F811
    api = make_client(**notes_backend.overrides)
    result = api.simulate_post("/notes", json={"title": "traced", "body": "b"})
    assert result.status_code == 201

    finished = spans.get_finished_spans()
    (request,) = [span for span in finished if span.name == "POST /notes"]
    assert request.attributes[REQUEST_ID] == result.headers["x-request-id"]
    assert request.attributes["http.status_code"] == 201
    (create,) = [span for span in finished if span.name == "notes.create"]
    assert create.parent.span_id == request.context.span_id
    assert create.context.trace_id == request.context.trace_id


def test_a_sent_request_id_and_traceparent_are_kept(spans, make_client):  # noqa: F811
    api = make_client()
    result = api.simulate_post(
        "/notes",
        json={"title": "t"},
        headers={"X-Request-ID": "client-id-1", "traceparent": CALLER},
    )
    assert result.status_code == 201
    (request,) = [s for s in spans.get_finished_spans() if s.name == "POST /notes"]
    assert request.attributes[REQUEST_ID] == "client-id-1"
    assert format(request.context.trace_id, "032x") == CALLER.split("-")[1]


def test_each_change_carries_the_trace_context_of_its_write(
    spans,  # noqa: F811
    notes_backend,
    make_client,
    settings,
):
    api = make_client(**notes_backend.overrides)
    note = api.simulate_post("/notes", json={"title": "one"}).json
    api.simulate_patch(f"/notes/{note['id']}", json={"body": "two"})
    api.simulate_delete(f"/notes/{note['id']}")

    writes = {
        span.name: span
        for span in spans.get_finished_spans()
        if span.name in ("notes.create", "notes.patch", "notes.delete")
    }
    changes = changes_of(settings, **notes_backend.overrides)
    assert [change.type for change in changes] == ["created", "updated", "deleted"]
    for change, name in zip(changes, ("notes.create", "notes.patch", "notes.delete")):
        context = parent(change.traceparent)
        span_context = _span_context(context)
        assert span_context.trace_id == writes[name].context.trace_id
        assert span_context.span_id == writes[name].context.span_id


def test_off_no_span_is_started_and_no_context_is_written(
    make_client, settings, monkeypatch
):
    calls = []
    for owner, name in (
        (Tracer, "start_span"),
        (TraceContextTextMapPropagator, "inject"),
    ):
        original = getattr(owner, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
    api = make_client()
    assert type(api.app) is falcon.App

    note = api.simulate_post("/notes", json={"title": "quiet"}).json
    api.simulate_get(f"/notes/{note['id']}")
    api.simulate_delete(f"/notes/{note['id']}")

    assert calls == []
    assert [change.traceparent for change in changes_of(settings)] == [None, None]


def test_on_the_same_counters_see_the_tracer_work(spans, make_client, monkeypatch):  # noqa: F811
    calls = []
    original = Tracer.start_span

    def counted(*args, **kwargs):
        calls.append("start_span")
        return original(*args, **kwargs)

    monkeypatch.setattr(Tracer, "start_span", counted)
    api = make_client()
    api.simulate_post("/notes", json={"title": "loud"})
    assert len(calls) >= 2  # the request and the store call


def _span_context(context):
    return trace.get_current_span(context).get_span_context()
