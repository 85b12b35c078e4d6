"""The OpenAPI 3 document, generated from the routes and their marshmallow schemas."""

import inspect
import re

import falcon
import swagger_ui_bundle
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from web.errors import PROBLEM_JSON

_METHODS = ("get", "post", "put", "patch", "delete")
_CONVERTED_FIELD = re.compile(r"{(\w+)(:[^}]*)?}")
_CONVERTER_BOUND = re.compile(r"\b(min|max)=(-?\d+)")

_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "object", "description": "field -> messages (422)"},
    },
    "required": ["type", "title", "status", "detail"],
}


_RATE_LIMITED = {
    "description": "Too Many Requests: the client's rate limit (RATE_LIMIT) is "
    "spent; wait Retry-After seconds",
    "headers": {
        "Retry-After": {
            "description": "seconds until the next request is allowed",
            "schema": {"type": "integer"},
        },
        "RateLimit-Policy": {
            "description": "the policy (draft-ietf-httpapi-ratelimit-headers): "
            "name, quota q, window w in seconds",
            "schema": {"type": "string"},
            "example": '"links";q=100;w=60',
        },
        "RateLimit": {
            "description": "what remains (r) and in how many seconds (t) the "
            "bucket is full again or, when nothing remains, a request is allowed",
            "schema": {"type": "string"},
            "example": '"links";r=0;t=1',
        },
    },
    "content": {
        PROBLEM_JSON: {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "example": {
                "type": "about:blank",
                "title": "Too Many Requests",
                "status": 429,
                "detail": "Too many requests: this client may send 100 per 60 s. "
                "Try again in 1 s.",
            },
        }
    },
}


class Routes:
    """Adds routes to the app and remembers them for the OpenAPI document.

    Args:
        app: The app the routes go to.
        rate_limited: ``rate_limited(method, resource)``: whether the rate
            limit applies (the operation may answer 429); None: no limit.
    """

    def __init__(self, app: falcon.App, rate_limited=None):
        self.app = app
        self.entries = []
        self.rate_limited = rate_limited

    def add(self, template: str, resource, *, suffix=None, documented=True, **kwargs):
        """``app.add_route``, recording the route too (unless not ``documented``)."""
        self.app.add_route(template, resource, suffix=suffix, **kwargs)
        if documented:
            self.entries.append((template, resource, suffix))


def build_spec(routes: Routes, title: str, version: str) -> dict:
    """The OpenAPI document of every documented route, as a dict."""
    spec = APISpec(
        title=title,
        version=version,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
    )
    spec.components.schema("Problem", _PROBLEM_SCHEMA)
    for template, resource, suffix in routes.entries:
        operations = {}
        for method in _METHODS:
            name = f"on_{method}" + (f"_{suffix}" if suffix else "")
            responder = getattr(resource, name, None)
            if responder is not None:
                operations[method] = _operation(template, resource, responder)
                if routes.rate_limited and routes.rate_limited(
                    method.upper(), resource
                ):
                    operations[method]["responses"]["429"] = _RATE_LIMITED
        if operations:
            spec.path(
                path=_CONVERTED_FIELD.sub(r"{\1}", template), operations=operations
            )
    return spec.to_dict()


def _operation(template: str, resource, responder) -> dict:
    doc = getattr(responder, "apidoc", {})
    summary, _, description = (inspect.getdoc(responder) or "").partition("\n")
    tag = type(resource).__module__.rsplit(".", 1)[-1]
    op = {"summary": summary.strip(), "tags": [tag], "responses": {}}
    if description.strip():
        op["description"] = description.strip()
    parameters = [
        {"in": "path", "name": name, "required": True, "schema": _path_schema(conv)}
        for name, conv in _CONVERTED_FIELD.findall(template)
    ]
    if doc.get("query") is not None:
        parameters.append({"in": "query", "schema": doc["query"]})
    if parameters:
        op["parameters"] = parameters
    examples = doc.get("examples", {})
    if doc.get("request_body") is not None:
        op["requestBody"] = doc["request_body"]
    elif doc.get("body") is not None:
        media = {"schema": doc["body"]}
        if "body" in examples:
            media["example"] = examples["body"]
        op["requestBody"] = {"required": True, "content": {"application/json": media}}
    statuses = {doc.get("status", 200): doc.get("response"), **doc.get("also", {})}
    for status, schema in sorted(statuses.items()):
        answer = {"description": falcon.code_to_http_status(status)[4:]}
        if schema is not None:
            media_type = doc.get("media_type", "application/json")
            answer["content"] = {media_type: {"schema": schema}}
            if status in examples:
                answer["content"][media_type]["example"] = examples[status]
        op["responses"][str(status)] = answer
    # Any request line over gunicorn's limit (4094 bytes) is refused by the
    # server before the app sees it (api/server.py).
    errors = set(doc.get("errors", ())) | {414}
    if "{" in template:  # a value the route (or its converter) does not know
        errors.add(404)
    if doc.get("body") is not None or doc.get("query") is not None:
        errors.add(422)
    if doc.get("body") is not None or doc.get("request_body") is not None:
        errors.update((400, 413, 415, 422))
    for status in sorted(errors):
        op["responses"][str(status)] = {
            "description": falcon.code_to_http_status(status)[4:],
            "content": {
                PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    return op


def _path_schema(converter: str) -> dict:
    """The schema of a path value: ``:int(min=1, max=9)`` gives its bounds."""
    if not converter.startswith(":int"):
        return {"type": "string"}
    schema = {"type": "integer"}
    for key, value in _CONVERTER_BOUND.findall(converter):
        schema["minimum" if key == "min" else "maximum"] = int(value)
    return schema


class OpenApi:
    """``GET /openapi.json``: the document, built once on first request."""

    def __init__(self, routes: Routes, title: str, version: str):
        self._routes = routes
        self._title = title
        self._version = version
        self._document = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The OpenAPI 3 document of this API."""
        if self._document is None:
            self._document = build_spec(self._routes, self._title, self._version)
        resp.media = self._document


_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#ui"}});</script>
</body></html>
"""


class Docs:
    """``GET /docs``: Swagger UI, served from the swagger-ui-bundle package (no CDN)."""

    def __init__(self, title: str):
        self._page = _DOCS_PAGE.format(title=title)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Interactive documentation (HTML)."""
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self._page


def add_docs(routes: Routes, title: str, version: str) -> None:
    """Serve ``/openapi.json``, ``/docs`` and Swagger UI's static files."""
    routes.add("/openapi.json", OpenApi(routes, title, version), documented=False)
    routes.add("/docs", Docs(title), documented=False)
    routes.app.add_static_route("/docs/static", swagger_ui_bundle.swagger_ui_path)
