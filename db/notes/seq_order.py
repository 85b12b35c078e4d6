"""Put change entries back in sequence order, and tell dead numbers (no I/O).

:class:`SeqReorderBuffer` holds entries back until every lower number is
accounted for; :meth:`SeqReorderBuffer.dead_gaps` names the missing numbers
whose lease (plus a clock margin) is over, which can no longer appear.

Design: docs/design/change-stream.md#how-rethinkdb-keeps-it
"""

import datetime
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

#: Entry type of a sequence number that was taken but carries no change.
VOID = "void"

#: A run of missing numbers ``(first, last)`` and the time before which all
#: of them were taken (the ``taken_at`` of the entry right after them).
DeadGap = Tuple[int, int, datetime.datetime]


class SeqReorderBuffer:
    """Releases entries (dicts with ``id`` = seq, ``type``, ``taken_at``) in seq order.

    Args:
        after: The last seq already handled; the first released is after it.
    """

    def __init__(self, after: int):
        self.next_seq = after + 1
        self._pending: Dict[int, dict] = {}
        self._heads: List[Tuple[int, datetime.datetime]] = []

    def observe_head(self, value: int, server_time: datetime.datetime) -> None:
        """Record that the counter stood at ``value`` at ``server_time``.

        Every number up to ``value`` was taken by then: a bound for numbers
        whose neighbours were taken much later (a writer that died long ago).
        """
        self._heads = [h for h in self._heads if h[0] >= self.next_seq][-50:]
        self._heads.append((value, server_time))

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, entry: dict) -> None:
        """Take an entry from the feed or a read; drop old or repeated ones."""
        seq = entry["id"]
        if seq >= self.next_seq:
            self._pending.setdefault(seq, entry)

    def pop_ready(self) -> List[dict]:
        """The entries that now follow on without a gap, in order, minus voids."""
        ready = []
        while self.next_seq in self._pending:
            entry = self._pending.pop(self.next_seq)
            self.next_seq += 1
            if entry.get("type") != VOID:
                ready.append(entry)
        return ready

    def lacks_next(self) -> bool:
        """Whether the entry of ``next_seq`` has not come yet."""
        return self.next_seq not in self._pending

    def missing(self) -> Optional[Tuple[int, int]]:
        """The seqs holding later entries back, as ``(first, last)``; None if none."""
        if not self._pending:
            return None
        return self.next_seq, min(self._pending) - 1

    def dead_gaps(self, server_now: datetime.datetime, lease: float) -> List[DeadGap]:
        """Every run of missing numbers below a held entry that can no longer appear.

        A run is dead when all its numbers were taken more than ``lease``
        seconds (the writers' lease plus a clock margin) before
        ``server_now``: they were taken before the entry right after the
        run, and before any time the counter was seen at or past the run.
        """
        gaps: List[DeadGap] = []
        expected = self.next_seq
        limit = datetime.timedelta(seconds=lease)
        for seq in sorted(self._pending):
            if seq > expected:
                bounds = [t for value, t in self._heads if value >= seq - 1]
                taken_at = self._pending[seq].get("taken_at")
                if taken_at is not None:
                    bounds.append(taken_at)
                if bounds and server_now - min(bounds) > limit:
                    gaps.append((expected, seq - 1, min(bounds)))
            expected = seq + 1
        return gaps
