"""Alembic's environment: the project's tables, on the project's engine.

Run by ``db.schema.create_schema`` (``python -m api init-db``, gunicorn's
start, the push worker, the tests), which hands over an open connection, and
by the ``alembic`` command line (alembic.ini), which connects to
``-x url=...`` or else ``DATABASE_URL``.
"""

from alembic import context

from core.settings import Settings
from db.schema import metadata
from db.sql import make_engine


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite alters tables by copying them (ALTER TABLE is limited there).
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Migrate on the connection given, or on one of our own."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    engine = make_engine(url or Settings.from_env().database_url)
    try:
        with engine.connect() as connection:
            _configure(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; give a database")
run()
