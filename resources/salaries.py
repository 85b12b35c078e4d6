"""The City of Chicago salaries: departments, their statistics, employees, search.

Every response derives from the data of the last import, so each carries an
ETag made from the import's checksum (and the API version) and a
Cache-Control header; a request whose If-None-Match names it gets a 304
before any employee is read.
"""

import csv
import io
import json.encoder
from decimal import Decimal
from typing import Any
from typing import Callable
from typing import Iterator
from typing import Optional

import falcon
import marshmallow
from marshmallow import fields
from marshmallow import validate as check

from core.version import __version__
from db.salaries.csvfile import MAX_CENTS
from db.salaries.csvfile import MAX_TEXT
from db.salaries.store import ORDERS
from db.salaries.store import Department
from db.salaries.store import EmployeeFilter
from db.salaries.store import EmployeeRecord
from db.salaries.store import EmployeeRows
from db.salaries.store import SalaryStore
from db.salaries.store import Snapshot
from web.auth import public
from web.openapi import ResponseSchema
from web.openapi import parameter
from web.paging import limit_field
from web.paging import next_link
from web.paging import page_schema
from web.validation import QuerySchema
from web.validation import validate

#: How long clients and proxies may reuse a response without revalidating.
CACHE_CONTROL = "public, max-age=300"
#: Largest offset accepted; it keeps the value inside every database's integers.
MAX_OFFSET = 2**31 - 1
#: Largest salary filter accepted, in dollars (the largest salary loaded).
MAX_SALARY = MAX_CENTS // 100
#: The columns of a CSV export, in order (the keys of an employee's JSON).
EXPORT_FIELDS = ("name", "position_title", "department", "annual_salary")
#: An export hands the server chunks of about this many bytes.
CHUNK_BYTES = 64 * 1024
#: First characters that make a spreadsheet cell a formula (OWASP, CSV
#: injection); a CSV export puts a ``'`` before them. All sort before "A".
FORMULA_STARTS = frozenset("=+-@\t\r")
#: Distinct titles (departments, salaries) remembered quoted, for the process's life.
MEMO_SIZE = 4096
_escape = json.encoder.encode_basestring


def _json_string(text: str) -> str:
    """A JSON string literal of ``text``, non-ASCII kept (as core.wire writes it).

    Most names need no escape: quoted as they are. Anything not printable
    (control characters and a few others), a quote or a backslash goes
    through the json module, which escapes what JSON needs.
    """
    if '"' in text or "\\" in text or not text.isprintable():
        return _escape(text)
    return '"' + text + '"'


def money(cents: int) -> float:
    """Cents as a JSON number of dollars: 8896800 -> 88968.0, 96 -> 0.96.

    Dividing two integers is correctly rounded, so the float is the one
    nearest the exact amount, the same float ``float("0.96")`` parses to,
    and it prints with the file's digits.
    """
    return cents / 100


def _cents(dollars: Optional[Decimal]) -> Optional[int]:
    return None if dollars is None else int(dollars * 100)


def _validate_salary_amount(value: Decimal) -> None:
    if not 0 <= value <= MAX_SALARY:
        raise marshmallow.ValidationError(f"Must be between 0 and {MAX_SALARY}.")
    # Read off the digits rather than computed, so no amount can overflow.
    _, digits, exponent = value.as_tuple()
    if isinstance(exponent, int) and exponent < -2 and any(digits[exponent + 2 :]):
        raise marshmallow.ValidationError("Use at most two decimals.")


def _money_field(description: str) -> fields.Decimal:
    # One validator of our own rather than validate.Range: apispec would copy
    # Range's bounds into the OpenAPI document as Decimal, which JSON refuses.
    return fields.Decimal(
        validate=_validate_salary_amount,
        metadata={"description": description, "minimum": 0, "maximum": MAX_SALARY},
    )


# -- schemas -------------------------------------------------------------------


class DepartmentsQuery(QuerySchema):
    """Query string of ``GET /departments``."""

    stats = fields.Boolean(
        load_default=False,
        metadata={"description": "true: every department with its salary statistics"},
    )


class EmployeesQuery(QuerySchema):
    """Paging, order and filters of an employee list."""

    limit = limit_field(default=100, maximum=1000)
    offset = fields.Integer(
        load_default=0,
        validate=check.Range(min=0, max=MAX_OFFSET),
        metadata={"description": "employees to skip"},
    )
    order = fields.String(
        load_default="name",
        validate=check.OneOf(ORDERS),
        metadata={
            "description": "name, salary (lowest first) or -salary (highest first)"
        },
    )
    title = fields.String(
        validate=check.Length(max=MAX_TEXT),
        metadata={"description": "position title contains this (any case)"},
    )
    min_salary = _money_field("annual salary at least this many dollars")
    max_salary = _money_field("annual salary at most this many dollars")

    @marshmallow.validates_schema
    def _salary_range(self, data, **kwargs):
        low, high = data.get("min_salary"), data.get("max_salary")
        if low is not None and high is not None and low > high:
            raise marshmallow.ValidationError(
                "Must not be greater than max_salary.", field_name="min_salary"
            )


class SearchQuery(EmployeesQuery):
    """``GET /employees``: an employee list across departments, with a search."""

    q = fields.String(
        validate=check.Length(max=MAX_TEXT),
        metadata={"description": "name or position title contains this (any case)"},
    )


class SalaryOut(ResponseSchema):
    """Salary statistics in dollars; mean and median rounded to the cent."""

    min = fields.Float()
    max = fields.Float()
    mean = fields.Float()
    median = fields.Float()
    total = fields.Float()


class DepartmentOut(ResponseSchema):
    """A department with its salary statistics."""

    name = fields.String()
    employees = fields.Integer()
    salary = fields.Nested(SalaryOut)


class DepartmentsOut(ResponseSchema):
    """Department names (or, with ``stats=true``, DepartmentOut objects)."""

    departments = fields.List(fields.Raw())


class EmployeeOut(ResponseSchema):
    """One employee; ``annual_salary`` in dollars."""

    name = fields.String()
    position_title = fields.String()
    department = fields.String()
    annual_salary = fields.Float()


EmployeePage = page_schema("EmployeePage", EmployeeOut())


class SeedEmployeePage(ResponseSchema):
    """``GET /dept/{name}``: the seed's shape, employees under ``data``."""

    data = fields.List(fields.Nested(EmployeeOut))
    next = fields.String(allow_none=True)


# -- examples of the OpenAPI document: real answers for the shipped file --------

POLICE = {
    "name": "POLICE",
    "employees": 13570,
    "salary": {
        "min": 9360.0,
        "max": 260004.0,
        "mean": 81551.76,
        "median": 84072.0,
        "total": 1106657380.8,
    },
}
TOP_OF_POLICE = [
    {
        "name": "MC CARTHY,  GARRY F",
        "position_title": "SUPERINTENDENT OF POLICE",
        "department": "POLICE",
        "annual_salary": 260004.0,
    },
    {
        "name": "WYSINGER,  ALFONZA",
        "position_title": "FIRST DEPUTY SUPERINTENDENT",
        "department": "POLICE",
        "annual_salary": 197736.0,
    },
]
#: The first lines of the POLICE exports, for the OpenAPI examples.
POLICE_NDJSON = "".join(
    json.dumps(row, separators=(",", ":")) + "\n" for row in TOP_OF_POLICE
)
POLICE_CSV = "".join(
    ",".join(f'"{value}"' if "," in str(value) else str(value) for value in line)
    + "\r\n"
    for line in [EXPORT_FIELDS] + [tuple(row.values()) for row in TOP_OF_POLICE]
)


def _document_salary_range(resource, operation: dict) -> None:
    for name, other, word in (
        ("min_salary", "max_salary", "greater"),
        ("max_salary", "min_salary", "less"),
    ):
        schema = parameter(operation, name)["schema"]
        schema["description"] = (
            f"{schema.get('description', name)}; at most two decimals; must not "
            f"be {word} than {other} (422)"
        )


# -- shaping -------------------------------------------------------------------


def department_body(department: Department) -> dict:
    """A department as JSON."""
    stats = department.stats
    return {
        "name": department.name,
        "employees": stats.employees,
        "salary": {
            "min": money(stats.min_cents),
            "max": money(stats.max_cents),
            "mean": money(stats.mean_cents),
            "median": money(stats.median_cents),
            "total": money(stats.total_cents),
        },
    }


# -- resources -----------------------------------------------------------------


class _SalaryResource:
    """Shared by the salary resources: the store, and the conditional-GET check."""

    #: The key employee pages list under (the seed's /dept/{name} says "data").
    items_key = "items"

    def __init__(self, store: SalaryStore):
        self._store = store

    @staticmethod
    def _not_modified(
        req: falcon.Request, resp: falcon.Response, data: Snapshot
    ) -> bool:
        """Set ETag and Cache-Control; True (and 304) if the client's copy is fresh."""
        # The checksum changes with each import of different data; the API
        # version changes when the shape of the responses may have.
        etag = f"{(data.version or 'empty')[:20]}-{__version__}"
        resp.etag = etag
        resp.cache_control = [CACHE_CONTROL]
        if any(tag == "*" or tag == etag for tag in (req.if_none_match or ())):
            resp.status = falcon.HTTP_304
            return True
        return False

    def _employee_page(self, req, resp, data: Snapshot, where: EmployeeFilter) -> None:
        query = req.context.query
        if self._not_modified(req, resp, data):
            return
        limit, offset = query["limit"], query["offset"]
        # One row more than asked for tells whether there is a next page.
        rows = self._store.employees(where, query["order"], limit + 1, offset)
        next_url = next_link(req, offset=offset + limit) if len(rows) > limit else None
        # Written directly, as wire.dumps({items_key: [employee, ...], "next":
        # next_url}) would write the page (see EmployeeJson).
        resp.content_type = falcon.MEDIA_JSON
        resp.data = (
            '{"'
            + self.items_key
            + '":['
            + ",".join(map(_EMPLOYEE_JSON, rows[:limit]))
            + '],"next":'
            + ("null" if next_url is None else _json_string(next_url))
            + "}"
        ).encode("utf-8")


class _ExportBody:
    """An export's response body: chunks of encoded rows, made as it is read.

    ``close()`` (called by the WSGI server when the response ends or the
    client goes away) releases the database connection.
    """

    def __init__(self, rows: EmployeeRows, chunks: Iterator[bytes]):
        self._rows = rows
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._rows.close()


class _Memo(dict):
    """``memo[key]`` is ``function(key)``, remembered for the first MEMO_SIZE keys."""

    def __init__(self, function: Callable[[Any], str]):
        super().__init__()
        self._function = function

    def __missing__(self, key: Any) -> str:
        value = self._function(key)
        if len(self) < MEMO_SIZE:
            self[key] = value
        return value


def _salary_json(cents: int) -> str:
    return float.__repr__(money(cents))


class EmployeeJson:
    """``EmployeeJson()(employee)``: the employee's JSON object as text.

    Keys ``name``, ``position_title``, ``department`` and ``annual_salary``
    (dollars: ``money(salary_cents)``), in that order, written as
    ``wire.dumps`` writes them: compact, non-ASCII kept, the salary as JSON
    writes a float. Under PyPy the generic encoder walks a
    dict per row; formatting directly is about twice as fast, and titles,
    departments and salaries, which repeat, are quoted once each (the POLICE
    export, 13,570 rows: 14 -> 12 ms; a 100-row page: 235 -> 192 us). One
    instance serves every request: what it remembers depends only on the
    value, so it stays true across imports, and it is bounded by MEMO_SIZE.
    """

    def __init__(self):
        self._titles = _Memo(_json_string)
        self._departments = _Memo(_json_string)
        self._salaries = _Memo(_salary_json)

    def __call__(self, employee: EmployeeRecord) -> str:
        name, title, department, cents = employee
        # Concatenated: under PyPy 2.5x faster than %-formatting (which beats
        # str.format and f-string specs), and no slower under CPython.
        return (
            '{"name":'
            + _json_string(name)
            + ',"position_title":'
            + self._titles[title]
            + ',"department":'
            + self._departments[department]
            + ',"annual_salary":'
            + self._salaries[cents]
            + "}"
        )


_EMPLOYEE_JSON = EmployeeJson()


def _ndjson_chunks(rows: EmployeeRows) -> Iterator[bytes]:
    department = rows.department
    lines, size = [], 0
    for name, title, cents in rows:
        line = _EMPLOYEE_JSON((name, title, department, cents))
        lines.append(line)
        size += len(line) + 1
        if size >= CHUNK_BYTES:
            yield ("\n".join(lines) + "\n").encode("utf-8")
            lines, size = [], 0
    if lines:
        yield ("\n".join(lines) + "\n").encode("utf-8")


def is_formula(text: str) -> bool:
    """Whether a spreadsheet would read the cell ``text`` as a formula.

    Excel, LibreOffice and Google Sheets do for a cell starting with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return (OWASP, CSV injection).
    """
    return text[:1] in FORMULA_STARTS


def csv_text(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet shows as text: ``'`` before a formula."""
    return "'" + text if is_formula(text) else text


def _csv_chunks(rows: EmployeeRows) -> Iterator[bytes]:
    buffer = io.StringIO()
    plain = csv.writer(buffer, lineterminator="\r\n")
    # Escaped cells are quoted too (OWASP: "wrap each cell field in double
    # quotes"): a row with one has its text cells quoted, its number not.
    quoted = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    plain.writerow(EXPORT_FIELDS)
    department = csv_text(rows.department)
    write = (quoted if is_formula(rows.department) else plain).writerow
    for name, title, cents in rows:
        # Every formula start sorts before "A": one string comparison per cell
        # lets nearly every row through unchecked (is_formula on every cell
        # made CPython's whole export 7-10% slower; this costs it about 2%).
        if (name < "A" or title < "A") and (is_formula(name) or is_formula(title)):
            quoted.writerow((csv_text(name), csv_text(title), department, money(cents)))
        else:
            write((name, title, department, money(cents)))
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _filter(query: dict, **extra) -> EmployeeFilter:
    return EmployeeFilter(
        title=query.get("title"),
        min_cents=_cents(query.get("min_salary")),
        max_cents=_cents(query.get("max_salary")),
        **extra,
    )


class Departments(_SalaryResource):
    """``GET /departments``: the department names, or every department's stats."""

    @public
    @validate(
        query=DepartmentsQuery(),
        response=DepartmentsOut(),
        errors=(503,),
        also={304: None},
        headers=("If-None-Match",),
        response_headers={200: ("ETag", "Cache-Control"), 304: ("ETag",)},
        examples={
            200: {"departments": ["AVIATION", "DoIT", "MAYOR'S OFFICE", "POLICE"]}
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List the departments, sorted by name (case-insensitively).

        `{"departments": [names]}`; with `stats=true` each entry is a department
        object with its employee count and salary statistics.
        """
        data = self._store.snapshot()
        if self._not_modified(req, resp, data):
            return
        if req.context.query["stats"]:
            resp.media = {"departments": [department_body(d) for d in data.departments]}
        else:
            resp.media = {"departments": data.names}


class DepartmentStats(_SalaryResource):
    """``GET /departments/{name}``: one department's salary statistics."""

    @public
    @validate(
        response=DepartmentOut(),
        errors=(404, 503),
        also={304: None},
        headers=("If-None-Match",),
        response_headers={200: ("ETag", "Cache-Control"), 304: ("ETag",)},
        examples={"name": "POLICE", 200: POLICE},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Salary statistics of one department (name in any case).

        Mean and median are rounded to the cent, half up.
        """
        data = self._store.snapshot()
        department = data.department(name)
        if self._not_modified(req, resp, data):
            return
        resp.media = department_body(department)


class DepartmentEmployees(_SalaryResource):
    """``GET /departments/{name}/employees``."""

    @public
    @validate(
        query=EmployeesQuery(),
        response=EmployeePage,
        errors=(404, 503),
        also={304: None},
        headers=("If-None-Match",),
        response_headers={200: ("ETag", "Cache-Control"), 304: ("ETag",)},
        examples={
            "name": "POLICE",
            "limit": 2,
            "order": "-salary",
            200: {
                "items": TOP_OF_POLICE,
                "next": "/departments/POLICE/employees?limit=2&order=-salary&offset=2",
            },
        },
        document=_document_salary_range,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """List one department's employees, paginated, ordered and filtered."""
        self._department_page(req, resp, name)

    def _department_page(self, req, resp, name: str) -> None:
        data = self._store.snapshot()
        department = data.department(name)
        where = _filter(req.context.query, department=department.name)
        self._employee_page(req, resp, data, where)


class SeedDepartmentEmployees(DepartmentEmployees):
    """``GET /dept/{name}``: the seed's path and shape (employees under ``data``)."""

    items_key = "data"

    @public
    @validate(
        query=EmployeesQuery(),
        response=SeedEmployeePage(),
        errors=(404, 503),
        also={304: None},
        headers=("If-None-Match",),
        response_headers={200: ("ETag", "Cache-Control"), 304: ("ETag",)},
        examples={
            "name": "POLICE",
            "limit": 2,
            "order": "-salary",
            200: {
                "data": TOP_OF_POLICE,
                "next": "/dept/POLICE?limit=2&order=-salary&offset=2",
            },
        },
        document=_document_salary_range,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """One department's employees in the seed's shape (``data``, ``next``).

        The same list as ``/departments/{name}/employees``, which answers the
        API's usual envelope (``items``).
        """
        self._department_page(req, resp, name)


class _DepartmentExport(_SalaryResource):
    """A whole department streamed row by row; subclasses pick the format."""

    content_type = ""

    @staticmethod
    def _chunks(rows: EmployeeRows) -> Iterator[bytes]:
        raise NotImplementedError

    def _export(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        data = self._store.snapshot()
        department = data.department(name)
        if self._not_modified(req, resp, data):
            return
        rows = self._store.export(department.name)
        resp.content_type = self.content_type
        resp.stream = _ExportBody(rows, self._chunks(rows))


class DepartmentNdjson(_DepartmentExport):
    """``GET /departments/{name}/employees.ndjson``."""

    content_type = "application/x-ndjson"
    _chunks = staticmethod(_ndjson_chunks)

    @public
    @validate(
        response={
            "type": "string",
            "description": "one employee JSON object per line (EmployeeOut)",
        },
        media_type="application/x-ndjson",
        errors=(404, 503),
        also={304: None},
        examples={"name": "POLICE", 200: POLICE_NDJSON},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Every employee of a department, one JSON object per line, streamed.

        Ordered by name; produced row by row as it is sent (never the whole
        department in memory). ETag and Cache-Control as the lists.
        """
        self._export(req, resp, name)


class DepartmentCsv(_DepartmentExport):
    """``GET /departments/{name}/employees.csv``."""

    content_type = "text/csv; charset=utf-8"
    _chunks = staticmethod(_csv_chunks)

    @public
    @validate(
        response={
            "type": "string",
            "description": "CSV with a header row: "
            + ",".join(EXPORT_FIELDS)
            + " (RFC 4180, UTF-8); a text cell starting with =, +, -, @, a tab "
            "or a carriage return gets a leading ' (and quotes), so that "
            "spreadsheets show it as text, never run it as a formula",
        },
        media_type="text/csv",
        errors=(404, 503),
        also={304: None},
        examples={"name": "POLICE", 200: POLICE_CSV},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Every employee of a department as CSV, streamed.

        A header row, then one row per employee ordered by name; produced
        row by row as it is sent. ETag and Cache-Control as the lists.
        Cells that a spreadsheet would run as a formula are escaped.
        """
        self._export(req, resp, name)


class Employees(_SalaryResource):
    """``GET /employees``: employees across departments, searched by name or title."""

    @public
    @validate(
        query=SearchQuery(),
        response=EmployeePage,
        errors=(503,),
        also={304: None},
        headers=("If-None-Match",),
        response_headers={200: ("ETag", "Cache-Control"), 304: ("ETag",)},
        examples={
            "q": "smith",
            "limit": 1,
            "order": "salary",
            200: {
                "items": [
                    {
                        "name": "SMITH,  ALICE",
                        "position_title": "FOSTER GRANDPARENT",
                        "department": "FAMILY & SUPPORT",
                        "annual_salary": 2756.0,
                    }
                ],
                "next": "/employees?q=smith&limit=1&order=salary&offset=1",
            },
        },
        document=_document_salary_range,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Search employees by name or position title, paginated and filtered."""
        query = req.context.query
        data = self._store.snapshot()
        self._employee_page(req, resp, data, _filter(query, q=query.get("q")))
