"""What a run ran on: the machine, the interpreters, wrk."""

import os
import platform
import subprocess
from typing import Optional

_VERSION_CODE = (
    "import platform, sys; "
    "impl = platform.python_implementation(); "
    "pypy = getattr(sys, 'pypy_version_info', None); "
    "extra = ' (PyPy %d.%d.%d)' % pypy[:3] if pypy else ''; "
    "print(impl + ' ' + platform.python_version() + extra)"
)


def interpreter(python: str) -> str:
    """``'PyPy 3.9.16 (PyPy 7.3.11)'`` or ``'CPython 3.11.7'`` for an interpreter."""
    done = subprocess.run(
        [python, "-c", _VERSION_CODE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{python} does not run: {done.stdout.strip()}")
    return done.stdout.strip()


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _memory_gib() -> Optional[float]:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _wrk_version() -> Optional[str]:
    try:
        done = subprocess.run(
            ["wrk", "--version"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=10,
        )
    except OSError:
        return None
    return done.stdout.splitlines()[0].strip() if done.stdout else None


def describe() -> dict:
    """Cores, CPU model, memory, OS and wrk version of this machine."""
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "wrk": _wrk_version(),
    }
