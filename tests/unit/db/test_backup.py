"""``python -m api backup|restore``: SQLite round trips and the operator's mistakes.

The runs under steady writes, on PostgreSQL and RethinkDB, are in
tests/e2e/test_backup.py.
"""

import io
import sqlite3
import stat
import tarfile

import pytest
import sqlalchemy as sa

from api.cli import main
from db import backup
from db.schema import create_schema
from db.sql import make_engine


def sqlite_db(path, notes=()):
    """A migrated SQLite database at ``path`` holding ``notes`` (titles)."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    create_schema(engine)
    with engine.begin() as connection:
        for number, title in enumerate(notes):
            connection.execute(
                sa.text(
                    "INSERT INTO notes (id, title, body, created_at, updated_at, "
                    "version, position) VALUES (:id, :title, '', "
                    "'2024-01-01 00:00:00', '2024-01-01 00:00:00', 1, :n)"
                ),
                {"id": f"n{number}", "title": title, "n": number + 1},
            )
    engine.dispose()
    return url


def titles(path):
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT title FROM notes")]


@pytest.fixture
def run(monkeypatch, capsys):
    """``run(DATABASE_URL, *args)``: the CLI's status, standard output and error."""

    def run(database_url, *args, rethinkdb_url=None):
        monkeypatch.setenv("DATABASE_URL", database_url)
        if rethinkdb_url is None:
            monkeypatch.delenv("RETHINKDB_URL", raising=False)
        else:
            monkeypatch.setenv("RETHINKDB_URL", rethinkdb_url)
        capsys.readouterr()  # earlier output (a fixture's migrations) is not the CLI's
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_a_sqlite_backup_restores_into_a_new_database(tmp_path, run):
    source = sqlite_db(tmp_path / "api.db", ["a", "b"])
    to = tmp_path / "api.backup"

    status, out, _ = run(source, "backup", "sql", "--to", str(to))

    assert status == 0
    assert out.startswith(f"backed up SQLite {tmp_path / 'api.db'} to {to} (")
    assert stat.S_IMODE(to.stat().st_mode) == 0o600
    # A file of its own: no write-ahead log beside it (header byte 18: 1).
    assert to.read_bytes()[18] == 1
    status, out, _ = run(
        f"sqlite:///{tmp_path / 'new.db'}", "restore", "sql", "--from", str(to)
    )
    assert status == 0
    assert "it holds 2 rows in 1 table (notes 2)" in out
    assert titles(tmp_path / "new.db") == ["a", "b"]


def test_restore_refuses_a_database_with_rows_unless_forced(tmp_path, run):
    to = tmp_path / "api.backup"
    assert (
        run(sqlite_db(tmp_path / "a.db", ["old"]), "backup", "sql", "--to", str(to))[0]
        == 0
    )
    target = sqlite_db(tmp_path / "b.db", ["precious"])

    status, _, err = run(target, "restore", "sql", "--from", str(to))

    assert status == 1
    assert err == (
        f"restore: SQLite {tmp_path / 'b.db'} is not empty: 1 row in 1 table "
        "(notes 1); restore into an empty one, or add --force to replace it\n"
    )
    assert titles(tmp_path / "b.db") == ["precious"]
    status, out, _ = run(target, "restore", "sql", "--from", str(to), "--force")
    assert status == 0
    assert ", replacing 1 row in 1 table (notes 1)" in out
    assert titles(tmp_path / "b.db") == ["old"]


def test_a_migrated_database_without_rows_is_empty(tmp_path, run):
    to = tmp_path / "api.backup"
    assert (
        run(sqlite_db(tmp_path / "a.db", ["x"]), "backup", "sql", "--to", str(to))[0]
        == 0
    )
    # init-db (or a server's start) made the tables and the counter's row.
    target = sqlite_db(tmp_path / "b.db")

    assert run(target, "restore", "sql", "--from", str(to))[0] == 0
    assert titles(tmp_path / "b.db") == ["x"]


def test_backup_never_overwrites_and_leaves_no_partial_file(tmp_path, run):
    source = sqlite_db(tmp_path / "api.db")
    to = tmp_path / "api.backup"
    to.write_text("yesterday's")

    status, _, err = run(source, "backup", "sql", "--to", str(to))

    assert status == 1
    assert "exists; name a new file" in err
    assert to.read_text() == "yesterday's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api.backup", "api.db"]


def test_backup_of_a_missing_database_creates_nothing(tmp_path, run):
    status, _, err = run(
        f"sqlite:///{tmp_path / 'typo.db'}",
        "backup",
        "sql",
        "--to",
        str(tmp_path / "b"),
    )

    assert status == 1
    assert err == f"backup: {tmp_path / 'typo.db'}: no such file\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"PGDMP\x01\x0e", "a pg_dump archive"),
        (b"\x1f\x8b\x08\x00", "a gzip file"),
        (b"id,title\n", "not a backup these commands write"),
    ],
)
def test_restore_names_a_file_of_another_kind(tmp_path, run, content, named):
    wrong = tmp_path / "wrong"
    wrong.write_bytes(content)

    status, _, err = run(
        f"sqlite:///{tmp_path / 'new.db'}", "restore", "sql", "--from", str(wrong)
    )

    assert status == 1
    assert err.startswith(f"restore: {wrong} is {named}")
    assert "not a SQLite backup" in err


def test_restore_of_a_missing_file(tmp_path, run):
    status, _, err = run(
        f"sqlite:///{tmp_path / 'new.db'}", "restore", "sql", "--from", "nope"
    )

    assert (status, err) == (1, "restore: nope: no such file\n")


def test_the_rethinkdb_commands_need_rethinkdb_url(tmp_path, run):
    status, _, err = run(
        f"sqlite:///{tmp_path / 'a.db'}", "backup", "rethinkdb", "--to", "x"
    )

    assert status == 1
    assert "RETHINKDB_URL is not set" in err


def test_restore_rethinkdb_refuses_a_dump_of_other_tables(tmp_path, run):
    dump = tmp_path / "other.tar.gz"
    with tarfile.open(dump, "w:gz") as archive:
        for name in ("users.json", "users.info"):
            member = tarfile.TarInfo(f"rethinkdb_dump_x/app/{name}")
            member.size = 2
            archive.addfile(member, io.BytesIO(b"[]"))

    status, _, err = run(
        f"sqlite:///{tmp_path / 'a.db'}",
        "restore",
        "rethinkdb",
        "--from",
        str(dump),
        # Refused before any connection: no server listens here.
        rethinkdb_url="rethinkdb://127.0.0.1:1/todo",
    )

    assert status == 1
    assert err == (
        f"restore: {dump}: not a dump of a notes store (its tables are users)\n"
    )


def test_the_postgresql_password_is_passed_in_the_environment_only():
    url = sa.engine.make_url("postgresql+psycopg://app:s3cret@db:5432/api")

    args, env = backup._libpq(url)

    assert not any("s3cret" in arg for arg in args)
    assert args == ["--dbname=postgresql://app@db:5432/api"]
    assert env["PGPASSWORD"] == "s3cret"
