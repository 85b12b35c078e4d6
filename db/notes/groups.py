"""Notes created in the same moment are written together (group commit).

Both stores use it: :class:`CreateGroups` gathers the creates that arrive
while a group is open, and the first of them writes them all with its
store's ``write(group)``; the others wait for the outcome.

Design: docs/decisions/0003-group-commit.md
"""

import datetime
import threading
from typing import Callable
from typing import List
from typing import Optional

from core.notes import Note
from core.tracing import traceparent
from db.errors import Unavailable
from db.notes.base import UNAVAILABLE

#: Most notes created in one group.
GROUP_MAX = 100


def _no_pause() -> None:
    pass


_group_pause: Callable[[], None] = _no_pause


def set_group_pause(pause: Callable[[], None]) -> None:
    """Set what the first note of a group runs before it writes, so others join it.

    The gevent worker sets a one-turn sleep (:mod:`api.server_gevent`), so
    the requests ready at the same moment reach their creates; elsewhere
    there is no pause and a group holds only the creates that came while
    its first waited for its turn to write.
    """
    global _group_pause
    _group_pause = pause


class NewNote:
    """A note to create, waiting in its group.

    The group's writer sets ``note`` once the note is committed, or
    ``error`` once it knows the note will not be; ``written`` is set when
    the group is done.
    """

    def __init__(self, note_id: str, title: str, body: str, now: datetime.datetime):
        self.note_id = note_id
        self.title = title
        self.body = body
        self.now = now
        # Taken here, in the request's own context: the group's writer may
        # be another request.
        self.traceparent = traceparent()
        self.note: Optional[Note] = None
        self.error: Optional[BaseException] = None
        self.written = threading.Event()

    @property
    def open(self) -> bool:
        """Neither committed nor failed yet."""
        return self.note is None and self.error is None

    def result(self) -> Note:
        if self.note is None:  # not committed
            raise self.error or Unavailable(UNAVAILABLE)
        return self.note


#: ``write(group)`` commits the notes of ``group`` (each ``open``): it sets
#: ``note`` on each one committed, may set ``error`` on one it knows failed,
#: and raises for the rest (see :meth:`CreateGroups.create`).
GroupWrite = Callable[[List[NewNote]], None]


class CreateGroups:
    """The open group of one store, and how a group is written.

    Args:
        write: The store's group write; it calls :meth:`close` once it
            holds its turn to write, before it counts the group.
    """

    def __init__(self, write: GroupWrite):
        self._write = write
        self._lock = threading.Lock()
        self._group: Optional[List[NewNote]] = None  # creates waiting to be written

    def create(self, new: NewNote) -> Note:
        """Join the open group (or open one); the note once written, or raise.

        When ``write`` raises :class:`Unavailable`, the notes it left open
        fail with it (503); any other error (an id drawn twice) makes each
        note left open try again alone, so one bad note fails only itself.
        """
        with self._lock:
            group = self._group
            if group is None or len(group) >= GROUP_MAX:
                group = self._group = []
            group.append(new)
        if group[0] is not new:
            new.written.wait()
            return new.result()
        try:
            _group_pause()
            self._write(group)
        except Unavailable as ex:
            self._fail_open(group, ex)
        except Exception as ex:
            self.close(group)  # if it failed before its turn
            if len(group) == 1:
                self._fail_open(group, ex)
            else:
                for member in [member for member in group if member.open]:
                    try:
                        self._write([member])
                    except Exception as alone:
                        self._fail_open([member], alone)
        finally:
            self.close(group)  # if its write never began
            # A note the write left open is not known to be committed.
            self._fail_open(group, Unavailable(UNAVAILABLE))
            for member in group[1:]:
                member.written.set()
        return new.result()

    def close(self, group: List[NewNote]) -> None:
        """No note joins ``group`` from now on."""
        with self._lock:
            if self._group is group:
                self._group = None

    @staticmethod
    def _fail_open(group: List[NewNote], error: BaseException) -> None:
        for member in group:
            if member.open:
                member.error = error
