"""Query plans in tests: the statement a store method sends, and the plan each backend makes."""

from __future__ import annotations

from typing import Any


class CapturingConnection:
    """A connection that records the statement it is given and answers no rows, so a store
    method can be called for its SQL alone."""

    sql = ""

    def execute(self, sql: str, parameters: Any) -> Any:
        self.sql = sql
        return self

    def fetchall(self) -> list[Any]:
        return []


def plan_text(connection: Any, backend: str, sql: str, parameters: tuple[Any, ...]) -> str:
    """The plan of `sql` as one line of text. SQLite plans as it would run; PostgreSQL plans
    small test tables by cost, so there the plan is asked for with sequential scans priced out
    (what a large table would get)."""
    if backend == "sqlite":
        rows = connection.execute("EXPLAIN QUERY PLAN " + sql, parameters).fetchall()
    else:
        connection.execute("SET enable_seqscan = off")
        try:
            rows = connection.execute("EXPLAIN " + sql, parameters).fetchall()
        finally:
            connection.execute("RESET enable_seqscan")
    return " ".join(str(row[-1]) for row in rows)
