"""Gunicorn's logger with JSON lines (``LOG_FORMAT=json``), access lines included.

gunicorn.conf.py selects it as ``logger_class`` when the log format is JSON.
Gunicorn's own lines (``Booting worker ...``) become JSON objects like the
app's; an access line carries ``method``, ``path``, ``route`` (the route
template the app matched, which the metrics middleware leaves in the WSGI
environ), ``status``, ``duration_ms``, ``bytes`` and the ``request_id`` the
app answered with. Whether there are access lines at all is still
gunicorn's ``accesslog`` setting.
"""

from gunicorn import glogging

from core.logs import JsonFormatter
from web.metrics import ROUTE_ENVIRON_KEY


class JsonLogger(glogging.Logger):
    """``gunicorn.glogging.Logger`` writing one JSON object per line."""

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
        path = environ.get("RAW_URI") or environ.get("PATH_INFO", "-")
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
