"""Gunicorn settings, read from the same Settings object as the app."""

import multiprocessing

from core.settings import Settings

_settings = Settings.from_env()

# Server socket
bind = f"{_settings.host}:{_settings.port}"
backlog = 2048

# Worker processes. PyPy's JIT makes each worker hold more memory than
# CPython's, so the usual 2 x cores + 1 is capped.
workers = _settings.workers or min(2 * multiprocessing.cpu_count() + 1, 8)

# Worker class: gevent (WORKER_CLASS=sync|gthread|gevent overrides it; THREADS
# > 1 makes sync gthread). Why (issue 16; README, Security and Performance):
# a sync worker reads one request at a time, so five clients that send
# "Content-Length: 100" and then 4 bytes held all five workers until the
# timeout (/health took 41 s). A gevent worker reads each connection in a
# greenlet of its own: a stalled client holds a greenlet, not the worker.
# gthread does not help: its threads read bodies with no timeout at all.
# The cost, measured by bench/slow_clients.py under PyPy (5 workers, wrk 16
# connections, after warm-up; README, Performance): gevent/sync requests per
# second 0.84 (keep-alive) and 0.79 (Connection: close) on GET /notes/{id},
# 1.14 and 0.34 on /health, with longer p99 tails under keep-alive; with 48
# slow clients held, /health answered in ~2 ms under gevent and not within
# 90 s under sync. Behind a buffering proxy, WORKER_CLASS=sync is faster.
# The classes are gunicorn's, from api/server.py: gunicorn's own refusals
# (request line too long, Content-Length beside chunked...) answer as
# problem+json, and gevent reads from a client wait at most `timeout` s.
_WORKER_CLASSES = {
    "sync": "api.server.SyncWorker",
    "gthread": "api.server.ThreadWorker",
    "gevent": "api.server_gevent.GeventWorker",
}
threads = _settings.threads
_worker = _settings.worker_class
if _worker == "sync" and threads > 1:
    _worker = "gthread"
worker_class = _WORKER_CLASSES.get(_worker, _worker)
worker_connections = 1000  # per gevent worker
# A sync worker busy with one request for longer than this is killed; a
# collatz request may wait COLLATZ_TIMEOUT seconds before its 503, so leave room.
timeout = max(30, int(_settings.collatz_timeout) + 10)
graceful_timeout = 20
# gevent: also the longest a client may take to send its request headers.
keepalive = 5  # used by threaded/async worker classes; sync closes each connection

# Logging: the access log carries the request id the app set or echoed.
loglevel = _settings.log_level
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'


def on_starting(server):
    """Create missing SQL tables once, in the master, before workers fork."""
    from db.schema import create_schema
    from db.sql import Database

    database = Database(_settings.database_url)
    create_schema(database.engine)
    database.dispose()
