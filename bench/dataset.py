"""The prepared data set every stack starts from: one SQLite file, copied per stack."""

import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Dict
from typing import Optional
from typing import Tuple

from bench.servers import ROOT


def _cli(
    python: str, args, database: Path, timeout: float
) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{database}",
        LOG_LEVEL="warning",
    )
    return subprocess.run(
        [python, "-m", "api"] + list(args),
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
    )


def has_command(python: str, command: str) -> bool:
    """Whether ``python -m api`` offers ``command`` (its usage line lists them)."""
    done = subprocess.run(
        [python, "-m", "api", "--help"],
        cwd=ROOT,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
    )
    return command in done.stdout


def prepare(python: str, folder: Path) -> Tuple[Path, Dict[str, Optional[str]]]:
    """Create the schema and import the salaries into ``folder/dataset.db``.

    Returns the file and, per optional part of the data set, None when it is
    there or the reason it is not (``{"salaries": "..."}``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "dataset.db"
    done = _cli(python, ["init-db"], database, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"python -m api init-db failed:\n{done.stdout[-3000:]}")
    missing: Dict[str, Optional[str]] = {"salaries": None}
    if not has_command(python, "import-salaries"):
        missing["salaries"] = (
            "no 'python -m api import-salaries' command in this checkout"
        )
    else:
        done = _cli(python, ["import-salaries"], database, timeout=600)
        if done.returncode != 0:
            last_line = (done.stdout.strip().splitlines() or [""])[-1]
            missing["salaries"] = (
                f"import-salaries exited with {done.returncode}: {last_line}"
            )
    _checkpoint(database)
    return database, missing


def _checkpoint(database: Path) -> None:
    # Fold the write-ahead log into the file so a plain copy holds every row.
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
