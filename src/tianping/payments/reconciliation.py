"""Daily reconciliation of the clearing house's settlement file against the ledger.

The clearing house's file says which top-ups and withdrawals it settled on a business date; the
ledger says which rail transfers the payments service posted, voided or still holds. `reconcile`
pairs them by request id (the idempotency key both sides carry; the clearing reference is
missing on the ledger side when no callback ever arrived) and reports every disagreement as a
`ReconciliationBreak` holding both sides' values:

* `missing_in_ledger`: settled by the clearing house, but the ledger has no posted entry for it,
  either no entry at all or a voided one. A voided one is usually a late success after the
  service timed out; an operator resolves it with a compensating transfer.
* `still_pending_in_ledger`: the ledger still holds the request as pending, whether or not the
  clearing house settled it (the settlement side tells which).
* `missing_in_settlement`: the ledger posted it, the clearing house did not settle it.
* `direction_mismatch`, `currency_mismatch`, `amount_mismatch`, `reference_mismatch`: both
  sides have it, but disagree. One pair gives one break; the first of these kinds in this order
  is reported, since a pair in the wrong direction or currency makes its amount meaningless.
* `duplicate_in_settlement`: the file lists the same request more than once (one break per
  request, with the number of lines); its first line is still matched against the ledger.

Scope: the service extracts ledger entries for the file's business date and, so that items
straddling the 23:00 cut-off still pair up, may add neighbouring dates. Every settlement record
is matched against all entries given, but an entry without a settlement record is reported only
if its business date is the file's; others belong to another day's run. Voided entries without
a record are the normal result of declines, failures and timeouts and are not breaks.

The function is pure and deterministic: breaks are sorted by request id, then kind, and totals
by direction and currency. Inputs are bounded by `RECONCILIATION_ENTRIES_MAX` ledger entries (the
file itself is bounded by `SETTLEMENT_RECORDS_MAX`); one million of each fits in memory at a few
hundred bytes per item and reconciles in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

from tianping.payments.clearing import (
    RAIL_AMOUNT_MINOR_MAX,
    SETTLEMENT_RECORDS_MAX,
    ClearingError,
    InvalidRailInput,
    RailDirection,
    SettlementFile,
    SettlementRecord,
    require_business_date,
    require_currency,
    require_identifier,
    require_int,
    require_optional_identifier,
)

__all__ = [
    "RECONCILIATION_ENTRIES_MAX",
    "BreakKind",
    "DuplicateLedgerEntry",
    "LedgerRailEntry",
    "LedgerRailState",
    "ReconciliationBreak",
    "ReconciliationError",
    "ReconciliationInputTooLarge",
    "ReconciliationReport",
    "ReconciliationTotal",
    "reconcile",
]

# At most this many ledger entries per run: the same bound as the settlement file's records.
RECONCILIATION_ENTRIES_MAX: Final = SETTLEMENT_RECORDS_MAX

LedgerRailState = Literal["posted", "voided", "pending"]
BreakKind = Literal[
    "missing_in_ledger",
    "missing_in_settlement",
    "still_pending_in_ledger",
    "direction_mismatch",
    "currency_mismatch",
    "amount_mismatch",
    "reference_mismatch",
    "duplicate_in_settlement",
]
_LEDGER_STATES: Final = frozenset(get_args(LedgerRailState))
_DIRECTIONS: Final = frozenset(get_args(RailDirection))


class ReconciliationError(ClearingError):
    """Root of reconciliation's refusals of its input."""

    code = "reconciliation_error"


class ReconciliationInputTooLarge(ReconciliationError):
    """More ledger entries than `RECONCILIATION_ENTRIES_MAX`."""

    code = "reconciliation_input_too_large"


class DuplicateLedgerEntry(ReconciliationError):
    """Two ledger entries carry the same request id, which idempotency should make impossible."""

    code = "reconciliation_duplicate_ledger_entry"


@dataclass(frozen=True, slots=True)
class LedgerRailEntry:
    """One rail request as the ledger shows it, extracted by the payments service.

    `state` is the hold's fate: "posted" (money moved), "voided" (released) or "pending" (held).
    `business_date` is the clearing business date the service assigned to the entry.
    """

    request_id: str
    clearing_reference: str | None
    direction: RailDirection
    amount_minor: int
    currency: str
    state: LedgerRailState
    business_date: str

    def __post_init__(self) -> None:
        require_identifier(self.request_id, "request_id")
        require_optional_identifier(self.clearing_reference, "clearing_reference")
        if self.direction not in _DIRECTIONS:
            raise InvalidRailInput("direction", "must be top_up or withdrawal")
        require_int(self.amount_minor, "amount_minor", 1, RAIL_AMOUNT_MINOR_MAX)
        require_currency(self.currency, "currency")
        if self.state not in _LEDGER_STATES:
            raise InvalidRailInput("state", "must be posted, voided or pending")
        require_business_date(self.business_date, "business_date")


@dataclass(frozen=True, slots=True)
class ReconciliationBreak:
    """One disagreement, with both sides as they were (None where a side has nothing)."""

    kind: BreakKind
    request_id: str
    settlement: SettlementRecord | None
    ledger: LedgerRailEntry | None
    # How many lines of the file carry this request; above one only for duplicates.
    settlement_occurrences: int = 1


@dataclass(frozen=True, slots=True)
class ReconciliationTotal:
    """Counts and sums for one direction in one currency.

    Matched items agree on both sides. Unmatched settlement items are settled records in a break
    (their amounts as the clearing house states them); unmatched ledger items are in-scope posted
    or pending entries in a break (their amounts as the ledger states them). Fees are those of
    all settlement records of the direction and currency, the amount owed to the clearing house.
    """

    direction: RailDirection
    currency: str
    matched_count: int = 0
    matched_amount_minor: int = 0
    unmatched_settlement_count: int = 0
    unmatched_settlement_amount_minor: int = 0
    unmatched_ledger_count: int = 0
    unmatched_ledger_amount_minor: int = 0
    fee_minor: int = 0


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    """The result of one run: the breaks and the per-direction, per-currency totals."""

    business_date: str
    clearing_house_id: str
    settlement_record_count: int
    ledger_entry_count: int
    breaks: tuple[ReconciliationBreak, ...]
    totals: tuple[ReconciliationTotal, ...]

    @property
    def is_clean(self) -> bool:
        """Whether the two sides agree completely."""
        return not self.breaks

    def breaks_of(self, kind: BreakKind) -> tuple[ReconciliationBreak, ...]:
        """The breaks of one kind, in report order."""
        return tuple(item for item in self.breaks if item.kind == kind)


def _pair_break(record: SettlementRecord, entry: LedgerRailEntry | None) -> BreakKind | None:
    """The break of one settled record against its ledger entry, or None if they agree."""
    if entry is None or entry.state == "voided":
        return "missing_in_ledger"
    if entry.state == "pending":
        return "still_pending_in_ledger"
    if entry.direction != record.direction:
        return "direction_mismatch"
    if entry.currency != record.currency:
        return "currency_mismatch"
    if entry.amount_minor != record.amount_minor:
        return "amount_mismatch"
    if entry.clearing_reference not in (None, record.clearing_reference):
        return "reference_mismatch"
    return None


class _TotalsBuilder:
    """Mutable counters per (direction, currency), frozen into `ReconciliationTotal`s at the end."""

    def __init__(self) -> None:
        self._counters: dict[tuple[RailDirection, str], list[int]] = {}

    def _bucket(self, direction: RailDirection, currency: str) -> list[int]:
        return self._counters.setdefault((direction, currency), [0] * 7)

    def add(self, direction: RailDirection, currency: str, slot: int, amount_minor: int) -> None:
        bucket = self._bucket(direction, currency)
        bucket[slot] += 1
        bucket[slot + 1] += amount_minor

    def add_fee(self, direction: RailDirection, currency: str, fee_minor: int) -> None:
        self._bucket(direction, currency)[6] += fee_minor

    def build(self) -> tuple[ReconciliationTotal, ...]:
        return tuple(
            ReconciliationTotal(direction, currency, *values)
            for (direction, currency), values in sorted(self._counters.items())
        )


_MATCHED: Final = 0
_UNMATCHED_SETTLEMENT: Final = 2
_UNMATCHED_LEDGER: Final = 4


def reconcile(
    settlement: SettlementFile, ledger_entries: Sequence[LedgerRailEntry]
) -> ReconciliationReport:
    """Compare one settlement file with the ledger's rail entries; see the module docstring."""
    if not isinstance(settlement, SettlementFile):
        raise InvalidRailInput("settlement", "must be a SettlementFile")
    if len(ledger_entries) > RECONCILIATION_ENTRIES_MAX:
        raise ReconciliationInputTooLarge(
            f"at most {RECONCILIATION_ENTRIES_MAX} ledger entries per run"
        )
    ledger_by_request: dict[str, LedgerRailEntry] = {}
    for entry in ledger_entries:
        if not isinstance(entry, LedgerRailEntry):
            raise InvalidRailInput("ledger_entries", "must hold LedgerRailEntry values")
        if entry.request_id in ledger_by_request:
            raise DuplicateLedgerEntry("two ledger entries carry the same request id")
        ledger_by_request[entry.request_id] = entry

    # The first line of each request is the one matched; later lines only count as duplicates.
    # Counting instead of collecting lists keeps a million-record run from allocating a million
    # small lists (and from the garbage-collector passes they trigger).
    breaks: list[ReconciliationBreak] = []
    totals = _TotalsBuilder()
    first_records: dict[str, SettlementRecord] = {}
    occurrences: dict[str, int] = {}
    for record in settlement.records:
        totals.add_fee(record.direction, record.currency, record.fee_minor)
        if record.request_id in first_records:
            occurrences[record.request_id] = occurrences.get(record.request_id, 1) + 1
        else:
            first_records[record.request_id] = record

    for request_id, record in first_records.items():
        paired = ledger_by_request.get(request_id)
        lines = occurrences.get(request_id, 1)
        if lines > 1:
            breaks.append(
                ReconciliationBreak("duplicate_in_settlement", request_id, record, paired, lines)
            )
        kind = _pair_break(record, paired)
        if kind is None:
            totals.add(record.direction, record.currency, _MATCHED, record.amount_minor)
            continue
        breaks.append(ReconciliationBreak(kind, request_id, record, paired, lines))
        totals.add(record.direction, record.currency, _UNMATCHED_SETTLEMENT, record.amount_minor)
        if paired is not None and paired.state != "voided":
            totals.add(paired.direction, paired.currency, _UNMATCHED_LEDGER, paired.amount_minor)

    for request_id, entry in ledger_by_request.items():
        if request_id in first_records or entry.business_date != settlement.business_date:
            continue
        if entry.state == "voided":
            continue
        kind = "missing_in_settlement" if entry.state == "posted" else "still_pending_in_ledger"
        breaks.append(ReconciliationBreak(kind, request_id, None, entry, 0))
        totals.add(entry.direction, entry.currency, _UNMATCHED_LEDGER, entry.amount_minor)

    breaks.sort(key=lambda item: (item.request_id, item.kind))
    return ReconciliationReport(
        business_date=settlement.business_date,
        clearing_house_id=settlement.clearing_house_id,
        settlement_record_count=settlement.record_count,
        ledger_entry_count=len(ledger_entries),
        breaks=tuple(breaks),
        totals=totals.build(),
    )
