"""``python -m api backup|restore sql|rethinkdb``: each store with its own tool.

The SQL store is the one of ``DATABASE_URL`` (SQLite: the online backup
API; PostgreSQL: pg_dump and pg_restore); the RethinkDB one holds the
notes when ``RETHINKDB_URL`` is set (the rethinkdb package's dump and
restore). See docs/operations/backup.md.
"""

import argparse
import sys
from pathlib import Path

from rethinkdb.errors import ReqlError

from core.settings import Settings
from db.backup import BackupError
from db.backup import Outcome
from db.backup import backup_rethinkdb
from db.backup import backup_sql
from db.backup import restore_rethinkdb
from db.backup import restore_sql


def _rethinkdb_url(settings: Settings) -> str:
    if not settings.rethinkdb_url:
        raise BackupError(
            "RETHINKDB_URL is not set: the notes are in the SQL store "
            "(back it up with 'backup sql')"
        )
    return settings.rethinkdb_url


def _backup(settings: Settings, args: argparse.Namespace) -> Outcome:
    if args.store == "sql":
        return backup_sql(settings.database_url, args.to)
    return backup_rethinkdb(
        _rethinkdb_url(settings),
        settings.rethinkdb_table,
        args.to,
        settings.rethinkdb_timeout,
    )


def _restore(settings: Settings, args: argparse.Namespace) -> Outcome:
    if args.store == "sql":
        return restore_sql(settings.database_url, args.source, args.force)
    return restore_rethinkdb(
        _rethinkdb_url(settings),
        settings.rethinkdb_table,
        args.source,
        args.force,
        settings.rethinkdb_replicas,
        settings.rethinkdb_timeout,
    )


def run_backup(settings: Settings, args: argparse.Namespace) -> int:
    """Back up one store into a new file."""
    return _report("backup", lambda: _backup(settings, args))


def run_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Restore one store from a backup; refuses a store with data unless --force."""
    return _report("restore", lambda: _restore(settings, args))


def _report(command: str, action) -> int:
    try:
        outcome = action()
    except (BackupError, ValueError) as ex:  # ValueError: a malformed URL setting
        print(f"{command}: {ex}", file=sys.stderr)
        return 1
    except ReqlError as ex:  # the server's refusal: no permission, no quorum
        print(f"{command}: RethinkDB: {str(ex).splitlines()[0]}", file=sys.stderr)
        return 1
    for line in outcome.lines:
        print(line)
    return 0


STORES = {
    "sql": "the SQL store of DATABASE_URL (SQLite or PostgreSQL)",
    "rethinkdb": "the notes tables of RETHINKDB_URL (RETHINKDB_TABLE)",
}


def add_command(commands) -> None:
    """Add ``backup`` and ``restore`` to the CLI's subparsers."""
    backup = commands.add_parser("backup", help=run_backup.__doc__)
    restore = commands.add_parser("restore", help=run_restore.__doc__)
    backup_stores = backup.add_subparsers(dest="store", required=True)
    restore_stores = restore.add_subparsers(dest="store", required=True)
    for store, doc in STORES.items():
        to = backup_stores.add_parser(store, help=f"back up {doc}")
        to.add_argument("--to", type=Path, required=True, help="a new file")
        to.set_defaults(run=run_backup)
        source = restore_stores.add_parser(store, help=f"restore {doc}")
        source.add_argument(
            "--from", dest="source", type=Path, required=True, help="the backup"
        )
        source.add_argument(
            "--force", action="store_true", help="replace a store that holds data"
        )
        source.set_defaults(run=run_restore)
