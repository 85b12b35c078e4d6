"""Logging for every process: one format, the current request id on every line.

The request id lives in a context variable that the HTTP middleware sets
(``web.middleware.RequestId``); daemons never set it and log ``-``.
"""

import contextvars
import logging
import sys

#: The current request's id, for log records (see RequestIdFilter).
request_id_var: contextvars.ContextVar = contextvars.ContextVar(
    "request_id", default="-"
)

FORMAT = (
    "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"
)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record so formats can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "info") -> None:
    """Log to stderr with the request id on every line (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_api_handler", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    handler._api_handler = True
    root.addHandler(handler)
    root.setLevel(level.upper())
