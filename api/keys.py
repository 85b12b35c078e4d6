"""``python -m api keys ...``: make, list and revoke API keys.

How to use them: docs/operations/security.md.
"""

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from core.addresses import is_loopback
from core.apikeys import ADMIN
from core.apikeys import well_formed
from core.logs import say
from core.logs import wants_json
from core.settings import Settings
from db.errors import Conflict
from db.errors import NotFound
from db.keys import KeyStore
from db.schema import create_schema
from db.sql import Database

#: Where ``make serve`` keeps the development key.
DEV_KEY_FILE = Path("var") / "api-key"


@contextlib.contextmanager
def _store(settings: Settings) -> Iterator[KeyStore]:
    database = Database(settings.database_url)
    try:
        create_schema(database.engine)
        yield KeyStore(database)
    finally:
        database.dispose()


def create_key(settings: Settings, args: argparse.Namespace) -> int:
    """Make a key; prints it once, as the last line."""
    try:
        with _store(settings) as store:
            key, secret = store.create(args.name, args.scopes)
    except (ValueError, Conflict) as ex:
        print(f"keys create: {ex}", file=sys.stderr)
        return 2
    print(f"created key {key.name!r} with scopes {','.join(key.scopes)}")
    print("it is shown only now; send it as 'Authorization: Bearer KEY':")
    print(secret)
    return 0


def list_keys(settings: Settings, args: argparse.Namespace) -> int:
    """Show every key's name, scopes, creation and last use; never the key."""
    print(f"{'NAME':24} {'SCOPES':16} {'CREATED':25} {'LAST USED':25} REVOKED")
    with _store(settings) as store:
        keys = store.list()
    for key in keys:
        print(
            f"{key.name:24} {','.join(key.scopes):16} "
            f"{_when(key.created_at):25} {_when(key.last_used_at):25} "
            f"{_when(key.revoked_at)}"
        )
    return 0


def revoke_key(settings: Settings, args: argparse.Namespace) -> int:
    """Revoke a key: every worker refuses it within a second."""
    try:
        with _store(settings) as store:
            key = store.revoke(args.name)
    except NotFound as ex:
        print(f"keys revoke: {ex}", file=sys.stderr)
        return 1
    print(f"revoked key {key.name!r}")
    return 0


def dev_key(settings: Settings, args: argparse.Namespace) -> int:
    """The development admin key of ``make serve``: made once, kept in a file.

    Only for a server on a loopback address: a key in a file is for one
    developer's machine.
    """
    if not is_loopback(settings.host):
        print(
            f"keys dev: HOST={settings.host} is not a loopback address; make "
            "keys with 'python -m api keys create' instead",
            file=sys.stderr,
        )
        return 2
    path = Path(args.file)
    with _store(settings) as store:
        if path.exists():
            secret = path.read_text().strip()
            if well_formed(secret) and store.find(secret) is not None:
                _show_dev_key(f"API key (admin, in {path})", secret, settings)
                return 0
        taken = {key.name for key in store.list()}
        name = next(
            f"dev-{n}" for n in range(1, len(taken) + 2) if f"dev-{n}" not in taken
        )
        _, secret = store.create(name, ADMIN)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Made with mode 0600 from the start: never readable by others, not even
    # for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    os.chmod(path, 0o600)
    _show_dev_key(
        f"made a development API key {name!r} (admin), kept in {path}", secret, settings
    )
    return 0


def _show_dev_key(message: str, secret: str, settings: Settings) -> None:
    """The key for the developer at the terminal; a JSON log line never holds it."""
    if wants_json(settings.log_format, sys.stdout):
        say(message, settings.log_format)
    else:
        print(f"{message}:")
        print(secret)


def _when(moment) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")


def add_command(commands) -> None:
    """Add ``keys`` and its subcommands to the CLI's subparsers."""
    keys = commands.add_parser("keys", help="make, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help=create_key.__doc__)
    create.add_argument("--name", required=True, help="a name for the key")
    create.add_argument(
        "--scopes", required=True, help="read, write or admin (comma-separated)"
    )
    create.set_defaults(run=create_key)
    actions.add_parser("list", help=list_keys.__doc__).set_defaults(run=list_keys)
    revoke = actions.add_parser("revoke", help=revoke_key.__doc__)
    revoke.add_argument("name", help="the key's name")
    revoke.set_defaults(run=revoke_key)
    dev = actions.add_parser("dev", help=dev_key.__doc__.splitlines()[0])
    dev.add_argument("--file", default=str(DEV_KEY_FILE), help="where the key is kept")
    dev.set_defaults(run=dev_key)
