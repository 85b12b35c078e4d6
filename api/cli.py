"""Command-line entry points: ``python -m api COMMAND``."""

import argparse
import logging
import sys
from typing import List
from typing import Optional

from api import salary_import
from core.logs import configure_logging
from core.settings import Settings
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
    """Bring every store's schema up to date (SQL: alembic upgrade head)."""
    init_sql(settings)
    return 0


def print_openapi(settings: Settings, args: argparse.Namespace) -> int:
    """Print the OpenAPI document (what GET /openapi.json answers)."""
    from falcon import testing

    from api.app import create_app

    answer = testing.TestClient(create_app(settings)).simulate_get("/openapi.json")
    sys.stdout.write(answer.text)
    return 0


def write_postman(settings: Settings, args: argparse.Namespace) -> int:
    """Finish a collection converted by openapi2postmanv2: tests, chained ids."""
    from api import postman

    return postman.main(args)


def show_settings(settings: Settings, args: argparse.Namespace) -> int:
    """Print every setting with its current value."""
    for env, value, default, doc in settings.describe():
        print(f"{env}={value!r}  # {doc} (default {default!r})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init-db", help=init_db.__doc__).set_defaults(run=init_db)
    commands.add_parser("settings", help=show_settings.__doc__).set_defaults(
        run=show_settings
    )
    commands.add_parser("openapi", help=print_openapi.__doc__).set_defaults(
        run=print_openapi
    )
    finish = commands.add_parser("postman", help=write_postman.__doc__)
    finish.add_argument("converted", help="openapi2postmanv2's output")
    finish.add_argument("spec", help="the OpenAPI document it was converted from")
    finish.add_argument("output", help="where to write the finished collection")
    finish.set_defaults(run=write_postman)
    salary_import.add_command(commands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return args.run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
