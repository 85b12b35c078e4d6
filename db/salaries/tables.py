"""The salary tables: employees, per-department statistics, the last import.

The data changes only when ``python -m api import-salaries`` replaces it, so
the import also stores each department's statistics (median included) in
``salary_departments``, and the file's checksum in ``salary_imports``: the
version that ETags and caches key on. Salaries are integer cents throughout.
"""

import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from db.salaries.csvfile import MAX_TEXT
from db.sql import Base


def search_key(text: str) -> str:
    """Lower-cased with runs of whitespace made one space: what searches compare.

    The file writes names as ``"AARON,  ELVIA J"``; ``aaron, elvia`` should find it.
    """
    return " ".join(text.split()).lower()


class Employee(Base):
    """One row of the salary file."""

    __tablename__ = "employees"

    # Assigned in file order by the import, so ties in any order are stable.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(sa.String(MAX_TEXT))
    position_title: Mapped[str] = mapped_column(sa.String(MAX_TEXT))
    department: Mapped[str] = mapped_column(sa.String(MAX_TEXT))
    salary_cents: Mapped[int] = mapped_column(sa.BigInteger)
    # search_key() of name and title, computed at import: the same in Python
    # on every backend (SQL lower() differs between SQLite and PostgreSQL).
    name_key: Mapped[str] = mapped_column(sa.String(MAX_TEXT))
    title_key: Mapped[str] = mapped_column(sa.String(MAX_TEXT))


# One index per (scope, order) a list can ask for, each ending in id, so a page
# is read straight off an index in its final order and stops after `limit` rows.
# The substring searches (q, title) cannot use a B-tree; they filter the rows
# these indexes walk (32,181 rows: a few milliseconds at worst).
_DEPARTMENT = Employee.department
_SALARY = Employee.salary_cents
sa.Index("ix_employees_name", Employee.name, Employee.id)
sa.Index("ix_employees_salary", _SALARY, Employee.id)
sa.Index("ix_employees_salary_desc", _SALARY.desc(), Employee.id)
# By name within a department, covering: an export reads a whole department in
# this order, and finds its title and salary here, not in the table (POLICE,
# 13,570 rows, read whole under CPython: 22.6 -> 16.8 ms).
sa.Index(
    "ix_employees_department_name",
    _DEPARTMENT,
    Employee.name,
    Employee.id,
    Employee.position_title,
    _SALARY,
)
sa.Index("ix_employees_department_salary", _DEPARTMENT, _SALARY, Employee.id)
sa.Index(
    "ix_employees_department_salary_desc", _DEPARTMENT, _SALARY.desc(), Employee.id
)


class SalaryDepartment(Base):
    """A department and its salary statistics, computed at import."""

    __tablename__ = "salary_departments"

    name: Mapped[str] = mapped_column(sa.String(MAX_TEXT), primary_key=True)
    # Names are looked up case-insensitively, so they must be unique that way.
    name_lower: Mapped[str] = mapped_column(sa.String(MAX_TEXT), unique=True)
    employees: Mapped[int]
    min_cents: Mapped[int] = mapped_column(sa.BigInteger)
    max_cents: Mapped[int] = mapped_column(sa.BigInteger)
    total_cents: Mapped[int] = mapped_column(sa.BigInteger)
    median_low_cents: Mapped[int] = mapped_column(sa.BigInteger)
    median_high_cents: Mapped[int] = mapped_column(sa.BigInteger)


class SalaryImport(Base):
    """The one row describing the data loaded last (its checksum is the version)."""

    __tablename__ = "salary_imports"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    checksum: Mapped[str] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(255))
    loaded: Mapped[int]
    skipped: Mapped[int]
    imported_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True))
