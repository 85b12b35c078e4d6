"""End to end: after every GET of the OpenAPI document, each worker reads each write.

A read that leaves its statement open pins a pooled SQLite connection to an
old snapshot (under PyPy until a major collection): the worker then answers
404 for whatever is written after it. So every GET operation runs first, on
a connection to each worker, and then every write made through one worker
must read back at once through every worker.
"""

import argparse
import json
import re
from urllib.parse import quote
from urllib.parse import urlencode

import pytest

from api.salary_import import import_salaries
from core import signatures
from core.primality import is_prime
from core.settings import Settings
from tests.support.live import make_key
from tests.support.pinned import connections_to_every_worker
from tests.support.pinned import worker_pids

SECRET = "read-your-writes"
ENV = {
    "WEBHOOK_SOURCES": json.dumps({"github": {"scheme": "github", "secret": SECRET}}),
    "ALLOWED_PRIVATE_TARGETS": "127.0.0.1",
    # No collatz broker runs here: GET /collatz answers 503 after this.
    "COLLATZ_TIMEOUT": "0.5",
    # Each connection must stay with its worker for the whole test, however
    # long a busy machine makes it wait between two of its requests.
    "GUNICORN_CMD_ARGS": "--keep-alive 300",
    # Every read and write goes through a key, as users' calls do.
    "AUTH": "on",
}
CSV = (
    "Name,Position Title,Department,Employee Annual Salary\n"
    '"SMITH,  ANN",MOTOR TRUCK DRIVER,STREETS & SAN,$71780.80\n'
    '"KOCH,  STEVEN",ADMINISTRATIVE SECRETARY,MAYOR\'S OFFICE,$0.96\n'
)
EVENTS = ["note.created"]
#: What answers 503 here by design: no collatz broker runs.
DOWN_HERE = {"/ready", "/collatz"}
WORKERS = 2


@pytest.fixture
def connections(live_server, notes_backend, database_url, tmp_path):
    csv_path = tmp_path / "salaries.csv"
    csv_path.write_text(CSV)
    args = argparse.Namespace(csv=str(csv_path), if_empty=False)
    assert import_salaries(Settings(database_url=database_url), args) == 0
    key = make_key(tmp_path)
    server = live_server(env={**ENV, **notes_backend.env}, workers=WORKERS)
    made = connections_to_every_worker(server, key)
    assert len(worker_pids(server)) == WORKERS
    yield made
    for connection in made:
        connection.close()


def _post_webhook(connection, delivery):
    body = json.dumps({"zen": "Keep it logically awesome.", "d": delivery}).encode()
    status, _, data = connection.call(
        "POST",
        "/webhooks/github",
        body,
        {
            "Content-Type": "application/json",
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signatures.github_sign(SECRET, body),
        },
    )
    assert status == 202, data


def _seed(connection) -> dict:
    """One of everything a GET can name, so each GET reads real rows."""
    note = connection.json("POST", "/notes", {"title": "seed", "body": "x"}, 201)
    link = connection.json("POST", "/links", {"url": "https://example.com/a"}, 201)
    connection.json("POST", "/primes", {"primes": [13]}, 201)
    subscription = connection.json(
        "POST", "/subscriptions", {"url": "http://127.0.0.1:9/0", "events": EVENTS}, 201
    )
    _post_webhook(connection, "seed")
    return {
        "note_id": note["id"],
        "code": link["code"],
        "name": "STREETS & SAN",
        "n": "13",
        "k": "13",
        "subscription_id": str(subscription["id"]),
        "source": "github",
    }


def _get_paths(spec: dict, values: dict):
    """Each GET operation of ``spec``: its path filled in, with required queries."""
    for template, operations in spec["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        path = re.sub(
            r"{(\w+)}", lambda m: quote(values[m.group(1)], safe=""), template
        )
        query = {
            p["name"]: p.get("example", 10)
            for p in operation.get("parameters", [])
            if p["in"] == "query" and p.get("required")
        }
        yield template, path + ("?" + urlencode(query) if query else "")


def test_every_worker_reads_each_write_at_once_after_every_get(connections):
    values = _seed(connections[0])
    spec = connections[0].json("GET", "/openapi.json")
    paths = list(_get_paths(spec, values))
    assert len(paths) >= 20

    for template, path in paths:
        for connection in connections:
            status, _, data = connection.call("GET", path)
            if template in DOWN_HERE:
                assert status in (200, 503), (path, status, data)
            else:
                assert status < 500, (path, status, data)

    primes = (n for n in range(101, 10**4, 2) if is_prime(n))
    for number, (writer, prime) in enumerate(zip(connections, primes)):
        note = writer.json("POST", "/notes", {"title": "w", "body": "b"}, 201)
        link = writer.json(
            "POST", "/links", {"url": f"https://example.com/{number}"}, 201
        )
        target = {"url": f"http://127.0.0.1:9/{number}", "events": EVENTS}
        subscription = writer.json("POST", "/subscriptions", target, 201)
        writer.json("POST", "/primes", {"primes": [prime]}, 201)
        _post_webhook(writer, f"delivery-{number}")
        for reader in connections:
            assert reader.json("GET", f"/notes/{note['id']}") == note
            assert reader.json("GET", f"/notes?id={note['id']}")["note"] == note
            assert reader.json("GET", f"/links/{link['code']}")["url"] == link["url"]
            status, headers, _ = reader.call("GET", f"/{link['code']}")
            assert status == 302 and headers["Location"] == link["url"]
            assert reader.json("GET", f"/subscriptions/{subscription['id']}")
            assert reader.json("GET", f"/primes/{prime}")["stored"]
            deliveries = reader.json("GET", "/webhooks/deliveries")["items"]
            assert f"delivery-{number}" in {item["id"] for item in deliveries}
