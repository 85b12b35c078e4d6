"""Prometheus collectors every process serves: its build, and its processes.

prometheus_client's ProcessCollector reports the process it runs in. Under
gunicorn, ``GET /metrics`` is answered by one worker among several, so
:class:`Processes` reports every process of the server instead, read from
``/proc`` at scrape time and told apart by a ``pid`` label.
"""

import os
import platform
from typing import Callable
from typing import Iterable
from typing import List

from prometheus_client import ProcessCollector
from prometheus_client import values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from core.version import __version__

# In multiprocess mode, prometheus_client asks os.getpid() at every change of
# a value, to notice a fork: a system call each time, five per request (2% of
# a GET /health in a PyPy worker). The pid kept here, renewed in the child of
# every fork, tells the same. Set before any metric makes a value (this module
# is imported before any defines one): values of two classes would share a
# file without knowing of each other.
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))
if values.ValueClass is not values.MutexValue:
    values.ValueClass = values.MultiProcessValue(lambda: _pid[0])


class BuildInfo(Collector):
    """``api_build_info``: 1, with the version and the interpreter as labels."""

    def collect(self):
        info = GaugeMetricFamily(
            "api_build_info",
            "Always 1: the version this process runs and its Python.",
            labels=["version", "python_implementation", "python_version"],
        )
        info.add_metric(
            [
                __version__,
                platform.python_implementation(),
                platform.python_version(),
            ],
            1,
        )
        yield info


def children(parent: int, proc: str = "/proc") -> List[int]:
    """The pids whose parent is ``parent``, from ``/proc/PID/stat``."""
    found = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat"), "rb") as stat:
                # The command name, in parentheses, may hold spaces: the
                # fields are counted after its closing one.
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone since the listing
            continue
        if int(fields[1]) == parent:
            found.append(int(name))
    return found


def server_pids() -> List[int]:
    """Gunicorn's master (this worker's parent) and every worker under it."""
    master = os.getppid()
    return [master, *sorted(children(master))]


class Processes(Collector):
    """``process_*`` of each pid ``pids()`` names, with a ``pid`` label.

    Each process is read by prometheus_client's own ProcessCollector; one
    that exits meanwhile is left out.
    """

    def __init__(self, pids: Callable[[], Iterable[int]] = server_pids):
        self._pids = pids

    def collect(self):
        families = {}
        for pid in self._pids():
            reader = ProcessCollector(pid=lambda pid=pid: pid, registry=None)
            for family in reader.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type
                    )
                for sample in family.samples:
                    labels = {**sample.labels, "pid": str(pid)}
                    merged.add_sample(sample.name, labels, sample.value)
        return list(families.values())
