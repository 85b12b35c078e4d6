"""Imports every module that defines SQL tables, so Base.metadata knows them all."""
import db.salaries  # noqa: F401
