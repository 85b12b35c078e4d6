"""The processes a benchmark measures: gunicorn, and the collatz broker and workers.

Each :class:`Stack` is one deployment under one interpreter, in a folder of its
own (its working directory, so relative defaults such as ``var/`` land there),
on free ports, with its own SQLite database.
"""

import importlib.util
import os
import time
from pathlib import Path
from typing import Dict
from typing import List
from typing import Optional

import requests

from tests.support.processes import Process
from tests.support.processes import free_port
from tests.support.processes import free_udp_port

ROOT = Path(__file__).resolve().parent.parent


def has_module(name: str) -> bool:
    """Whether module ``name`` (say ``workers.collatz.broker``) is in the checkout."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def session_cpu_seconds(sessions) -> Optional[float]:
    """User + system CPU seconds of the live processes in ``sessions`` (Linux)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended meanwhile
        # Fields after the parenthesised command name (which may hold spaces):
        # state ppid pgrp session ... utime stime are the 12th and 13th.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) in sessions:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def get_json(url: str) -> Optional[dict]:
    """The JSON answer of ``GET url``, or None when there is none (yet)."""
    try:
        return requests.get(url, timeout=2).json()
    except (requests.RequestException, ValueError):
        return None


class StartError(RuntimeError):
    """A process of the stack did not come up; the message holds its log."""


class Stack:
    """Gunicorn serving ``app`` under ``python``, plus the collatz processes if asked.

    Args:
        python: the interpreter (a venv's ``bin/python``).
        workdir: an empty folder for this stack (cwd, database, logs).
        app: the WSGI app gunicorn serves.
        env: extra environment (WORKERS, WORKER_CLASS, ...).
        collatz_workers: how many collatz workers to start with a broker (0: none).
        database: a prepared SQLite file copied in as this stack's database.
        ready_path: polled until it answers 200.
    """

    def __init__(
        self,
        python: str,
        workdir: Path,
        *,
        app: str = "api.wsgi:app",
        env: Optional[Dict[str, str]] = None,
        collatz_workers: int = 0,
        database: Optional[Path] = None,
        ready_path: str = "/health",
    ):
        self.python = python
        self.workdir = workdir
        self.app = app
        self.collatz_workers = collatz_workers
        self.ready_path = ready_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "var").mkdir(parents=True, exist_ok=True)
        db_path = workdir / "var" / "api.db"
        if database is not None:
            db_path.write_bytes(database.read_bytes())
        self.env = dict(os.environ)
        self.env.update(
            PYTHONPATH=str(ROOT),
            HOST="127.0.0.1",
            AUTH="off",  # trusted clients: the figures are of the paths
            PORT=str(self.port),
            DATABASE_URL=f"sqlite:///{db_path}",
            LOG_LEVEL="warning",
            PUBLIC_BASE_URL=self.url,
            COLLATZ_FRONTEND=f"tcp://127.0.0.1:{free_port()}",
            COLLATZ_BACKEND=f"tcp://127.0.0.1:{free_port()}",
            # Its own, so commit nudges never reach another push worker.
            PUSH_WAKE_ADDRESS=f"127.0.0.1:{free_udp_port()}",
        )
        self.env.update(env or {})
        self.processes: List[Process] = []

    def _spawn(self, name: str, args: List[str]) -> Process:
        process = Process(
            [self.python] + args,
            self.env,
            self.workdir / f"{name}.log",
            cwd=self.workdir,
        )
        process.start()
        self.processes.append(process)
        return process

    def start(self, timeout: float = 60.0) -> "Stack":
        """Start everything and wait until ``ready_path`` answers 200."""
        if self.collatz_workers:
            self._spawn("collatz_broker", ["-m", "workers.collatz.broker"])
            for number in range(self.collatz_workers):
                self._spawn(f"collatz_worker{number}", ["-m", "workers.collatz.worker"])
        # As `make serve` runs it: `python -m api serve`, gunicorn with the
        # defaults of gunicorn.conf.py (no access log unless ACCESS_LOG is set).
        gunicorn = self._spawn("gunicorn", ["-m", "api", "serve", self.app])
        deadline = time.monotonic() + timeout
        while not self._answers():
            for process in self.processes:
                if process.exited():
                    self.stop()
                    raise StartError(
                        f"{' '.join(process.args)} exited:\n{process.log_tail()}"
                    )
            if time.monotonic() > deadline:
                self.stop()
                raise StartError(
                    f"gunicorn not ready in {timeout}s:\n{gunicorn.log_tail()}"
                )
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            return (
                requests.get(self.url + self.ready_path, timeout=2).status_code == 200
            )
        except requests.RequestException:
            return False

    def cpu_seconds(self) -> Optional[float]:
        """CPU time (user + system) used so far by every process of the stack.

        Less sensitive than req/s to other work on the machine, since it counts
        only what these processes ran. None where /proc is not available.
        """
        sessions = {process.proc.pid for process in self.processes if process.proc}
        return session_cpu_seconds(sessions)

    def stop(self) -> None:
        """Stop gunicorn first (it is the collatz client), then the rest."""
        for process in reversed(self.processes):
            process.stop()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
