"""Stores: SQL (SQLAlchemy), RethinkDB and the embedded notes store."""
