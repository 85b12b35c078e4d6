"""The OpenAPI document is usable by tools: ids, servers, examples that validate."""

import json

from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_openapi

METHODS = ("get", "post", "put", "patch", "delete")


def operations(document):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def check(document, schema, example, where):
    validator = OAS30Validator({**schema, "components": document["components"]})
    errors = [error.message for error in validator.iter_errors(example)]
    assert not errors, f"{where}: the example does not match its schema: {errors}"


def test_served_pretty_printed_and_valid(client):
    result = client.simulate_get("/openapi.json")
    assert result.headers["content-type"].startswith("application/json")
    assert result.text.startswith('{\n  "')  # `| head` shows the top, indented
    assert len(result.text.splitlines()) > 1000
    validate_openapi(json.loads(result.text))


def test_servers_come_from_public_base_url(make_client):
    client = make_client(public_base_url="https://sho.rt/")
    document = client.simulate_get("/openapi.json").json
    assert document["servers"] == [{"url": "https://sho.rt"}]


def test_every_operation_has_a_unique_operation_id(client):
    document = client.simulate_get("/openapi.json").json
    ids = [op.get("operationId") for _, _, op in operations(document)]
    assert None not in ids
    assert len(ids) == len(set(ids)) >= 34


def test_every_request_and_response_has_an_example_that_validates(client):
    document = client.simulate_get("/openapi.json").json
    for path, method, op in operations(document):
        where = f"{method.upper()} {path}"
        for parameter in op.get("parameters", ()):
            if parameter["in"] == "path" or parameter.get("required"):
                assert "example" in parameter, f"{where}: {parameter['name']}"
            if "example" in parameter:
                check(document, parameter["schema"], parameter["example"], where)
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            assert "example" in media, f"{where}: request {media_type}"
            check(document, media["schema"], media["example"], f"{where} request")
        for status, answer in op["responses"].items():
            for media_type, media in answer.get("content", {}).items():
                assert "example" in media, f"{where} {status} {media_type}"
                check(document, media["schema"], media["example"], f"{where} {status}")


def test_conditional_headers_and_their_answers_are_declared(client):
    paths = client.simulate_get("/openapi.json").json["paths"]
    item = paths["/notes/{note_id}"]
    for method in ("put", "patch", "delete"):
        names = [p["name"] for p in item[method]["parameters"]]
        assert "If-Match" in names
        assert "412" in item[method]["responses"]
    assert "If-None-Match" in [p["name"] for p in item["get"]["parameters"]]
    assert "304" in item["get"]["responses"]
    assert "ETag" in item["get"]["responses"]["200"]["headers"]
    created = paths["/notes"]["post"]["responses"]["201"]["headers"]
    assert {"Location", "ETag"} <= set(created)
    assert "Location" in paths["/links"]["post"]["responses"]["201"]["headers"]
    assert "503" in paths["/ready"]["get"]["responses"]


def test_the_limits_the_code_enforces_are_declared(make_client):
    client = make_client(collatz_max_n=5000)
    paths = client.simulate_get("/openapi.json").json["paths"]

    def param(path, name):
        return next(p for p in paths[path]["get"]["parameters"] if p["name"] == name)[
            "schema"
        ]

    assert param("/collatz", "n")["maximum"] == 5000
    assert param("/collatz", "n")["minimum"] == 1
    assert param("/collatz/{k}", "k")["maximum"] == 5000
    assert "max_salary" in param("/employees", "min_salary")["description"]
    assert param("/notes/{note_id}", "note_id")["pattern"] == "^[0-9a-f]{32}$"
    note = client.simulate_get("/openapi.json").json["components"]["schemas"]
    assert note["NoteCreate"]["properties"]["title"]["maxLength"] == 200


def test_outbound_webhooks_are_declared_with_their_signature_headers(client):
    paths = client.simulate_get("/openapi.json").json["paths"]
    callbacks = paths["/subscriptions"]["post"]["callbacks"]
    (delivery,) = callbacks["noteEvent"].values()
    names = {p["name"] for p in delivery["post"]["parameters"]}
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= names
    body = delivery["post"]["requestBody"]["content"]["application/json"]
    assert body["example"]["type"] == "note.updated"
    receiver = paths["/webhooks/{source}"]["post"]
    assert {"X-Hub-Signature-256", "webhook-signature"} <= {
        p["name"] for p in receiver["parameters"]
    }


def test_the_examples_are_true(client):
    from core import collatz
    from core.codes import code_for_id
    from core.primality import is_prime

    paths = client.simulate_get("/openapi.json").json["paths"]

    def example(path, status="200", method="get"):
        content = paths[path][method]["responses"][status]["content"]
        return next(iter(content.values()))["example"]

    longest = example("/collatz")
    assert collatz.longest_upto(longest["n"]) == (longest["number"], longest["length"])
    chain = example("/collatz/{k}")
    assert (
        collatz.chain(chain["start"], keep_sequence=True).sequence == chain["sequence"]
    )
    number = example("/primes/{n}")["number"]
    assert is_prime(number) and not is_prime(number + 2) and number < 2**64
    assert example("/links", "201", "post")["code"] == code_for_id(1)


def test_postman_knows_the_status_every_operation_is_meant_to_answer(client):
    from api.postman import expected_status

    document = client.simulate_get("/openapi.json").json
    found = {
        (method, path): expected_status(op) for path, method, op in operations(document)
    }
    assert found[("post", "/notes")] == 201
    assert found[("delete", "/notes/{note_id}")] == 204
    assert found[("get", "/{code}")] == 302
    assert found[("post", "/webhooks/{source}")] == 202
