"""End to end: the notes store over TLS to a RethinkDB server that requires it.

A server of our own (the binary beside ``../shared/rethinkdb/start``) with
``--driver-tls-key``/``--driver-tls-cert``, from a CA made by ``openssl``
for the test. With ``RETHINKDB_URL=...?ca=CA``: ``python -m api init-db``,
gunicorn's workers (their connection pools) and the push worker (its change
feed) all connect over TLS. Without ``?ca=``, or with another CA: 503
problem+json (never a traceback), ``/ready`` names the notes store, and the
log says why.
"""

import logging
import subprocess
import sys
from urllib.parse import quote

import pytest
import requests

from api import cli
from core.settings import Settings
from tests.support.live import ROOT
from tests.support.live import child_env
from tests.support.notes_backends import skip_or_fail
from tests.support.problems import assert_problem
from tests.support.push_clients import Notes
from tests.support.rethinkdb_servers import START
from tests.support.rethinkdb_servers import ServerProcess
from tests.support.rethinkdb_servers import server_binary
from tests.support.tls import make_certificates
from tests.support.tls import openssl

pytestmark = pytest.mark.rethinkdb_cluster

TABLE = "notes_tls"
#: No collatz broker: /ready reports it down, and nothing here reaches one.
NO_BROKER = {"COLLATZ_FRONTEND": "tcp://127.0.0.1:9", "COLLATZ_TIMEOUT": "0.3"}


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A RethinkDB server that speaks TLS only to drivers, and its certificates."""
    if server_binary() is None:
        skip_or_fail(f"no RethinkDB server beside {START} (set RETHINKDB_START)")
    if openssl() is None:
        skip_or_fail("no openssl command to make the test's certificates")
    folder = tmp_path_factory.mktemp("rethinkdb-tls")
    certificates = make_certificates(folder / "certs")
    server = ServerProcess(
        folder / "data",
        "--driver-tls-key",
        str(certificates.server_key),
        "--driver-tls-cert",
        str(certificates.server_cert),
    )
    server.start()
    yield server, certificates
    server.stop()


def url_of(server, ca=None) -> str:
    base = f"rethinkdb://127.0.0.1:{server.driver_port}/test"
    return base if ca is None else f"{base}?ca={quote(str(ca))}"


def test_init_db_the_api_and_the_push_worker_work_over_tls(
    tls_server, tmp_path, live_server, push_worker, subscribers
):
    server, certificates = tls_server
    env = {
        "RETHINKDB_URL": url_of(server, certificates.ca),
        "RETHINKDB_TABLE": TABLE,
        **NO_BROKER,
    }
    init = subprocess.run(
        [sys.executable, "-m", "api", "init-db"],
        cwd=ROOT,
        env=child_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    assert f"created table test.{TABLE}" in init.stderr

    server = live_server(env=env)
    worker = push_worker(env)
    sub = subscribers(worker.pub_endpoint)
    worker.wait_subscribed("note.")
    notes = Notes(server.url)
    created = notes.create("over TLS", "encrypted on the wire")
    read = requests.get(f"{server.url}/notes/{created['id']}", timeout=10)
    assert read.status_code == 200 and read.json()["title"] == "over TLS"
    ready = requests.get(server.url + "/ready", timeout=10).json()
    assert ready["backends"]["notes"] == "ok", ready

    (event,) = sub.wait_for(lambda got: len(got) >= 1, "the change over TLS")
    assert (event["type"], event["new_val"]) == ("note.created", created)
    assert "Traceback" not in server.log() + worker.log()


@pytest.mark.parametrize(
    "trust, reason",
    [
        (None, "if the server requires TLS, add ?ca=FILE to the URL"),
        ("other_ca", "certificate verify failed"),
    ],
)
def test_without_the_ca_notes_answer_503_and_the_log_says_why(
    tls_server, make_client, caplog, trust, reason
):
    server, certificates = tls_server
    ca = None if trust is None else getattr(certificates, trust)
    client = make_client(
        rethinkdb_url=url_of(server, ca),
        rethinkdb_table=TABLE,
        rethinkdb_timeout=5,
        collatz_frontend=NO_BROKER["COLLATZ_FRONTEND"],
        collatz_timeout=0.3,
    )
    with caplog.at_level(logging.WARNING, logger="db.notes.rethink"):
        refused = client.simulate_post("/notes", json={"title": "in the clear?"})
    problem = assert_problem(refused, 503)
    assert problem["detail"] == "notes store unavailable"
    assert "Traceback" not in refused.text and "SSL" not in refused.text
    assert reason in caplog.text
    ready = client.simulate_get("/ready")
    assert ready.status_code == 503 and ready.json["backends"]["notes"] == "down"


def test_init_db_with_another_ca_fails_naming_the_certificate(tls_server, caplog):
    server, certificates = tls_server
    settings = Settings(rethinkdb_url=url_of(server, certificates.other_ca))
    with caplog.at_level(logging.ERROR, logger="api.cli"):
        assert cli.init_rethinkdb(settings, wait=0) == 1
    assert "certificate verify failed" in caplog.text
