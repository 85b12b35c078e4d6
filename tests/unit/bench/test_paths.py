"""The bench's targets: the paths it loads, by name, and their bodies.

Nothing here asserts how fast anything is.
"""

import json

import pytest

from bench import paths


def test_primes_target_makes_distinct_json_bodies():
    target = paths.BY_NAME["primes"]
    bodies = [json.loads(body)["primes"] for body in target.bodies(5, 10**9)]
    flat = [n for batch in bodies for n in batch]
    assert len(flat) == len(set(flat)) == 5 * paths.PRIMES_PER_BATCH


def test_unknown_target_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="health"):
        paths.by_name(["health", "nope"])
    assert [t.name for t in paths.by_name(["notes-get", "health", "bare"])] == [
        "health",
        "notes-get",
    ]
