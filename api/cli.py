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
