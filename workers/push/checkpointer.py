"""Save a consumer's position in the background, often but not on every event."""

import logging
import threading
from typing import Optional

from db.checkpoints import CheckpointStore
from db.errors import Unavailable

log = logging.getLogger(__name__)


class Checkpointer:
    """Saves the latest position given to :meth:`advance` every ``interval`` seconds.

    Saving in a thread of its own keeps a slow or locked database off the
    forwarding path; a crash loses at most ``interval`` seconds of progress,
    which the next start forwards again (at least once). :meth:`close`
    saves the last position before returning.
    """

    def __init__(
        self,
        store: CheckpointStore,
        consumer: str,
        position: int,
        interval: float = 0.5,
    ):
        self._store = store
        self._consumer = consumer
        self._interval = interval
        self._lock = threading.Lock()
        self._position = position
        self._saved: Optional[int] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"checkpoint-{consumer}", daemon=True
        )

    @property
    def position(self) -> int:
        """The latest position given (saved or not yet)."""
        with self._lock:
            return self._position

    @property
    def saved(self) -> Optional[int]:
        """The position last saved (None before the first save)."""
        with self._lock:
            return self._saved

    def start(self) -> None:
        """Save the starting position now, then keep saving in the background."""
        self.flush()
        self._thread.start()

    def advance(self, position: int) -> None:
        """Everything up to ``position`` has been forwarded."""
        with self._lock:
            self._position = position

    def flush(self) -> bool:
        """Save the position now if it changed; False (logged) if the store is down."""
        with self._lock:
            position = self._position
            if position == self._saved:
                return True
        try:
            self._store.save(self._consumer, position)
        except Unavailable:
            log.warning(
                "checkpoint %s=%d not saved: database unavailable; will retry",
                self._consumer,
                position,
            )
            return False
        with self._lock:
            self._saved = position
        log.debug("checkpoint %s=%d", self._consumer, position)
        return True

    def close(self) -> None:
        """Stop the thread and save the last position."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.flush():
            log.info("checkpoint %s saved at %d", self._consumer, self.position)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()
