"""The prime batches the primes path posts.

Nothing here asserts how fast anything is.
"""

import itertools
import math

from bench import primegen


def _is_prime(n):
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def test_small_primes():
    assert primegen.small_primes(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert primegen.small_primes(1) == []


def test_prime_batches_are_consecutive_primes_from_the_start():
    batches = primegen.batches(10**9, 30, 10)
    numbers = [n for batch in batches for n in batch]
    assert all(len(batch) == 10 for batch in batches)
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 1_000_000_007  # the first prime above 10**9
    assert all(_is_prime(n) for n in numbers)
    # nothing skipped between them (small windows force segment boundaries)
    gen = primegen.primes_from(10**9, window=97)
    assert [next(gen) for _ in range(len(numbers))] == numbers


def test_prime_batches_cross_a_window_boundary_without_gaps():
    crossing = itertools.islice(primegen.primes_from(2, window=10), 10)
    assert list(crossing) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
