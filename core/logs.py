"""Logging for every process: one format, the current request id on every line.

The request id is a context variable that ``web.middleware.RequestId`` sets
(daemons log ``-``). ``LOG_FORMAT``: ``text``, ``json`` (one object per line),
or ``auto`` (text on a terminal). Usage: docs/operations/logs.md
"""

import contextvars
import datetime
import json
import logging
import sys

from core.clock import isoformat

#: The current request's id, for log records (see RequestIdFilter).
request_id_var: contextvars.ContextVar = contextvars.ContextVar(
    "request_id", default="-"
)

FORMAT = (
    "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"
)
FORMATS = ("", "text", "json", "auto")

#: Fields an access line adds to its JSON object (set as ``extra=``).
ACCESS_FIELDS = (
    "method",
    "path",
    "route",
    "status",
    "duration_ms",
    "bytes",
    "remote_addr",
    "user_agent",
)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record so formats can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        out = {
            "time": isoformat(moment),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "pid": record.process,
        }
        for field in ACCESS_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                out[field] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        # default=str: a message argument that JSON cannot hold is still logged.
        return json.dumps(out, ensure_ascii=False, default=str)


def wants_json(log_format: str, stream=None) -> bool:
    """Whether ``LOG_FORMAT`` asks for JSON (``auto``: when ``stream`` is no tty)."""
    log_format = (log_format or "text").lower()
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be text, json or auto, got {log_format!r}")
    if log_format == "auto":
        stream = sys.stderr if stream is None else stream
        return not (hasattr(stream, "isatty") and stream.isatty())
    return log_format == "json"


def say(message: str, log_format: str = "text", stream=None) -> None:
    """A command's line for a person: as it is, or one JSON record under JSON logs.

    So that every line ``make serve`` prints under ``LOG_FORMAT=json`` is JSON,
    its own steps (import-salaries, keys dev) included.
    """
    stream = sys.stdout if stream is None else stream
    if wants_json(log_format, stream):
        record = logging.LogRecord("api.cli", logging.INFO, "", 0, message, (), None)
        message = JsonFormatter().format(record)
    print(message, file=stream)


def make_formatter(log_format: str = "text") -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` names."""
    return JsonFormatter() if wants_json(log_format) else logging.Formatter(FORMAT)


def configure_logging(level: str = "info", log_format: str = "text") -> None:
    """Log to stderr with the request id on every line (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_api_handler", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(RequestIdFilter())
    handler._api_handler = True
    root.addHandler(handler)
    root.setLevel(level.upper())
