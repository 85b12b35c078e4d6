"""Salary statistics in exact integer cents (pure, no I/O).

The import computes them once per department; the mean and the median are
rounded to the cent, half up, only when they are read.
"""

from collections.abc import Iterable
from typing import NamedTuple


class SalaryStats(NamedTuple):
    """Count, extremes, total and the two middle values of a set of salaries.

    For an odd count both middle values are the median itself; for an even
    count the median is their average, which may fall on half a cent.
    """

    employees: int
    min_cents: int
    max_cents: int
    total_cents: int
    median_low_cents: int
    median_high_cents: int

    @property
    def mean_cents(self) -> int:
        """The mean, rounded to the cent (half up)."""
        return divide_half_up(self.total_cents, self.employees)

    @property
    def median_cents(self) -> int:
        """The median, rounded to the cent (half up)."""
        return divide_half_up(self.median_low_cents + self.median_high_cents, 2)


def divide_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, halves up.

    Both are non-negative integers; integer arithmetic keeps it exact.
    """
    return (2 * numerator + denominator) // (2 * denominator)


def summarize(cents: Iterable[int]) -> SalaryStats:
    """The statistics of a non-empty collection of salaries in cents."""
    ordered = sorted(cents)
    if not ordered:
        raise ValueError("no salaries to summarize")
    count = len(ordered)
    return SalaryStats(
        employees=count,
        min_cents=ordered[0],
        max_cents=ordered[-1],
        total_cents=sum(ordered),
        median_low_cents=ordered[(count - 1) // 2],
        median_high_cents=ordered[count // 2],
    )


def by_department(rows: Iterable) -> dict[str, SalaryStats]:
    """Department name -> statistics, of rows with department and salary_cents."""
    salaries: dict[str, list] = {}
    for row in rows:
        salaries.setdefault(row.department, []).append(row.salary_cents)
    return {name: summarize(cents) for name, cents in salaries.items()}
