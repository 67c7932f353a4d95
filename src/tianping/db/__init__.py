"""Database plumbing: URL parsing, raw connections and Alembic migrations.

Submodules: :mod:`tianping.db.urls`, :mod:`tianping.db.connect`, :mod:`tianping.db.migrate`.
Only the URL helpers are re-exported here so that importing this package stays cheap.
"""

from tianping.db.urls import DatabaseURL, InvalidDatabaseURL, parse_database_url

__all__ = ["DatabaseURL", "InvalidDatabaseURL", "parse_database_url"]
