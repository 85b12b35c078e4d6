"""Gunicorn's loggers: secrets masked in access lines; JSON lines (``LOG_FORMAT=json``).

:class:`Logger` (text) and :class:`JsonLogger`, picked by gunicorn.conf.py, mask
the secret query parameters (``core.redact``) and leave out credential headers;
with JSON, gunicorn's own lines become JSON too, and an access line carries the
matched ``route`` and the ``request_id``. Usage: docs/operations/logs.md
"""

from gunicorn import glogging

from core.logs import JsonFormatter
from core.redact import MASK
from core.redact import mask_query
from core.redact import mask_target
from web.metrics import ROUTE_ENVIRON_KEY

#: Request headers never written to an access line (as headers, ``{name}i``,
#: and as environ variables, ``{http_name}e``).
_CREDENTIAL_HEADERS = (
    "{authorization}i",
    "{http_authorization}e",
    "{cookie}i",
    "{http_cookie}e",
    "{proxy-authorization}i",
    "{http_proxy_authorization}e",
)


class Logger(glogging.Logger):
    """``gunicorn.glogging.Logger`` whose access lines carry no secrets."""

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        if environ.get("QUERY_STRING"):
            atoms["r"] = mask_target(atoms["r"])
            atoms["q"] = mask_query(atoms["q"])
            for name in ("{raw_uri}e", "{query_string}e"):
                if name in atoms:
                    atoms[name] = mask_target(atoms[name])
        for name in _CREDENTIAL_HEADERS:
            if name in atoms:
                atoms[name] = MASK
        return atoms


class JsonLogger(Logger):
    """:class:`Logger` writing one JSON object per line."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time) -> None:
        if not self.cfg.accesslog:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        headers = {name.lower(): value for name, value in resp.headers}
        method = environ.get("REQUEST_METHOD", "-")
        path = mask_target(environ.get("RAW_URI") or environ.get("PATH_INFO", "-"))
        try:
            status = int(status)
        except (TypeError, ValueError):
            pass
        self.access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "request_id": headers.get("x-request-id", "-"),
                "method": method,
                "path": path,
                "route": environ.get(ROUTE_ENVIRON_KEY),
                "status": status,
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "bytes": getattr(resp, "sent", None),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "user_agent": environ.get("HTTP_USER_AGENT"),
            },
        )
