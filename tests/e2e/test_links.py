"""The shortener under real gunicorn: concurrent creators and visitors."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

THREADS = 16


def run_concurrently(count, job):
    """Run ``job(n)`` for n in 0..count-1 on THREADS threads; results in order."""
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(job, range(count)))


@pytest.fixture
def server(live_server):
    return live_server(env={"PUBLIC_BASE_URL": "https://sho.rt"}, workers=4)


def test_concurrent_creators_never_get_the_same_code(server):
    session = requests.Session()

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
    for link in links[:20]:
        target = session.get(
            server.url + "/" + link["code"], allow_redirects=False, timeout=10
        )
        assert (target.status_code, target.headers["Location"]) == (302, link["url"])


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


def test_visit_counts_are_exact_under_concurrent_visits(server):
    code = requests.post(
        server.url + "/links", json={"url": "example.com"}, timeout=10
    ).json()["code"]

    def visit(n):
        return requests.get(
            f"{server.url}/{code}",
            allow_redirects=False,
            headers={"User-Agent": f"agent-{n}"},
            timeout=30,
        ).status_code

    assert run_concurrently(300, visit) == [302] * 300
    assert (
        requests.get(f"{server.url}/links/{code}", timeout=10).json()["visits"] == 300
    )
    agents, path = [], f"/links/{code}/visits?limit=500"
    while path:
        page = requests.get(server.url + path, timeout=10).json()
        agents += [visit["user_agent"] for visit in page["items"]]
        path = page["next"]
    assert sorted(agents) == sorted(f"agent-{n}" for n in range(300))


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
    assert "Traceback" not in server.log()
