"""Deterministic primality for 0 <= n < 2**64: trial division, then Miller-Rabin.

With a fixed base set Miller-Rabin is a proof below a known bound: bases 2,
7, 61 below 4,759,123,141 (Jaeschke); Jim Sinclair's seven bases below 2**64
(checked against the Feitsma-Galway list of base-2 pseudoprimes), seven
modular powers instead of the twelve the first twelve primes need.
"""

from collections.abc import Sequence
from typing import Optional
from typing import Tuple

#: The primes below 100: trial division by them settles most composites
#: cheaply, and every n below 101**2 with none of them as a factor is prime.
SMALL_PRIMES: Tuple[int, ...] = (
    2,
    3,
    5,
    7,
    11,
    13,
    17,
    19,
    23,
    29,
    31,
    37,
    41,
    43,
    47,
    53,
    59,
    61,
    67,
    71,
    73,
    79,
    83,
    89,
    97,
)
_TRIAL_LIMIT = 101 * 101

UPPER_BOUND = 2**64
"""Numbers from here on are outside the range this module decides."""

SMALL_BOUND = 4_759_123_141
"""Below this, :data:`SMALL_BASES` decide; above, :data:`BASES_64`."""
SMALL_BASES = (2, 7, 61)
BASES_64 = (2, 325, 9375, 28178, 450775, 9780504, 1795265022)


def is_prime(n: int) -> bool:
    """Whether ``n`` is prime, for any int 0 <= n < 2**64 (negatives are not prime).

    Raises:
        ValueError: when ``n >= 2**64``, where the base sets prove nothing.
    """
    if n >= UPPER_BOUND:
        raise ValueError("is_prime decides only numbers below 2**64")
    if n < 2:
        return False
    for p in SMALL_PRIMES:
        if n % p == 0:
            return n == p
    if n < _TRIAL_LIMIT:
        return True
    return passes_miller_rabin(n)


def passes_miller_rabin(n: int, bases: Optional[Sequence[int]] = None) -> bool:
    """Whether odd ``n`` (3 <= n < 2**64) is a strong probable prime to every base.

    With the default bases (chosen by the size of ``n``) that means prime,
    provided ``n`` has no factor below 100; :func:`is_prime` checks that
    first. Bases that are multiples of ``n`` are skipped: such a base says
    nothing, and skipping it is sound here because every composite that
    divides one of Sinclair's bases has a factor below 100 (the bases factor
    into 2, 3, 5, 13, 19, 23, 37, 73, 479, 14089 and 299210837, the last
    three each only once).
    """
    d = n - 1
    s = 0
    while not d & 1:
        d >>= 1
        s += 1
    if bases is None:
        bases = SMALL_BASES if n < SMALL_BOUND else BASES_64
    for base in bases:
        a = base % n
        if a == 0:
            continue
        if not _strong_probable_prime(n, a, d, s):
            return False
    return True


def _strong_probable_prime(n: int, a: int, d: int, s: int) -> bool:
    # n - 1 = d * 2**s with d odd; n passes for base a when a**d == 1, or
    # a**(d * 2**r) == -1 for some 0 <= r < s (everything mod n).
    x = pow(a, d, n)
    if x == 1 or x == n - 1:
        return True
    for _ in range(s - 1):
        x = x * x % n
        if x == n - 1:
            return True
        if x == 1:
            return False
    return False
