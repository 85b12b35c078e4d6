"""Fixtures of the end-to-end tests: real gunicorn, the real push worker, SUB sockets.

Every test in this folder is marked ``e2e`` (tests/conftest.py); ``make test
PYTEST_ARGS='-m "not e2e"'`` skips them.
"""

import pytest

from tests.support.browser import chromium_driver
from tests.support.clients import openapi_document  # noqa: F401
from tests.support.clients import python_client  # noqa: F401
from tests.support.clients import typescript_package  # noqa: F401
from tests.support.collatz_cluster import make_cluster  # noqa: F401
from tests.support.live import LiveServer
from tests.support.live import PushWorkerProcess
from tests.support.push_clients import Subscriber


@pytest.fixture
def live_server(tmp_path, database_url):  # noqa: ARG001 (creates the schema)
    """Factory: start real gunicorn under this interpreter; stopped after the test."""
    servers = []

    def start(env=None, workers=2) -> LiveServer:
        server = LiveServer(tmp_path, env or {}, workers=workers)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
    for server in servers:
        log = server.log()
        if "Traceback" in log:  # shown with a failed test's report
            start_at = max(0, log.index("Traceback") - 300)
            print("gunicorn's log from its first traceback:", log[start_at:][:6000])
        assert "left open on a pooled" not in log  # db.sqlite closed them; still bugs


@pytest.fixture
def push_worker(tmp_path, database_url):  # noqa: ARG001 (creates the database)
    """Factory: the push worker on the live server's database; stopped at the end."""
    workers = []

    def start(env=None, args=()) -> PushWorkerProcess:
        worker = PushWorkerProcess(tmp_path, env, args)
        workers.append(worker)
        worker.start()
        return worker

    yield start
    for worker in workers:
        worker.stop()
    for worker in workers:
        assert "left open on a pooled" not in worker.log()


@pytest.fixture
def subscribers():
    """Factory: SUB sockets, closed after the test."""
    made = []

    def make(endpoint, topic=b"note.", keys=None) -> Subscriber:
        made.append(Subscriber(endpoint, topic, keys))
        return made[-1]

    yield make
    for sub in made:
        sub.close()


@pytest.fixture
def browser():
    """Headless Chromium (selenium; tests.support.browser), quit after the test."""
    driver = chromium_driver()
    yield driver
    driver.quit()
