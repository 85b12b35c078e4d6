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

# Worker class: sync (WORKER_CLASS and THREADS override it). Chosen from
# `make bench`'s comparison under PyPy on 2 cores (README, Performance): 5
# workers, 16 wrk connections, /health and a SQL path, each with keep-alive
# and with Connection: close, after the JIT warm-up. sync spent the least
# server CPU per request (0.11-0.22 ms, against 0.21-1.24 ms for gthread with
# 4 threads and 0.24-0.53 ms for gevent), served the most requests/s
# (4,300-7,600 against 1,100-5,800 and 3,300-5,000) and had the shortest p99
# (8-30 ms against 33-109 ms and, for gevent on keep-alive connections,
# 280-380 ms). The TCP connect sync pays for every request (it closes each
# connection) costs less than gthread's hand-off between threads; our
# handlers are short and CPU-bound, which is what sync is made for. Use
# gthread (WORKER_CLASS=gthread THREADS=4) when requests wait long on a
# backend (large collatz n) or slow clients reach gunicorn with no buffering
# proxy in front: a sync worker is held for the whole wait. (Ranges from a
# run on a shared machine; the README's full-run table is the reference.)
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


def on_starting(server):
    """Create missing SQL tables once, in the master, before workers fork."""
    from db.sql import Database
    from db.sql import create_schema

    database = Database(_settings.database_url)
    create_schema(database.engine)
    database.dispose()
