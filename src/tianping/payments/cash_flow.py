"""A merchant's acquiring cash flows as lending may read them: aggregate, non-personal features
derived from its monthly takings, as pure functions (standard library only).

The window is the `months` whole calendar months before the month of `as_of` (the current,
unfinished month is left out, so a loan asked for on the 3rd is not judged on three days).
The payments store adds up each month of the window in one set-based statement
(`PaymentsStore.merchant_monthly_acquiring`); everything below is derived from those monthly
rows and two totals, so the same function serves a decision and the synthetic training
population (`tianping.lending.synthetic_sme`), which therefore see the same numbers.

A merchant that started trading inside the window is judged on the months since its first
receipt: the months before it are "not trading yet", not "trading nothing". A month after the
first receipt without any receipt counts as zero. Ratios are integers in basis points (1/10,000)
and amounts integer minor units, so no float ever reaches a limit or a cap:

* `mean_monthly_receipts`: completed takings (refunds not deducted) per observed month, floored;
* `receipts_trend_bps`: the least-squares slope of the monthly receipts relative to their mean,
  per month (+500 is growth of 5% of the mean a month); missing with fewer than two months;
* `receipts_cv_bps`: the coefficient of variation (population standard deviation over mean);
  missing with fewer than two months or no receipts;
* `refund_ratio_bps`: refunded over received, in the window;
* `failed_ratio_bps`: declined payment attempts over all attempts (completed and declined), in
  the window; the platform has no card chargebacks, so declines are the failure signal;
* `distinct_payers`, `active_days`: distinct paying parties and distinct trading days in the
  window (counts, never who);
* `months_since_first_receipt`: whole calendar months from the first receipt ever to `as_of`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from math import isqrt
from typing import Final

__all__ = [
    "CASH_FLOW_MONTHS_MAX",
    "MerchantCashFlowProfile",
    "MonthlyAcquiring",
    "derive_profile",
    "month_index",
    "window_months",
]

# The longest window a caller may ask for: two years of months is what a working-capital
# decision needs, and it bounds the aggregate's result to 24 rows.
CASH_FLOW_MONTHS_MAX: Final = 24
BPS: Final = 10_000


@dataclass(frozen=True, slots=True)
class MonthlyAcquiring:
    """One calendar month of a merchant's acquiring, as the store adds it up."""

    month: str  # YYYY-MM
    gross: int  # completed merchant payments received, minor units
    refunded: int  # refunded of those payments, minor units
    receipts: int  # completed payments
    declined: int  # declined payment attempts
    active_days: int  # distinct business dates with a completed payment


@dataclass(frozen=True, slots=True)
class MerchantCashFlowProfile:
    merchant_id: str
    currency: str
    as_of: str
    months: int
    window: tuple[str, ...]
    monthly_receipts: tuple[int, ...]
    months_observed: int
    mean_monthly_receipts: int
    receipts_trend_bps: int | None
    receipts_cv_bps: int | None
    refund_ratio_bps: int | None
    failed_ratio_bps: int | None
    distinct_payers: int
    active_days: int
    months_since_first_receipt: int | None

    def features(self) -> dict[str, int | None]:
        """The profile as scorecard inputs (source `acquiring_cash_flows`)."""
        return {
            "mean_monthly_receipts": self.mean_monthly_receipts,
            "receipts_trend_bps": self.receipts_trend_bps,
            "receipts_cv_bps": self.receipts_cv_bps,
            "refund_ratio_bps": self.refund_ratio_bps,
            "failed_ratio_bps": self.failed_ratio_bps,
            "distinct_payers": self.distinct_payers,
            "active_days": self.active_days,
            "months_since_first_receipt": self.months_since_first_receipt,
        }


def month_index(month: str) -> int:
    """A YYYY-MM month as a count of months, so months subtract."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def _month_text(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def window_months(as_of: date, months: int) -> tuple[str, ...]:
    """The `months` whole calendar months before the month of `as_of`, oldest first."""
    if type(months) is not int or not 1 <= months <= CASH_FLOW_MONTHS_MAX:
        raise ValueError(f"a cash-flow window is 1 to {CASH_FLOW_MONTHS_MAX} months")
    current = as_of.year * 12 + as_of.month - 1
    return tuple(_month_text(index) for index in range(current - months, current))


def _ratio_bps(part: int, whole: int) -> int | None:
    return None if whole <= 0 else part * BPS // whole


def _trend_bps(values: Sequence[int]) -> int | None:
    """Least-squares slope over the mean, in basis points a month, floored; exact integers."""
    n = len(values)
    total = sum(values)
    if n < 2 or total <= 0:
        return None
    sum_t = n * (n - 1) // 2
    sum_tt = (n - 1) * n * (2 * n - 1) // 6
    sum_tx = sum(t * x for t, x in enumerate(values))
    numerator = n * sum_tx - sum_t * total
    denominator = n * sum_tt - sum_t * sum_t
    # slope / mean = (numerator / denominator) / (total / n)
    return numerator * n * BPS // (denominator * total)


def _cv_bps(values: Sequence[int]) -> int | None:
    """Population standard deviation over the mean, in basis points, floored; exact integers:
    sd / mean = sqrt(n * sum(x^2) - total^2) / total."""
    n = len(values)
    total = sum(values)
    if n < 2 or total <= 0:
        return None
    spread = n * sum(x * x for x in values) - total * total
    return isqrt(spread * BPS * BPS // (total * total))


def derive_profile(
    merchant_id: str,
    currency: str,
    as_of: date,
    months: int,
    monthly: Sequence[MonthlyAcquiring],
    distinct_payers: int,
    first_receipt_month: str | None,
) -> MerchantCashFlowProfile:
    """The features of the window from its monthly rows (months without a row count as zero),
    the distinct payers of the window and the month of the first receipt ever."""
    window = window_months(as_of, months)
    by_month: Mapping[str, MonthlyAcquiring] = {row.month: row for row in monthly}
    if set(by_month) - set(window):
        raise ValueError("a monthly row lies outside the window")
    current = as_of.year * 12 + as_of.month - 1
    if first_receipt_month is None:
        observed: tuple[str, ...] = ()
        since_first = None
    else:
        first = month_index(first_receipt_month)
        observed = tuple(month for month in window if month_index(month) >= first)
        since_first = max(0, current - first)
    receipts = tuple(by_month[m].gross if m in by_month else 0 for m in window)
    observed_receipts = [by_month[m].gross if m in by_month else 0 for m in observed]
    rows = list(by_month.values())
    gross = sum(row.gross for row in rows)
    attempts = sum(row.receipts + row.declined for row in rows)
    return MerchantCashFlowProfile(
        merchant_id=merchant_id,
        currency=currency,
        as_of=as_of.isoformat(),
        months=months,
        window=window,
        monthly_receipts=receipts,
        months_observed=len(observed),
        mean_monthly_receipts=sum(observed_receipts) // len(observed) if observed else 0,
        receipts_trend_bps=_trend_bps(observed_receipts),
        receipts_cv_bps=_cv_bps(observed_receipts),
        refund_ratio_bps=_ratio_bps(sum(row.refunded for row in rows), gross),
        failed_ratio_bps=_ratio_bps(sum(row.declined for row in rows), attempts),
        distinct_payers=distinct_payers,
        active_days=sum(row.active_days for row in rows),
        months_since_first_receipt=since_first,
    )
