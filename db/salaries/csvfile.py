"""Parsing the City of Chicago salary CSV: rows in, clean employee rows out.

Pure: it reads an iterable of text lines (an open file, a list of strings)
and does no I/O of its own, so it is tested directly on crafted CSVs. Money
becomes integer cents, never a float. Blank rows and malformed rows are
skipped and counted, with the first few problems kept for the summary.
"""

import csv
import re
from collections.abc import Iterable
from typing import NamedTuple

#: Header names (compared case-insensitively) -> EmployeeRow field.
COLUMNS = {
    "name": "name",
    "position title": "position_title",
    "department": "department",
    "employee annual salary": "salary_cents",
}
_LABELS = {field: column for column, field in COLUMNS.items()}
#: Longest name, title or department stored (the columns are VARCHAR of this).
MAX_TEXT = 100
#: Largest salary accepted, in cents (a billion dollars): keeps sums in 64 bits.
MAX_CENTS = 10**11
#: Problems kept in the report; the rest are only counted.
MAX_PROBLEMS = 20

# "$88968.00", "88968", "$88,968.5": dollars with optional thousands commas and
# at most two decimals. Negative salaries are not salaries.
_MONEY = re.compile(r"\$?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?")


class EmployeeRow(NamedTuple):
    """One employee as loaded: the salary in integer cents."""

    name: str
    position_title: str
    department: str
    salary_cents: int


class ParseReport(NamedTuple):
    """What :func:`read_employees` found: the rows and what it skipped."""

    rows: list[EmployeeRow]
    blank: int
    malformed: int
    problems: list[str]


class NotASalaryFile(ValueError):
    """The file does not start with the salary file's header."""


def parse_money(text: str) -> int:
    """``"$88968.00"`` -> ``8896800`` cents; ValueError for anything else."""
    match = _MONEY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an amount of dollars: {text!r}")
    dollars, cents = match.groups()
    amount = int(dollars.replace(",", "")) * 100 + int((cents or "0").ljust(2, "0"))
    if amount > MAX_CENTS:
        raise ValueError(f"more than {MAX_CENTS // 100} dollars: {text!r}")
    return amount


def read_employees(lines: Iterable[str]) -> ParseReport:
    """Parse the CSV in ``lines``; the first row must be the header.

    Raises:
        NotASalaryFile: the header lacks one of the four columns.
    """
    reader = csv.reader(lines)
    header = next(reader, [])
    positions = _header_positions(header)
    rows, problems = [], []
    blank = malformed = 0
    for record in reader:
        if not any(field.strip() for field in record):
            blank += 1
            continue
        try:
            rows.append(_employee(record, len(header), positions))
        except ValueError as ex:
            malformed += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"line {reader.line_num}: {ex}")
    return ParseReport(_canonical_departments(rows), blank, malformed, problems)


def _header_positions(header: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    if names and names[0].startswith("\ufeff"):
        names[0] = names[0][1:]
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        raise NotASalaryFile(f"the header lacks the column(s): {', '.join(missing)}")
    return {field: names.index(column) for column, field in COLUMNS.items()}


def _employee(record: list[str], width: int, positions: dict[str, int]) -> EmployeeRow:
    # A field count other than the header's means a stray or missing comma:
    # the values would land in the wrong columns.
    if len(record) != width:
        raise ValueError(f"{len(record)} fields, expected {width}")
    values = {}
    for field, index in positions.items():
        value = record[index].strip()
        label = _LABELS[field]
        if not value:
            raise ValueError(f"empty {label}")
        if len(value) > MAX_TEXT:
            raise ValueError(f"{label} longer than {MAX_TEXT} characters")
        values[field] = value
    values["salary_cents"] = parse_money(values["salary_cents"])
    return EmployeeRow(**values)


def _canonical_departments(rows: list[EmployeeRow]) -> list[EmployeeRow]:
    # Departments are looked up case-insensitively, so "DoIT" and "DOIT" must
    # be one department: the first spelling in the file names it.
    spelling: dict[str, str] = {}
    for row in rows:
        spelling.setdefault(row.department.lower(), row.department)
    return [
        row
        if spelling[row.department.lower()] == row.department
        else row._replace(department=spelling[row.department.lower()])
        for row in rows
    ]
