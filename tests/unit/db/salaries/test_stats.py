"""Salary statistics and money in JSON, tested directly."""

import statistics
from decimal import ROUND_HALF_UP
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.salaries.stats import divide_half_up
from db.salaries.stats import summarize
from resources.salaries import money


def test_stats_of_an_odd_count():
    stats = summarize([300, 100, 200])
    assert (stats.employees, stats.min_cents, stats.max_cents, stats.total_cents) == (
        3,
        100,
        300,
        600,
    )
    assert stats.median_cents == 200
    assert stats.mean_cents == 200


def test_stats_of_an_even_count_average_the_middle_values_half_up():
    stats = summarize([96, 101, 400, 1000])
    assert (stats.median_low_cents, stats.median_high_cents) == (101, 400)
    assert stats.median_cents == 251  # 250.5 rounds up
    assert stats.mean_cents == 399  # 1597 / 4 = 399.25


def test_stats_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        summarize([])


@given(st.integers(0, 10**12), st.integers(1, 10**6))
def test_divide_half_up_matches_decimal_rounding(numerator, denominator):
    expected = (Decimal(numerator) / Decimal(denominator)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    assert divide_half_up(numerator, denominator) == int(expected)


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=50))
def test_median_matches_the_statistics_module(cents):
    expected = Decimal(statistics.median(cents)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    assert summarize(cents).median_cents == int(expected)


@given(st.integers(0, 10**13))
def test_money_is_the_float_of_the_two_decimal_amount(cents):
    text = f"{cents // 100}.{cents % 100:02d}"
    assert money(cents) == float(text)
    assert Decimal(repr(money(cents))) == Decimal(text)


def test_money_keeps_cents_as_written():
    assert repr(money(96)) == "0.96"
    assert repr(money(8896800)) == "88968.0"
    assert repr(money(7178080)) == "71780.8"
