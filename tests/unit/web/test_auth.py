"""Who may do what: every operation of the OpenAPI document, called with each scope.

``POLICY`` is the rule of each operation, written out: an operation the
document has and the policy lacks (a new endpoint nobody thought about)
fails, and so does one whose declared scope differs. Then every operation
is called without a key, with a bad key, and with a key of each scope.
"""

import re

import pytest

from api.app import create_app
from core.apikeys import ADMIN
from core.apikeys import READ
from core.apikeys import SCOPES
from core.apikeys import WRITE
from core.settings import Settings
from db.keys import KeyStore
from db.schema import create_schema
from db.sql import Database
from db.stores import open_stores
from tests.support.contract import ContractClient
from tests.support.problems import assert_problem
from tests.support.processes import free_port

PUBLIC = "public"
POLICY = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("GET", "/notes"): READ,
    ("GET", "/notes?id="): READ,
    ("POST", "/notes"): WRITE,
    ("GET", "/notes/{note_id}"): READ,
    ("PUT", "/notes/{note_id}"): WRITE,
    ("PATCH", "/notes/{note_id}"): WRITE,
    ("DELETE", "/notes/{note_id}"): WRITE,
    ("GET", "/primes"): PUBLIC,
    ("POST", "/primes"): WRITE,
    ("GET", "/primes/{n}"): PUBLIC,
    ("GET", "/supply_primes"): PUBLIC,
    ("POST", "/supply_primes"): WRITE,
    ("GET", "/links"): READ,
    ("POST", "/links"): WRITE,
    ("POST", "/links/bulk"): WRITE,
    ("GET", "/links/{code}"): READ,
    ("PATCH", "/links/{code}"): WRITE,
    ("DELETE", "/links/{code}"): WRITE,
    ("GET", "/links/{code}/visits"): READ,
    ("GET", "/links/{code}/stats"): READ,
    # A QR code holds the short URL, which the code alone gives: public, as
    # the redirect is, so that pages can show it with <img src>.
    ("GET", "/links/{code}/qr"): PUBLIC,
    ("GET", "/{code}"): PUBLIC,
    ("GET", "/departments"): PUBLIC,
    ("GET", "/departments/{name}"): PUBLIC,
    ("GET", "/departments/{name}/employees"): PUBLIC,
    ("GET", "/departments/{name}/employees.ndjson"): PUBLIC,
    ("GET", "/departments/{name}/employees.csv"): PUBLIC,
    ("GET", "/dept/{name}"): PUBLIC,
    ("GET", "/employees"): PUBLIC,
    ("GET", "/collatz"): PUBLIC,
    ("GET", "/collatz/{k}"): PUBLIC,
    ("GET", "/webhooks/{source}"): PUBLIC,
    ("POST", "/webhooks/{source}"): PUBLIC,
    ("GET", "/webhooks/deliveries"): ADMIN,
    ("GET", "/subscriptions"): ADMIN,
    ("POST", "/subscriptions"): ADMIN,
    ("GET", "/subscriptions/{subscription_id}"): ADMIN,
    ("PATCH", "/subscriptions/{subscription_id}"): ADMIN,
    ("DELETE", "/subscriptions/{subscription_id}"): ADMIN,
    ("GET", "/subscriptions/{subscription_id}/deliveries"): ADMIN,
    ("POST", "/subscriptions/{subscription_id}/replay"): ADMIN,
    ("GET", "/metrics"): ADMIN,
    ("POST", "/stream-tickets"): READ,
}
#: Values for the path parameters: anything the route takes.
PATH_VALUES = {"n": "7", "k": "7", "subscription_id": "1"}


def _document() -> dict:
    # Building the app opens nothing: the document is read at collection.
    app = create_app(Settings(database_url="sqlite://"))
    return ContractClient(app).simulate_get("/openapi.json").json


def _operations(document: dict):
    """``(METHOD, path, operation)``; an alias (``x-get-alias``) with its query."""
    for path, operations in document["paths"].items():
        for key, operation in operations.items():
            alias = re.fullmatch(r"x-(\w+)-alias", key)
            if alias is None:
                yield key.upper(), path, operation
                continue
            required = [
                p["name"]
                for p in operation["parameters"]
                if p["in"] == "query" and p.get("required")
            ]
            yield alias.group(1).upper(), f"{path}?{required[0]}=", operation


DOCUMENT = _document()
OPERATIONS = sorted(_operations(DOCUMENT))


def _declared(operation: dict) -> str:
    if operation["security"] == []:
        return PUBLIC
    assert operation["security"] == [{"apiKey": []}]
    return operation["x-scope"]


def test_every_operation_has_the_rule_the_policy_gives_it():
    declared = {(method, path): _declared(op) for method, path, op in OPERATIONS}
    assert declared == POLICY


def test_the_document_declares_the_bearer_scheme():
    scheme = DOCUMENT["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


@pytest.fixture(scope="module")
def callers(tmp_path_factory):
    """A client per caller on one app: no key, an unknown key, each scope."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path_factory.mktemp('auth') / 'auth.db'}",
        collatz_frontend=f"tcp://127.0.0.1:{free_port()}",
        collatz_timeout=0.2,
        collatz_rate_limit="",
    )
    database = Database(settings.database_url)
    create_schema(database.engine)
    keys = {scope: KeyStore(database).create(scope, scope)[1] for scope in SCOPES}
    keys.update({None: None, "unknown": "fpa_" + "0" * 38})
    database.dispose()
    stores = open_stores(settings)
    app = create_app(settings, stores)
    yield {
        caller: ContractClient(
            app, headers={"Authorization": f"Bearer {key}"} if key else {}
        )
        for caller, key in keys.items()
    }
    stores.close()


@pytest.mark.parametrize(
    "method, path, operation",
    OPERATIONS,
    ids=[f"{method} {path}" for method, path, _ in OPERATIONS],
)
def test_each_caller_gets_what_the_scope_allows(callers, method, path, operation):
    needed = POLICY[(method, path)]
    url = re.sub(r"{(\w+)}", lambda m: PATH_VALUES.get(m.group(1), "x"), path)
    url = url.replace("=", "=x") if url.endswith("=") else url
    kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    for caller, client in callers.items():
        result = client.simulate_request(method, url, **kwargs)
        if needed == PUBLIC:
            assert result.status_code not in (401, 403) or path.startswith(
                "/webhooks/"  # the receiver's own 401 and 403: signatures
            ), (caller, result.text)
        elif caller in (None, "unknown"):
            assert_problem(result, 401)
            challenge = result.headers["WWW-Authenticate"]
            assert challenge.startswith('Bearer realm="api"')
            assert ('error="invalid_token"' in challenge) == (caller == "unknown")
        elif SCOPES.index(caller) < SCOPES.index(needed):
            assert_problem(result, 403)
            assert f'scope="{needed}"' in result.headers["WWW-Authenticate"]
        else:
            assert result.status_code not in (401, 403), (caller, result.text)
