"""Tianping: a double-entry ledger with SQLite and PostgreSQL backends."""

__version__ = "0.1.0"
