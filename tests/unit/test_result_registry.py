"""The result-code registry is a public contract: pin it to a committed snapshot.

`result_registry.snapshot.json` holds `results.describe_registry()` as JSON (integer keys written as
strings). A difference means a code was added, renamed or renumbered. Adding a code with the next
free number is a deliberate product change: regenerate the snapshot with

    TIANPING_UPDATE_REGISTRY_SNAPSHOT=1 .venv/bin/python -m pytest \
        tests/unit/test_result_registry.py

and commit it together with the change. Renaming or renumbering an existing code is never allowed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest

from tianping.ledger import results
from tianping.ledger.results import (
    CREATE_ACCOUNT_PRECEDENCE,
    CREATE_TRANSFER_PRECEDENCE,
    AccountStateChangeResult,
    CreateAccountResult,
    CreateTransferResult,
)

SNAPSHOT = Path(__file__).with_name("result_registry.snapshot.json")
UPDATE_VARIABLE = "TIANPING_UPDATE_REGISTRY_SNAPSHOT"

ENUMS: list[type[IntEnum]] = [CreateAccountResult, CreateTransferResult, AccountStateChangeResult]


def _as_json(value: Any) -> Any:
    """Turn the registry into what JSON round-trips to (integer keys become strings)."""
    if isinstance(value, dict):
        return {str(key): _as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(item) for item in value]
    return value


def _renumberings(committed: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Name every committed code whose number now means something else or has gone."""
    problems = []
    for table, codes in committed.items():
        if not isinstance(codes, dict):
            continue
        now = current.get(table, {})
        for number, name in codes.items():
            if now.get(number) != name:
                problems.append(f"{table}[{number}] was {name!r}, is now {now.get(number)!r}")
    return problems


def test_registry_matches_committed_snapshot() -> None:
    """The registry equals the committed snapshot, so no code changes number or name unnoticed."""
    current = _as_json(results.describe_registry())
    if os.environ.get(UPDATE_VARIABLE) == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
        pytest.skip(f"snapshot rewritten at {SNAPSHOT}; review and commit it")
    committed = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    renumbered = _renumberings(committed, current)
    assert not renumbered, (
        "existing result codes were renumbered or renamed; codes are a public contract and are "
        "never reused or renumbered:\n  " + "\n  ".join(renumbered)
    )
    assert current == committed, (
        f"results.describe_registry() differs from {SNAPSHOT.name}. If you added a code (with the "
        "next free number) or changed a precedence order ON PURPOSE, regenerate the snapshot with "
        f"`{UPDATE_VARIABLE}=1 .venv/bin/python -m pytest {Path(__file__).name}` and commit it "
        "with the change; otherwise undo the change to results.py."
    )


@pytest.mark.parametrize("enum", ENUMS, ids=lambda enum: enum.__name__)
def test_codes_are_unique_and_contiguous_from_zero(enum: type[IntEnum]) -> None:
    """Every result enum numbers its codes 0, 1, 2, ... with no gap, alias or duplicate name."""
    # An IntEnum silently turns a duplicated value into an alias that iteration skips, so compare
    # the declared names with the iterated members as well as the values with a range.
    assert len(enum.__members__) == len(list(enum)), "a code number is used twice (alias)"
    values = [int(code) for code in enum]
    assert values == list(range(len(values)))
    assert enum(0).name == "ok"


@pytest.mark.parametrize(
    ("enum", "precedence"),
    [
        (CreateAccountResult, CREATE_ACCOUNT_PRECEDENCE),
        (CreateTransferResult, CREATE_TRANSFER_PRECEDENCE),
    ],
    ids=["create_account", "create_transfer"],
)
def test_precedence_lists_every_failure_exactly_once(
    enum: type[IntEnum], precedence: tuple[IntEnum, ...]
) -> None:
    """Each precedence tuple names every code but `ok` exactly once, and only codes of its enum."""
    counts = Counter(precedence)
    duplicated = sorted(code.name for code, count in counts.items() if count > 1)
    assert not duplicated, f"listed more than once: {duplicated}"
    assert all(type(code) is enum for code in precedence)
    assert set(precedence) == set(enum) - {enum(0)}


def test_precedence_puts_chain_open_first_and_chain_failed_last() -> None:
    """An open chain is reported before any check; `linked_event_failed` only after all of them."""
    for precedence, enum in (
        (CREATE_ACCOUNT_PRECEDENCE, CreateAccountResult),
        (CREATE_TRANSFER_PRECEDENCE, CreateTransferResult),
    ):
        assert precedence[0] is enum["linked_event_chain_open"]
        assert precedence[-1] is enum["linked_event_failed"]
    # A replay is recognised before the present state of the ledger is consulted.
    names = [code.name for code in CREATE_TRANSFER_PRECEDENCE]
    for state_check in (
        "pending_transfer_not_found",
        "reversal_target_not_found",
        "debit_account_not_found",
        "debit_account_closed",
        "exceeds_credits",
    ):
        assert names.index("exists") < names.index(state_check)
