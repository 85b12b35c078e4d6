"""Collatz chains: lengths, the longest chain in a range, range splitting (no I/O).

A chain's length counts its terms, both ends included (length(1) = 1); among
starts of one length the smallest wins. Design: docs/design/collatz.md#the-maths
"""

from array import array
from collections.abc import Iterable
from typing import List
from typing import NamedTuple
from typing import Optional
from typing import Tuple

#: Numbers below this have their chain length memoized by default (32 MiB).
DEFAULT_MEMO_SIZE = 1 << 24


class Chain(NamedTuple):
    """One start's chain: its length (terms), its largest term, maybe its terms."""

    length: int
    peak: int
    sequence: Optional[List[int]]


def new_memo(size: int = DEFAULT_MEMO_SIZE) -> array:
    """An empty memo for :func:`longest`: lengths of the numbers below ``size``.

    A memo only ever holds true lengths, so one can be reused across calls
    (a worker keeps its own for its whole life).
    """
    memo = array("H", [0]) * max(size, 2)
    memo[1] = 1
    return memo


def chain(k: int, keep_sequence: bool = False) -> Chain:
    """The chain from ``k`` (>= 1) down to 1: length, peak and, if asked, its terms."""
    if k < 1:
        raise ValueError("a Collatz chain starts at 1 or above")
    sequence = [k] if keep_sequence else None
    x, length, peak = k, 1, k
    while x != 1:
        x = 3 * x + 1 if x & 1 else x >> 1
        length += 1
        if x > peak:
            peak = x
        if sequence is not None:
            sequence.append(x)
    return Chain(length, peak, sequence)


def chain_length(k: int) -> int:
    """The number of terms of the chain from ``k`` (>= 1)."""
    return chain(k).length


def longest(lo: int, hi: int, memo: Optional[array] = None) -> Tuple[int, int]:
    """The start in ``lo..hi`` (inclusive) with the longest chain: ``(start, length)``.

    Ties go to the smallest start. ``memo`` (from :func:`new_memo`) is read and
    filled; without one, a fresh one as large as the range needs (capped at
    :data:`DEFAULT_MEMO_SIZE`) is used.
    """
    if lo < 1 or hi < lo:
        raise ValueError(f"not a range of starts: {lo}..{hi}")
    if memo is None:
        memo = new_memo(min(hi + 1, DEFAULT_MEMO_SIZE))
    # Every k <= hi // 2 is beaten by 2k, which is in the range and one term
    # longer; so only the top half can hold the answer (ties included: the
    # lengths differ, they do not tie).
    lo = max(lo, hi // 2 + 1)
    bound = len(memo)
    # Numbers below ``bound`` met on a walk, with the steps taken to reach
    # them: once the walk ends on a known length, they get theirs.
    path = [0] * 2048
    best, best_length = lo, 0
    for k in range(lo, hi + 1):
        if k < bound and memo[k]:
            # Met by an earlier walk (about 2 starts in 5). Under PyPy, entering
            # and leaving the loops below costs more than a step, so these
            # starts stay out of them.
            if memo[k] > best_length:
                best, best_length = k, memo[k]
            continue
        x, steps, top = k, 0, 0
        while x >= bound or memo[x] == 0:
            if x < bound:
                if top == len(path):
                    path.extend([0] * len(path))
                path[top] = x
                path[top + 1] = steps
                top += 2
            # Even x: x / 2, one term; odd x: (3x + 1) / 2, two terms. Written
            # without a branch, which PyPy's JIT would leave the loop's trace
            # for on every other step.
            steps += 1 + (x & 1)
            x = (x >> 1) + ((x + 1) & -(x & 1))
        steps += memo[x]
        while top:
            top -= 2
            memo[path[top]] = steps - path[top + 1]
        if steps > best_length:
            best, best_length = k, steps
    return best, best_length


def longest_upto(n: int, memo: Optional[array] = None) -> Tuple[int, int]:
    """The start in ``1..n`` with the longest chain: ``(start, length)``."""
    return longest(1, n, memo)


def search_range(n: int) -> Tuple[int, int]:
    """The starts of ``1..n`` that can hold its longest chain: ``(n // 2 + 1, n)``."""
    if n < 1:
        raise ValueError("n must be 1 or more")
    return n // 2 + 1, n


def split(lo: int, hi: int, parts: int) -> List[Tuple[int, int]]:
    """Cut ``lo..hi`` into at most ``parts`` consecutive, non-empty, even ranges."""
    if hi < lo:
        raise ValueError(f"empty range {lo}..{hi}")
    size = hi - lo + 1
    parts = max(1, min(parts, size))
    edges = [lo + size * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(parts)]


def merge(results: Iterable[Tuple[int, int]]) -> Tuple[int, int]:
    """The best of several ``(start, length)`` results: longest, then smallest start."""
    return max(results, key=lambda result: (result[1], -result[0]))


def check_longest(
    lo: int, hi: int, start: int, length: int, probes: Iterable[int] = ()
) -> Optional[str]:
    """Why ``(start, length)`` cannot be :func:`longest` of ``lo..hi``; None if it may.

    Cheap next to computing the range: ``start`` must lie in the range and
    its chain have ``length`` terms, and none of the ``probes`` (starts in
    the range, picked at random by the caller) may beat it. The probes catch
    a made-up or careless answer, not every wrong one: only computing the
    whole range proves it is the longest.
    """
    if not lo <= start <= hi:
        return f"start {start} is outside {lo}..{hi}"
    actual = chain_length(start)
    if actual != length:
        return f"the chain of {start} has {actual} terms, not {length}"
    for k in probes:
        other = chain_length(k)
        if other > length or (other == length and k < start):
            return f"{k} in the range beats it ({other} terms)"
    return None
