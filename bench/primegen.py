"""Unique prime batches for ``POST /primes`` load: a segmented sieve, no I/O.

The API stores a batch only if none of its numbers is stored yet: every
request of a load test needs a batch of its own.
"""

import itertools
import math
from collections.abc import Iterator
from typing import List


def small_primes(limit: int) -> List[int]:
    """Every prime <= ``limit`` (sieve of Eratosthenes)."""
    if limit < 2:
        return []
    sieve = bytearray([1]) * (limit + 1)
    sieve[0] = sieve[1] = 0
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return list(itertools.compress(range(limit + 1), sieve))


def primes_from(start: int, window: int = 1 << 20) -> Iterator[int]:
    """The primes >= ``start``, ascending; sieves ``window`` numbers at a time."""
    low = max(start, 2)
    while True:
        high = low + window
        segment = bytearray([1]) * window
        for p in small_primes(math.isqrt(high - 1)):
            first = max(p * p, (low + p - 1) // p * p)
            if first < high:
                segment[first - low :: p] = bytes(len(range(first, high, p)))
        yield from itertools.compress(range(low, high), segment)
        low = high


def batches(start: int, count: int, size: int) -> List[List[int]]:
    """``count`` batches of ``size`` consecutive primes, the first one >= ``start``."""
    primes = primes_from(start)
    return [list(itertools.islice(primes, size)) for _ in range(count)]
