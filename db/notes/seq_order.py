"""Put change-log entries back in sequence order (pure logic, no I/O).

RethinkDB has no multi-document transactions, so a writer there takes its
sequence number first and appends the log entry after writing the note:
entries can reach the log (and its changefeed) slightly out of order, and a
number can stay unused (a failed or abandoned write; the store marks those
it knows about with a ``void`` entry). :class:`SeqReorderBuffer` holds
entries back until every lower number has been seen, and gives up on a
missing number only after ``gap_timeout`` seconds, so a consumer that
checkpoints the last number it handled never skips one still in flight.
"""

import time
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

#: Entry type of a sequence number that was taken but carries no change.
VOID = "void"


class SeqReorderBuffer:
    """Releases entries (dicts with ``id`` = seq and ``type``) in seq order.

    Args:
        after: The last seq already handled; the first released is after it.
        gap_timeout: Seconds to wait for a missing seq before skipping it.
        clock: Monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        after: int,
        gap_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.next_seq = after + 1
        self.gap_timeout = gap_timeout
        self._clock = clock
        self._pending: Dict[int, dict] = {}
        self._gap_seen_at: Optional[float] = None

    def add(self, entry: dict) -> None:
        """Take an entry from the feed or the table; drop old or repeated ones."""
        seq = entry["id"]
        if seq >= self.next_seq:
            self._pending.setdefault(seq, entry)

    def pop_ready(self) -> List[dict]:
        """The entries that now follow on without a gap, in order, minus voids."""
        ready = []
        while self.next_seq in self._pending:
            entry = self._pending.pop(self.next_seq)
            self.next_seq += 1
            self._gap_seen_at = None
            if entry.get("type") != VOID:
                ready.append(entry)
        if self._pending and self._gap_seen_at is None:
            self._gap_seen_at = self._clock()
        return ready

    def missing(self) -> Optional[Tuple[int, int]]:
        """The seqs holding later entries back, as ``(first, last)``; None if none."""
        if not self._pending:
            return None
        return self.next_seq, min(self._pending) - 1

    def skip_stale_gap(self) -> Optional[Tuple[int, int]]:
        """Give up on the missing seqs once they have been missing ``gap_timeout``.

        Returns the skipped range ``(first, last)``, or None when nothing was
        skipped. Call :meth:`pop_ready` afterwards.
        """
        gap = self.missing()
        if gap is None or self._gap_seen_at is None:
            return None
        if self._clock() - self._gap_seen_at < self.gap_timeout:
            return None
        self.next_seq = gap[1] + 1
        self._gap_seen_at = None
        return gap
