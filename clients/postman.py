"""The Postman collection: openapi2postmanv2's conversion of the spec, made runnable.

:func:`finish` adds what a converter cannot know, so that the collection runs
top to bottom against a fresh server (``make newman``): status tests, ids
chained through variables, the ``x-get-alias`` requests, creates first and
deletes last, a signed inbound webhook, and examples JavaScript would round.

Usage: docs/user/clients.md
"""

import argparse
import copy
import json
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

from web.openapi import alias_key

_SUCCESS_PREFERENCE = (201, 202, 207, 200, 204, 302, 301, 303, 307, 308)
#: Path parameter -> (the create operation, the field of its answer that holds it).
_CHAINED = {
    "note_id": ("post", "/notes", "id"),
    "code": ("post", "/links", "code"),
    "subscription_id": ("post", "/subscriptions", "id"),
}
#: (path, query parameter) -> the collection variable it takes.
_CHAINED_QUERY = {("/notes", "id"): "note_id"}
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


def _tests(
    method: str, template: str, operation: dict, shown: Optional[str] = None
) -> List[str]:
    status = expected_status(operation)
    declared = sorted(int(s) for s in operation["responses"])
    lines = [
        f"pm.test('{method} {shown or template} answers {status}', function () {{",
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


def _finish_request(item: dict, spec: dict, key: Optional[str] = None) -> None:
    """Examples, chained ids and tests for the operation ``key`` of the item's path
    (default: its method's)."""
    request = item["request"]
    method = request["method"]
    template = _path_template(request)
    operation = spec["paths"][template][key or method.lower()]
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
        if (template, query["key"]) in _CHAINED_QUERY:
            query["value"] = "{{" + _CHAINED_QUERY[template, query["key"]] + "}}"
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
                "exec": _tests(
                    method, template, operation, _shown(template, key, operation)
                ),
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


def _shown(template: str, key: Optional[str], operation: dict) -> Optional[str]:
    """How the tests name an alias's request: ``/notes?id=``."""
    if key is None:
        return None
    names = [
        p["name"]
        for p in operation.get("parameters", ())
        if p["in"] == "query" and p.get("required")
    ]
    return template + "?" + "&".join(f"{name}=" for name in names)


def _alias_item(item: dict, spec: dict) -> Optional[dict]:
    """A request for the path's alias of the item's method (``x-get-alias``).

    A copy of the item's request with the alias's query parameters instead of
    the operation's; None when the path has no such alias.
    """
    request = item["request"]
    key = alias_key(request["method"].lower())
    operation = spec["paths"][_path_template(request)].get(key)
    if operation is None:
        return None
    alias = copy.deepcopy(
        {k: v for k, v in item.items() if k not in ("id", "response", "event")}
    )
    alias["name"] = alias["request"]["name"] = operation["summary"]
    alias["request"]["description"] = {
        "content": operation.get("description", ""),
        "type": "text/plain",
    }
    alias["request"]["url"]["query"] = [
        {"key": p["name"], "value": "", "disabled": not p.get("required")}
        for p in operation.get("parameters", ())
        if p["in"] == "query"
    ]
    _finish_request(alias, spec, key)
    return alias


def _walk(items: List[dict], spec: dict) -> List[dict]:
    finished = []
    for item in items:
        if "item" in item:
            item["item"] = _walk(item["item"], spec)
            finished.append(item)
            continue
        _finish_request(item, spec)
        finished.append(item)
        alias = _alias_item(item, spec)
        if alias is not None:
            finished.append(alias)
    return sorted(
        finished,
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


def main(argv: Optional[List[str]] = None, secret: Optional[str] = None) -> int:
    """``python -m clients.postman CONVERTED SPEC OUTPUT``."""
    parser = argparse.ArgumentParser(prog="python -m clients.postman")
    parser.add_argument("converted", help="openapi2postmanv2's output")
    parser.add_argument("spec", help="the OpenAPI document it was converted from")
    parser.add_argument("output", help="where to write the finished collection")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    raise SystemExit(main())
