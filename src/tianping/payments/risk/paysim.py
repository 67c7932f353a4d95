"""PaySim rows as a payment stream: the mapping onto `PaymentContext` and PaySim-only features.

PaySim (Lopez-Rojas et al. 2016) simulates a mobile-money service; the sample used here
(`paysim_sample/paysim_sample.csv`, MANIFEST section 10) keeps all 1,392 frauds of steps 1-119
but only 50,000 of the legitimate rows, so fraud is about 21 times over-represented, and most
customers appear once. Metrics on it are therefore optimistic about precision and say little
about per-customer history features; they are a reproducible comparison, not a forecast.

Mapping (each row is a payment from `nameOrig` to `nameDest`):

* `step` is an hour of simulated time. Rows of one step are spread evenly over its hour in file
  order (`step * 3600 + i * 3600 // n`), so one-minute windows are meaningful and deterministic.
* Amounts are two-decimal text, converted exactly to integer minor units with `Decimal`.
* There is no device: each payer gets a stable synthetic device (a hash of the payer id), so
  device features reduce to per-payer ones and "new device" means "first payment seen".
* Account age is measured from the customer's first appearance in the stream (as payer or
  payee), which uses only the past. There are no password or device changes.
* Types map to kinds: PAYMENT -> merchant, TRANSFER -> p2p, CASH_OUT and DEBIT -> withdrawal,
  CASH_IN -> top_up. The type itself is also a PaySim-only one-hot feature, since fraud occurs
  only in TRANSFER and CASH_OUT.

Balance features, and their leakage: PaySim records each account's balance before and after the
payment. In the simulator, fraudulent transfers empty the origin account and are not reflected
in the destination's balances, so "old balance - amount != new balance" and "destination
balance unchanged" separate fraud almost perfectly. That is an artefact of how PaySim books
fraud, not something a live system sees before it decides, so results are reported both with and
without `BALANCE_FEATURE_NAMES`; only the latter says anything about the online features.

Identifiers are never features: the model must not memorise accounts.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from tianping.payments.risk.errors import TrainingDataInvalid
from tianping.payments.risk.features import (
    FEATURE_NAMES,
    FeatureState,
    FeatureStateLimits,
    PaymentContext,
)

__all__ = [
    "BALANCE_FEATURE_NAMES",
    "PAYSIM_CURRENCY",
    "PAYSIM_RELATIVE_PATH",
    "TYPE_FEATURE_NAMES",
    "PaySimDataset",
    "PaySimRow",
    "build_dataset",
    "read_rows",
]

PAYSIM_RELATIVE_PATH: Final = Path("paysim_sample") / "paysim_sample.csv"
# PaySim does not name its currency; XTS is the ISO 4217 code reserved for testing.
PAYSIM_CURRENCY: Final = "XTS"
# The reader stops at this many rows: far above the sample's 51,392, far below memory trouble.
ROWS_MAX: Final = 2_000_000
STEP_SECONDS: Final = 3_600
# Simulated time starts at 2025-01-01T00:00:00Z, so hours of day line up with steps.
EPOCH: Final = 1_735_689_600

_KIND_OF_TYPE: Final = {
    "PAYMENT": "merchant",
    "TRANSFER": "p2p",
    "CASH_OUT": "withdrawal",
    "DEBIT": "withdrawal",
    "CASH_IN": "top_up",
}
TYPE_FEATURE_NAMES: Final = tuple(f"paysim_type_{name.lower()}" for name in _KIND_OF_TYPE)
BALANCE_FEATURE_NAMES: Final = (
    "paysim_orig_balance_log",
    "paysim_orig_balance_error_log",
    "paysim_orig_emptied",
    "paysim_dest_balance_log",
    "paysim_dest_balance_error_log",
    "paysim_dest_balances_zero",
)


@dataclass(frozen=True, slots=True)
class PaySimRow:
    """One CSV row with money as integer minor units."""

    step: int
    type: str
    amount_minor: int
    name_orig: str
    old_balance_orig: int
    new_balance_orig: int
    name_dest: str
    old_balance_dest: int
    new_balance_dest: int
    is_fraud: bool


def _minor(text: str) -> int:
    try:
        value = Decimal(text) * 100
    except InvalidOperation as error:
        raise TrainingDataInvalid("a PaySim amount is not a decimal number") from error
    if value != value.to_integral_value():
        raise TrainingDataInvalid("a PaySim amount has more than two decimals")
    return int(value)


def read_rows(data_dir: Path) -> list[PaySimRow]:
    """The rows of the PaySim sample under `data_dir`, in file order."""
    rows: list[PaySimRow] = []
    with (data_dir / PAYSIM_RELATIVE_PATH).open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            if len(rows) >= ROWS_MAX:
                raise TrainingDataInvalid(f"more than {ROWS_MAX} PaySim rows")
            if record["type"] not in _KIND_OF_TYPE:
                raise TrainingDataInvalid("unknown PaySim transaction type")
            rows.append(
                PaySimRow(
                    step=int(record["step"]),
                    type=record["type"],
                    amount_minor=_minor(record["amount"]),
                    name_orig=record["nameOrig"],
                    old_balance_orig=_minor(record["oldbalanceOrg"]),
                    new_balance_orig=_minor(record["newbalanceOrig"]),
                    name_dest=record["nameDest"],
                    old_balance_dest=_minor(record["oldbalanceDest"]),
                    new_balance_dest=_minor(record["newbalanceDest"]),
                    is_fraud=float(record["isFraud"]) == 1.0,
                )
            )
    return rows


def _synthetic_device(payer_id: str) -> str:
    return "dev-" + hashlib.sha256(payer_id.encode("utf-8")).hexdigest()[:16]


def _time_ordered(rows: list[PaySimRow]) -> Iterator[tuple[int, PaySimRow]]:
    """(unix seconds, row) in time order: by step, then file order spread across the hour."""
    by_step: dict[int, list[PaySimRow]] = {}
    for row in rows:
        by_step.setdefault(row.step, []).append(row)
    for step in sorted(by_step):
        members = by_step[step]
        for index, row in enumerate(members):
            yield EPOCH + step * STEP_SECONDS + index * STEP_SECONDS // len(members), row


def _signed_log(value: int) -> float:
    """log1p of |value| with its sign: balance errors can be either sign and span 10^0..10^10."""
    return math.copysign(math.log1p(abs(value)), value)


def paysim_features(row: PaySimRow, *, balances: bool) -> tuple[float, ...]:
    """The PaySim-only features of a row: type one-hot, and optionally the balance features."""
    types = tuple(1.0 if row.type == name else 0.0 for name in _KIND_OF_TYPE)
    if not balances:
        return types
    orig_error = row.old_balance_orig - row.amount_minor - row.new_balance_orig
    dest_error = row.old_balance_dest + row.amount_minor - row.new_balance_dest
    return (
        *types,
        math.log1p(row.old_balance_orig),
        _signed_log(orig_error),
        1.0 if row.old_balance_orig > 0 and row.new_balance_orig == 0 else 0.0,
        math.log1p(row.old_balance_dest),
        _signed_log(dest_error),
        1.0 if row.old_balance_dest == 0 and row.new_balance_dest == 0 else 0.0,
    )


@dataclass(frozen=True, slots=True)
class PaySimDataset:
    """Feature rows in time order with labels and steps (for time-ordered splits).

    `contexts` are the online `PaymentContext`s in the same order, for replaying the stream
    through the production scorer; the base columns of `rows` are exactly `FEATURE_NAMES`.
    """

    feature_names: tuple[str, ...]
    rows: list[tuple[float, ...]]
    labels: list[int]
    steps: list[int]
    contexts: list[PaymentContext]


def build_dataset(
    rows: list[PaySimRow],
    *,
    paysim_types: bool = True,
    balances: bool = True,
    limits: FeatureStateLimits | None = None,
) -> PaySimDataset:
    """Replay the rows in time order through a fresh `FeatureState`, computing each payment's
    features before observing it, and append the PaySim-only features if asked."""
    if not rows:
        raise TrainingDataInvalid("no PaySim rows")
    state = FeatureState(PAYSIM_CURRENCY, limits=limits)
    first_seen: dict[str, int] = {}
    names = FEATURE_NAMES
    if paysim_types:
        names += TYPE_FEATURE_NAMES
        if balances:
            names += BALANCE_FEATURE_NAMES
    features: list[tuple[float, ...]] = []
    labels: list[int] = []
    steps: list[int] = []
    contexts: list[PaymentContext] = []
    for at, row in _time_ordered(rows):
        opened = first_seen.setdefault(row.name_orig, at)
        first_seen.setdefault(row.name_dest, at)
        ctx = PaymentContext(
            payer_id=row.name_orig,
            payee_id=row.name_dest,
            device_id=_synthetic_device(row.name_orig),
            amount_minor=max(row.amount_minor, 1),
            currency=PAYSIM_CURRENCY,
            at=at,
            payer_account_opened_at=opened,
            last_password_change_at=None,
            last_device_change_at=None,
            payment_kind=_KIND_OF_TYPE[row.type],
        )
        vector = state.features(ctx).values
        state.observe(ctx)
        if paysim_types:
            vector += paysim_features(row, balances=balances)
        features.append(vector)
        labels.append(int(row.is_fraud))
        steps.append(row.step)
        contexts.append(ctx)
    return PaySimDataset(names, features, labels, steps, contexts)
