"""Bad input is a 4xx problem, never a 500: each class of it, at its root.

- JSON: the one decoder (core/wire.py) refuses deep nesting, lone
  surrogates and non-finite numbers on every JSON endpoint, the signed
  webhook receiver included (400).
- Text: every string a responder gets keeps one rule (core/text.py): no
  NUL, no lone surrogate (422 naming the field; 404 in a path).
- Integers: every one is bounded by the schema of the field that carries it
  (the document says so, and a test reads the document).
- Times at the calendar's edges, malformed URLs, absurd If-Match tags.
"""

import json
import time

import pytest

from core import signatures
from core import wire
from tests.support.live import ROOT
from tests.support.problems import assert_problem
from tests.support.unsafe_urls import UNSAFE

DEEP = "[" * 10_000 + "]" * 10_000
INT64_OVER = str(2**63)
FORTY_DIGITS = "9" * 40
SOURCES = json.dumps(
    {
        "github": {"scheme": "github", "secret": "s3cret"},
        "acme": {
            "scheme": "standard",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
    }
)


@pytest.fixture
def spec(client) -> dict:
    return client.simulate_get("/openapi.json").json


def _json_operations(spec):
    """(method, path) of every operation that takes a JSON body; ids filled in."""
    for template, operations in spec["paths"].items():
        path = template.replace("{", "").replace("}", "")
        for name, param in (("note_id", "0" * 32), ("subscription_id", "1")):
            path = path.replace(name, param)
        for method, operation in operations.items():
            if "requestBody" in operation:
                yield method.upper(), path.replace("code", "abc")


def post_json(client, method, path, text, headers=None):
    return client.simulate_request(
        method,
        path,
        body=text,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


# JSON -------------------------------------------------------------------------


def test_every_json_endpoint_refuses_deep_nesting(client, spec):
    # Inbound webhooks check the signature first: a signed deep body is
    # test_a_correctly_signed_webhook_with_bad_json_is_400.
    operations = [
        (method, path)
        for method, path in _json_operations(spec)
        if not path.startswith("/webhooks/")
    ]
    assert len(operations) >= 8  # notes, links, primes, subscriptions...
    for method, path in operations:
        problem = assert_problem(post_json(client, method, path, DEEP), 400)
        assert "nested deeper than 64" in problem["detail"], (method, path)


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"title": "\\ud800"}', "lone surrogate"),
        ('{"title": "ok", "body": "\\udfff"}', "lone surrogate"),
        ('{"title": NaN}', "not finite"),
        ('{"title": 1e999}', "not finite"),
        ('{"title": ' + "1" * 5000 + "}", "digits"),
    ],
)
def test_json_that_no_store_could_hold_is_400(client, text, reason):
    problem = assert_problem(post_json(client, "POST", "/notes", text), 400)
    assert reason in problem["detail"]


def test_a_lone_surrogate_in_raw_utf8_is_400(client):
    body = b'{"title": "\xed\xa0\x80"}'  # U+D800 encoded as if it were a character
    assert_problem(post_json(client, "POST", "/notes", body), 400)


@pytest.fixture
def webhook_client(make_client):
    return make_client(webhook_sources=SOURCES)


@pytest.mark.parametrize(
    "payload", [DEEP, '{"zen": "\\ud800"}', '{"n": NaN}', "[" + "1" * 5000 + "]"]
)
def test_a_correctly_signed_webhook_with_bad_json_is_400(webhook_client, payload):
    body = payload.encode()
    github = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signatures.github_sign("s3cret", body),
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "d-1",
    }
    result = webhook_client.simulate_post("/webhooks/github", body=body, headers=github)
    assert "not valid JSON" in assert_problem(result, 400)["detail"]
    form = {**github, "Content-Type": "application/x-www-form-urlencoded"}
    form_body = b"payload=" + body.replace(b"[", b"%5B").replace(b"]", b"%5D")
    form["X-Hub-Signature-256"] = signatures.github_sign("s3cret", form_body)
    result = webhook_client.simulate_post(
        "/webhooks/github", body=form_body, headers=form
    )
    assert_problem(result, 400)
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    now = int(time.time())
    standard = {
        "Content-Type": "application/json",
        **signatures.standard_headers(secret, "msg-1", now, body),
    }
    result = webhook_client.simulate_post("/webhooks/acme", body=body, headers=standard)
    assert_problem(result, 400)
    listed = webhook_client.simulate_get("/webhooks/deliveries").json
    assert listed["items"] == []  # nothing stored


# Text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/notes", {"title": "a\x00b"}, "title"),
        ("/notes", {"title": "ok", "body": "\x00"}, "body"),
        ("/links", {"url": "https://example.com/", "alias": "ab\x00c"}, "alias"),
        ("/subscriptions", {"url": "https://example.com/\x00", "events": ["*"]}, "url"),
        (
            "/subscriptions",
            {"url": "https://example.com/", "events": ["\x00"]},
            "events",
        ),
    ],
)
def test_nul_in_a_body_string_is_422_naming_the_field(client, path, body, field):
    problem = assert_problem(client.simulate_post(path, json=body), 422)
    assert field in problem["errors"]


def test_nul_in_a_key_is_422(client):
    problem = assert_problem(client.simulate_post("/notes", json={"ti\x00": 1}), 422)
    assert "'ti\\x00'" in problem["errors"]


@pytest.mark.parametrize(
    "path, params",
    [
        ("/employees", {"q": "a\x00"}),
        ("/departments/POLICE/employees", {"title": "\x00"}),
        ("/webhooks/deliveries", {"source": "\x00", "status": "pending"}),
        ("/notes", {"id": "\x00"}),
    ],
)
def test_nul_in_a_query_value_is_422(client, path, params):
    problem = assert_problem(client.simulate_get(path, params=params), 422)
    assert set(problem["errors"]) & set(params)


@pytest.mark.parametrize(
    "path",
    ["/departments/a%00b", "/dept/%00", "/links/ab%00c", "/%00", "/notes/%00"],
)
def test_nul_in_a_path_value_is_404(client, path):
    assert_problem(client.simulate_get(path), 404)


def test_referer_and_user_agent_are_stored_cleaned(client):
    link = client.simulate_post("/links", json={"url": "https://example.com/"}).json
    visit = client.simulate_get(
        "/" + link["code"], headers={"Referer": "x\x00y", "User-Agent": "a\x00"}
    )
    assert visit.status_code == 302
    (stored,) = client.simulate_get(f"/links/{link['code']}/visits").json["items"]
    assert (stored["referrer"], stored["user_agent"]) == ("x\ufffdy", "a\ufffd")


# Integers ---------------------------------------------------------------------


def _resolve(spec, schema):
    if "$ref" in schema:
        return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _integer_schemas(spec, schema, where):
    schema = _resolve(spec, schema)
    if schema.get("type") == "integer":
        yield where, schema
    for name, member in schema.get("properties", {}).items():
        yield from _integer_schemas(spec, member, f"{where}.{name}")
    if "items" in schema:
        yield from _integer_schemas(spec, schema["items"], f"{where}[]")


def test_every_integer_a_client_sends_is_bounded_by_its_schema(spec):
    found = []
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {template}"
            for param in operation.get("parameters", []):
                found += _integer_schemas(
                    spec, param["schema"], f"{where} {param['name']}"
                )
            body = operation.get("requestBody")
            if body:
                schema = body["content"]["application/json"]["schema"]
                found += _integer_schemas(spec, schema, f"{where} body")
    assert len(found) > 10
    unbounded = [
        where
        for where, schema in found
        if "minimum" not in schema
        or "maximum" not in schema
        or schema["maximum"] > 2**64
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    "path",
    [
        f"/subscriptions/{2**31}",  # the id column is 32-bit (PostgreSQL)
        f"/subscriptions/{2**31}/deliveries",
        f"/subscriptions/{INT64_OVER}",
        f"/subscriptions/{FORTY_DIGITS}",
        "/subscriptions/0",
        "/subscriptions/" + "9" * 5000,
    ],
)
def test_ids_past_their_column_are_404(client, path):
    assert_problem(client.simulate_get(path), 404)


# (path, parameter, the first value past its column: 64-bit, 32-bit, ...)
CURSORS = [
    ("/notes", "cursor", INT64_OVER),
    ("/links/abc/visits", "before", INT64_OVER),
    ("/subscriptions", "cursor", str(2**31)),
    ("/subscriptions/1/deliveries", "cursor", str(2**31)),
    ("/webhooks/deliveries", "cursor", str(2**31)),
    ("/primes", "after", str(2**64)),  # primes go up to 2**64 - 1
    ("/employees", "offset", INT64_OVER),
    ("/collatz", "n", INT64_OVER),
]


@pytest.mark.parametrize("path, param, past", CURSORS)
@pytest.mark.parametrize("value", ["past", FORTY_DIGITS, "-" + FORTY_DIGITS])
def test_cursors_and_counts_past_their_column_are_422(client, path, param, past, value):
    if value == "past":
        value = past
    problem = assert_problem(client.simulate_get(path, params={param: value}), 422)
    assert param in problem["errors"]


@pytest.mark.parametrize("value", [2**31, 2**63, 2**64, 10**40])
def test_max_visits_is_bounded_by_its_column(client, value):
    result = client.simulate_post(
        "/links", json={"url": "https://example.com/", "max_visits": value}
    )
    assert "max_visits" in assert_problem(result, 422)["errors"]
    ok = client.simulate_post(
        "/links", json={"url": "https://example.com/", "max_visits": 2**31 - 1}
    )
    assert ok.status_code == 201 and ok.json["max_visits"] == 2**31 - 1


@pytest.mark.parametrize(
    "tag", ['"' + "1" * 5000 + '"', '"99999999999999999999"', '"2147483648"', '"²"']
)
def test_an_if_match_no_version_can_have_is_412(client, tag):
    note = client.simulate_post("/notes", json={"title": "x"}).json
    path = f"/notes/{note['id']}"
    headers = {"If-Match": tag}
    put = client.simulate_put(path, json={"title": "y", "body": ""}, headers=headers)
    assert_problem(put, 412)
    assert_problem(
        client.simulate_patch(path, json={"body": "z"}, headers=headers), 412
    )
    assert_problem(client.simulate_delete(path, headers=headers), 412)
    assert client.simulate_get(path).json["title"] == "x"


# Times and URLs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59-14:00",  # past year 9999 in UTC
        "9999-12-31T23:59:59.999999-00:01",
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "10000-01-01T00:00:00Z",
        "2030-02-30T00:00:00Z",
        "2030-01-01T24:00:01Z",
    ],
)
def test_times_at_the_calendar_edges_are_422(client, moment):
    result = client.simulate_post(
        "/links", json={"url": "https://example.com/", "expires_at": moment}
    )
    assert "expires_at" in assert_problem(result, 422)["errors"]


def test_the_last_moment_of_the_calendar_is_a_valid_expiry(client):
    result = client.simulate_post(
        "/links",
        json={"url": "https://example.com/", "expires_at": "9999-12-31T23:59:59Z"},
    )
    assert result.status_code == 201
    assert result.json["expires_at"] == "9999-12-31T23:59:59.000Z"


@pytest.mark.parametrize("raw, reason", UNSAFE + [("https://[zz/", "host")])
def test_subscriptions_share_the_url_rules_of_links(client, raw, reason):
    result = client.simulate_post("/subscriptions", json={"url": raw, "events": ["*"]})
    message = assert_problem(result, 422)["errors"]["url"][0]
    assert reason in message or "NUL" in message  # the text rule comes first
    patch = client.simulate_patch("/subscriptions/1", json={"url": raw})
    assert patch.status_code in (404, 422)  # the body is checked, or no such id


def test_wire_limits_are_what_the_docs_say():
    assert (wire.MAX_DEPTH, wire.MAX_INT_DIGITS) == (64, 4300)
    page = (ROOT / "docs" / "design" / "security.md").read_text()
    assert "nested deeper than 64" in page
    assert "integers of more than 4,300" in page
