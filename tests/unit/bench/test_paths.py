"""The bench's targets: the paths it loads, by name, and their bodies (primes).

Nothing here asserts how fast anything is.
"""

import itertools
import json
import math

import pytest

from bench import paths


def _is_prime(n):
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def test_primes_target_makes_bodies_of_consecutive_primes_from_the_start():
    target = paths.BY_NAME["primes"]
    bodies = [json.loads(body)["primes"] for body in target.bodies(30, 10**9)]
    numbers = [n for batch in bodies for n in batch]
    assert all(len(batch) == paths.PRIMES_PER_BATCH for batch in bodies)
    assert len(numbers) == 30 * paths.PRIMES_PER_BATCH
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 1_000_000_007  # the first prime above 10**9
    assert all(_is_prime(n) for n in numbers)
    # nothing skipped between them (small windows force segment boundaries)
    gen = paths.primes_from(10**9, window=97)
    assert [next(gen) for _ in range(len(numbers))] == numbers


def test_small_primes():
    assert paths.small_primes(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert paths.small_primes(1) == []


def test_primes_cross_a_window_boundary_without_gaps():
    crossing = itertools.islice(paths.primes_from(2, window=10), 10)
    assert list(crossing) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


def test_unknown_target_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="health"):
        paths.by_name(["health", "nope"])
    assert [t.name for t in paths.by_name(["notes-get", "health", "bare"])] == [
        "health",
        "notes-get",
    ]
