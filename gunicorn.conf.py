"""Gunicorn settings, read from the same Settings object as the app."""

import multiprocessing
import os
import shutil
import tempfile

from core.logs import wants_json
from core.settings import Settings

_settings = Settings.from_env()

# Metrics: every worker writes its values to files in one folder, which
# GET /metrics adds up (prometheus_client's multiprocess mode). The variable
# must be set before a worker imports prometheus_client, so it is set here,
# in the master, and the workers inherit it.
_metrics_dir = _settings.metrics_dir or tempfile.mkdtemp(prefix="api-metrics-")
_own_metrics_dir = not _settings.metrics_dir
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

# Server socket
bind = f"{_settings.host}:{_settings.port}"
backlog = 2048

# Worker processes. PyPy's JIT makes each worker hold more memory than
# CPython's, so the usual 2 x cores + 1 is capped.
workers = _settings.workers or min(2 * multiprocessing.cpu_count() + 1, 8)

# Worker class: sync (WORKER_CLASS and THREADS override it). Chosen from
# `make bench`'s comparison under PyPy on 2 cores (README, Performance; full
# run of 2026-11-21): 5 workers, 16 wrk connections, after the JIT warm-up.
# On /health sync served ~14,100-14,300 req/s with p99 ~10-11 ms, with or
# without keep-alive (it closes every connection; the connect costs little on
# short, CPU-bound handlers), and 2,400-4,400 req/s with p99 16-24 ms on
# GET /notes/{id}. gthread (4 threads) served about half as much on /health,
# with p99 up to 45 ms (116 ms on notes). gevent with keep-alive served the
# most on /health (18,200 req/s) but with p99 132 ms there and 684 ms on
# notes: one busy greenlet holds up every connection of its worker. Use
# gthread (WORKER_CLASS=gthread THREADS=4) when requests wait long on a
# backend (large collatz n) or slow clients reach gunicorn with no buffering
# proxy in front: a sync worker is held for the whole wait.
worker_class = _settings.worker_class
threads = _settings.threads
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

# LOG_FORMAT=json: gunicorn's lines, access lines included, as JSON objects
# (route, status, request id, ...), like the app's (core/logs.py).
if wants_json(_settings.log_format):
    logger_class = "web.accesslog.JsonLogger"


def on_starting(server):
    """Migrate the SQL database once, in the master, before workers fork.

    Also empties the metrics folder: files left by an earlier run would be
    added to this one's counts.
    """
    from db.schema import create_schema
    from db.sql import Database

    os.makedirs(_metrics_dir, exist_ok=True)
    for name in os.listdir(_metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(_metrics_dir, name))

    database = Database(_settings.database_url)
    create_schema(database.engine)
    database.dispose()


def child_exit(server, worker):
    """A worker is gone: its live gauges (requests in flight) stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):
    """Remove the metrics folder made for this run (not one given by the user)."""
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
