"""The OpenAPI document is usable by tools: ids, servers, examples that validate."""

import json

from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_openapi

METHODS = ("get", "post", "put", "patch", "delete")


def operations(document):
    """(path, key, operation): each method's, and each alias (``x-get-alias``)."""
    for path, item in document["paths"].items():
        for key, operation in item.items():
            if key in METHODS or (key.startswith("x-") and key.endswith("-alias")):
                yield path, key, operation


def refs(schema):
    """The names of the component schemas ``schema`` refers to, directly."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"].rsplit("/", 1)[-1]
        for value in schema.values():
            yield from refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from refs(value)


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
    from clients.postman import expected_status

    document = client.simulate_get("/openapi.json").json
    found = {
        (method, path): expected_status(op) for path, method, op in operations(document)
    }
    assert found[("post", "/notes")] == 201
    assert found[("delete", "/notes/{note_id}")] == 204
    assert found[("get", "/{code}")] == 302
    assert found[("post", "/webhooks/{source}")] == 202


def test_the_seed_alias_is_an_operation_of_its_own(client):
    item = client.simulate_get("/openapi.json").json["paths"]["/notes"]
    listing, alias = item["get"], item["x-get-alias"]
    assert [p["name"] for p in listing["parameters"]] == ["limit", "cursor"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoteList"
    }
    assert alias["operationId"] == "getNotesById"
    (query,) = [p for p in alias["parameters"] if p["in"] == "query"]
    assert query["name"] == "id" and query["required"] is True
    assert alias["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoteEnvelope"
    }
    assert {"304", "404"} <= set(alias["responses"])


def test_every_response_field_is_required_unless_some_answers_leave_it_out(client):
    document = client.simulate_get("/openapi.json").json
    schemas = document["components"]["schemas"]
    answered = {
        name
        for _, _, op in operations(document)
        for answer in op["responses"].values()
        for name in refs(answer)
    }
    reached, todo = set(), list(answered)
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(refs(schemas[name]))
    assert {"NoteOut", "NoteList", "LinkOut", "SalaryOut", "Problem"} <= reached
    optional = {
        name: sorted(set(schemas[name]["properties"]) - set(schemas[name]["required"]))
        for name in reached
    }
    assert {name: fields for name, fields in optional.items() if fields} == {
        "BulkItemOut": ["link", "problem"],  # one or the other, by status
        "ChainOut": ["sequence"],  # with ?sequence=true, for short chains
        "Problem": ["errors"],  # 422s
        "ReadyOut": ["detail"],  # when a backend is down
    }


def test_postman_gets_a_request_for_the_seed_alias(client):
    from clients.postman import finish

    spec = client.simulate_get("/openapi.json").json
    listing = {
        "name": "List notes, newest first.",
        "request": {
            "name": "List notes, newest first.",
            "method": "GET",
            "url": {
                "host": ["{{baseUrl}}"],
                "path": ["notes"],
                "query": [{"key": "limit", "value": "", "disabled": True}],
            },
            "header": [{"key": "Accept", "value": "application/json"}],
        },
        "response": [],
    }
    folder = {"name": "notes", "item": [listing]}
    (done,) = finish({"item": [folder]}, spec, "s3cret")["item"]
    first, alias = done["item"]
    assert first["request"]["url"]["query"] == [
        {"key": "limit", "value": "2", "disabled": False}
    ]
    assert alias["request"]["method"] == "GET"
    assert alias["request"]["url"]["path"] == ["notes"]
    assert alias["request"]["url"]["query"] == [
        {"key": "id", "value": "{{note_id}}", "disabled": False}
    ]
    assert alias["name"].startswith("Read a note as")
    (tests,) = alias["event"]
    assert (
        "pm.test('GET /notes?id= answers 200', function () {" in tests["script"]["exec"]
    )
