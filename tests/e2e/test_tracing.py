"""End to end, TRACING=otlp: gunicorn and the push worker export their spans
over OTLP/HTTP to a local receiver; a POST /notes, the push worker's read of
its change and the webhook delivery are one trace, and the webhook receiver
gets its traceparent."""

import json

import requests

from tests.support.processes import wait_until
from tests.support.tracing import otlp_spans
from tests.support.webhook_receiver import Receiver


def test_the_request_the_push_worker_and_the_delivery_share_one_trace(
    live_server, push_worker
):
    with Receiver([200]) as collector, Receiver([204]) as hooks:
        env = {
            "TRACING": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "ALLOWED_PRIVATE_TARGETS": "127.0.0.1",
        }
        server = live_server(env=env)
        response = requests.post(
            server.url + "/subscriptions",
            json={"url": hooks.url, "events": ["note.created"]},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        worker = push_worker(env)
        worker.wait_webhooks(1)

        created = requests.post(
            server.url + "/notes", json={"title": "traced"}, timeout=10
        )
        assert created.status_code == 201, created.text
        request_id = created.headers["X-Request-ID"]
        delivery = wait_until(
            lambda: hooks.requests, timeout=30, what="the webhook delivery"
        )[0]
        assert json.loads(delivery.body)["new_val"]["id"] == created.json()["id"]

        def exported():
            found = otlp_spans([r.body for r in collector.requests])
            names = {span["name"] for span in found}
            wanted = {"POST /notes", "receive note.created", "webhook deliver"}
            return found if wanted <= names else None

        found = wait_until(exported, timeout=30, what="the spans of both processes")

    (api,) = [s for s in found if s["name"] == "POST /notes"]
    (read,) = [s for s in found if s["name"] == "receive note.created"]
    (deliver,) = [s for s in found if s["name"] == "webhook deliver"]
    assert api["service"] == "falcon-pypy-api"
    assert api["attributes"]["request.id"] == request_id
    assert read["service"] == deliver["service"] == "falcon-pypy-api-push"
    assert read["trace_id"] == deliver["trace_id"] == api["trace_id"]
    assert deliver["parent_id"] == read["span_id"]
    store_spans = {s["span_id"] for s in found if s["name"] == "notes.create"}
    assert read["parent_id"] in store_spans
    assert delivery.headers["traceparent"].split("-")[1:3] == [
        api["trace_id"],
        deliver["span_id"],
    ]
