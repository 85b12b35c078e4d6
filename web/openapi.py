"""The OpenAPI 3 document, generated from the routes and their marshmallow schemas.

Each responder's ``@validate`` adds an operationId, examples, the headers it
reads and sends and the limits only settings know; every field of a
:class:`ResponseSchema` is ``required`` unless declared optional, and a seed
alias sharing a path and method (:func:`query_alias`) is described under the
path's ``x-{method}-alias``, since OpenAPI 3.0 has one operation per path and
method.
"""

import functools
import inspect
import re
import urllib.parse
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

import falcon
import marshmallow
import swagger_ui_bundle
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from core import wire
from core.hosts import UNKNOWN_HOST
from web.auth import PUBLIC
from web.auth import public
from web.auth import scope_of
from web.errors import PROBLEM_JSON
from web.errors import status_title

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

#: What each error status says in the examples of the document.
_PROBLEM_DETAILS = {
    400: "The request body is not valid JSON.",
    401: "The signature does not match the body.",
    403: "The verify token does not match.",
    404: "The requested resource could not be found.",
    405: "This method is not allowed on this path.",
    409: "The request conflicts with what is stored.",
    410: "This short link has expired.",
    412: "The note has changed since the version given in If-Match.",
    413: "The request body is larger than 1048576 bytes.",
    415: "Send the body as JSON with 'Content-Type: application/json'.",
    422: "The request did not pass validation; see errors.",
    503: "notes store unavailable",
}

_NOT_HTTP = "The request is not valid HTTP: Invalid HTTP Header: 'IF-NONE-MATCH'"


def problem_example(status: int) -> dict:
    """An example problem body for ``status``."""
    body = {
        "type": "about:blank",
        "title": status_title(status),
        "status": status,
        "detail": _PROBLEM_DETAILS.get(status, status_title(status)),
    }
    if status == 422:
        body["errors"] = {"title": ["Missing data for required field."]}
    return body


def _header(name: str, description: str, example: str, **schema) -> dict:
    return {
        "in": "header",
        "name": name,
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
        "example": example,
    }


#: Request headers an operation may name in ``@validate(headers=...)``.
HEADERS: Dict[str, dict] = {
    "If-Match": _header(
        "If-Match",
        "The ETag you read: the write happens only if the item is still at that "
        "version, else 412.",
        '"1"',
    ),
    "If-None-Match": _header(
        "If-None-Match", "The ETag you have: 304 Not Modified if it is current.", '"1"'
    ),
    "X-Hub-Signature-256": _header(
        "X-Hub-Signature-256",
        "github scheme: sha256= and the hex HMAC-SHA256 of the raw body, keyed "
        "with the source's secret.",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        pattern="^sha256=[0-9a-f]{64}$",
    ),
    "X-GitHub-Event": _header("X-GitHub-Event", "github scheme: the event.", "ping"),
    "X-GitHub-Delivery": _header(
        "X-GitHub-Delivery",
        "github scheme: the delivery id (1-200 characters).",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        maxLength=200,
    ),
    "webhook-id": _header(
        "webhook-id",
        "standard scheme: the delivery id (1-200 characters).",
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        maxLength=200,
    ),
    "webhook-timestamp": _header(
        "webhook-timestamp",
        "standard scheme: Unix seconds; refused more than 5 minutes off.",
        "1735689600",
        pattern="^[0-9]+$",
    ),
    "webhook-signature": _header(
        "webhook-signature",
        'standard scheme: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body", '
        "keyed with the base64-decoded secret; several separated by spaces.",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ),
}

#: Response headers an operation may name in ``@validate(response_headers=...)``.
RESPONSE_HEADERS: Dict[str, dict] = {
    "ETag": {
        "description": "The version of what was answered; send it back in "
        "If-Match (writes) or If-None-Match (reads).",
        "schema": {"type": "string"},
        "example": '"1"',
    },
    "Location": {
        "description": "Where the created item is.",
        "schema": {"type": "string"},
        "example": "/notes/5f0c3b1e9a3d4c8e8b1f2a7d6c5e4b3a",
    },
    "Cache-Control": {
        "description": "How long the answer may be reused.",
        "schema": {"type": "string"},
        "example": "public, max-age=300",
    },
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


_BEARER = "apiKey"
_BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "fpa_ followed by 38 letters and digits",
    "description": "An API key, made with `python -m api keys create` "
    "(docs/operations/security.md). Each operation says the scope it needs "
    "(`x-scope`): read, write (read, and every create, update and delete) or "
    "admin (everything).",
}


def _secure(operation: dict, scope: str) -> None:
    """Say what ``operation`` needs: no key, or a key with ``scope``; 401, 403."""
    if scope == PUBLIC:
        operation["security"] = []
        return
    operation["security"] = [{_BEARER: []}]
    operation["x-scope"] = scope
    needs = f"Needs an API key with the `{scope}` scope."
    operation["description"] = (
        operation.get("description", "") + "\n\n" + needs
    ).strip()
    refusals = {
        401: f"This operation needs an API key ({scope} scope).",
        403: f"The key 'reports' does not have the {scope} scope.",
    }
    for status, detail in refusals.items():
        example = {**problem_example(status), "detail": detail}
        operation["responses"][str(status)] = {
            "description": status_title(status),
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": example,
                }
            },
        }


class ResponseSchema(marshmallow.Schema):
    """A response body: each field is in every answer, unless declared optional.

    Declare a field that some answers leave out with ``metadata={"optional":
    True}`` (and say when it is there in its description). Every other field
    is ``required`` in the document; a response is never loaded, so that is
    all ``required`` does here, and the contract tests fail any answer that
    leaves out a required field.
    """

    def on_bind_field(self, field_name: str, field_obj) -> None:
        field_obj.required = not field_obj.metadata.get("optional", False)


def query_alias(parameter: str, alias):
    """Decorator: a request whose query names ``parameter`` goes to ``alias``.

    For a seed alias that answers another shape on the path and method of
    the decorated responder (``GET /notes?id=``). ``alias`` is a responder
    with its own ``@validate`` and ``operation_id``, whose query schema
    requires ``parameter``; the decorated responder's does not name it, so
    each operation has answers of one shape. The document describes
    ``alias`` as its own operation, under the path's ``x-{method}-alias``.
    """

    def decorator(responder):
        @functools.wraps(responder)
        def wrapper(resource, req: falcon.Request, resp: falcon.Response, *args, **kw):
            if parameter in req.params:
                return alias(resource, req, resp, *args, **kw)
            return responder(resource, req, resp, *args, **kw)

        wrapper.query_alias = alias
        return wrapper

    return decorator


def alias_key(method: str) -> str:
    """The path item key that holds the alias operation of ``method``."""
    return f"x-{method}-alias"


class Routes:
    """Adds routes to the app and remembers them for the OpenAPI document.

    Args:
        app: The app the routes go to.
        rate_limited: ``rate_limited(method, resource)``: whether the rate
            limit applies (the operation may answer 429); None: no limit.
        scopes: Where to record what each operation needs (see :meth:`add`).
        auth: Whether keys are checked (``AUTH``): the document then says
            which operation needs which scope.
    """

    def __init__(self, app: falcon.App, rate_limited=None, scopes=None, auth=True):
        self.app = app
        self.entries = []
        self.rate_limited = rate_limited
        self.auth = auth
        self.scopes: Dict[Tuple[str, str], str] = {} if scopes is None else scopes

    def add(self, template: str, resource, *, suffix=None, documented=True, **kwargs):
        """``app.add_route``, recording the route too (unless not ``documented``).

        Also records the scope each responder of ``resource`` needs
        (:func:`web.auth.scope_of`) in ``scopes``, by template and method.
        """
        self.app.add_route(template, resource, suffix=suffix, **kwargs)
        for method, responder in _responders(resource, suffix):
            self.scopes[(template, method.upper())] = scope_of(responder)
        if documented:
            self.entries.append((template, resource, suffix))


def _responders(resource, suffix: Optional[str]):
    """``(method, responder)`` for each method ``resource`` answers with ``suffix``."""
    for method in _METHODS:
        name = f"on_{method}" + (f"_{suffix}" if suffix else "")
        responder = getattr(resource, name, None)
        if responder is not None:
            yield method, responder


def build_spec(
    routes: Routes, title: str, version: str, servers: Optional[List[str]] = None
) -> dict:
    """The OpenAPI document of every documented route, as a dict."""
    spec = APISpec(
        title=title,
        version=version,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        servers=[{"url": url} for url in servers or ()],
    )
    spec.components.schema("Problem", _PROBLEM_SCHEMA)
    if routes.auth:
        spec.components.security_scheme(_BEARER, _BEARER_SCHEME)
    finishing = []
    for template, resource, suffix in routes.entries:
        operations = {}
        path = _CONVERTED_FIELD.sub(r"{\1}", template)
        for method, responder in _responders(resource, suffix):
            operation_id = _operation_id(method, resource, suffix)
            documented = [(method, responder, operation_id)]
            alias = getattr(responder, "query_alias", None)
            if alias is not None:
                documented.append((alias_key(method), alias, operation_id + "Alias"))
            limited = routes.rate_limited and routes.rate_limited(
                method.upper(), resource
            )
            for key, documented_responder, default_id in documented:
                operation = _operation(template, resource, documented_responder)
                if limited:
                    operation["responses"]["429"] = _RATE_LIMITED
                operation["operationId"] = (
                    getattr(documented_responder, "apidoc", {}).get("operation_id")
                    or default_id
                )
                if routes.auth:
                    _secure(operation, scope_of(documented_responder))
                operations[key] = operation
                finishing.append((path, key, resource, documented_responder))
        if operations:
            spec.path(path=path, operations=operations)
    document = spec.to_dict()
    for path, key, resource, responder in finishing:
        _finish(document["paths"][path][key], resource, responder)
    return document


def _operation_id(method: str, resource, suffix: Optional[str]) -> str:
    """``getNotesItem``: the method, the resource class and the suffix."""
    words = [type(resource).__name__] + (suffix.split("_") if suffix else [])
    return method + "".join(word[:1].upper() + word[1:] for word in words)


def _finish(operation: dict, resource, responder) -> None:
    """What needs apispec's expanded parameters: their examples, then the hook."""
    doc = getattr(responder, "apidoc", {})
    examples = doc.get("examples", {})
    for parameter in operation.get("parameters", ()):
        if parameter["name"] in examples and "example" not in parameter:
            parameter["example"] = examples[parameter["name"]]
    if doc.get("document") is not None:
        doc["document"](resource, operation)


def parameter(operation: dict, name: str) -> dict:
    """The parameter ``name`` of ``operation`` (for ``document=`` hooks)."""
    return next(p for p in operation.get("parameters", ()) if p["name"] == name)


def _operation(template: str, resource, responder) -> dict:
    doc = getattr(responder, "apidoc", {})
    examples: Dict[Any, Any] = doc.get("examples", {})
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
    parameters.extend(dict(HEADERS[name]) for name in doc.get("headers", ()))
    if parameters:
        op["parameters"] = parameters
    if doc.get("request_body") is not None:
        op["requestBody"] = doc["request_body"]
    elif doc.get("body") is not None:
        media = {"schema": doc["body"]}
        if "body" in examples:
            media["example"] = examples["body"]
        op["requestBody"] = {"required": True, "content": {"application/json": media}}
    if doc.get("callbacks"):
        op["callbacks"] = doc["callbacks"]
    statuses = {doc.get("status", 200): doc.get("response"), **doc.get("also", {})}
    response_headers = doc.get("response_headers", {})
    for status, schema in sorted(statuses.items()):
        answer: Dict[str, Any] = {"description": status_title(status)}
        if schema is not None:
            media_type = doc.get("media_type", "application/json")
            answer["content"] = {media_type: {"schema": schema}}
            if status in examples:
                answer["content"][media_type]["example"] = examples[status]
        if status in response_headers:
            answer["headers"] = {
                name: RESPONSE_HEADERS[name] for name in response_headers[status]
            }
        op["responses"][str(status)] = answer
    # Any request line over gunicorn's limit (4094 bytes) is refused by the
    # server before the app sees it (api/server.py).
    errors = set(doc.get("errors", ())) | {414}
    if "{" in template:  # a value the route (or its converter) does not know
        errors.add(404)
    if doc.get("body") is not None or doc.get("query") is not None:
        errors.add(422)
    if doc.get("body") is not None:
        errors.update((413, 415))
    # Any operation: a Host the server is not known by (ALLOWED_HOSTS); a
    # header value with control characters, which is not HTTP and which the
    # server refuses before the app sees it (api/server.py).
    errors.add(400)
    for status in sorted(errors):
        example = problem_example(status)
        if status == 400 and doc.get("body") is None:
            example["detail"] = _NOT_HTTP if doc.get("headers") else UNKNOWN_HOST
        op["responses"][str(status)] = {
            "description": status_title(status),
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": example,
                }
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
    """``GET /openapi.json``: the document, built once on first request.

    Served indented, so that ``curl ... | head`` shows something readable.
    """

    def __init__(
        self, routes: Routes, title: str, version: str, servers: List[str] = ()
    ):
        self._routes = routes
        self._title = title
        self._version = version
        self._servers = list(servers)
        self._text = None

    def document(self) -> dict:
        """The document as a dict (built anew)."""
        return build_spec(self._routes, self._title, self._version, self._servers)

    @public
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The OpenAPI 3 document of this API."""
        if self._text is None:
            self._text = wire.dumps_pretty(self.document())
        resp.content_type = falcon.MEDIA_JSON
        resp.text = self._text


_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-init.js"></script>
</body></html>
"""

# A file of its own, not an inline script, so that the page's CSP allows
# scripts from this origin only. No validator: its badge is an image from
# validator.swagger.io.
_DOCS_SCRIPT = (
    'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", '
    "validatorUrl: null});\n"
)


def docs_policy(servers: List[str] = ()) -> str:
    """The Content-Security-Policy of ``/docs``: its own scripts and styles,
    Swagger UI's inline SVG icons, calls to this origin and to ``servers``
    (where "Try it out" sends requests), no framing."""
    origins = sorted(
        {
            f"{url.scheme}://{url.netloc}"
            for url in map(urllib.parse.urlsplit, servers)
            if url.scheme and url.netloc
        }
    )
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            " ".join(["connect-src 'self'", *origins]),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


class Docs:
    """``GET /docs``: Swagger UI, served from the swagger-ui-bundle package (no CDN)."""

    def __init__(self, title: str, servers: List[str] = ()):
        self._page = _DOCS_PAGE.format(title=title)
        self._headers = {
            "Content-Security-Policy": docs_policy(servers),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }

    @public
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Interactive documentation (HTML)."""
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self._page
        resp.set_headers(self._headers)

    @public
    def on_get_script(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The script that starts Swagger UI on ``/docs``."""
        resp.content_type = falcon.MEDIA_JS
        resp.text = _DOCS_SCRIPT
        resp.set_headers(self._headers)


def add_docs(routes: Routes, title: str, version: str, servers: List[str] = ()) -> None:
    """Serve ``/openapi.json``, ``/docs`` and Swagger UI's static files."""
    routes.add(
        "/openapi.json", OpenApi(routes, title, version, servers), documented=False
    )
    docs = Docs(title, servers)
    routes.add("/docs", docs, documented=False)
    routes.add("/docs/swagger-init.js", docs, suffix="script", documented=False)
    routes.app.add_static_route("/docs/static", swagger_ui_bundle.swagger_ui_path)
