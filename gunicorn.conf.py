"""Gunicorn settings, read from the same Settings object as the app."""

import multiprocessing
import platform

from core.settings import Settings
from core.settings import default_workers

_settings = Settings.from_env()

# Server socket
bind = f"{_settings.host}:{_settings.port}"
backlog = 2048

# Worker processes: WORKERS, else one per core under PyPy and 2 x cores + 1
# (at most 8) under CPython (core.settings.default_workers). Why one per
# core under PyPy (issue 15, measured on 2 cores with wrk -c16): each worker
# JIT-compiles the code for itself, from the requests it serves, so five
# workers each warm up on a fifth of the traffic; GET /notes/{id} was still
# climbing after 18,000 requests per worker. WORKERS=2 instead of 5 alone gave
# 3.5x the requests/s on GET /notes/{id} and 1.7x on POST /notes, and cut
# POST p99 from 172 ms to 49 ms: five processes queued on SQLite's write
# lock (85% of a write's store time was the wait for it). More workers than
# cores only help when requests wait on I/O, which the sync worker does not
# overlap anyway (see WORKER_CLASS below).
workers = _settings.workers or default_workers(
    platform.python_implementation(), multiprocessing.cpu_count()
)

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

# Logging. The access log is off unless ACCESS_LOG names a file ("-":
# standard output): gunicorn formats every line in Python (a dict of every
# request and response header for the atoms), which cost 7-34% of the
# requests/s under PyPy (issue 15). When on, each line carries the request
# id the app set or echoed.
loglevel = _settings.log_level
accesslog = _settings.access_log or None
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'


def on_starting(server):
    """Create missing SQL tables once, in the master, before workers fork."""
    from db.schema import create_schema
    from db.sql import Database

    database = Database(_settings.database_url)
    create_schema(database.engine)
    database.dispose()
