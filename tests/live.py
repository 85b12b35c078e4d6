"""Run real processes (gunicorn, workers) for end-to-end tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, what="condition"):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        time.sleep(interval)


class Process:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, args, env, log_path: Path):
        self.args = args
        self.env = env
        self.log_path = log_path
        self.proc = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


def child_env(tmp_path: Path, extra: dict) -> dict:
    """Environment of a child process: this one's, a temp database, ``extra`` on top."""
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp_path / 'live.db'}")
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


class LiveServer(Process):
    """Gunicorn serving api.app:app under the interpreter running the tests."""

    def __init__(self, tmp_path: Path, env: dict, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = child_env(tmp_path, {"HOST": "127.0.0.1", "PORT": str(self.port),
                                   "WORKERS": str(workers), **env})
        super().__init__(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "api.app:app"],
            env,
            tmp_path / f"gunicorn-{self.port}.log",
        )

    def start(self) -> None:
        super().start()
        wait_until(self._healthy, timeout=60, what=f"gunicorn on {self.url}\n{self.log_path}")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{self.log()}")
        try:
            return requests.get(self.url + "/health", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            # Bound but no worker booted yet (slow under load): not healthy yet.
            return False
