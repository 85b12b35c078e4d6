"""The SQL schema: every table module, and the migrations that build them.

Table modules import :class:`db.sql.Base`; this module imports them, and only
what creates tables imports it, so there is no import circle. Tables are built
by the Alembic migrations, never ``create_all``: :func:`create_schema` upgrades
to the newest revision, and a test checks that migrations and models agree.
"""

import logging
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import db.checkpoints  # noqa: F401  (push_checkpoints)
import db.keys  # noqa: F401  (api_keys)
import db.link_stats  # noqa: F401  (link_visit_hours, link_visit_sources)
import db.link_tables  # noqa: F401  (links, visits)
import db.notes.sql  # noqa: F401  (notes, note_changes, note_sequence)
import db.primes  # noqa: F401  (primes)
import db.ratelimit  # noqa: F401  (rate_limits)
import db.salaries.tables  # noqa: F401  (employees, salary_departments, salary_imports)
import db.server_secrets  # noqa: F401  (server_secrets)
import db.subscriptions  # noqa: F401  (webhook_subscriptions, webhook_attempts)
import db.webhooks  # noqa: F401  (webhook_deliveries)
from db.sql import Base

log = logging.getLogger(__name__)


class _QuietAlembic(logging.Filter):
    """Drops Alembic's per-connection chatter; keeps "Running upgrade ..."."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Context impl", "Will assume"))


logging.getLogger("alembic.runtime.migration").addFilter(_QuietAlembic())

#: Every table of the SQL store.
metadata = Base.metadata

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The first revision: the schema as it was before migrations existed.
BASELINE = "0001"
#: PostgreSQL advisory lock key that serialises concurrent migrations.
_LOCK = 0x4D1_6A7E


def alembic_config() -> Config:
    """Alembic's configuration for the project's migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision of the migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine):
    """The revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def create_schema(engine: sa.Engine) -> None:
    """Bring the database to the newest revision (``alembic upgrade head``).

    Idempotent, and safe when several processes start at once (gunicorn, the
    push worker): on PostgreSQL they take turns on an advisory lock; on
    SQLite, one that loses the race finds the database at head and is done.
    A database whose tables were made before migrations existed (by
    ``create_all``: it has the tables but no ``alembic_version``) is first
    stamped with the baseline revision, whose tables it already has.
    """
    deadline = time.monotonic() + 60
    while True:
        try:
            _upgrade(engine)
            return
        except sa.exc.DBAPIError:
            # Another process creating the same tables (SQLite has no lock
            # to wait on) made ours fail: once it is done, upgrading is a
            # no-op. Any other failure (the database is down) is raised.
            if time.monotonic() > deadline or not _being_migrated(engine):
                raise
            log.info("another process is migrating the database; waiting")
            time.sleep(0.5)


def _being_migrated(engine: sa.Engine) -> bool:
    try:
        return sa.inspect(engine).has_table("alembic_version")
    except sa.exc.DBAPIError:
        return False


def _upgrade(engine: sa.Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Held until this transaction ends (PostgreSQL runs DDL in it).
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK}
            )
        config.attributes["connection"] = connection
        if MigrationContext.configure(connection).get_current_revision() is None:
            names = set(sa.inspect(connection).get_table_names())
            if "notes" in names and "links" in names:
                log.info("tables without a revision: stamping %s", BASELINE)
                command.stamp(config, BASELINE)
        command.upgrade(config, "head")
