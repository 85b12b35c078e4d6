"""End to end: /metrics adds up the counts of several gunicorn workers under load."""

import os
import platform
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

from core.metrics import children
from core.version import __version__
from tests.support.processes import wait_until

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


def settled_scrape(url: str) -> dict:
    """A scrape once ``GET /health``'s count holds still for 1.5 s.

    A readiness probe that timed out (``tests.support.live``, 1 s) can still
    be served after the server answered another, and be counted later.
    """
    key = ("http_requests_total", labels("GET", "/health", "200"))
    samples = scrape(url)
    for _ in range(20):
        time.sleep(1.5)
        again = scrape(url)
        if again.get(key) == samples.get(key):
            return again
        samples = again
    raise AssertionError("GET /health's count kept moving with no request sent")


def test_counts_add_up_across_workers(live_server, tmp_path):
    metrics_dir = tmp_path / "metrics"
    server = live_server(env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, workers=3)
    before = settled_scrape(server.url)

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
    # Each worker's garbage collector pauses (at least while it loaded the app).
    minor = (("kind", "minor"),)
    assert after[("python_gc_pause_seconds_count", minor)] > 0
    assert after[("python_gc_pause_seconds_sum", minor)] > 0
    # Several workers counted: each writes files of its own (named by pid).
    writers = {path.name for path in metrics_dir.glob("counter_*.db")}
    assert len(writers) >= 2, writers


def test_process_metrics_of_every_gunicorn_process(live_server, tmp_path):
    server = live_server(
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}, workers=3
    )
    master = server.proc.pid  # python -m api serve execs gunicorn

    def pids(samples, name):
        return {int(dict(key)["pid"]) for (n, key) in samples if n == name}

    workers = set(children(master))
    assert len(workers) == 3
    samples = scrape(server.url)
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
        "process_open_fds",
    ):
        assert pids(samples, name) == {master, *workers}, name
    for pid in workers:
        assert samples[("process_resident_memory_bytes", (("pid", str(pid)),))] > 0

    # A worker killed: gunicorn starts another, and the scrape follows.
    gone = sorted(workers)[0]
    os.kill(gone, signal.SIGKILL)
    wait_until(
        lambda: len(set(children(master)) - workers) == 1, 30, what="a new worker"
    )
    now = pids(scrape(server.url), "process_resident_memory_bytes")
    assert gone not in now
    assert now == {master, *children(master)}

    (info,) = [key for (name, key) in samples if name == "api_build_info"]
    assert dict(info) == {
        "version": __version__,
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(),
    }
    assert samples[("api_build_info", info)] == 1
