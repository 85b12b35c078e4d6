"""The test process's open descriptors: counted, listed, and HTTP's closed.

A test that leaves sockets or files open leaves them to the garbage
collector, which CPython runs at once and PyPy late: under PyPy the e2e suite
reached thousands of open descriptors that way.
"""

import gc
import os
import time
from typing import Set
from typing import Tuple

from requests.adapters import HTTPAdapter

_FOLDER = "/proc/self/fd"
_close_adapter = HTTPAdapter.close


def available() -> bool:
    """Whether this system lists a process's descriptors (Linux does)."""
    return os.path.isdir(_FOLDER)


def open_descriptors() -> Set[Tuple[int, str]]:
    """This process's open descriptors, each with what it is (a path, a socket).

    What it is tells a descriptor from a later one given the same number.
    """
    found = set()
    for name in os.listdir(_FOLDER):
        try:
            found.add((int(name), os.readlink(os.path.join(_FOLDER, name))))
        except OSError:  # the listing's own, closed meanwhile
            pass
    return found


def opened_since(
    before: Set[Tuple[int, str]], limit: int, settle: float = 1.0
) -> Set[Tuple[int, str]]:
    """The descriptors open now and not in ``before``, if more than ``limit``.

    Garbage is collected first, only when there are that many (a collection
    is slow under PyPy), and threads that are finishing get ``settle`` seconds
    to close theirs.
    """
    deadline = time.monotonic() + settle
    while True:
        new = open_descriptors() - before
        if len(new) <= limit:
            return set()
        if time.monotonic() > deadline:
            return new
        gc.collect()
        time.sleep(0.05)


def close_adapter(adapter: HTTPAdapter) -> None:
    """``HTTPAdapter.close`` that closes the sockets of its connection pools.

    ``Session.close`` (``requests.get`` too, whose session is closed when it
    returns) clears urllib3 2's pool manager, which drops its pools without
    closing them: their sockets are left to the collector. A closed pool
    closes its idle connections, and each busy one when it is given back.
    """
    for manager in (adapter.poolmanager, *adapter.proxy_manager.values()):
        for key in manager.pools.keys():
            pool = manager.pools.get(key)
            if pool is not None:
                pool.close()
    _close_adapter(adapter)
