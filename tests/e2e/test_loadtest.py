"""The load-test scripts against a live server with keys: Locust, then k6.

Each runs for a few seconds against gunicorn (``AUTH=on``) and the push
worker, with a tiny salary file, through ``loadtest.run`` as the bench
would. Locust runs under CPython (requirements-dev.txt): the PyPy run uses
the one in .venv/python3.
"""

import argparse
import importlib.util
import sys
from types import SimpleNamespace

import pytest

from api.salary_import import import_salaries
from core.settings import Settings
from loadtest.run import k6_binary
from loadtest.run import run_k6
from loadtest.run import run_locust
from tests.support.live import ROOT
from tests.support.live import make_key

CSV = (
    "Name,Position Title,Department,Employee Annual Salary\n"
    + "".join(
        f'"SMITH,  ANN {i}",MOTOR TRUCK DRIVER,STREETS & SAN,${70000 + i}.80\n'
        for i in range(60)
    )
    + '"KOCH,  STEVEN",ADMINISTRATIVE SECRETARY,MAYOR\'S OFFICE,$0.96\n'
)

#: What each user class of the locustfile does once at least, by Locust's
#: type and name: notes, links, salaries and the change stream's figures.
LOCUST_ROWS = [
    ("POST", "/notes"),
    ("GET", "/notes/[id]"),
    ("PATCH", "/notes/[id]"),
    ("DELETE", "/notes/[id]"),
    ("GET", "/notes?limit=[n]"),
    ("POST", "/links"),
    ("GET", "/[code]"),
    ("GET", "/links/[code]"),
    ("GET", "/departments"),
    ("GET", "/departments/[name]"),
    ("GET", "/departments/[name]/employees"),
    ("GET", "/events"),
    ("SSE", "events received"),
    ("SSE", "note created, POST to event"),
]


def locust_python():
    """An interpreter with Locust: this one, else .venv/python3's, else None."""
    if importlib.util.find_spec("locust") is not None:
        return sys.executable
    cpython = ROOT / ".venv" / "python3" / "bin" / "python"
    if (cpython.parent / "locust").exists():
        return str(cpython)
    return None


@pytest.fixture
def deployment(tmp_path, live_server, push_worker, database_url):
    """The API and the push worker with keys on, salaries loaded; a write key."""
    csv_path = tmp_path / "salaries.csv"
    csv_path.write_text(CSV)
    args = argparse.Namespace(csv=str(csv_path), if_empty=False)
    assert import_salaries(Settings(database_url=database_url), args) == 0
    key = make_key(tmp_path, "write")
    server = live_server(env={"AUTH": "on"})
    worker = push_worker(env={"AUTH": "on"})
    return SimpleNamespace(url=server.url, push_url=worker.sse_url, key=key)


def test_locustfile_runs_every_user_class_without_failures(deployment, tmp_path):
    python = locust_python()
    if python is None:
        pytest.skip(
            "Locust is not installed: `make test PY=python3` or `make lint` puts "
            "it in .venv/python3 (requirements-dev.txt), which the PyPy run uses"
        )
    result = run_locust(
        deployment.url,
        tmp_path / "locust",
        api_key=deployment.key,
        push_url=deployment.push_url,
        users=8,
        spawn_rate=8,
        run_time="5s",
        python=python,
    )

    assert result.returncode == 0, result.output[-4000:]
    assert result.failures == [] and result.exceptions == [], result.output[-4000:]
    assert result.total.failures == 0
    ran = {(row.type, row.name): row.requests for row in result.rows}
    assert [row for row in LOCUST_ROWS if not ran.get(row)] == [], ran
    created = ran[("POST", "/notes")]
    # Every note created while the subscriber listened, give or take the
    # first (before its stream opened) and the last (after the run's end).
    assert ran[("SSE", "note created, POST to event")] >= created // 2, ran


def test_k6_script_keeps_its_rate_without_failed_requests(deployment, tmp_path):
    if k6_binary() is None:
        pytest.skip("k6 is not installed (requirements-dev.txt: the k6 wheel)")
    result = run_k6(
        deployment.url,
        tmp_path / "k6-summary.json",
        api_key=deployment.key,
        rate=10,
        duration="4s",
        # Speed is the bench's to measure: on a busy machine the threshold
        # must not fail the test, only be evaluated.
        p99_ms=5000,
    )

    assert result.returncode == 0, result.output[-4000:]
    thresholds = result.thresholds()
    assert sorted(thresholds) == [
        "checks: rate>=0.99",
        "dropped_iterations: count==0",
        "http_req_duration: p(99)<5000",
        "http_req_failed: rate<=0.01",
    ]
    assert all(thresholds.values()), thresholds
    # A Rate metric's passes are its true samples: the failed requests.
    assert result.metric("http_req_failed")["passes"] == 0
    assert result.metric("http_reqs")["count"] >= 40  # 10/s for 4 s, 2 each
    checks = result.summary["root_group"]["checks"]
    assert {name: (c["passes"] > 0, c["fails"]) for name, c in checks.items()} == {
        "POST /notes: 201 with an id": (True, 0),
        "GET /notes/[id]: 200, the same note": (True, 0),
        "POST /links: 201 with a code": (True, 0),
        "GET /[code]: 302 to the URL": (True, 0),
        "GET /departments/[name]: 200": (True, 0),
        "GET /departments/[name]/employees: 200 with items": (True, 0),
    }
