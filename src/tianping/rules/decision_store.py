"""SQL for stored rule decisions (`rule_decisions`, created by migration 0002), on both
backends: the only module of the rules context that knows the table.

Only the fixed column list, a column name from `_LOOKUP_COLUMNS` and the driver's placeholder
are formatted into the statements; every value is bound.
"""

from __future__ import annotations

from typing import Any

from tianping.ledger.adapters.store import LedgerStore

DECISION_COLUMNS = (
    "decision_id, seq, timestamp, point, decided_on, outcome, rule_ids, evaluated, findings, "
    "parameters, messages_en, messages_zh, rulebook, rulebook_hash, facts, command"
)
_COLUMN_COUNT = 16
_LOOKUP_COLUMNS = frozenset({"decision_id", "seq"})


def select_decision(store: LedgerStore, column: str, value: Any) -> Any:
    """The row whose `column` (decision_id or seq) equals `value`, or None."""
    if column not in _LOOKUP_COLUMNS:
        raise ValueError(f"decisions are looked up by {sorted(_LOOKUP_COLUMNS)}, not {column!r}")
    sql = (
        f"SELECT {DECISION_COLUMNS} FROM rule_decisions "  # noqa: S608 - see the module docstring
        f"WHERE {column} = {store.placeholder}"
    )
    return store.connection.execute(sql, (value,)).fetchone()


def insert_decision_sql(placeholder: str) -> str:
    """The statement inserting one decision row, in `DECISION_COLUMNS` order."""
    placeholders = ", ".join([placeholder] * _COLUMN_COUNT)
    return f"INSERT INTO rule_decisions ({DECISION_COLUMNS}) VALUES ({placeholders})"  # noqa: S608 - see the module docstring


def insert_decision(store: LedgerStore, row: tuple[Any, ...]) -> None:
    """Insert one decision row, in `DECISION_COLUMNS` order."""
    if len(row) != _COLUMN_COUNT:
        raise ValueError(f"a decision row has {_COLUMN_COUNT} values, not {len(row)}")
    store.connection.execute(insert_decision_sql(store.placeholder), row)
