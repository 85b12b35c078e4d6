"""The error contract: every error leaves as RFC 9457 problem details.

Domain errors from the stores and marshmallow validation errors are mapped
here, once; anything unexpected becomes a 500 problem with no traceback in
the body and a full one in the log, tagged with the request id.
"""

import logging
from http import HTTPStatus
from typing import Optional

import falcon
import marshmallow

from db import errors as domain
from web import metrics

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(falcon.HTTPError):
    """An HTTP error with RFC 9457 fields: ``type``, ``title``, ``status``, ``detail``.

    Args:
        status: HTTP status code (int).
        detail: What went wrong, for a human.
        errors: Field errors (``{"field": ["message"]}``), for 422.
        type_: A URI naming the problem type; ``about:blank`` by default.
        extra: More members copied into the body (for example ``duplicates``).
    """

    def __init__(
        self,
        status: int,
        detail: Optional[str] = None,
        *,
        errors=None,
        type_: str = "about:blank",
        headers=None,
        **extra,
    ):
        super().__init__(
            status, title=status_title(status), description=detail, headers=headers
        )
        self.type = type_
        self.errors = errors
        self.extra = extra

    def to_dict(self, obj_type=dict):
        body = problem_body(self)
        body.update(self.extra)
        if self.errors is not None:
            body["errors"] = self.errors
        return body


#: RFC 9110's reason phrases where Python's (older RFCs') differ.
_RFC9110_TITLES = {
    413: "Content Too Large",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}


def status_title(status: int) -> str:
    """The ``title`` of an about:blank problem: the status's RFC 9110 phrase."""
    return _RFC9110_TITLES.get(status) or HTTPStatus(status).phrase


def problem_body(error: falcon.HTTPError) -> dict:
    """The problem-details members common to every HTTP error.

    With ``type`` about:blank, RFC 9457 asks for the status phrase as the
    title, so Falcon's own titles ("Invalid JSON", ...) become the detail
    when there is no other.
    """
    status = error.status_code
    problem_type = getattr(error, "type", "about:blank")
    title = status_title(status)
    detail = error.description
    if (
        not detail
        and error.title
        and error.title != title
        and not error.title[:1].isdigit()
    ):
        detail = error.title
    return {
        "type": problem_type,
        "title": title,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
    }


def serialize(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError):
    """Error serializer: problem+json whatever the client accepts."""
    body = error.to_dict() if isinstance(error, Problem) else problem_body(error)
    resp.content_type = PROBLEM_JSON
    resp.media = body


_DOMAIN_STATUS = {
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Gone: 410,
    domain.PreconditionFailed: 412,
    domain.Unavailable: 503,
}


def _domain_error(req, resp, ex, params):
    status = next(
        _DOMAIN_STATUS[cls] for cls in type(ex).__mro__ if cls in _DOMAIN_STATUS
    )
    if status == 503:
        # The underlying exception (a lock timeout, a refused connection) is
        # what explains the 503: logged in full, with the request id.
        cause = ex.__cause__ or ex.__context__
        log.warning(
            "backend unavailable in %s %s: %s%s",
            req.method,
            req.path,
            ex.detail,
            f" ({type(cause).__name__}: {cause})" if cause else "",
            exc_info=(type(cause), cause, cause.__traceback__) if cause else None,
        )
        metrics.count_store_error(req, ex)
    else:
        log.debug("domain error %s: %s", status, ex.detail)
    raise Problem(status, ex.detail, **ex.extra)


def _validation_error(req, resp, ex, params):
    raise Problem(
        422,
        "The request did not pass validation; see errors.",
        errors=ex.normalized_messages(),
    )


def _unexpected_error(req, resp, ex, params):
    if isinstance(ex, (falcon.HTTPError, falcon.HTTPStatus)):
        raise ex
    log.exception("unhandled error in %s %s", req.method, req.path)
    raise Problem(500, "An internal error occurred; it has been logged.")


def install(app: falcon.App) -> None:
    """Register the problem serializer and the error handlers on ``app``."""
    # Falcon looks handlers up by the most specific class, so registration
    # order does not matter; Exception is only the last resort.
    app.add_error_handler(Exception, _unexpected_error)
    app.add_error_handler(domain.StoreError, _domain_error)
    app.add_error_handler(marshmallow.ValidationError, _validation_error)
    app.set_error_serializer(serialize)
