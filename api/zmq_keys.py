"""``python -m api zmq-keys DIR``: CURVE keys for ZeroMQ.

Who reads which file: docs/operations/security.md.
"""

import argparse
import sys
from pathlib import Path

from core.settings import Settings
from gateways import curve


def make_keys(settings: Settings, args: argparse.Namespace) -> int:
    """Make the missing CURVE key pairs in DIR; existing ones are kept."""
    folder = Path(args.folder)
    try:
        made = curve.make_keys(folder)
    except OSError as ex:
        print(f"zmq-keys: {ex}", file=sys.stderr)
        return 1
    for path in made:
        print(f"made {path}")
    if not made:
        print(f"every key is in {folder} already; nothing made")
    print(f"set ZMQ_KEYS_DIR={folder.resolve()}; each process reads there:")
    for process, files in curve.FILES.items():
        print(f"  {process:15} {', '.join(files)}")
    return 0


def add_command(commands) -> None:
    """Add ``zmq-keys`` to the CLI's subparsers."""
    command = commands.add_parser("zmq-keys", help=make_keys.__doc__)
    command.add_argument("folder", metavar="DIR", help="where the keys go")
    command.set_defaults(run=make_keys)
