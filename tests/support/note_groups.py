"""Creating notes together, so that they form one group (db/notes/groups.py).

``create_together(monkeypatch, store, ids, count)`` creates ``count`` notes
from as many threads, and the first of each group waits until every create
has drawn its id (``ids``, a :class:`Counted` ``new_note_id``) before it
writes: the creates of one moment, as the gevent worker's pause gathers them.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable
from typing import List

import db.notes.groups
from tests.support.processes import wait_until


class Counted:
    """``new_note_id`` counting its calls (one per create, before it joins a group)."""

    def __init__(self, make_id: Callable[[], str]):
        self.calls = 0
        self._make_id = make_id
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:  # so the n-th id is made by the n-th call
            self.calls += 1
            return self._make_id()


def count_ids(monkeypatch, module) -> Counted:
    """Replace ``module.new_note_id`` (the store's) by a counted one."""
    counted = Counted(module.new_note_id)
    monkeypatch.setattr(module, "new_note_id", counted)
    return counted


def create_together(monkeypatch, store, ids: Counted, count: int) -> List[object]:
    """Each create's note, or the exception it raised, in the order of the calls."""

    def pause():
        wait_until(lambda: ids.calls == count, timeout=10)
        time.sleep(0.05)  # the last caller joins its group right after its id

    monkeypatch.setattr(db.notes.groups, "_group_pause", pause)

    def create(number):
        try:
            return store.create(f"note {number}", "body")
        except Exception as ex:  # noqa: BLE001 - the caller checks each outcome
            return ex

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(create, range(count)))
