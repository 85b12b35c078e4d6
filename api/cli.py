"""Command-line entry points: ``python -m api COMMAND``."""

import argparse
import logging
import os
import sys
import time
from typing import List
from typing import Optional

from rethinkdb.errors import ReqlError

from api import backup
from api import keys
from api import salary_import
from api import supervise
from api import zmq_keys
from core.logs import configure_logging
from core.settings import Settings
from db.notes.rethink import RethinkNotesStore
from db.rethink import CONNECTION_ERRORS
from db.schema import create_schema
from db.schema import current_revision
from db.sql import Database

log = logging.getLogger("api.cli")


def init_sql(settings: Settings) -> None:
    """Migrate the SQL database to the newest revision (``alembic upgrade head``)."""
    database = Database(settings.database_url)
    try:
        create_schema(database.engine)
        revision = current_revision(database.engine)
    finally:
        database.dispose()
    log.info(
        "SQL database at revision %s: %s",
        revision,
        database.engine.url.render_as_string(),
    )


def init_db(settings: Settings, args: argparse.Namespace) -> int:
    """Bring every store's schema up to date.

    SQL: ``alembic upgrade head``; RethinkDB (with ``RETHINKDB_URL``): its
    database, tables and indexes.
    """
    init_sql(settings)
    return init_rethinkdb(settings)


def init_rethinkdb(settings: Settings, wait: float = 30.0) -> int:
    """Create the RethinkDB database, tables and indexes of the notes store.

    Nothing to do without ``RETHINKDB_URL``. Waits up to ``wait`` seconds
    for a server to answer (a cluster starting beside this); tables get
    ``RETHINKDB_REPLICAS`` replicas. Returns the exit status: 2 for a bad
    setting, 1 when the server refuses or never answers.
    """
    if not settings.rethinkdb_url:
        return 0
    try:
        if settings.rethinkdb_replicas < 1:
            raise ValueError("RETHINKDB_REPLICAS must be 1 or more")
        store = RethinkNotesStore.from_url(
            settings.rethinkdb_url,
            table=settings.rethinkdb_table,
            timeout=settings.rethinkdb_timeout,
        )
    except ValueError as ex:
        log.error("%s", ex)
        return 2
    deadline = time.monotonic() + wait
    while True:
        try:
            done = store.create_schema(settings.rethinkdb_replicas)
            break
        except CONNECTION_ERRORS as ex:
            if time.monotonic() >= deadline:
                log.error("RethinkDB at %s: %s", store.target.describe(), ex)
                return 1
            log.info("waiting for RethinkDB at %s ...", store.target.describe())
            time.sleep(1)
        except ReqlError as ex:  # the server's refusal (too few servers, ...)
            log.error(
                "RethinkDB at %s refused the schema (RETHINKDB_REPLICAS=%d): %s",
                store.target.describe(),
                settings.rethinkdb_replicas,
                str(ex).splitlines()[0],
            )
            return 1
    for step in done:
        log.info("%s", step)
    log.info(
        "RethinkDB ready: %s, tables %s",
        store.target.describe(),
        ", ".join(store.table_names),
    )
    return 0


def print_openapi(settings: Settings, args: argparse.Namespace) -> int:
    """Print the OpenAPI document (what GET /openapi.json answers)."""
    from falcon import testing

    from api.app import create_app

    client = testing.TestClient(create_app(settings))
    # A loopback name: one the app always answers (ALLOWED_HOSTS).
    answer = client.simulate_get("/openapi.json", host="localhost")
    if answer.status_code != 200:
        sys.stderr.write(answer.text + "\n")
        return 1
    sys.stdout.write(answer.text)
    return 0


#: PyPy's garbage-collector settings for the server, each unless set in the
#: environment: a 16 MB nursery (PyPy's default, half the last-level cache, is
#: 1 MB here: a worker under load spent 16% of its time collecting) and major
#: collections marked 4 MB per step (the default, twice the nursery, paused a
#: worker for up to 324 ms per step with a 64 MB nursery). The figures:
#: docs/decisions/0005-pypy-gc.md. PyPy reads them only when it starts, so
#: they are set here, before gunicorn's master starts (its workers are forks
#: of it); CPython ignores them.
PYPY_GC = {"PYPY_GC_NURSERY": "16MB", "PYPY_GC_INCREMENT_STEP": "4MB"}
GUNICORN_CONF = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "gunicorn.conf.py"
)


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the server: gunicorn with gunicorn.conf.py (make serve, the image)."""
    env = dict(os.environ)
    for name, value in PYPY_GC.items():
        env.setdefault(name, value)
    argv = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, args.app]
    os.execve(sys.executable, argv, env)
    return 1  # not reached: execve replaces this process


def show_settings(settings: Settings, args: argparse.Namespace) -> int:
    """Print every setting with its current value, secrets masked."""
    for env, value, default, doc in settings.describe():
        print(f"{env}={value!r}  # {doc} (default {default!r})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init-db", help=init_db.__doc__).set_defaults(run=init_db)
    server = commands.add_parser("serve", help=serve.__doc__)
    server.add_argument(
        "app", nargs="?", default="api.wsgi:app", help="WSGI app (default api.wsgi:app)"
    )
    server.set_defaults(run=serve)
    commands.add_parser("settings", help=show_settings.__doc__).set_defaults(
        run=show_settings
    )
    commands.add_parser("openapi", help=print_openapi.__doc__).set_defaults(
        run=print_openapi
    )
    salary_import.add_command(commands)
    keys.add_command(commands)
    backup.add_command(commands)
    supervise.add_command(commands)
    zmq_keys.add_command(commands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return args.run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
