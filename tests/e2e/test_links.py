"""The shortener under real gunicorn: concurrent creators and visitors."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.processes import wait_until

THREADS = 16
#: VISIT_FLUSH_INTERVAL of these servers, and the slack a loaded machine
#: may add to a batch's write before it shows.
FLUSH = 0.5
SLACK = 2.0


def run_concurrently(count, job):
    """Run ``job(n)`` for n in 0..count-1 on THREADS threads; results in order."""
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(job, range(count)))


@pytest.fixture
def server(live_server):
    return live_server(
        env={"PUBLIC_BASE_URL": "https://sho.rt", "VISIT_FLUSH_INTERVAL": str(FLUSH)},
        workers=4,
    )


def visit_count(server, code) -> int:
    return requests.get(f"{server.url}/links/{code}", timeout=10).json()["visits"]


def shorten(server, **fields) -> str:
    response = requests.post(server.url + "/links", json=fields, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["code"]


def follow(server, code, n=0) -> int:
    return requests.get(
        f"{server.url}/{code}",
        allow_redirects=False,
        headers={"User-Agent": f"agent-{n}"},
        timeout=30,
    ).status_code


def test_concurrent_creators_never_get_the_same_code(server):
    def create(n):
        result = requests.post(
            server.url + "/links", json={"url": f"example.com/{n}"}, timeout=30
        )
        assert result.status_code == 201, result.text
        return result.json()

    links = run_concurrently(200, create)
    codes = [link["code"] for link in links]
    assert len(set(codes)) == 200
    for n, link in enumerate(links):
        assert link["url"] == f"https://example.com/{n}"
        assert link["short_url"] == "https://sho.rt/" + link["code"]
    with requests.Session() as session:
        for link in links[:20]:
            url = server.url + "/" + link["code"]
            target = session.get(url, allow_redirects=False, timeout=10)
            assert target.status_code == 302
            assert target.headers["Location"] == link["url"]


def test_concurrent_aliases_are_given_once(server):
    def claim(n):
        return requests.post(
            server.url + "/links",
            json={"url": f"example.com/{n}", "alias": "the-one"},
            timeout=30,
        ).status_code

    statuses = run_concurrently(40, claim)
    assert statuses.count(201) == 1
    assert statuses.count(409) == 39


def test_every_visit_shows_within_the_flush_interval(server):
    # Four workers each queue the visits they served; every one is written
    # within VISIT_FLUSH_INTERVAL (plus a write's time), and none twice.
    code = shorten(server, url="example.com")
    assert run_concurrently(300, lambda n: follow(server, code, n)) == [302] * 300
    served = time.monotonic()
    wait_until(
        lambda: visit_count(server, code) == 300,
        timeout=FLUSH + SLACK,
        interval=0.05,
        what="300 visits counted",
    )
    assert time.monotonic() - served <= FLUSH + SLACK
    agents, path = [], f"/links/{code}/visits?limit=500"
    while path:
        page = requests.get(server.url + path, timeout=10).json()
        agents += [visit["user_agent"] for visit in page["items"]]
        path = page["next"]
    assert sorted(agents) == sorted(f"agent-{n}" for n in range(300))
    # The rollup the workers' batches added to, row by row, agrees.
    stats = requests.get(f"{server.url}/links/{code}/stats", timeout=10).json()
    assert stats["total"] == 300
    assert stats["agents"] == [{"family": "other", "visits": 300}]


def test_max_visits_is_never_exceeded_under_concurrent_visits(server):
    code = requests.post(
        server.url + "/links", json={"url": "example.com", "max_visits": 50}, timeout=10
    ).json()["code"]

    def visit(n):
        return requests.get(
            f"{server.url}/{code}", allow_redirects=False, timeout=30
        ).status_code

    statuses = run_concurrently(200, visit)
    assert statuses.count(302) == 50
    assert statuses.count(410) == 150
    link = requests.get(f"{server.url}/links/{code}", timeout=10).json()
    assert link["visits"] == 50
    stats = requests.get(f"{server.url}/links/{code}/stats", timeout=10).json()
    assert stats["total"] == 50
    assert "Traceback" not in server.log()


def test_a_killed_worker_loses_at_most_its_last_flush_interval(live_server):
    server = live_server(env={"VISIT_FLUSH_INTERVAL": str(FLUSH)}, workers=1)
    code = shorten(server, url="example.com")
    assert [follow(server, code) for _ in range(40)] == [302] * 40
    time.sleep(FLUSH + SLACK)  # older than the window: written by now
    assert [follow(server, code) for _ in range(20)] == [302] * 20
    # SIGKILL to master and worker alike: no exit code runs, so the visits
    # of the last window may be lost, never older ones.
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    again = live_server(workers=1)
    assert 40 <= visit_count(again, code) <= 60


def test_a_clean_stop_writes_every_queued_visit(live_server):
    # A long interval: only the exit's own write can have stored them.
    server = live_server(env={"VISIT_FLUSH_INTERVAL": "600"}, workers=2)
    code = shorten(server, url="example.com")
    assert run_concurrently(50, lambda n: follow(server, code, n)) == [302] * 50
    server.stop()  # SIGTERM: gunicorn's graceful stop
    again = live_server(workers=1)
    assert visit_count(again, code) == 50


def test_the_rate_limit_holds_across_workers(live_server):
    # Two gunicorn workers, 24 clients each sending 2 requests on fresh
    # connections at once: the shared bucket lets exactly its 10 through.
    server = live_server(env={"RATE_LIMIT": "10/hour"}, workers=2)

    def create(n):
        response = requests.post(
            server.url + "/links",
            json={"url": f"example.com/{n}"},
            headers={"Connection": "close"},
            timeout=30,
        )
        return response.status_code, response.headers

    answers = run_concurrently(48, create)
    statuses = [status for status, _ in answers]
    assert statuses.count(201) == 10 and statuses.count(429) == 38, statuses
    for status, headers in answers:
        assert headers["RateLimit-Policy"] == '"links";q=10;w=3600'
        if status == 429:
            assert int(headers["Retry-After"]) >= 1
