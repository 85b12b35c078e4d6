"""``python -m api import-salaries [CSV] [--if-empty]``: load the salary file.

Parses the whole CSV first (db.salaries.csvfile), then replaces the salary tables in
one transaction (db.salaries.store), with a progress bar on a terminal and a
summary of what was loaded and skipped.
"""

import argparse
import hashlib
import io
import sys
from pathlib import Path

import tqdm

from core.logs import say
from core.settings import Settings
from db.errors import Unavailable
from db.salaries.csvfile import NotASalaryFile
from db.salaries.csvfile import read_employees
from db.salaries.store import SalaryStore
from db.schema import create_schema
from db.sql import Database

#: The salary file shipped with the project.
SALARIES_CSV = Path(__file__).resolve().parent.parent / "data" / "employee_chicago.csv"


def import_salaries(settings: Settings, args: argparse.Namespace) -> int:
    """Load the salary CSV into the employees table, replacing what is there."""
    database = Database(settings.database_url)
    try:
        create_schema(database.engine)
        store = SalaryStore(database)
        if args.if_empty:
            loaded = store.count()
            if loaded:
                say(
                    f"salaries already loaded ({loaded} employees); nothing to do",
                    settings.log_format,
                )
                return 0
        return _load(store, Path(args.csv), settings.log_format)
    except Unavailable as ex:
        print(f"import-salaries: {ex.detail}", file=sys.stderr)
        return 1
    finally:
        database.dispose()


def add_command(commands) -> None:
    """Add ``import-salaries`` to the CLI's subparsers."""
    command = commands.add_parser("import-salaries", help=import_salaries.__doc__)
    command.add_argument(
        "csv",
        nargs="?",
        default=str(SALARIES_CSV),
        help="the salary CSV (default: the file shipped in data/)",
    )
    command.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when employees are already loaded",
    )
    command.set_defaults(run=import_salaries)


def _load(store: SalaryStore, path: Path, log_format: str = "text") -> int:
    try:
        data = path.read_bytes()
    except OSError as ex:
        print(f"import-salaries: cannot read {path}: {ex.strerror}", file=sys.stderr)
        return 2
    try:
        # utf-8-sig: a byte-order mark left by a spreadsheet is not the header's.
        report = read_employees(io.StringIO(data.decode("utf-8-sig"), newline=""))
    except (UnicodeDecodeError, NotASalaryFile) as ex:
        print(f"import-salaries: {path} is not a salary CSV: {ex}", file=sys.stderr)
        return 2
    # disable=None: tqdm draws only on a terminal, so logs and pipes stay clean.
    with tqdm.tqdm(
        total=len(report.rows),
        unit=" rows",
        desc="importing",
        disable=None,
        file=sys.stderr,
    ) as bar:
        departments = store.replace(
            report.rows,
            checksum=hashlib.sha256(data).hexdigest(),
            source=path.name,
            skipped=report.blank + report.malformed,
            on_progress=bar.update,
        )
    say(
        f"loaded {len(report.rows)} employees in {departments} departments "
        f"from {path.name}; skipped {report.blank} blank and "
        f"{report.malformed} malformed rows",
        log_format,
    )
    for problem in report.problems:
        say(f"  skipped {problem}", log_format)
    if report.malformed > len(report.problems):
        say(
            f"  ... and {report.malformed - len(report.problems)} more malformed rows",
            log_format,
        )
    return 0
