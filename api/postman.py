"""The Postman collection: openapi2postmanv2's conversion of the spec, made runnable.

``make postman`` converts ``/openapi.json`` with openapi-to-postmanv2 (npm)
and hands the result to :func:`finish`, which adds what a converter cannot
know, so that the collection runs top to bottom against a fresh server
(``make newman``) and every request gets the answer it is meant to get:

- a test per request on its status code: the success status the document
  declares for the operation (201 for a create, 204 for a delete, ...),
  and that the status is one the document lists at all;
- chaining: the create requests store the new note's id, link's code and
  subscription's id in collection variables, and the requests on one item
  use them (``{{note_id}}``), so nothing depends on ids of another database;
- order: in each folder creates run first and deletes last;
- a signed inbound webhook: a pre-request script signs the body with the
  ``webhook_secret`` variable (GitHub's scheme) for the ``github`` source;
- the spec's examples restored where JavaScript loses digits (64-bit primes),
  and the query parameters with examples switched on.
"""

import argparse
import json
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

_SUCCESS_PREFERENCE = (201, 202, 207, 200, 204, 302, 301, 303, 307, 308)
#: Path parameter -> (the create operation, the field of its answer that holds it).
_CHAINED = {
    "note_id": ("post", "/notes", "id"),
    "code": ("post", "/links", "code"),
    "subscription_id": ("post", "/subscriptions", "id"),
}
_ORDER = {"POST": 0, "GET": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
_SIGN_GITHUB = [
    "// Sign the body as GitHub does, with the webhook_secret variable.",
    "const cryptojs = require('crypto-js');",
    "const secret = pm.collectionVariables.get('webhook_secret');",
    "const body = pm.request.body ? pm.request.body.raw : '';",
    "const signature = cryptojs.HmacSHA256(body, secret).toString(cryptojs.enc.Hex);",
    "pm.request.headers.upsert({key: 'X-Hub-Signature-256', "
    "value: 'sha256=' + signature});",
    "pm.request.headers.upsert({key: 'X-GitHub-Event', value: 'ping'});",
    "pm.request.headers.upsert({key: 'X-GitHub-Delivery', value: pm.variables"
    ".replaceIn('{{$guid}}')});",
]


def expected_status(operation: dict) -> int:
    """The status a request with the operation's examples is meant to get."""
    declared = {int(status) for status in operation["responses"]}
    for status in _SUCCESS_PREFERENCE:
        if status in declared:
            return status
    raise ValueError(f"no success status in {sorted(declared)}")


def _path_template(request: dict) -> str:
    segments = request["url"]["path"]
    return "/" + "/".join(
        "{" + s[1:] + "}" if s.startswith(":") else s for s in segments
    )


def _tests(method: str, template: str, operation: dict) -> List[str]:
    status = expected_status(operation)
    declared = sorted(int(s) for s in operation["responses"])
    lines = [
        f"pm.test('{method} {template} answers {status}', function () {{",
        f"    pm.response.to.have.status({status});",
        "});",
        "pm.test('the status is one the document declares', function () {",
        f"    pm.expect({json.dumps(declared)}).to.include(pm.response.code);",
        "});",
    ]
    for variable, (create_method, create_path, field) in _CHAINED.items():
        if (method.lower(), template) == (create_method, create_path):
            lines.append(
                f"pm.collectionVariables.set('{variable}', pm.response.json().{field});"
            )
    return lines


def _finish_request(item: dict, spec: dict) -> None:
    request = item["request"]
    method = request["method"]
    template = _path_template(request)
    operation = spec["paths"][template][method.lower()]
    parameters = {p["name"]: p for p in operation.get("parameters", ())}
    for variable in request["url"].get("variable", ()):
        if variable["key"] in _CHAINED:
            variable["value"] = "{{" + variable["key"] + "}}"
        elif "example" in parameters.get(variable["key"], {}):
            variable["value"] = str(parameters[variable["key"]]["example"])
    for query in request["url"].get("query", ()):
        parameter = parameters.get(query["key"], {})
        if "example" in parameter:
            query["disabled"] = False
            value = parameter["example"]
            query["value"] = (
                json.dumps(value) if isinstance(value, bool) else str(value)
            )
            if query["key"] == "id" and template == "/notes":
                query["value"] = "{{note_id}}"
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content and request.get("body", {}).get("mode") == "raw":
        # Python keeps every digit of 18446744073709551557; JavaScript did not.
        request["body"]["raw"] = json.dumps(
            content["application/json"]["example"], indent=2
        )
    events = [
        {
            "listen": "test",
            "script": {
                "type": "text/javascript",
                "exec": _tests(method, template, operation),
            },
        }
    ]
    for credential in (request.get("auth") or {}).get("bearer", ()):
        credential["value"] = "{{apiKey}}"  # newman --env-var apiKey=...
    if method == "POST" and template == "/webhooks/{source}":
        request["header"] = [
            h for h in request.get("header", ()) if h["key"].lower() == "content-type"
        ]
        events.append(
            {
                "listen": "prerequest",
                "script": {"type": "text/javascript", "exec": _SIGN_GITHUB},
            }
        )
    item["event"] = events


def _walk(items: List[dict], spec: dict) -> List[dict]:
    for item in items:
        if "item" in item:
            item["item"] = _walk(item["item"], spec)
        else:
            _finish_request(item, spec)
    return sorted(
        items,
        key=lambda item: (
            _ORDER.get(item.get("request", {}).get("method"), 1)
            if "request" in item
            else 1
        ),
    )


def finish(collection: Dict[str, Any], spec: dict, webhook_secret: str) -> dict:
    """``collection`` (openapi2postmanv2's output for ``spec``), made runnable."""
    collection["item"] = _walk(collection["item"], spec)
    variables = {v["key"]: v for v in collection.get("variable", [])}
    for key, value in (
        ("note_id", ""),
        ("code", ""),
        ("subscription_id", ""),
        ("webhook_secret", webhook_secret),
        ("apiKey", ""),
    ):
        variables.setdefault(key, {"key": key, "value": value})
    collection["variable"] = list(variables.values())
    return collection


def main(args: argparse.Namespace, secret: Optional[str] = None) -> int:
    """``python -m api postman CONVERTED SPEC OUTPUT``."""
    with open(args.converted, encoding="utf-8") as f:
        collection = json.load(f)
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    finished = finish(collection, spec, secret or "s3cret")
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(finished, f, indent=2)
        f.write("\n")
    print(f"wrote {args.output}")
    return 0
