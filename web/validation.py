"""Request validation with marshmallow, applied by one decorator.

``@validate(body=NoteIn(), query=ListQuery())`` loads the body and query into
``req.context.body`` and ``req.context.query`` before the responder runs (a
422 problem otherwise), after every string has passed :mod:`core.text` (404 for
a path value); the same schemas, with ``response``, feed the OpenAPI document.
"""

import functools
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Callable
from typing import Optional

import falcon
import marshmallow
from marshmallow import fields

from core.text import text_error
from web.errors import Problem


def validate(
    body: Optional[marshmallow.Schema] = None,
    query: Optional[marshmallow.Schema] = None,
    response: Any = None,
    status: int = 200,
    errors: Sequence[int] = (),
    also: Mapping[int, Any] = None,
    media_type: str = "application/json",
    examples: Optional[Mapping[Any, Any]] = None,
    headers: Sequence[str] = (),
    response_headers: Optional[Mapping[int, Sequence[str]]] = None,
    operation_id: Optional[str] = None,
    request_body: Optional[dict] = None,
    callbacks: Optional[dict] = None,
    document: Optional[Callable[[Any, dict], None]] = None,
):
    """Validate a responder's input; describe its output for OpenAPI.

    Args:
        body: Schema the JSON body must load through (unknown keys raise).
        query: Schema for the query string (unknown parameters are ignored).
        response: Schema of the success body (or an OpenAPI schema dict such
            as ``{"oneOf": [...]}``), for the documentation only.
        status: Success status code, for the documentation.
        errors: Error statuses the operation can answer with, for the documentation.
        also: Other non-error statuses and their body schemas (None: no body),
            such as ``{304: None}`` for conditional GETs.
        media_type: The media type of the success bodies.
        examples: Examples for the document: ``"body"`` -> a request body,
            a status -> its response body, a parameter name -> its value.
        headers: Request headers the operation reads (names known to
            web.openapi.HEADERS, such as ``If-Match``).
        response_headers: Status -> names of the headers it sends (``ETag``).
        operation_id: The operationId (default: method, class and suffix).
        request_body: An OpenAPI requestBody, for bodies read raw.
        callbacks: OpenAPI callbacks (requests the API makes, such as webhooks).
        document: ``document(resource, operation)`` edits the operation with
            what only the resource knows (limits from the settings).
    """

    def decorator(responder):
        @functools.wraps(responder)
        def wrapper(
            resource, req: falcon.Request, resp: falcon.Response, *args, **kwargs
        ):
            if text_errors(kwargs):
                raise Problem(404, "Nothing can exist at this path.")
            if query is not None:
                raw = query_dict(req, query)
                _check_text(raw)
                req.context.query = query.load(raw)
            if body is not None:
                media = req.get_media()
                _check_text(media)
                req.context.body = body.load(media)
            return responder(resource, req, resp, *args, **kwargs)

        wrapper.apidoc = {
            "body": body,
            "query": query,
            "response": response,
            "status": status,
            "errors": tuple(errors),
            "also": dict(also or {}),
            "media_type": media_type,
            "examples": dict(examples or {}),
            "headers": tuple(headers),
            "response_headers": dict(response_headers or {}),
            "operation_id": operation_id,
            "request_body": request_body,
            "callbacks": callbacks,
            "document": document,
        }
        return wrapper

    return decorator


def text_errors(value: Any) -> Any:
    """The text rule's errors in ``value`` (a string, or lists and dicts of them).

    Shaped like marshmallow's messages: ``["..."]`` for a string, ``{key:
    errors}`` for the members and items that break it (list items by index,
    keys under their own name); empty (falsy) when everything keeps it.
    """
    if isinstance(value, str):
        problem = text_error(value)
        return [problem] if problem else []
    if isinstance(value, Mapping):
        found = {}
        for key, item in value.items():
            key_errors = text_errors(key)
            errors = key_errors or text_errors(item)
            if errors:
                found[repr(key) if key_errors else key] = errors
        return found
    if isinstance(value, list):
        found = {}
        for index, item in enumerate(value):
            errors = text_errors(item)
            if errors:
                found[index] = errors
        return found
    return []


def _check_text(value: Any) -> None:
    errors = text_errors(value)
    if errors:
        raise marshmallow.ValidationError(
            errors if isinstance(errors, dict) else {"_schema": errors}
        )


def query_dict(req: falcon.Request, schema: marshmallow.Schema) -> dict:
    """The query string as a dict; only List fields take repeated parameters."""
    list_keys = {
        field.data_key or name
        for name, field in schema.fields.items()
        if isinstance(field, fields.List)
    }
    out = {}
    for key, value in req.params.items():
        if key in list_keys:
            out[key] = value if isinstance(value, list) else value.split(",")
        else:
            out[key] = value[-1] if isinstance(value, list) else value
    return out


class QuerySchema(marshmallow.Schema):
    """Base of query-string schemas: parameters the schema does not name are ignored."""

    class Meta:
        unknown = marshmallow.EXCLUDE
