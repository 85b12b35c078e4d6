"""Gunicorn settings, read from the same Settings object as the app."""

import multiprocessing

from api.settings import Settings

_settings = Settings.from_env()

# Server socket
bind = f"{_settings.host}:{_settings.port}"
backlog = 2048

# Worker processes. PyPy's JIT makes each worker hold more memory than
# CPython's, so the usual 2 x cores + 1 is capped.
workers = _settings.workers or min(2 * multiprocessing.cpu_count() + 1, 8)
worker_class = "sync"
# A sync worker busy with one request for longer than this is killed; a
# collatz request may wait COLLATZ_TIMEOUT seconds before its 503, so leave room.
timeout = max(30, int(_settings.collatz_timeout) + 10)
graceful_timeout = 20
keepalive = 5  # used by threaded/async worker classes; sync closes each connection

# Logging: the access log carries the request id the app set or echoed.
loglevel = _settings.log_level
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'


def on_starting(server):
    """Create missing SQL tables once, in the master, before workers fork."""
    from db.sql import Database
    from db.sql import create_schema

    database = Database(_settings.database_url)
    create_schema(database.engine)
    database.dispose()
