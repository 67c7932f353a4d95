"""The sweep of an SME loan: a share of each day's takings repays the loan before settlement.

Pure: the product's bounds, the share of a day's takings, and what a day's run reports. The use
case is `LendingService.sweep_repayments` (`sweep_service.py`).

A merchant taking up an SME offer may agree to a sweep of `sweep_bps` basis points (1,000 is
10 %) of its takings. Each day, before that day's settlement, the sweep repays
min(share of the day's takings, everything owed that day) through the ordinary repayment, and
settlement pays the merchant the rest. The share is rounded down to the fen, in the merchant's
favour. At most half of the takings may be swept (`SWEEP_BPS_MAX`): with the discount (at most
10 %) settlement always has something to pay out, and the merchant keeps most of each day's
cash for its working capital, which is what the loan is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tianping.lending.model import LendingRefusal

__all__ = [
    "SWEEP_BATCH_MAX",
    "SWEEP_BPS_MAX",
    "SWEEP_REPORT_LINES_MAX",
    "SweepLine",
    "SweepReport",
    "check_sweep_bps",
    "sweep_share",
]

SWEEP_BPS_MAX: Final = 5_000
# Loans a run reads (and whose merchants' takings it asks payments for) at a time.
SWEEP_BATCH_MAX: Final = 500
# A run's report lists at most this many loans (the counts and totals cover all of them).
SWEEP_REPORT_LINES_MAX: Final = 1_000


def check_sweep_bps(value: object) -> int:
    """A sweep share in basis points: 0 (no sweep) to `SWEEP_BPS_MAX`."""
    if type(value) is not int or not 0 <= value <= SWEEP_BPS_MAX:
        raise LendingRefusal(
            "sweep_invalid", f"a sweep is 0 to {SWEEP_BPS_MAX} basis points of each day's takings"
        )
    return value


def sweep_share(takings: int, sweep_bps: int) -> int:
    """The swept share of a day's takings, rounded down to the minor unit (no takings, or a
    negative figure, sweep nothing)."""
    if takings <= 0:
        return 0
    return takings * sweep_bps // 10_000


@dataclass(frozen=True, slots=True)
class SweepLine:
    """What a run did for one loan: `swept` (repaid `amount`), `nothing_due` (no takings, or
    nothing owed) or `refused` (`code` says why; the day's takings are then settled in full
    unless the money had already left the account)."""

    loan_id: str
    merchant_id: str
    currency: str
    takings: int
    amount: int
    status: str
    code: str | None = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class SweepReport:
    """A day's run: how many sweeping loans it looked at, how many it repaid from the day's
    takings and how much in all, and (up to `SWEEP_REPORT_LINES_MAX`) each loan's line."""

    business_date: str
    loans: int
    swept: int
    amount: int
    refused: int
    lines: tuple[SweepLine, ...]
    truncated: bool
