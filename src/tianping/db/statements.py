"""The plumbing every context's SQL module shares: statements over one open connection.

Each context keeps its SQL in one module (its tables are its own), running on the connection
of a ledger unit of work or read, so its rows commit with the ledger's. What differs between
the backends at this level is small and the same for all of them: the placeholder (`?` for
sqlite3, `%s` for psycopg) and where `executemany` lives (on the sqlite3 connection, on a
psycopg cursor). It lives here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Statements"]


class Statements:
    """Statements over one open connection (sqlite3 or psycopg) of the given backend."""

    def __init__(self, connection: Any, backend: str) -> None:
        self.connection = connection
        self.p = "?" if backend == "sqlite" else "%s"

    def _execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        return self.connection.execute(sql, parameters)

    def _values(self, count: int) -> str:
        """`count` placeholders separated by commas, for a VALUES or IN list."""
        return ", ".join([self.p] * count)

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.p == "?":
            self.connection.executemany(sql, rows)
        else:
            with self.connection.cursor() as cursor:
                cursor.executemany(sql, rows)
