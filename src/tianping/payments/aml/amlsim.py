"""Reading IBM AMLSim sample outputs (2019 schema) and scoring detectors against their labels.

This module is an edge, not domain logic: it reads CSV files from a directory the caller names
(the benchmark's `--data-dir`), maps them to `AmlTransaction` records and compares flagged
accounts with the simulator's `isFraud` labels. The old schema it reads is

* nodes.csv: nodeid, isFraud, init_balance, fraudStep;
* transactions.csv: sourceNodeId, targetNodeId, value, time (time is a step, 1 to 149).

The headers are checked exactly, so a file in the newer AMLSim schema is refused rather than
misread. Values become CNY minor units (the simulator has no currency; two decimals are exact
for every shipped value, and more are rounded half-even and counted), every account is a natural
person, every transaction a domestic transfer, and step n is business day n counted from
`EPOCH_AT` (noon, China time, so the UTC+8 business date is the step's day).

Metrics are returned as integer counts; ratios are left to the caller, because this package
is a money path and floats are banned from it.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from tianping.payments.aml.errors import AmlError
from tianping.payments.aml.large_value import AmlTransaction
from tianping.payments.aml.patterns import Alert

__all__ = [
    "EPOCH_AT",
    "NODES_HEADER",
    "SCENARIO_NAMES",
    "TRANSACTIONS_HEADER",
    "AmlSimScenario",
    "Confusion",
    "confusion",
    "flagged_accounts",
    "is_held_out",
    "load_scenario",
    "split_labels",
]

# The three 20,000-account scenarios of the shipped samples (MANIFEST.md section 12).
SCENARIO_NAMES: Final = ("20K_cycle200", "20K_fanin200", "20K_fanin200cycle200")
NODES_HEADER: Final = ("nodeid", "isFraud", "init_balance", "fraudStep")
TRANSACTIONS_HEADER: Final = ("sourceNodeId", "targetNodeId", "value", "time")
# 2024-01-01 12:00 at UTC+8, the moment of step 1. Any date works; noon keeps every step well
# inside its local business day.
EPOCH_AT: Final = 1_704_081_600
SECONDS_PER_STEP: Final = 86_400
# Bounds on what one scenario may hold, so a wrong directory cannot exhaust memory.
NODES_MAX: Final = 1_000_000
TRANSACTIONS_MAX: Final = 2_000_000
STEP_MAX: Final = 10_000
_CENT: Final = Decimal("0.01")
# The salt of the fit / held-out split: fixed, so every run and every reader splits alike.
SPLIT_SALT: Final = "tianping-amlsim-split-v1"


@dataclass(frozen=True, slots=True)
class AmlSimScenario:
    """One scenario: account labels (True = SAR account) and its transactions."""

    name: str
    labels: dict[str, bool]
    transactions: tuple[AmlTransaction, ...]
    rounded_values: int
    skipped_zero_values: int


def account_id(node_id: str) -> str:
    """The pseudonymous account id for a simulator node id."""
    return f"a{int(node_id)}"


def _rows(path: Path, header: tuple[str, ...], limit: int) -> Iterable[list[str]]:
    """Data rows of a CSV file whose header must equal `header`."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        found = tuple(next(reader, []))
        if found != header:
            raise AmlError(
                "invalid_dataset", f"{path.name} header is {found!r}, expected {header!r}"
            )
        for count, row in enumerate(reader, start=1):
            if count > limit:
                raise AmlError("invalid_dataset", f"{path.name} has more than {limit} rows")
            if len(row) != len(header):
                raise AmlError("invalid_dataset", f"{path.name} row {count} has a wrong width")
            yield row


def load_scenario(directory: Path) -> AmlSimScenario:
    """Read one scenario directory (nodes.csv and transactions.csv)."""
    labels: dict[str, bool] = {}
    for row in _rows(directory / "nodes.csv", NODES_HEADER, NODES_MAX):
        if row[1] not in ("0", "1"):
            raise AmlError("invalid_dataset", "isFraud must be 0 or 1")
        labels[account_id(row[0])] = row[1] == "1"
    transactions: list[AmlTransaction] = []
    rounded = skipped = 0
    for index, row in enumerate(
        _rows(directory / "transactions.csv", TRANSACTIONS_HEADER, TRANSACTIONS_MAX)
    ):
        source, target, value_text, step_text = row
        try:
            value = Decimal(value_text)
            step = int(step_text)
        except (InvalidOperation, ValueError):
            raise AmlError("invalid_dataset", f"transaction row {index + 1} is malformed") from None
        if not value.is_finite() or value < 0 or not 0 <= step <= STEP_MAX:
            raise AmlError("invalid_dataset", f"transaction row {index + 1} is out of range")
        cents = value.quantize(_CENT, rounding=ROUND_HALF_EVEN)
        if cents != value:
            rounded += 1
        amount_minor = int(cents * 100)
        if amount_minor == 0:
            skipped += 1
            continue
        transactions.append(
            AmlTransaction(
                transaction_id=f"t{index}",
                at=EPOCH_AT + (step - 1) * SECONDS_PER_STEP,
                customer_id=account_id(source),
                customer_kind="person",
                counterparty_id=account_id(target),
                direction="out",
                amount_minor=amount_minor,
                currency="CNY",
                channel="transfer",
                cross_border=False,
            )
        )
    return AmlSimScenario(directory.name, labels, tuple(transactions), rounded, skipped)


def flagged_accounts(alerts: Iterable[Alert], *, members: bool = False) -> set[str]:
    """The accounts the alerts flag: their subjects, or with `members` every account named.

    The simulator labels every member of a laundering pattern, so flagging members can raise
    recall, but most counterparties of a busy account are ordinary customers.
    """
    flagged: set[str] = set()
    for alert in alerts:
        flagged.update(alert.account_ids if members else alert.subject_ids)
    return flagged


@dataclass(frozen=True, slots=True)
class Confusion:
    """Account-level confusion counts of flagged accounts against the labels."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int


def confusion(flagged: set[str], labels: dict[str, bool]) -> Confusion:
    """Compare flagged accounts with labels; flagged ids missing from labels count as false."""
    positives = {account for account, is_fraud in labels.items() if is_fraud}
    true_positives = len(flagged & positives)
    false_positives = len(flagged - positives)
    false_negatives = len(positives - flagged)
    true_negatives = len(labels) - true_positives - false_negatives - len(flagged - positives)
    return Confusion(true_positives, false_positives, false_negatives, max(true_negatives, 0))


def is_held_out(account: str) -> bool:
    """Whether `account` belongs to the held-out half of the evaluation split.

    The split is by account, because the labels are by account: half of the accounts (by the
    lowest bit of a salted SHA-256 of the id, so about half of the SAR accounts too) are used
    to choose detector parameters, the other half only to report them once. The detectors still
    see the whole graph; only the labels used for scoring are split.
    """
    return hashlib.sha256(f"{SPLIT_SALT}:{account}".encode()).digest()[0] & 1 == 1


def split_labels(labels: dict[str, bool], *, held_out: bool) -> dict[str, bool]:
    """The labels of one half of the split (see `is_held_out`)."""
    return {account: label for account, label in labels.items() if is_held_out(account) == held_out}
