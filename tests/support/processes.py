"""Ports, child processes and waiting: for the tests and the bench alike."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import List
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> List[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that nothing listens on now.

    The sockets stay bound until all are chosen: ports picked one after the
    other can be the same one twice.
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate, timeout: float = 30.0, interval: float = 0.05, what="condition"
):
    """``predicate()``'s first truthy value, polled until ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        time.sleep(interval)


class Process:
    """A child process in a session of its own, logging to a file.

    Stopped with SIGTERM (or ``sig``), then SIGKILL to its whole group.
    """

    def __init__(self, args, env, log_path: Path, cwd: Optional[Path] = None):
        self.args = args
        self.env = env
        self.log_path = log_path
        self.cwd = cwd or ROOT
        self.proc = None
        self._log = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def check(self) -> None:
        """Raise RuntimeError, with the end of its log, if the process has exited."""
        if self.exited():
            raise RuntimeError(f"{' '.join(self.args)} exited:\n{self.log_tail()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> None:
        """Stop the process if it runs, and close its log (also after an exit)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
