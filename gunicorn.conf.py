"""Gunicorn settings, read from the same Settings object as the app."""

import multiprocessing
import os
import platform
import shutil
import tempfile

from core.logs import wants_json
from core.settings import Settings
from core.settings import default_workers

_settings = Settings.from_env()

# Metrics: every worker writes its values to files in one folder, which
# GET /metrics adds up (prometheus_client's multiprocess mode). The variable
# must be set before a worker imports prometheus_client, so it is set here,
# in the master, and the workers inherit it.
_metrics_dir = _settings.metrics_dir or tempfile.mkdtemp(prefix="api-metrics-")
_own_metrics_dir = not _settings.metrics_dir
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
# Made now: the logger class imports web.metrics, whose gauge opens its file
# there, before on_starting runs.
os.makedirs(_metrics_dir, exist_ok=True)
# Imported here, once: child_exit runs in the master's SIGCHLD handler, and an
# import there is re-entered when a second worker exits during it.
from prometheus_client import multiprocess  # noqa: E402

# Server socket
bind = f"{_settings.host}:{_settings.port}"
backlog = 2048

# Worker processes: WORKERS, else one per core under PyPy and 2 x cores + 1
# (at most 8) under CPython (core.settings.default_workers). Each PyPy worker
# JIT-compiles for itself from the requests it serves, so fewer workers warm
# up sooner and queue less for SQLite's write lock; the gevent worker already
# overlaps I/O waits inside one process (docs/decisions/0001-workers-per-core.md).
workers = _settings.workers or default_workers(
    platform.python_implementation(), multiprocessing.cpu_count()
)

# Worker class: gevent (WORKER_CLASS=sync|gthread|gevent overrides it; THREADS
# > 1 makes sync gthread). A sync worker reads one request at a time, so a few
# clients that stall mid-request hold every worker until the timeout; a gevent
# worker reads each connection in a greenlet, so a stalled client holds only
# that. gthread does not help: its threads read bodies with no timeout. Behind
# a buffering proxy, sync is faster (docs/decisions/0002-gevent-worker.md).
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

# Logging. The access log is off unless ACCESS_LOG names a file ("-":
# standard output): gunicorn formats every line in Python (a dict of every
# request and response header for the atoms), which cost 7-34% of the
# requests/s under PyPy. When on, each line carries the request
# id the app set or echoed.
loglevel = _settings.log_level
accesslog = _settings.access_log or None
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'

# Access lines mask the secret query parameters (hub.verify_token, stream
# tickets: core/redact.py). LOG_FORMAT=json: gunicorn's lines, access lines
# included, as JSON objects (route, status, request id, ...), like the app's
# (core/logs.py).
logger_class = "web.accesslog.Logger"
if wants_json(_settings.log_format):
    logger_class = "web.accesslog.JsonLogger"


def on_starting(server):
    """Migrate the SQL database once, in the master, before workers fork.

    Refuses to start open to the network: on an address beyond loopback,
    with AUTH on and no key to let anyone in. Also empties the metrics
    folder: files left by an earlier run would be added to this one's counts.
    """
    from db.keys import KeyStore
    from db.keys import open_without_keys
    from db.schema import create_schema
    from db.sql import Database

    for name in os.listdir(_metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(_metrics_dir, name))

    database = Database(_settings.database_url)
    create_schema(database.engine)
    try:
        refusal = open_without_keys(_settings, KeyStore(database))
    finally:
        database.dispose()
    if refusal:
        server.log.error("%s", refusal)
        raise SystemExit(1)


def post_fork(server, worker):
    """Record the worker's garbage-collector pauses (``/metrics`` serves them)."""
    from core import gc_pauses

    gc_pauses.watch()


def child_exit(server, worker):
    """A worker is gone: its live gauges (requests in flight) stop counting."""
    multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):
    """Remove the metrics folder made for this run (not one given by the user)."""
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
