"""The pure Collatz module: chain lengths, the longest chain in a range, splitting."""

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from core import collatz


def naive_length(k: int) -> int:
    """Terms of the chain from k, counted one by one."""
    terms = 1
    while k != 1:
        k = 3 * k + 1 if k % 2 else k // 2
        terms += 1
    return terms


def naive_longest(lo: int, hi: int):
    """Every start of lo..hi tried; the first (smallest) of the longest wins."""
    best = None
    for k in range(lo, hi + 1):
        length = naive_length(k)
        if best is None or length > best[1]:
            best = (k, length)
    return best


NAIVE = [0] + [naive_length(k) for k in range(1, 5001)]

# By hand: 1; 2 1; 3 10 5 16 8 4 2 1; 4 2 1; 5 16 8 4 2 1; 6 3 ...; 7 22 11
# 34 17 52 26 13 40 20 10 5 16 8 4 2 1; 9 28 14 7 ... (20 terms).
BY_HAND = {1: 1, 2: 2, 3: 8, 4: 3, 5: 6, 6: 9, 7: 17, 8: 4, 9: 20, 10: 7}
LONGEST_BY_HAND = {
    1: (1, 1),
    2: (2, 2),
    3: (3, 8),
    4: (3, 8),
    5: (3, 8),
    6: (6, 9),
    7: (7, 17),
    8: (7, 17),
    9: (9, 20),
    10: (9, 20),
}


@pytest.mark.parametrize("k, length", sorted(BY_HAND.items()))
def test_chain_lengths_by_hand(k, length):
    assert collatz.chain_length(k) == length


@pytest.mark.parametrize("n, answer", sorted(LONGEST_BY_HAND.items()))
def test_longest_upto_by_hand(n, answer):
    assert collatz.longest_upto(n) == answer


def test_the_issue_example_chain():
    chain = collatz.chain(13, keep_sequence=True)
    assert chain == collatz.Chain(10, 40, [13, 40, 20, 10, 5, 16, 8, 4, 2, 1])


def test_chain_of_one_and_of_27():
    assert collatz.chain(1, keep_sequence=True) == collatz.Chain(1, 1, [1])
    assert collatz.chain(27) == collatz.Chain(112, 9232, None)


def test_chain_peak_is_the_largest_term():
    for k in range(1, 300):
        chain = collatz.chain(k, keep_sequence=True)
        assert chain.peak == max(chain.sequence)
        assert chain.length == len(chain.sequence) == NAIVE[k]


@pytest.mark.parametrize(
    "n, answer",
    [(1000, (871, 179)), (10**6, (837799, 525)), (3 * 10**6, (2298025, 560))],
)
def test_known_answers(n, answer):
    assert collatz.longest_upto(n) == answer


def test_every_n_up_to_1500_matches_the_naive_search():
    best = (1, 1)
    for n in range(1, 1501):
        if NAIVE[n] > best[1]:
            best = (n, NAIVE[n])
        assert collatz.longest_upto(n) == best, n


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 2000), st.integers(2, 6000))
def test_any_range_matches_the_naive_search(lo, width, memo_size):
    hi = min(lo + width, 5000)
    expected = max(
        ((k, NAIVE[k]) for k in range(lo, hi + 1)), key=lambda r: (r[1], -r[0])
    )
    # A memo smaller than the range exercises the walks above it.
    assert collatz.longest(lo, hi, collatz.new_memo(memo_size)) == expected


@pytest.mark.parametrize("lo", [2**63 - 20, 2**64 + 1, 10**30 + 7])
def test_walks_beyond_machine_ints_stay_exact(lo):
    # Under PyPy these walks leave 64-bit ints for big ones mid-loop.
    hi = lo + 40
    lengths = {k: collatz.chain_length(k) for k in range(lo, hi + 1)}
    expected = max(lengths.items(), key=lambda r: (r[1], -r[0]))
    assert collatz.longest(lo, hi, collatz.new_memo(1000)) == expected


def test_ties_go_to_the_smallest_start():
    assert NAIVE[12] == NAIVE[13] == 10
    assert collatz.longest(12, 13) == (12, 10)
    assert collatz.merge([(13, 10), (12, 10)]) == (12, 10)
    assert collatz.merge([(13, 10), (12, 9)]) == (13, 10)


def test_a_memo_is_reusable_across_calls():
    memo = collatz.new_memo(3000)
    assert collatz.longest(1, 2000, memo) == naive_longest(1, 2000)
    assert collatz.longest(2500, 4000, memo) == naive_longest(2500, 4000)
    assert collatz.longest(1, 1000, memo) == naive_longest(1, 1000)
    assert all(length in (0, NAIVE[k]) for k, length in enumerate(memo) if k)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**6), st.integers(0, 10**4), st.integers(1, 40))
def test_split_covers_the_range_exactly(lo, width, parts):
    hi = lo + width
    ranges = collatz.split(lo, hi, parts)
    assert 1 <= len(ranges) <= parts
    assert ranges[0][0] == lo and ranges[-1][1] == hi
    assert all(a <= b for a, b in ranges)
    assert all(ranges[i][1] + 1 == ranges[i + 1][0] for i in range(len(ranges) - 1))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 12))
def test_merged_ranges_give_the_one_range_answer(n, parts):
    lo, hi = collatz.search_range(n)
    memo = collatz.new_memo(1000)
    pieces = [collatz.longest(a, b, memo) for a, b in collatz.split(lo, hi, parts)]
    assert collatz.merge(pieces) == collatz.longest_upto(n) == naive_longest(1, n)


def test_split_and_merge_for_a_large_n():
    lo, hi = collatz.search_range(300_000)
    pieces = [collatz.longest(a, b) for a, b in collatz.split(lo, hi, 7)]
    assert collatz.merge(pieces) == collatz.longest_upto(300_000) == (230631, 443)


def test_search_range_is_the_upper_half():
    assert collatz.search_range(1) == (1, 1)
    assert collatz.search_range(10) == (6, 10)
    assert collatz.search_range(11) == (6, 11)


@pytest.mark.parametrize(
    "call",
    [
        lambda: collatz.chain(0),
        lambda: collatz.longest(0, 5),
        lambda: collatz.longest(5, 4),
        lambda: collatz.split(5, 4, 2),
        lambda: collatz.search_range(0),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_check_longest_accepts_the_answer_and_says_why_others_are_wrong():
    lo, hi = 500_001, 1_000_000
    start, length = collatz.longest(lo, hi)
    probes = range(lo, hi + 1, 997)
    assert collatz.check_longest(lo, hi, start, length, probes) is None
    assert collatz.check_longest(lo, hi, 4242, 99999) == (
        "start 4242 is outside 500001..1000000"
    )
    assert collatz.check_longest(lo, hi, start, length + 1) == (
        f"the chain of {start} has {length} terms, not {length + 1}"
    )
    # True of its start, but not the longest: a probe beats it.
    short = 2**19
    claim = (short, collatz.chain_length(short))
    assert collatz.check_longest(lo, hi, *claim) is None  # no probe: passes
    assert "in the range beats it" in collatz.check_longest(lo, hi, *claim, probes)
    # 18 and 19 both have 21 terms: a tie goes to the smaller start.
    assert collatz.longest(1, 20) == (18, 21)
    assert collatz.check_longest(1, 20, 18, 21, [19]) is None
    assert collatz.check_longest(1, 20, 19, 21, [18]) == (
        "18 in the range beats it (21 terms)"
    )
