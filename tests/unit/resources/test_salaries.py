"""The salaries API over HTTP, against the real City of Chicago file.

The file is imported once per session (by the import-salaries command) into
a temp SQLite database; every expected number is computed here, independently,
from the CSV with the csv module and Decimal.
"""

import argparse
import collections
import csv
import io
import json
import os
import statistics
from decimal import ROUND_HALF_UP
from decimal import Decimal
from urllib.parse import quote

import falcon.testing
import pytest
import sqlalchemy as sa

from api.app import create_app
from api.salary_import import SALARIES_CSV
from api.salary_import import import_salaries
from core import wire
from core.settings import Settings
from db.salaries.store import EmployeeRecord
from db.stores import open_stores
from resources.salaries import CHUNK_BYTES
from resources.salaries import DepartmentNdjson
from resources.salaries import EmployeeJson
from tests.support.contract import ContractClient
from tests.support.live import settings_for
from tests.support.problems import assert_problem

CENT = Decimal("0.01")


@pytest.fixture(scope="session")
def salary_settings(tmp_path_factory) -> Settings:
    """Settings on a database holding the real salary file, imported once.

    A temp SQLite file, or the database TEST_DATABASE_URL names (for example
    a scratch PostgreSQL database: its salary tables are replaced).
    """
    folder = tmp_path_factory.mktemp("salaries")
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{folder / 'api.db'}"
    settings = settings_for(folder, database_url=url)
    args = argparse.Namespace(csv=str(SALARIES_CSV), if_empty=False)
    assert import_salaries(settings, args) == 0
    return settings


@pytest.fixture(scope="session")
def api(salary_settings) -> falcon.testing.TestClient:
    """A TestClient on the imported data (read-only: no test writes)."""
    stores = open_stores(salary_settings)
    yield ContractClient(create_app(salary_settings, stores))
    stores.close()


@pytest.fixture(scope="session")
def csv_rows():
    """The CSV's employees as (name, title, department, Decimal salary), no blanks."""
    with open(SALARIES_CSV, newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        next(reader)
        return [
            (name, title, department, Decimal(salary.lstrip("$")))
            for name, title, department, salary in reader
            if name or title or department or salary
        ]


def expected_stats(rows, department):
    salaries = [row[3] for row in rows if row[2] == department]
    total = sum(salaries)
    return {
        "name": department,
        "employees": len(salaries),
        "salary": {
            "min": min(salaries),
            "max": max(salaries),
            "mean": (total / len(salaries)).quantize(CENT, rounding=ROUND_HALF_UP),
            "median": statistics.median(salaries).quantize(
                CENT, rounding=ROUND_HALF_UP
            ),
            "total": total,
        },
    }


def as_decimals(body):
    """A department body with its money as Decimal (from the JSON number's digits)."""
    salary = {key: Decimal(repr(value)) for key, value in body["salary"].items()}
    return {**body, "salary": salary}


def employee_key(employee):
    return (
        employee["name"],
        employee["position_title"],
        employee["department"],
        Decimal(repr(employee["annual_salary"])),
    )


def walk(api, path, query):
    """Every employee of a list, following ``next`` links; also the page count."""
    employees, pages = [], 0
    result = api.simulate_get(path, query_string=query)
    key = "data" if path.startswith("/dept/") else "items"  # the seed's shape
    while True:
        assert result.status_code == 200, result.text
        pages += 1
        employees.extend(result.json[key])
        link = result.json["next"]
        if link is None:
            return employees, pages
        path, _, query = link.partition("?")
        result = api.simulate_get(path, query_string=query)
    key = "data" if path.startswith("/dept/") else "items"  # the seed's shape


# -- the file's counts ---------------------------------------------------------


def test_the_file_has_the_known_counts(csv_rows):
    assert len(csv_rows) == 32181
    assert len({row[2] for row in csv_rows}) == 35


def test_departments_are_the_files_sorted_case_insensitively(api, csv_rows):
    result = api.simulate_get("/departments")
    assert result.status_code == 200
    names = result.json["departments"]
    assert len(names) == 35
    assert set(names) == {row[2] for row in csv_rows}
    assert names == sorted(names, key=str.lower)
    assert names.index("DoIT") == names.index("DISABILITIES") + 1


def test_every_employee_is_listed_once(api, csv_rows):
    employees, pages = walk(api, "/employees", "limit=1000")
    assert pages == 33
    assert len(employees) == 32181
    assert collections.Counter(map(employee_key, employees)) == collections.Counter(
        csv_rows
    )


# -- department statistics -----------------------------------------------------


@pytest.mark.parametrize(
    "department", ["POLICE", "MAYOR'S OFFICE", "STREETS & SAN", "DoIT", "POLICE BOARD"]
)
def test_department_stats_match_the_csv(api, csv_rows, department):
    result = api.simulate_get("/departments/" + quote(department, safe=""))
    assert result.status_code == 200
    assert as_decimals(result.json) == expected_stats(csv_rows, department)


def test_every_departments_stats_match_the_csv(api, csv_rows):
    result = api.simulate_get("/departments", query_string="stats=true")
    assert result.status_code == 200
    departments = result.json["departments"]
    assert [d["name"] for d in departments] == api.simulate_get("/departments").json[
        "departments"
    ]
    for body in departments:
        assert as_decimals(body) == expected_stats(csv_rows, body["name"])


@pytest.mark.parametrize(
    "ttl, queries",
    [
        # Cold: the version, then every department in one query; warm, within
        # the version's time to live: nothing.
        (60.0, 2),
        # Warm after it: the version again (unchanged: not the departments).
        (0.0, 3),
    ],
)
def test_all_department_stats_take_a_constant_number_of_queries(
    salary_settings, monkeypatch, ttl, queries
):
    monkeypatch.setattr("db.salaries.store.VERSION_TTL", ttl)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    stores = open_stores(salary_settings)
    api = ContractClient(create_app(salary_settings, stores))
    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    try:
        first = api.simulate_get("/departments", query_string="stats=true")
        second = api.simulate_get("/departments", query_string="stats=true")
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", count)
        stores.close()
    assert first.json == second.json
    assert len(statements) == queries


def test_cents_stay_as_written(api):
    stats = api.simulate_get("/departments/MAYOR'S OFFICE")
    assert '"min":0.96' in stats.text
    koch = api.simulate_get("/employees", query_string="q=koch,  steven")
    assert koch.json["items"][0]["name"] == "KOCH,  STEVEN"
    assert '"annual_salary":0.96' in koch.text


@pytest.mark.parametrize(
    "path, name",
    [
        ("/departments/MAYOR%27S%20OFFICE", "MAYOR'S OFFICE"),
        ("/departments/mayor's office", "MAYOR'S OFFICE"),
        ("/departments/STREETS%20%26%20SAN", "STREETS & SAN"),
        ("/departments/streets%20%26%20san", "STREETS & SAN"),
        ("/departments/DoIT", "DoIT"),
        ("/departments/DOIT", "DoIT"),
        ("/departments/doit", "DoIT"),
        ("/departments/police", "POLICE"),
    ],
)
def test_department_names_match_in_any_case_and_encoded(api, path, name):
    result = api.simulate_get(path)
    assert result.status_code == 200
    assert result.json["name"] == name


@pytest.mark.parametrize(
    "path",
    [
        "/departments/NOPE",
        "/departments/POLICE%20",
        "/departments/STREETS",
        "/departments/NOPE/employees",
        "/dept/NOPE",
    ],
)
def test_unknown_department_is_404_problem(api, path):
    problem = assert_problem(api.simulate_get(path), 404)
    assert "department" in problem["detail"]


# -- employee lists ------------------------------------------------------------


@pytest.mark.parametrize("order", ["name", "salary", "-salary"])
def test_department_pages_have_no_gaps_or_duplicates(api, csv_rows, order):
    employees, pages = walk(
        api, "/departments/POLICE/employees", f"limit=1000&order={quote(order)}"
    )
    assert pages == 14
    police = [row for row in csv_rows if row[2] == "POLICE"]
    assert collections.Counter(map(employee_key, employees)) == collections.Counter(
        police
    )
    keys = {
        "name": lambda e: e["name"],
        "salary": lambda e: e["annual_salary"],
        "-salary": lambda e: -e["annual_salary"],
    }
    assert employees == sorted(employees, key=keys[order])


def test_small_pages_agree_with_one_big_page(api):
    big = api.simulate_get("/dept/DoIT", query_string="limit=106&order=-salary").json
    small, pages = walk(api, "/dept/doit", "limit=7&order=-salary")
    assert pages == 16
    assert small == big["data"]
    assert big["next"] is None


def test_next_link_keeps_the_query_and_moves_the_offset(api):
    result = api.simulate_get(
        "/departments/STREETS%20%26%20SAN/employees",
        query_string="limit=5&offset=10&order=salary&title=driver",
    )
    path, _, query = result.json["next"].partition("?")
    assert path == "/departments/STREETS%20&%20SAN/employees"
    assert sorted(query.split("&")) == sorted(
        ["limit=5", "offset=15", "order=salary", "title=driver"]
    )


def test_limit_defaults_to_100(api):
    result = api.simulate_get("/departments/FIRE/employees")
    assert len(result.json["items"]) == 100
    assert "offset=100" in result.json["next"]


def test_an_offset_past_the_end_is_an_empty_last_page(api):
    result = api.simulate_get("/dept/POLICE BOARD", query_string="offset=2")
    assert result.json == {"data": [], "next": None}


def test_title_filter_is_a_case_insensitive_substring(api, csv_rows):
    employees, _ = walk(
        api, "/departments/FIRE/employees", "title=paramedic&limit=1000"
    )
    expected = [
        row for row in csv_rows if row[2] == "FIRE" and "paramedic" in row[1].lower()
    ]
    assert len(expected) > 100
    assert collections.Counter(map(employee_key, employees)) == collections.Counter(
        expected
    )


def test_salary_range_is_inclusive(api, csv_rows):
    query = "min_salary=80778&max_salary=80778.00&limit=1000"
    employees, _ = walk(api, "/departments/POLICE/employees", query)
    expected = [row for row in csv_rows if row[2] == "POLICE" and row[3] == 80778]
    assert len(expected) > 1000
    assert collections.Counter(map(employee_key, employees)) == collections.Counter(
        expected
    )


def test_search_finds_names_and_titles_across_departments(api, csv_rows):
    employees, _ = walk(api, "/employees", "q=Smith&limit=1000")
    expected = [
        row
        for row in csv_rows
        if "smith" in row[0].lower() or "smith" in row[1].lower()
    ]
    assert {row[1] for row in expected} & {"BLACKSMITH"}  # titles match too
    assert len({row[2] for row in expected}) > 1
    assert collections.Counter(map(employee_key, employees)) == collections.Counter(
        expected
    )


def test_search_ignores_runs_of_spaces(api):
    result = api.simulate_get("/employees", query_string="q=aaron, elvia")
    assert [e["name"] for e in result.json["items"]] == ["AARON,  ELVIA J"]


def test_search_combines_with_the_filters(api, csv_rows):
    query = "q=police&title=officer&min_salary=90000&max_salary=92000&order=-salary"
    employees, _ = walk(api, "/employees", query)
    expected = [
        row
        for row in csv_rows
        if "officer" in row[1].lower()
        and 90000 <= row[3] <= 92000
        and ("police" in row[0].lower() or "police" in row[1].lower())
    ]
    assert 100 < len(expected) < 1000
    assert collections.Counter(map(employee_key, employees)) == collections.Counter(
        expected
    )


@pytest.mark.parametrize("q", ["%", "_", "\\"])
def test_like_wildcards_in_a_search_match_only_themselves(api, q):
    result = api.simulate_get("/employees", query_string="q=" + quote(q))
    assert result.json == {"items": [], "next": None}


def test_an_empty_search_lists_everyone(api):
    result = api.simulate_get("/employees", query_string="q=&limit=3")
    assert len(result.json["items"]) == 3
    assert result.json["items"][0]["name"].startswith("AARON")


@pytest.mark.parametrize(
    "path, query",
    [
        ("/departments/STREETS & SAN/employees", "limit=2&title=LABORER"),
        ("/dept/POLICE", "limit=2"),
        ("/employees", "q=zzzz"),
    ],
)
def test_a_page_is_written_as_the_generic_encoder_writes_it(api, path, query):
    result = api.simulate_get(path, query_string=query)
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/json"
    assert result.text == wire.dumps(result.json)


# -- bad input -----------------------------------------------------------------

BAD_QUERIES = [
    ("limit=0", "limit"),
    ("limit=-1", "limit"),
    ("limit=ten", "limit"),
    ("limit=1001", "limit"),
    ("limit=1.5", "limit"),
    ("offset=-1", "offset"),
    ("offset=x", "offset"),
    ("offset=99999999999999999999", "offset"),
    ("order=age", "order"),
    ("order=-name", "order"),
    ("min_salary=-1", "min_salary"),
    ("min_salary=lots", "min_salary"),
    ("min_salary=nan", "min_salary"),
    ("max_salary=1.005", "max_salary"),
    ("max_salary=1e999999999", "max_salary"),
    ("min_salary=100&max_salary=99.99", "min_salary"),
    ("title=" + "x" * 101, "title"),
]


@pytest.mark.parametrize(
    "path", ["/departments/POLICE/employees", "/dept/POLICE", "/employees"]
)
@pytest.mark.parametrize("query, parameter", BAD_QUERIES)
def test_bad_list_parameters_are_422_naming_the_parameter(api, path, query, parameter):
    problem = assert_problem(api.simulate_get(path, query_string=query), 422)
    assert list(problem["errors"]) == [parameter]


def test_every_bad_parameter_is_named_at_once(api):
    result = api.simulate_get(
        "/employees", query_string="limit=0&offset=-1&order=x&q=" + "q" * 101
    )
    assert set(assert_problem(result, 422)["errors"]) == {
        "limit",
        "offset",
        "order",
        "q",
    }


def test_bad_stats_flag_is_422(api):
    problem = assert_problem(
        api.simulate_get("/departments", query_string="stats=maybe"), 422
    )
    assert list(problem["errors"]) == ["stats"]


# -- caching -------------------------------------------------------------------

CACHED_PATHS = [
    ("/departments", ""),
    ("/departments", "stats=true"),
    ("/departments/POLICE", ""),
    ("/departments/POLICE/employees", "limit=5"),
    ("/dept/POLICE", ""),
    ("/employees", "q=smith"),
    ("/departments/POLICE/employees.ndjson", ""),
    ("/departments/POLICE/employees.csv", ""),
]


@pytest.mark.parametrize("path, query", CACHED_PATHS)
def test_responses_carry_etag_and_cache_control(api, path, query):
    result = api.simulate_get(path, query_string=query)
    assert result.status_code == 200
    assert result.headers["etag"].startswith('"')
    assert "max-age=" in result.headers["cache-control"]


@pytest.mark.parametrize("path, query", CACHED_PATHS)
def test_if_none_match_with_the_etag_is_304_without_a_body(api, path, query):
    etag = api.simulate_get(path, query_string=query).headers["etag"]
    for header in (etag, "W/" + etag, '"other", ' + etag, "*"):
        result = api.simulate_get(
            path, query_string=query, headers={"If-None-Match": header}
        )
        assert result.status_code == 304, header
        assert result.content == b""
        assert result.headers["etag"] == etag


def test_if_none_match_with_another_etag_is_200(api):
    result = api.simulate_get(
        "/departments/POLICE", headers={"If-None-Match": '"stale"'}
    )
    assert result.status_code == 200
    assert result.json["name"] == "POLICE"


def test_unknown_department_is_404_even_with_if_none_match(api):
    assert_problem(
        api.simulate_get("/departments/NOPE", headers={"If-None-Match": "*"}), 404
    )


def test_errors_carry_no_etag(api):
    result = api.simulate_get("/employees", query_string="limit=0")
    assert "etag" not in result.headers


def test_openapi_documents_the_salary_paths(api):
    paths = api.simulate_get("/openapi.json").json["paths"]
    for path in (
        "/departments",
        "/departments/{name}",
        "/departments/{name}/employees",
        "/dept/{name}",
        "/employees",
        "/departments/{name}/employees.ndjson",
        "/departments/{name}/employees.csv",
    ):
        assert "get" in paths[path], path
    parameters = paths["/employees"]["get"]["parameters"]
    assert parameters


# -- exports -------------------------------------------------------------------


def department_rows(csv_rows, department):
    return collections.Counter(row for row in csv_rows if row[2] == department)


@pytest.mark.parametrize("department", ["POLICE", "MAYOR'S OFFICE", "DoIT"])
def test_an_ndjson_export_is_the_whole_department_by_name(api, csv_rows, department):
    result = api.simulate_get(
        "/departments/" + quote(department.lower(), safe="") + "/employees.ndjson"
    )
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/x-ndjson"
    employees = [json.loads(line) for line in result.text.splitlines()]
    assert result.text.endswith("\n")
    assert collections.Counter(map(employee_key, employees)) == department_rows(
        csv_rows, department
    )
    names = [employee["name"] for employee in employees]
    assert names == sorted(names)


def test_a_csv_export_has_a_header_and_every_employee(api, csv_rows):
    result = api.simulate_get("/departments/STREETS%20%26%20SAN/employees.csv")
    assert result.status_code == 200
    assert result.headers["content-type"] == "text/csv; charset=utf-8"
    header, *rows = list(csv.reader(io.StringIO(result.text)))
    assert header == ["name", "position_title", "department", "annual_salary"]
    exported = collections.Counter(
        (name, title, department, Decimal(salary).quantize(CENT))
        for name, title, department, salary in rows
    )
    assert exported == department_rows(csv_rows, "STREETS & SAN")


@pytest.mark.parametrize("suffix", ["ndjson", "csv"])
def test_an_export_of_an_unknown_department_is_404(api, suffix):
    assert_problem(api.simulate_get(f"/departments/NOPE/employees.{suffix}"), 404)


def test_an_export_is_made_in_chunks_as_it_is_read(salary_settings):
    # Driven through the resource, chunk by chunk, as a WSGI server reads it:
    # a chunk at a time, never the whole department.
    stores = open_stores(salary_settings)
    try:
        resource = DepartmentNdjson(stores.salaries)
        req = falcon.testing.create_req(path="/departments/POLICE/employees.ndjson")
        resp = falcon.Response()
        resource._export(req, resp, "POLICE")
        sizes = [len(chunk) for chunk in resp.stream]
        resp.stream.close()
    finally:
        stores.close()
    assert len(sizes) > 10
    assert max(sizes) < CHUNK_BYTES + 1000
    assert sum(sizes) > 13000 * 50


def test_an_export_abandoned_early_gives_its_connection_back(salary_settings):
    stores = open_stores(salary_settings)
    try:
        pool = stores.database.read_engine.pool
        rows = stores.salaries.export("POLICE")
        assert pool.checkedout() == 1
        name, title, cents = next(iter(rows))
        assert (rows.department, name) == ("POLICE", "AARON,  JEFFERY M")
        rows.close()  # the client went away: the server closes the body
        assert pool.checkedout() == 0
    finally:
        stores.close()


def employee_body(employee: EmployeeRecord) -> dict:
    """An employee as the API documents it (the schema EmployeeOut)."""
    return {
        "name": employee.name,
        "position_title": employee.position_title,
        "department": employee.department,
        "annual_salary": employee.salary_cents / 100,
    }


@pytest.mark.parametrize(
    "record",
    [
        EmployeeRecord("AARON,  ELVIA J", "WATER RATE TAKER", "WATER MGMNT", 8896800),
        EmployeeRecord('Zoë "Q" \\ Ü\n\t', "T\u2028\x01", 'D/E 100% "%s"', 96),
    ],
)
def test_an_employee_is_formatted_as_the_generic_encoder_writes_it(record):
    to_json = EmployeeJson()
    # twice: the second time, title, department and salary come from the memo
    assert to_json(record) == to_json(record) == wire.dumps(employee_body(record))


def test_the_formatter_remembers_a_bounded_number_of_values(monkeypatch):
    monkeypatch.setattr("resources.salaries.MEMO_SIZE", 2)
    to_json = EmployeeJson()
    records = [EmployeeRecord(f"N{n}", f"T{n % 3}", f"D{n % 4}", n) for n in range(6)]
    lines = [to_json(record) for record in records]
    assert lines == [wire.dumps(employee_body(record)) for record in records]
    assert len(to_json._titles) == len(to_json._departments) == 2
    assert len(to_json._salaries) == 2


def test_the_documented_examples_are_real_answers(api):
    paths = api.simulate_get("/openapi.json").json["paths"]

    def example(path):
        answer = paths[path]["get"]["responses"]["200"]["content"]
        return answer["application/json"]["example"]

    assert api.simulate_get("/departments/POLICE").json == example(
        "/departments/{name}"
    )
    top = {"limit": 2, "order": "-salary"}
    assert api.simulate_get(
        "/departments/POLICE/employees", params=top
    ).json == example("/departments/{name}/employees")
    assert api.simulate_get("/dept/POLICE", params=top).json == example("/dept/{name}")
    search = {"q": "smith", "limit": 1, "order": "salary"}
    assert api.simulate_get("/employees", params=search).json == example("/employees")
