"""The salary store: reads the salary tables and replaces their contents.

Reads go through Core connections and prebuilt statements with bound
parameters: these are the API's hottest queries, and an ORM session costs
more than the query itself here. The departments (35 rows) are cached in
memory per data version, so a department's statistics cost one primary-key
read of the version.
"""

import contextlib
import functools
import time
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Callable
from typing import NamedTuple
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import exc

from core.clock import utc_now
from db.errors import NotFound
from db.errors import Unavailable
from db.salaries.csvfile import EmployeeRow
from db.salaries.stats import SalaryStats
from db.salaries.stats import by_department
from db.salaries.tables import Employee
from db.salaries.tables import SalaryDepartment
from db.salaries.tables import SalaryImport
from db.salaries.tables import search_key
from db.sql import Database
from db.sql import Query

#: Rows per INSERT batch during an import (and per progress callback).
BATCH = 2000
#: The orders an employee list can be sorted in; ``id`` (file order) breaks ties.
ORDERS = ("name", "salary", "-salary")
#: Rows an export fetches from the database at a time.
EXPORT_BATCH = 500
#: Seconds a process trusts the data version it last read. Within them a
#: request that needs only the departments (their statistics, the ETag)
#: reads nothing from the database; an import by another process shows
#: after at most this delay (this process's own imports, at once).
VERSION_TTL = 1.0


class Department(NamedTuple):
    """A department's name and salary statistics."""

    name: str
    stats: SalaryStats


class EmployeeRecord(NamedTuple):
    """One employee as the API shows it (salary in cents)."""

    name: str
    position_title: str
    department: str
    salary_cents: int


class EmployeeFilter(NamedTuple):
    """What an employee list is narrowed to; None (or empty) means no condition."""

    department: Optional[str] = None
    q: Optional[str] = None
    title: Optional[str] = None
    min_cents: Optional[int] = None
    max_cents: Optional[int] = None


class Snapshot:
    """The departments of one version of the data.

    Args:
        version: The import's checksum; None before the first import.
        departments: Every department, in any order.
    """

    def __init__(self, version: Optional[str], departments: list[Department]):
        self.version = version
        # Sorted here, not in SQL, so the order is the same whatever the
        # database's collation: case-insensitively, "DoIT" after "DISABILITIES".
        self.departments = sorted(departments, key=lambda d: (d.name.lower(), d.name))
        self.names = [department.name for department in self.departments]
        self._by_key = {
            department.name.lower(): department for department in departments
        }

    def department(self, name: str) -> Department:
        """The department called ``name``, in any case.

        Raises:
            NotFound: there is no such department.
        """
        try:
            return self._by_key[name.lower()]
        except KeyError:
            raise NotFound(f"There is no department called {name!r}.") from None


_VERSION = sa.select(SalaryImport.checksum).where(SalaryImport.id == 1)
# Departments and the version in one statement, so the cached snapshot and
# its version always belong together.
_DEPARTMENTS = sa.select(
    SalaryImport.checksum,
    SalaryDepartment.name,
    SalaryDepartment.employees,
    SalaryDepartment.min_cents,
    SalaryDepartment.max_cents,
    SalaryDepartment.total_cents,
    SalaryDepartment.median_low_cents,
    SalaryDepartment.median_high_cents,
).join_from(SalaryImport, SalaryDepartment, sa.true())
_ORDER_BY = {
    "name": (Employee.name, Employee.id),
    "salary": (Employee.salary_cents, Employee.id),
    "-salary": (Employee.salary_cents.desc(), Employee.id),
}


def _escape_like(text: str) -> str:
    """``%text%`` for LIKE ... ESCAPE '\\', LIKE's own wildcards in text escaped."""
    for char in ("\\", "%", "_"):
        text = text.replace(char, "\\" + char)
    return "%" + text + "%"


_EXPORT = (
    sa.select(Employee.name, Employee.position_title, Employee.salary_cents)
    .where(Employee.department == sa.bindparam("department"))
    .order_by(Employee.name, Employee.id)
)

#: One employee of an export: name, position_title, salary_cents (the
#: department is the export's, the same on every row: not read per row).
ExportRow = tuple[str, str, int]


class EmployeeRows:
    """A department's employees read row by row from an open query (an export).

    Iterate it for :data:`ExportRow` values, ordered by name; ``department``
    is their department's exact name. It holds a database connection until
    it is exhausted or :meth:`close` d (a WSGI server closes the response
    body, even when the client went away).
    """

    def __init__(
        self, connection: sa.Connection, result: sa.CursorResult, department: str
    ):
        self.department = department
        self._connection = connection
        self._result = result
        self._rows = self._read()

    def _read(self) -> Iterator[ExportRow]:
        for batch in self._result.partitions():
            yield from batch
        self.close()

    def __iter__(self) -> Iterator[ExportRow]:
        return self._rows

    def close(self) -> None:
        """Release the query and the connection (idempotent)."""
        self._result.close()
        self._connection.close()


@functools.cache
def _employees_statement(
    department: bool, q: bool, title: bool, low: bool, high: bool, order: str
) -> Query:
    """The employee list query for one combination of conditions (built once)."""
    conditions = []
    if department:
        conditions.append(Employee.department == sa.bindparam("department"))
    if q:
        conditions.append(
            sa.or_(
                Employee.name_key.like(sa.bindparam("q"), escape="\\"),
                Employee.title_key.like(sa.bindparam("q"), escape="\\"),
            )
        )
    if title:
        conditions.append(Employee.title_key.like(sa.bindparam("title"), escape="\\"))
    if low:
        conditions.append(Employee.salary_cents >= sa.bindparam("low"))
    if high:
        conditions.append(Employee.salary_cents <= sa.bindparam("high"))
    # A department's list leaves out the department, the filter's exact name
    # on every row: a text column costs the driver about 0.2 us a row (a
    # 100-row page, PyPy: 92 -> 73 us), more than SalaryStore.employees
    # takes to put the name back.
    columns = [Employee.name, Employee.position_title, Employee.salary_cents]
    if not department:
        columns.insert(2, Employee.department)
    return Query(
        sa.select(*columns)
        .where(*conditions)
        .order_by(*_ORDER_BY[order])
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .offset(sa.bindparam("offset", type_=sa.Integer)),
        row=tuple if department else EmployeeRecord,
    )


class SalaryStore:
    """Reads and replaces the salary data in the SQL database."""

    def __init__(self, database: Database):
        self._database = database
        self._snapshot: Optional[Snapshot] = None
        self._checked_at = float("-inf")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        try:
            with self._database.read_engine.connect() as connection:
                yield connection
        except exc.OperationalError as ex:
            raise Unavailable("SQL database unavailable") from ex

    def snapshot(self) -> Snapshot:
        """The current version of the data and its departments.

        One read of the version at most every ``VERSION_TTL`` seconds; the
        departments are read again only when the version changed since the
        last read (an import ran).
        """
        now = time.monotonic()
        if self._snapshot is not None and now - self._checked_at < VERSION_TTL:
            return self._snapshot
        with self._connect() as connection:
            version = connection.execute(_VERSION).scalar()
            cached = self._snapshot
            if cached is None or cached.version != version:
                rows = connection.execute(_DEPARTMENTS).all()
                version = rows[0][0] if rows else version
                departments = [
                    Department(row[1], SalaryStats(*row[2:])) for row in rows
                ]
                cached = self._snapshot = Snapshot(version, departments)
        self._checked_at = now
        return cached

    def employees(
        self, where: EmployeeFilter, order: str, limit: int, offset: int
    ) -> list[EmployeeRecord]:
        """At most ``limit`` employees matching ``where``, skipping ``offset``.

        Args:
            where: The conditions; ``department`` is the exact name.
            order: One of ORDERS.
            limit: Page size.
            offset: Rows to skip.
        """
        params: dict[str, object] = {"limit": limit, "offset": offset}
        if where.department is not None:
            params["department"] = where.department
        if where.q:
            params["q"] = _escape_like(search_key(where.q))
        if where.title:
            params["title"] = _escape_like(search_key(where.title))
        if where.min_cents is not None:
            params["low"] = where.min_cents
        if where.max_cents is not None:
            params["high"] = where.max_cents
        statement = _employees_statement(
            "department" in params,
            "q" in params,
            "title" in params,
            "low" in params,
            "high" in params,
            order,
        )
        rows = self._database.fetch_all(statement, params)
        if where.department is None:
            return rows
        department = where.department
        return [
            EmployeeRecord(name, title, department, cents)
            for name, title, cents in rows
        ]

    def export(self, department: str) -> EmployeeRows:
        """Every employee of ``department`` (the exact name), by name, as a stream.

        The query runs before this returns (Unavailable if the database is
        down); the rows are fetched ``EXPORT_BATCH`` at a time while the
        caller iterates (a server-side cursor on PostgreSQL), so the whole
        department is never in memory.
        """
        try:
            connection = self._database.read_engine.connect()
        except exc.OperationalError as ex:
            raise Unavailable("SQL database unavailable") from ex
        try:
            result = connection.execution_options(
                stream_results=True, yield_per=EXPORT_BATCH
            ).execute(_EXPORT, {"department": department})
        except exc.OperationalError as ex:
            connection.close()
            raise Unavailable("SQL database unavailable") from ex
        except BaseException:
            connection.close()
            raise
        return EmployeeRows(connection, result, department)

    def count(self) -> int:
        """How many employees are loaded."""
        with self._connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).select_from(Employee)
            ).scalar_one()

    def replace(
        self,
        rows: Sequence[EmployeeRow],
        *,
        checksum: str,
        source: str,
        skipped: int,
        on_progress: Optional[Callable[[int], None]] = None,
    ) -> int:
        """Replace every employee, department and the import record, in one transaction.

        Readers see the old data until the commit, then the new; running it
        twice leaves one copy. Returns the number of departments.

        Args:
            rows: The employees, in file order (their ids follow it).
            checksum: The source file's SHA-256 (hex), the data's version.
            source: The source file's name, for the record.
            skipped: Rows of the file that were not loaded.
            on_progress: Called with the number of rows after each batch.
        """
        stats = by_department(rows)
        with self._database.session() as session:
            # DELETE, not TRUNCATE: it keeps to the transaction and, on
            # PostgreSQL, does not lock readers out while the import runs.
            for table in (Employee, SalaryDepartment, SalaryImport):
                session.execute(sa.delete(table))
            for start in range(0, len(rows), BATCH):
                batch = rows[start : start + BATCH]
                session.execute(
                    sa.insert(Employee),
                    [
                        _employee_values(start + i + 1, row)
                        for i, row in enumerate(batch)
                    ],
                )
                if on_progress is not None:
                    on_progress(len(batch))
            if stats:
                session.execute(
                    sa.insert(SalaryDepartment),
                    [
                        {"name": name, "name_lower": name.lower(), **s._asdict()}
                        for name, s in stats.items()
                    ],
                )
            session.add(
                SalaryImport(
                    id=1,
                    checksum=checksum,
                    source=source,
                    loaded=len(rows),
                    skipped=skipped,
                    imported_at=utc_now(),
                )
            )
        self._snapshot = None  # this process sees its own import at once
        return len(stats)


def _employee_values(employee_id: int, row: EmployeeRow) -> dict:
    return {
        "id": employee_id,
        "name": row.name,
        "position_title": row.position_title,
        "department": row.department,
        "salary_cents": row.salary_cents,
        "name_key": search_key(row.name),
        "title_key": search_key(row.position_title),
    }
