"""Logging set-up shared by the API, the CLI and the workers."""

import logging
import sys

from api.middleware import RequestIdFilter

FORMAT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"


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
