"""/metrics: Prometheus text, by route template and status; backends at scrape time."""

import dataclasses
import os
import subprocess
import sys
import textwrap

import requests
from prometheus_client.parser import text_string_to_metric_families

from db.checkpoints import CheckpointStore
from db.sql import Database
from tests.support.problems import assert_problem
from web.metrics import exposition
from workers.push import metrics as push_metrics
from workers.push.feed import EventFeed
from workers.push.sse import SseServer


def samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def scrape(client) -> dict:
    result = client.simulate_get("/metrics")
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/plain; version=")
    return samples(result.text)


def key(method, route, status):
    return (
        "http_requests_total",
        (("method", method), ("route", route), ("status", status)),
    )


def test_requests_are_counted_by_route_template_and_status(client):
    before = scrape(client)
    for _ in range(3):
        client.simulate_get("/notes/0123456789abcdef0123456789abcdef")
    client.simulate_get("/health")
    after = scrape(client)
    route = key("GET", "/notes/{note_id}", "404")
    assert after[route] - before.get(route, 0) == 3
    health = key("GET", "/health", "200")
    assert after[health] - before.get(health, 0) == 1
    assert after[("http_requests_in_flight", ())] == 1  # the scrape itself


def test_series_past_the_kept_ones_are_counted_all_the_same(client, monkeypatch):
    monkeypatch.setattr("web.metrics.MAX_SERIES", 1)
    before = scrape(client)
    for path in ("/health", "/notes/0123456789abcdef0123456789abcdef") * 2:
        client.simulate_get(path)
    after = scrape(client)
    for route in (key("GET", "/health", "200"), key("GET", "/notes/{note_id}", "404")):
        assert after[route] - before.get(route, 0) == 2


def test_unavailable_backends_count_as_store_errors_and_show_as_down(make_client):
    client = make_client(collatz_timeout=0.2, collatz_frontend="tcp://127.0.0.1:9")
    store_errors = (
        "store_errors_total",
        (("backend", "collatz"), ("route", "/collatz")),
    )
    before = scrape(client).get(store_errors, 0)
    assert_problem(client.simulate_get("/collatz", params={"n": 10}), 503)
    after = scrape(client)
    assert after[store_errors] - before == 1
    assert after[("collatz_broker_up", ())] == 0


def test_push_lag_is_the_newest_seq_minus_the_checkpoint(client, settings):
    for title in ("a", "b", "c"):
        client.simulate_post("/notes", json={"title": title})
    assert ("push_lag_events", ()) not in scrape(client)  # never ran: no checkpoint
    database = Database(settings.database_url)
    CheckpointStore(database).save("push", 1)
    database.dispose()
    found = scrape(client)
    assert found[("push_head_seq", ())] == 3
    assert found[("push_checkpoint_seq", ())] == 1
    assert found[("push_lag_events", ())] == 2


def test_metrics_is_not_a_short_link(client):
    taken = client.simulate_post(
        "/links", json={"url": "example.com", "alias": "metrics"}
    )
    assert_problem(taken, 422)
    assert "alias" in taken.json["errors"]


@dataclasses.dataclass
class Delivery:
    delivered: bool
    attempts: int
    disabled: bool = False
    gone: bool = False


def test_the_push_worker_serves_its_own_metrics(database_url):
    before = samples(push_metrics.exposition(dict).decode())
    push_metrics.count_delivery(Delivery(True, 1))
    push_metrics.count_delivery(Delivery(False, 5))
    state = {"newest": 9, "published": 7, "checkpoint": 6, "lag": 3}
    server = SseServer(
        "127.0.0.1:0",
        lambda: {"status": "ok"},
        metrics=lambda: push_metrics.exposition(lambda: state),
    )
    server.start(EventFeed(None, 0))
    try:
        host, port = server.address
        answer = requests.get(f"http://{host}:{port}/metrics", timeout=5)
    finally:
        server.stop()
    assert answer.status_code == 200
    found = samples(answer.text)
    for outcome in ("delivered", "failed"):
        name = ("webhook_deliveries_total", (("outcome", outcome),))
        assert found[name] - before.get(name, 0) == 1
    attempts = ("webhook_delivery_attempts_total", ())
    assert found[attempts] - before.get(attempts, 0) == 6
    assert found[("push_lag_events", ())] == 3
    assert found[("push_head_seq", ())] == 9


def test_a_forked_worker_counts_in_a_file_of_its_own(tmp_path):
    # Multiprocess mode tells processes apart by pid; the pid is kept, not
    # asked per change (core.metrics), so a fork must still be noticed.
    script = textwrap.dedent(
        """
        import os
        from web import metrics
        child = os.fork()
        if child == 0:
            metrics.REQUESTS.labels("GET", "/x", "200").inc()
            os._exit(0)
        os.waitpid(child, 0)
        metrics.REQUESTS.labels("GET", "/x", "200").inc(2)
        print(os.getpid(), child)
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, check=True
    )
    parent, child = out.stdout.split()
    text = samples(exposition(multiprocess_dir=str(tmp_path)).decode())
    assert sorted(p.name for p in tmp_path.glob("counter_*.db")) == sorted(
        [f"counter_{parent.decode()}.db", f"counter_{child.decode()}.db"]
    )
    labels = (("method", "GET"), ("route", "/x"), ("status", "200"))
    assert text[("http_requests_total", labels)] == 3
