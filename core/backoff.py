"""Exponential back-off for retry loops (no I/O)."""

import random
from typing import Callable


class Backoff:
    """Delays that double after each failure up to ``cap``, back to ``base`` on success.

    Each delay is jittered down by up to ``jitter`` (a fraction), so several
    processes that failed together do not retry together.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        jitter: float = 0.1,
        rand: Callable[[], float] = random.random,
    ):
        if base <= 0 or cap < base or not 0 <= jitter < 1:
            raise ValueError("need 0 < base <= cap and 0 <= jitter < 1")
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self._rand = rand
        self.failures = 0

    def failure(self) -> float:
        """Count a failure; the seconds to wait before trying again."""
        delay = min(self.cap, self.base * 2 ** min(self.failures, 32))
        self.failures += 1
        return delay * (1 - self.jitter * self._rand())

    def success(self) -> None:
        """Count a success: the next failure waits ``base`` again."""
        self.failures = 0
