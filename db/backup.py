"""Backups of the stores with each store's own tool, and their restores.

SQLite's online backup API, ``pg_dump``/``pg_restore`` (the password in
``PGPASSWORD``), and the RethinkDB driver's ``dump``/``restore`` of the notes
tables. A backup is renamed into place when complete; a restore refuses a
target holding data unless ``force``; what an operator can fix raises
:class:`BackupError`. Usage: docs/operations/backup.md
"""

import contextlib
import dataclasses
import glob
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

import sqlalchemy as sa
from rethinkdb import r

from db.notes.rethink import RethinkNotesStore
from db.notes.rethink_log import COUNTER_ID
from db.rethink import CONNECTION_ERRORS
from db.rethink import Connector
from db.rethink import RethinkTarget
from db.rethink import close_quietly
from db.rethink import parse_url
from db.sql import make_engine


class BackupError(Exception):
    """A backup or restore that cannot be done, and why (for the operator)."""


#: The first bytes of each kind of backup file: its kind, and what it is.
_KINDS = {
    b"SQLite format 3\x00": ("sqlite", "a SQLite backup (use 'restore sql')"),
    b"PGDMP": ("postgresql", "a pg_dump archive (use 'restore sql')"),
    b"\x1f\x8b": ("rethinkdb", "a gzip file, as 'backup rethinkdb' writes"),
}

#: Tables that say nothing about whether a SQL database holds data: what
#: init-db fills in (the schema's revision, the change counter's row).
_BOOKKEEPING = {"alembic_version", "note_sequence"}


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a backup or restore did, in lines for the operator."""

    lines: Tuple[str, ...]


def _expect(source: Path, kind: str, wanted: str) -> None:
    """BackupError unless the file ``source`` is a backup of ``kind``."""
    with open(source, "rb") as file:
        head = file.read(16)
    found = [what for magic, what in _KINDS.items() if head.startswith(magic)]
    if found and found[0][0] == kind:
        return
    name = found[0][1] if found else "not a backup these commands write"
    raise BackupError(f"{source} is {name}, not {wanted}")


def _readable(path: Path) -> Path:
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise BackupError(f"{path}: not readable")
    return path


@contextlib.contextmanager
def _new_file(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed to it if the block succeeds."""
    if path.exists():
        raise BackupError(f"{path} exists; name a new file (nothing is overwritten)")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent}: no such folder")
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".partial", dir=path.parent
    )
    os.close(descriptor)
    try:
        yield Path(temporary)
        # Backups hold the API keys' hashes and the notes: the owner's only
        # (a tool may have made the file anew, with the umask's mode).
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _size(path: Path) -> str:
    return f"{path.stat().st_size:,} bytes"


# SQL: SQLite or PostgreSQL, by DATABASE_URL


def backup_sql(database_url: str, to: Path) -> Outcome:
    """Back up the SQL store of ``database_url`` into the new file ``to``."""
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _backup_sqlite(_sqlite_file(url), to)
    if url.get_backend_name() == "postgresql":
        return _pg_dump(url, to)
    raise BackupError(f"DATABASE_URL: no backup for {url.get_backend_name()}")


def restore_sql(database_url: str, source: Path, force: bool) -> Outcome:
    """Restore the backup ``source`` into the SQL store of ``database_url``."""
    _readable(source)
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _restore_sqlite(source, _sqlite_file(url), force)
    if url.get_backend_name() == "postgresql":
        return _pg_restore(source, url, force)
    raise BackupError(f"DATABASE_URL: no restore for {url.get_backend_name()}")


def _sqlite_file(url: sa.URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("DATABASE_URL names an in-memory SQLite database")
    return Path(url.database)


def _backup_sqlite(database: Path, to: Path) -> Outcome:
    _readable(database)
    with _new_file(to) as temporary:
        # Read-only: a wrong path must not become a new, empty database.
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(temporary)
        try:
            # pages=-1 (the default): the whole database in one step, under
            # one read transaction, so writers (WAL) go on and the copy is
            # the database as of one commit.
            source.backup(target)
            # One self-contained file, not a WAL database (no -wal beside it).
            target.execute("PRAGMA journal_mode=DELETE").close()
            _check_sqlite(target, to)
        except sqlite3.DatabaseError as ex:
            raise BackupError(f"{database}: {ex}") from None
        finally:
            target.close()
            source.close()
    return Outcome((f"backed up SQLite {database} to {to} ({_size(to)})",))


def _check_sqlite(connection: sqlite3.Connection, name: Path) -> None:
    (result,) = connection.execute("PRAGMA quick_check").fetchone()
    if result != "ok":
        raise BackupError(f"{name}: SQLite's quick_check failed: {result}")


def _sqlite_rows(connection: sqlite3.Connection) -> Dict[str, int]:
    """The tables of ``connection`` that hold rows, with their counts."""
    names = [
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%'"
        )
    ]
    counts = {}
    for name in names:
        if name in _BOOKKEEPING:
            continue
        quoted = name.replace('"', '""')
        (count,) = connection.execute(f'SELECT count(*) FROM "{quoted}"').fetchone()
        if count:
            counts[name] = count
    return counts


def _restore_sqlite(source: Path, database: Path, force: bool) -> Outcome:
    _expect(source, "sqlite", "a SQLite backup (DATABASE_URL is SQLite)")
    if not database.parent.is_dir():
        raise BackupError(f"{database.parent}: no such folder")
    backup = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    target = sqlite3.connect(database, timeout=30)
    try:
        _check_sqlite(backup, source)
        rows = _sqlite_rows(backup)
        held = _sqlite_rows(target)
        if held and not force:
            raise BackupError(_refusal(f"SQLite {database}", held))
        backup.backup(target)
        # The API's mode: readers beside one writer.
        target.execute("PRAGMA journal_mode=WAL").close()
    except sqlite3.DatabaseError as ex:
        raise BackupError(f"{source}: {ex}") from None
    finally:
        target.close()
        backup.close()
    return Outcome(
        (
            f"restored {source} into SQLite {database}"
            + (f", replacing {_describe(held)}" if held else ""),
            f"it holds {_describe(rows)}",
        )
    )


def _describe(counts: Dict[str, int]) -> str:
    if not counts:
        return "no rows"
    total = sum(counts.values())
    tables = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    rows = "row" if total == 1 else "rows"
    where = "table" if len(counts) == 1 else "tables"
    return f"{total} {rows} in {len(counts)} {where} ({tables})"


def _refusal(target: str, held: Dict[str, int]) -> str:
    return (
        f"{target} is not empty: {_describe(held)}; restore into an empty one, "
        "or add --force to replace it"
    )


# PostgreSQL


def pg_tool(name: str) -> str:
    """The newest ``pg_dump`` or ``pg_restore``: Debian's versioned folders, PATH.

    The newest major: it reads archives of, and dumps, every older server.
    """
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/[0-9]*/bin/{name}"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise BackupError(
            f"{name} is not installed (Debian and Ubuntu: apt-get install "
            "postgresql-client)"
        )
    return on_path


def _libpq(url: sa.URL) -> Tuple[List[str], Dict[str, str]]:
    """Arguments and environment naming the database of ``url`` for libpq tools.

    The password goes in the environment only: arguments are visible to
    every user of the machine (``ps``). Without one in the URL, libpq's
    own ``PGPASSWORD`` or ``~/.pgpass`` apply, as for the server.
    """
    # Made anew: URL.set ignores None, so it cannot take a password away.
    plain = sa.engine.URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return [f"--dbname={plain.render_as_string(hide_password=False)}"], env


def _search_path(url: sa.URL) -> Optional[str]:
    """The schema a ``?options=-csearch_path=NAME`` URL puts the tables in."""
    options = url.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    for option in options.split():
        if option.startswith("-csearch_path="):
            return option.split("=", 1)[1].split(",")[0].strip('"')
    return None


def _run(args: Sequence[str], env: Dict[str, str], what: str) -> None:
    done = subprocess.run(
        list(args), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if done.returncode != 0:
        detail = (
            done.stderr or done.stdout
        ).strip() or f"exit status {done.returncode}"
        raise BackupError(f"{what} failed: {detail}")


def _pg_dump(url: sa.URL, to: Path) -> Outcome:
    args, env = _libpq(url)
    schema = _search_path(url)
    only = [f"--schema={schema}"] if schema else []
    with _new_file(to) as temporary:
        _run(
            [
                pg_tool("pg_dump"),
                "--format=custom",
                *only,
                f"--file={temporary}",
                *args,
            ],
            env,
            "pg_dump",
        )
    where = f"schema {schema} of " if schema else ""
    return Outcome(
        (f"backed up {where}{_describe_pg(url)} to {to} with pg_dump ({_size(to)})",)
    )


def _describe_pg(url: sa.URL) -> str:
    return f"PostgreSQL {url.host or 'localhost'}:{url.port or 5432}/{url.database}"


def _pg_rows(url: sa.URL, schema: Optional[str]) -> Dict[str, int]:
    """The tables of the restore target that hold rows, with their counts."""
    engine = make_engine(url.render_as_string(hide_password=False))
    schemas = sa.text(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
        "('pg_catalog', 'information_schema')"
        + (" AND table_schema = :schema" if schema else "")
    )
    counts = {}
    try:
        with engine.connect() as connection:
            tables = connection.execute(
                schemas, {"schema": schema} if schema else {}
            ).all()
            for table_schema, name in tables:
                if name in _BOOKKEEPING:
                    continue
                quoted = '"{}"."{}"'.format(
                    table_schema.replace('"', '""'), name.replace('"', '""')
                )
                count = connection.execute(
                    sa.text(f"SELECT count(*) FROM {quoted}")
                ).scalar_one()
                if count:
                    counts[f"{table_schema}.{name}"] = count
    except sa.exc.OperationalError as ex:
        raise BackupError(f"{_describe_pg(url)}: {str(ex.orig).strip()}") from None
    finally:
        engine.dispose()
    return counts


def _pg_restore(source: Path, url: sa.URL, force: bool) -> Outcome:
    _expect(source, "postgresql", "a pg_dump archive (DATABASE_URL is PostgreSQL)")
    schema = _search_path(url)
    held = _pg_rows(url, schema)
    if held and not force:
        raise BackupError(_refusal(_describe_pg(url), held))
    args, env = _libpq(url)
    _run(
        [
            pg_tool("pg_restore"),
            # What the archive holds is dropped first (tables a fresh
            # init-db made, or with --force, the data there), and all of it
            # in one transaction: a failed restore changes nothing.
            "--clean",
            "--if-exists",
            "--single-transaction",
            # Owned by DATABASE_URL's user, whoever owned the originals.
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            *args,
            str(source),
        ],
        env,
        "pg_restore",
    )
    rows = _pg_rows(url, schema)
    return Outcome(
        (
            f"restored {source} into {_describe_pg(url)} with pg_restore"
            + (f", replacing {_describe(held)}" if held else ""),
            f"it holds {_describe(rows)}",
        )
    )


# RethinkDB: the notes store's tables


def _rethinkdb_tool(verb: str) -> List[str]:
    return [sys.executable, "-m", "rethinkdb", verb]


@contextlib.contextmanager
def _rethinkdb_options(target: RethinkTarget, timeout: float) -> Iterator[List[str]]:
    """Connection options of the ``rethinkdb`` tools for ``target``.

    The tools take one server: the first of the URL's that answers. The
    password is in a file of mode 0600 for the duration of the block.
    """
    with _connection(target, timeout) as conn:
        host, port = conn.host, conn.port
    connect = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options = ["--connect", connect, "--user", target.user, "--quiet"]
    if target.ca_file is not None:
        options += ["--tls-cert", target.ca_file]
    with tempfile.TemporaryDirectory(prefix="rethinkdb-password-") as folder:
        if target.password:
            path = os.path.join(folder, "password")
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(target.password)
            options += ["--password-file", path]
        yield options


@contextlib.contextmanager
def _connection(target: RethinkTarget, timeout: float):
    """A driver connection to the first server of ``target`` that answers."""
    try:
        conn = Connector(target, timeout).connect()
    except CONNECTION_ERRORS as ex:
        raise BackupError(f"RethinkDB at {target.describe()}: {ex}") from None
    try:
        yield conn
    finally:
        close_quietly(conn)


def _rethinkdb_tables(conn, target: RethinkTarget) -> set:
    """The tables of ``target``'s database (none when it does not exist)."""
    if target.db not in r.db_list().run(conn):
        return set()
    return set(r.db(target.db).table_list().run(conn))


def _rethinkdb_rows(
    target: RethinkTarget, names: Sequence[str], timeout: float
) -> Dict[str, int]:
    """The notes tables in ``target`` that hold documents, with their counts."""
    with _connection(target, timeout) as conn:
        existing = _rethinkdb_tables(conn, target)
        counts = {}
        for name in names:
            if name in existing:
                count = r.db(target.db).table(name).count().run(conn)
                if count:
                    counts[name] = count
        return counts


def backup_rethinkdb(url: str, table: str, to: Path, timeout: float) -> Outcome:
    """Dump the notes tables of ``table`` in ``url``'s database into ``to``."""
    target = parse_url(url)
    names = RethinkNotesStore.table_names_for(table)
    with _connection(target, timeout) as conn:
        present = _rethinkdb_tables(conn, target)
    missing = [name for name in names if name not in present]
    if missing:
        raise BackupError(
            f"RethinkDB at {target.describe()} has no table {', '.join(missing)} "
            "(RETHINKDB_TABLE, or run 'python -m api init-db')"
        )
    with _new_file(to) as temporary, _rethinkdb_options(target, timeout) as options:
        # dump wants a file that does not exist yet.
        os.unlink(temporary)
        exports = [arg for name in names for arg in ("-e", f"{target.db}.{name}")]
        _run(
            [*_rethinkdb_tool("dump"), *options, *exports, "--file", str(temporary)],
            dict(os.environ),
            "rethinkdb dump",
        )
    return Outcome(
        (
            f"backed up RethinkDB tables {', '.join(names)} of "
            f"{target.describe()} to {to} ({_size(to)})",
        )
    )


def _archived_tables(source: Path) -> Tuple[str, str, List[str]]:
    """The folder, database and table names in a ``rethinkdb dump`` archive."""
    try:
        with tarfile.open(source, "r:gz") as archive:
            parts = [Path(member.name).parts for member in archive if member.isfile()]
    except (tarfile.TarError, OSError, EOFError) as ex:
        raise BackupError(f"{source}: not a rethinkdb dump archive ({ex})") from None
    shapes = {(top, db) for top, db, *_ in (p for p in parts if len(p) == 3)}
    if len(shapes) != 1 or any(len(p) != 3 for p in parts):
        raise BackupError(
            f"{source}: not a rethinkdb dump of one database (the files are "
            f"{', '.join('/'.join(p) for p in parts[:5])})"
        )
    ((top, db),) = shapes
    tables = sorted({Path(p[2]).stem for p in parts})
    return top, db, tables


def _notes_table(tables: Sequence[str]) -> Optional[str]:
    """The notes table whose three tables ``tables`` are, if they are."""
    for name in tables:
        if sorted(RethinkNotesStore.table_names_for(name)) == sorted(tables):
            return name
    return None


def _renamed(source: Path, to: Path, renames: Dict[Tuple[str, str], str]) -> None:
    """Copy the archive ``source`` to ``to`` with its database and tables renamed.

    ``renames`` maps ``(db, table)`` of the archive to the ``db/table`` path
    part that replaces them: the tools restore a table under the names it
    was dumped with.
    """
    with tarfile.open(source, "r:gz") as old, tarfile.open(to, "w:gz") as new:
        for member in old:
            if not member.isfile():
                continue
            top, db, name = Path(member.name).parts
            stem, suffix = os.path.splitext(name)
            copy = tarfile.TarInfo(f"{top}/{renames[(db, stem)]}{suffix}")
            copy.size = member.size
            copy.mtime = member.mtime
            copy.mode = 0o600
            new.addfile(copy, old.extractfile(member))


def restore_rethinkdb(
    url: str, table: str, source: Path, force: bool, replicas: int, timeout: float
) -> Outcome:
    """Restore a notes dump into the tables of ``table`` in ``url``'s database.

    Whatever database and table names the dump was made under. Ends by
    moving the sequence counter past every number the restored notes and
    log hold: the dump reads the tables one after another, not at one
    moment, so its counter may be behind them.
    """
    _readable(source)
    _expect(source, "rethinkdb", "a rethinkdb dump")
    target = parse_url(url)
    _, db, tables = _archived_tables(source)
    archived = _notes_table(tables)
    if archived is None:
        raise BackupError(
            f"{source}: not a dump of a notes store (its tables are "
            f"{', '.join(tables)})"
        )
    names = RethinkNotesStore.table_names_for(table)
    # The counter alone is no data (init-db may have made its document).
    held = _rethinkdb_rows(target, names[:2], timeout)
    if held and not force:
        raise BackupError(_refusal(f"RethinkDB {target.describe()}", held))
    renames = {
        (db, old): f"{target.db}/{new}"
        for old, new in zip(RethinkNotesStore.table_names_for(archived), names)
    }
    _drop_tables(target, names, timeout)
    with tempfile.TemporaryDirectory(prefix="rethinkdb-restore-") as folder:
        archive = Path(folder) / "notes.tar.gz"
        _renamed(source, archive, renames)
        with _rethinkdb_options(target, timeout) as options:
            imports = [arg for name in names for arg in ("-i", f"{target.db}.{name}")]
            _run(
                [
                    *_rethinkdb_tool("restore"),
                    *options,
                    *imports,
                    "--replicas",
                    str(replicas),
                    # Each table's writes acknowledged from disk before it
                    # counts as restored.
                    "--hard-durability",
                    str(archive),
                ],
                dict(os.environ),
                "rethinkdb restore",
            )
    head = _advance_counter(target, names, timeout)
    rows = _rethinkdb_rows(target, names, timeout)
    return Outcome(
        (
            f"restored {source} ({db}.{archived}) into RethinkDB tables "
            f"{', '.join(names)} of {target.describe()}"
            + (f", replacing {_describe(held)}" if held else ""),
            f"they hold {_describe(rows)}; the next change is number {head + 1}",
        )
    )


def _drop_tables(target: RethinkTarget, names: Sequence[str], timeout: float) -> None:
    with _connection(target, timeout) as conn:
        existing = _rethinkdb_tables(conn, target)
        for name in names:
            if name in existing:
                r.db(target.db).table_drop(name).run(conn)


def _advance_counter(
    target: RethinkTarget, names: Sequence[str], timeout: float
) -> int:
    """Set the counter to the highest number in use; returns it."""
    notes, changes, counter = (r.db(target.db).table(name) for name in names)
    with _connection(target, timeout) as conn:
        highest = r.expr(
            [
                notes["seq"].max().default(0),
                changes["id"].max().default(0),
                counter.get(COUNTER_ID)["value"].default(0),
            ]
        ).max()
        result = counter.insert(
            {"id": COUNTER_ID, "value": highest, "taken_at": r.now()},
            conflict="update",
            durability="hard",
        ).run(conn)
        if result["errors"]:
            raise BackupError(f"setting the counter failed: {result['first_error']}")
        return counter.get(COUNTER_ID)["value"].run(conn)
