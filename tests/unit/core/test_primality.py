"""Primality below 2**64: against a sieve, known primes and strong pseudoprimes."""

import math
import random

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from core.primality import BASES_64
from core.primality import SMALL_BOUND
from core.primality import SMALL_PRIMES
from core.primality import UPPER_BOUND
from core.primality import is_prime
from core.primality import passes_miller_rabin

SIEVE_LIMIT = 10**6


@pytest.fixture(scope="module")
def sieve() -> bytearray:
    """sieve[n] == 1 exactly when n is prime, for n < SIEVE_LIMIT."""
    flags = bytearray([1]) * SIEVE_LIMIT
    flags[0] = flags[1] = 0
    for i in range(2, math.isqrt(SIEVE_LIMIT) + 1):
        if flags[i]:
            flags[i * i :: i] = bytearray(len(range(i * i, SIEVE_LIMIT, i)))
    return flags


def test_agrees_with_a_sieve_below_a_million(sieve):
    wrong = [n for n in range(SIEVE_LIMIT) if is_prime(n) != bool(sieve[n])]
    assert wrong == []


@pytest.mark.parametrize("bases", [(2, 7, 61), BASES_64], ids=["2-7-61", "sinclair"])
def test_each_base_set_alone_agrees_with_the_sieve(sieve, bases):
    # Both base sets prove primality from 3 up to their bound, without the
    # trial division that is_prime does first, except for the composites
    # that divide a base (those need it): n with no factor below 100.
    wrong = [
        n
        for n in range(3, SIEVE_LIMIT, 2)
        if all(n % p for p in SMALL_PRIMES)
        and passes_miller_rabin(n, bases) != bool(sieve[n])
    ]
    assert wrong == []


@pytest.mark.parametrize(
    "n",
    [
        2**31 - 1,
        1_000_000_007,
        4_294_967_279,
        4_294_967_291,  # largest prime below 2**32
        999_999_999_989,
        2**61 - 1,  # Mersenne prime
        2**63 - 25,  # largest prime below 2**63
        2**63 + 29,  # smallest prime above 2**63
        2**64 - 59,  # largest prime below 2**64
        18446744073709551557,  # the same, spelled out
    ],
)
def test_known_large_primes(n):
    assert is_prime(n)


# Strong pseudoprimes to base 2 (and more bases): Miller-Rabin with base 2
# alone calls them prime. Each is listed with its factors.
STRONG_PSEUDOPRIMES = [
    (2047, [23, 89]),
    (3277, [29, 113]),
    (25326001, [2251, 11251]),
    (3215031751, [151, 751, 28351]),  # bases 2, 3, 5, 7
    (4759123141, [48781, 97561]),  # bases 2, 7, 61: SMALL_BOUND
    (1122004669633, [611557, 1834669]),
    (2152302898747, [6763, 10627, 29947]),  # bases 2..11
    (3474749660383, [1303, 16927, 157543]),  # bases 2..13
    (341550071728321, [10670053, 32010157]),  # bases 2..17
    (3825123056546413051, [149491, 747451, 34233211]),  # bases 2..23
]


@pytest.mark.parametrize("n, factors", STRONG_PSEUDOPRIMES)
def test_strong_pseudoprimes_are_composite(n, factors):
    assert math.prod(factors) == n
    assert passes_miller_rabin(n, bases=(2,)), "not a base-2 pseudoprime: weak test"
    assert not is_prime(n)


def test_the_small_bases_stop_at_their_bound():
    # 4759123141 is the first composite that fools 2, 7 and 61 together.
    assert SMALL_BOUND == 4759123141
    assert passes_miller_rabin(SMALL_BOUND, bases=(2, 7, 61))
    assert not is_prime(SMALL_BOUND)


@pytest.mark.parametrize(
    "n",
    [
        561,
        1105,
        1729,
        2465,
        2821,
        6601,
        8911,  # Carmichael numbers
        4_294_967_279 * 4_294_967_291,  # two 32-bit primes
        (2**31 - 1) ** 2,  # a square
        2**64 - 1,
        0,
        1,
        -7,
    ],
)
def test_composites_and_non_primes(n):
    assert not is_prime(n)


def test_numbers_of_2_to_the_64_and_above_are_refused():
    with pytest.raises(ValueError):
        is_prime(UPPER_BOUND)


def reference_is_prime(n: int) -> bool:
    """Miller-Rabin with the first twelve primes as bases: proven below 3.3e24."""
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    if n < 2:
        return False
    for p in bases:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=0, max_value=UPPER_BOUND - 1))
def test_agrees_with_another_proven_base_set(n):
    assert is_prime(n) == reference_is_prime(n)


def test_agrees_with_another_proven_base_set_on_random_64_bit_numbers():
    # Uniform odd 64-bit numbers: about one in 22 is prime, so both answers
    # get exercised (hypothesis favours small and boundary values).
    rng = random.Random(6)
    numbers = [rng.randrange(2**63, 2**64) | 1 for _ in range(20_000)]
    wrong = [n for n in numbers if is_prime(n) != reference_is_prime(n)]
    assert wrong == []
    assert sum(map(is_prime, numbers)) > 500


PRIMES_NEAR_2_TO_32 = [p for p in range(2**32 - 2000, 2**32) if reference_is_prime(p)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PRIMES_NEAR_2_TO_32), st.sampled_from(PRIMES_NEAR_2_TO_32))
def test_products_of_two_large_primes_are_composite(p, q):
    assert not is_prime(p * q)
