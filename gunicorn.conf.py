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
# `make bench`'s comparison under PyPy on 2 cores (README, Performance; 5
# workers, 16 wrk connections, /health and a SQL path, each with keep-alive
# and with Connection: close). Once the JIT is warm, sync spends the least
# server CPU per request (about 0.2-0.45 ms against 0.4-0.5 ms for gthread
# with 4 threads and 0.6-1.3 ms for gevent) and serves as many requests/s as
# gthread or more when the machine is not shared; gevent under PyPy was
# slowest, with p99 tails of 0.6-1.2 s on keep-alive connections. The TCP
# connect that sync pays per request (it closes every connection) costs less
# on loopback than the thread hand-off does. Our handlers are short and
# CPU-bound, which is the case sync is made for. Use gthread (WORKER_CLASS=
# gthread THREADS=4) when requests wait long on a backend (large collatz n)
# or clients are slow and no buffering proxy sits in front: a sync worker is
# held for the whole wait.
worker_class = _settings.worker_class
threads = _settings.threads
timeout = 30
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
