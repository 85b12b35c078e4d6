"""The salary CSV parser, on small crafted files."""

import pytest

from db.salaries.csvfile import EmployeeRow
from db.salaries.csvfile import NotASalaryFile
from db.salaries.csvfile import parse_money
from db.salaries.csvfile import read_employees

HEADER = "Name,Position Title,Department,Employee Annual Salary\n"


def parse(body: str, header: str = HEADER):
    return read_employees((header + body).splitlines(keepends=True))


@pytest.mark.parametrize(
    "text, cents",
    [
        ("$88968.00", 8896800),
        ("$0.96", 96),
        ("88968", 8896800),
        ("$88,968.5", 8896850),
        (" $1,234,567.89 ", 123456789),
        ("$0", 0),
        ("$12.3", 1230),
        ("$1,000,000,000.00", 10**11),
    ],
)
def test_money_becomes_exact_cents(text, cents):
    assert parse_money(text) == cents


@pytest.mark.parametrize(
    "text",
    [
        "",
        "$",
        "-$5.00",
        "$-5",
        "$1.234",
        "abc",
        "$1,23.00",
        "1e5",
        "$ 5",
        "5.",
        "NaN",
        "$1000000000.01",
        "9" * 30,
    ],
)
def test_money_that_is_not_dollars_is_refused(text):
    with pytest.raises(ValueError):
        parse_money(text)


def test_rows_are_parsed_with_quoted_commas_and_kept_in_order():
    report = parse(
        '"AARON,  ELVIA J",WATER RATE TAKER,WATER MGMNT,$88968.00\n'
        '"KOCH,  STEVEN",ADMINISTRATIVE SECRETARY,MAYOR\'S OFFICE,$0.96\n'
    )
    assert report.rows == [
        EmployeeRow("AARON,  ELVIA J", "WATER RATE TAKER", "WATER MGMNT", 8896800),
        EmployeeRow("KOCH,  STEVEN", "ADMINISTRATIVE SECRETARY", "MAYOR'S OFFICE", 96),
    ]
    assert (report.blank, report.malformed, report.problems) == (0, 0, [])


def test_blank_rows_are_skipped_and_counted():
    report = parse("A,T,D,$1.00\n,,,\n\n  , ,,\nB,T,D,$2.00\n")
    assert [row.name for row in report.rows] == ["A", "B"]
    assert report.blank == 3
    assert report.malformed == 0


@pytest.mark.parametrize(
    "line, reason",
    [
        ("A,T,D\n", "3 fields"),
        ("A,T,D,$1.00,extra\n", "5 fields"),
        ("AARON, ELVIA,T,D,$1.00\n", "5 fields"),  # an unquoted comma
        (",T,D,$1.00\n", "empty name"),
        ("A,T,,$1.00\n", "empty department"),
        ("A,T,D,\n", "empty employee annual salary"),
        ("A,T,D,lots\n", "not an amount"),
        ("A,T,D,-$1.00\n", "not an amount"),
        ("A," + "T" * 101 + ",D,$1.00\n", "longer than 100"),
    ],
)
def test_malformed_rows_are_skipped_counted_and_explained(line, reason):
    report = parse("GOOD,T,D,$1.00\n" + line + "ALSO GOOD,T,D,$2.00\n")
    assert [row.name for row in report.rows] == ["GOOD", "ALSO GOOD"]
    assert report.malformed == 1
    assert report.blank == 0
    assert len(report.problems) == 1
    assert report.problems[0].startswith("line 3: ")
    assert reason in report.problems[0]


def test_only_the_first_problems_are_kept_but_all_are_counted():
    report = parse("A,T,D,bad\n" * 50)
    assert report.malformed == 50
    assert 0 < len(report.problems) < 50


def test_columns_are_found_by_header_name_in_any_order_and_case():
    report = parse(
        "$5.00,D,A,T\n",
        header="employee annual salary,DEPARTMENT,name,Position Title\n",
    )
    assert report.rows == [EmployeeRow("A", "T", "D", 500)]


def test_a_byte_order_mark_before_the_header_is_ignored():
    assert parse("A,T,D,$1.00\n", header="\ufeff" + HEADER).rows[0].name == "A"


@pytest.mark.parametrize("header", ["", "Name,Title,Department,Salary\n", "a,b\n"])
def test_a_file_without_the_header_is_refused(header):
    with pytest.raises(NotASalaryFile):
        read_employees([header, "A,T,D,$1.00\n"])


def test_one_department_spelled_in_two_cases_becomes_the_first_spelling():
    report = parse("A,T,DoIT,$1.00\nB,T,DOIT,$2.00\nC,T,doit,$3.00\n")
    assert {row.department for row in report.rows} == {"DoIT"}
