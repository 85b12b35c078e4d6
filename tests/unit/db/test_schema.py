"""Alembic: the migrations build the schema the models describe, on any database.

Runs on the test's own database: a SQLite file, or a PostgreSQL schema
with TEST_DATABASE_URL (CI runs both), so "models == migrations" is checked
on both.
"""

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from api import cli
from db.schema import BASELINE
from db.schema import alembic_config
from db.schema import create_schema
from db.schema import current_revision
from db.schema import head_revision
from db.schema import metadata
from db.sql import make_engine


def _differences(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def test_upgrade_head_builds_what_the_models_describe(database_url):
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    create_schema(engine)
    assert current_revision(engine) == head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert set(metadata.tables) | {"alembic_version"} == tables
    assert _differences(engine) == []
    # Rows the tables start with, as create_all makes them: the notes
    # store's change counter (it only ever UPDATEs it).
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT name, value FROM note_sequence"))
        assert rows.all() == [("changes", 0)]
    create_schema(engine)  # again: nothing to do, nothing fails
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_every_revision_downgrades_and_upgrades_again(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    create_schema(engine)
    assert _differences(engine) == []
    engine.dispose()


def test_a_database_made_before_migrations_is_adopted(database_url):
    engine = make_engine(database_url)
    # The tables as create_all made them before 0.3: revision 0001's schema,
    # without Alembic's bookkeeping.
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, BASELINE)
        connection.execute(sa.text("DROP TABLE alembic_version"))
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO primes (number) VALUES (0)"))
    create_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:  # the data is still there
        assert connection.execute(sa.text("SELECT count(*) FROM primes")).scalar() == 1
    engine.dispose()


def test_init_db_runs_the_migrations(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli.main(["init-db"]) == 0
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_processes_that_start_together_all_find_the_schema(database_url):
    # Alembic's context is one per process, so the race is between processes.
    import os
    import subprocess
    import sys

    from tests.support.live import ROOT

    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    command_line = [sys.executable, "-m", "api", "init-db"]
    children = [
        subprocess.Popen(
            command_line, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outcomes = [(child.wait(120), child.stderr.read()) for child in children]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_0007_strips_stored_referrers_and_keeps_one_hash_per_body(database_url):
    engine = make_engine(database_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
    referrers = {
        1: "https://mail.example/inbox?token=s3cret#msg",
        2: "https://ann:pw@wiki.example/page",
        3: "https://news.example/story",
        4: None,
        5: "http://[::1/x?token=s3cret",
    }
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO links (id, url, created_at, visits, deleted) "
                "VALUES (1, 'https://example.com/', '2026-01-01 00:00:00', 5, false)"
            )
        )
        for pk, referrer in referrers.items():
            connection.execute(
                sa.text(
                    "INSERT INTO visits (id, link_id, visited_at, referrer, visitor) "
                    "VALUES (:pk, 1, '2026-01-01 00:00:00', :referrer, 'v')"
                ),
                {"pk": pk, "referrer": referrer},
            )
        for pk, source, body in [
            (1, "github", "aa"),
            (2, "github", "aa"),  # the same body again, after the window
            (3, "github", "bb"),
            (4, "other", "aa"),
            (5, "acme", None),
            (6, "acme", None),
        ]:
            connection.execute(
                sa.text(
                    "INSERT INTO webhook_deliveries (id, source, delivery_id, event, "
                    "payload, received_at, status, attempts, body_sha256) VALUES "
                    "(:pk, :source, :delivery, 'ping', '{}', '2026-01-01 00:00:00', "
                    "'processed', 1, :body)"
                ),
                {"pk": pk, "source": source, "delivery": f"d-{pk}", "body": body},
            )
    create_schema(engine)  # up to head: 0007
    with engine.connect() as connection:
        stored = dict(
            connection.execute(sa.text("SELECT id, referrer FROM visits")).all()
        )
        hashes = dict(
            connection.execute(
                sa.text("SELECT id, body_sha256 FROM webhook_deliveries")
            ).all()
        )
    assert stored == {
        1: "https://mail.example/inbox",
        2: "https://wiki.example/page",
        3: "https://news.example/story",
        4: None,
        5: None,
    }
    assert hashes == {1: None, 2: "aa", 3: "bb", 4: "aa", 5: None, 6: None}
    assert _differences(engine) == []
    engine.dispose()
