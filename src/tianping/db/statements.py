"""The plumbing every context's SQL module shares: statements over one open connection.

Each context keeps its SQL in one module (its tables are its own), running on the connection
of a ledger unit of work or read, so its rows commit with the ledger's. What differs between
the backends at this level is small and the same for all of them: the placeholder (`?` for
sqlite3, `%s` for psycopg) and where `executemany` lives (on the sqlite3 connection, on a
psycopg cursor). It lives here once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from tianping.ledger.service import Ledger, LedgerWrite

__all__ = ["QmarkStatements", "Statements"]


class Statements:
    """Statements over one open connection (sqlite3 or psycopg) of the given backend."""

    def __init__(self, connection: Any, backend: str) -> None:
        self.connection = connection
        self.p = "?" if backend == "sqlite" else "%s"

    @classmethod
    @contextmanager
    def writing(
        cls, ledger: Ledger, uow: LedgerWrite | None = None
    ) -> Iterator[tuple[LedgerWrite, Self]]:
        """These statements in `uow` when given (its owner commits), else in a unit of work of
        their own: so a context's rows commit with whatever else the caller writes."""
        if uow is not None:
            yield uow, cls(uow.connection, uow.store.backend)
            return
        with ledger.write() as own:
            yield own, cls(own.connection, own.store.backend)

    @classmethod
    @contextmanager
    def reading(
        cls, ledger: Ledger, uow: LedgerWrite | None = None, *, snapshot: bool = True
    ) -> Iterator[Self]:
        """These statements in `uow` when given (reading what it has written so far), else over
        one consistent snapshot of the database (or, with `snapshot=False`, plain reads for a
        lookup of a single row, which needs no snapshot)."""
        if uow is not None:
            yield cls(uow.connection, uow.store.backend)
            return
        with ledger.read(snapshot=snapshot) as store:
            yield cls(store.connection, store.backend)

    def _execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        return self.connection.execute(sql, parameters)

    def _values(self, count: int) -> str:
        """`count` placeholders separated by commas, for a VALUES or IN list."""
        return ", ".join([self.p] * count)

    def _json_field(self, column: str, keys: Sequence[str], sql_type: str) -> tuple[str, Any]:
        """The value at `keys` inside a JSON text column, cast to `sql_type`, as SQL and its one
        parameter (the path, bound, never formatted): SQLite's `json_extract` with a quoted
        path, PostgreSQL's `#>>` with a text array. A missing key is NULL on both."""
        if any('"' in key or "\\" in key for key in keys):
            raise ValueError("a JSON key may not hold a quote or a backslash")
        if self.p == "?":
            path = "$" + "".join(f'."{key}"' for key in keys)
            return f"CAST(json_extract({column}, ?) AS {sql_type})", path
        return f"CAST(CAST({column} AS JSONB) #>> %s AS {sql_type})", list(keys)

    def _date_window(
        self,
        expression: str,
        since: str | None,
        until: str | None,
        expression_parameters: Sequence[Any] = (),
    ) -> tuple[str, tuple[Any, ...]]:
        """` AND` conditions keeping the rows whose ISO date `expression` (with its own
        parameters, repeated in each condition) falls from `since` through `until`, either
        bound open, and the parameters in order: ISO dates compare as text alike on both
        backends."""
        conditions = ""
        parameters: tuple[Any, ...] = ()
        for bound, operator in ((since, ">="), (until, "<=")):
            if bound is not None:
                conditions += f" AND {expression} {operator} {self.p}"
                parameters += (*expression_parameters, bound)
        return conditions, parameters

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.p == "?":
            self.connection.executemany(sql, rows)
        else:
            with self.connection.cursor() as cursor:
                cursor.executemany(sql, rows)


@cache
def _psycopg_placeholders(sql: str) -> str:
    return sql.replace("?", "%s")


class QmarkStatements(Statements):
    """Statements written with sqlite3's `?` placeholders, rewritten once per statement text
    for psycopg. For SQL modules whose statements are constants (no `?` inside literals)."""

    def _execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        if self.p != "?":
            sql = _psycopg_placeholders(sql)
        return self.connection.execute(sql, parameters)
