"""End to end: /metrics adds up the counts of several gunicorn workers under load."""

from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

HEALTH, NOTES, MISSING = 240, 30, 60


def scrape(url: str) -> dict:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    answer = requests.get(url + "/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def labels(method, route, status, **more):
    return tuple(
        sorted({"method": method, "route": route, "status": status, **more}.items())
    )


def test_counts_add_up_across_workers(live_server, tmp_path):
    metrics_dir = tmp_path / "metrics"
    server = live_server(env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, workers=3)
    before = scrape(server.url)

    def call(i: int) -> int:
        if i < HEALTH:
            return requests.get(server.url + "/health", timeout=10).status_code
        if i < HEALTH + NOTES:
            return requests.post(
                server.url + "/notes", json={"title": f"load {i}"}, timeout=10
            ).status_code
        return requests.get(server.url + f"/no-such-link-{i}", timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, range(HEALTH + NOTES + MISSING)))
    assert statuses.count(200) == HEALTH
    assert statuses.count(201) == NOTES
    assert statuses.count(404) == MISSING

    after = scrape(server.url)

    def delta(name, key):
        return after.get((name, key), 0) - before.get((name, key), 0)

    for key, count in (
        (labels("GET", "/health", "200"), HEALTH),
        (labels("POST", "/notes", "201"), NOTES),
        (labels("GET", "/{code}", "404"), MISSING),
    ):
        assert delta("http_requests_total", key) == count, key
        assert delta("http_request_duration_seconds_count", key) == count, key
        inf = tuple(sorted(dict(key, le="+Inf").items()))
        assert delta("http_request_duration_seconds_bucket", inf) == count, key
        assert delta("http_request_duration_seconds_sum", key) > 0
    # Only the scrape itself is in flight, whichever worker answers it.
    assert after[("http_requests_in_flight", ())] == 1
    # The scrape-time state of the push stream: 30 notes, 30 changes.
    assert after[("push_head_seq", ())] == NOTES
    # Several workers counted: each writes files of its own (named by pid).
    writers = {path.name for path in metrics_dir.glob("counter_*.db")}
    assert len(writers) >= 2, writers
