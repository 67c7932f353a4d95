"""Loan servicing: daily accrual, penalty interest, the repayment waterfall, days past due, the
five-tier loan classification, and write-off and recovery amounts.

Everything is a pure function of its inputs: money in int minor units, rates as Decimal, dates
as `datetime.date`, rounding half up to one minor unit as in `tianping.lending.schedules`.

Sources for the numbers (regulation.md does not cover loan classification):

* Repayment order. Civil Code Art. 561 applies a payment that does not cover everything first
  to the costs of enforcing the claim, then to interest, then to principal, unless the parties
  agreed otherwise; `DEFAULT_WATERFALL` follows it (fees, penalty interest, interest,
  principal), and each product may configure its own order.
* Penalty interest. PBoC's *Provisions on RMB Interest Rate Administration* (2003) set overdue
  interest at the contract rate plus 30 % to 50 %; `penalty_rate` takes the uplift as a
  parameter (default 50 %). Recalled from memory: check the contract and current rules.
* Classification. The five tiers (正常, 关注, 次级, 可疑, 损失) come from the 2007 CBRC *Guidelines
  on Loan Risk Classification* and the CBIRC/PBoC *Measures for the Risk Classification of
  Financial Assets of Commercial Banks* (2023, effective 2023-07-01). Days-past-due thresholds
  are a parameter, `TierThresholds`, with three presets:
  - `RETAIL_THRESHOLDS` (the default, as in the issue brief and common retail practice): special
    mention 1-90, substandard 91-180, doubtful 181-360, loss over 360 days;
  - `FINANCIAL_ASSETS_2023_THRESHOLDS`: over 90 days at least substandard, over 270 days at least
    doubtful, over 360 days loss (recalled from the 2023 Measures, not verified against the
    official text: confidence medium);
  - `CREDIT_CARD_THRESHOLDS`: CBRC *Credit Card Business Measures* (2011) Art. 92: special
    mention 1-90, substandard 91-120, doubtful 121-180, loss over 180 days (found in a secondary
    source quoting the article).
  A lender may classify a loan worse than its days past due imply; `classify` gives the floor.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Final

from tianping.lending.schedules import (
    ANNUAL_RATE_MAX,
    DECIMAL_PRECISION,
    PRINCIPAL_MINOR_MAX,
    DayCount,
    InvalidLendingInput,
    interest_for_days,
)

__all__ = [
    "CREDIT_CARD_THRESHOLDS",
    "DEFAULT_WATERFALL",
    "DUE_DATES_MAX",
    "FINANCIAL_ASSETS_2023_THRESHOLDS",
    "PENALTY_UPLIFT_DEFAULT",
    "RETAIL_THRESHOLDS",
    "Bucket",
    "DpdBucket",
    "LoanBalances",
    "RecoveryAmounts",
    "RiskTier",
    "TierThresholds",
    "WriteOffAmounts",
    "accrue",
    "apply_payment",
    "classify",
    "days_past_due",
    "dpd_bucket",
    "penalty_interest",
    "penalty_rate",
    "recover",
    "write_off",
]

# Unpaid due dates considered for one loan: thirty years of monthly instalments.
DUE_DATES_MAX: Final = 360
# Overdue interest is the contract rate raised by this fraction (PBoC 2003: 30 % to 50 %).
PENALTY_UPLIFT_DEFAULT: Final = Decimal("0.5")


def accrue(
    outstanding: int,
    annual_rate: Decimal,
    from_date: dt.date,
    to_date: dt.date,
    convention: DayCount = DayCount.ACT_365,
) -> int:
    """Interest on `outstanding` minor units from `from_date` (inclusive) to `to_date`
    (exclusive), at `annual_rate` / the convention's basis per day, rounded half up once.

    Rounding once per accrual call, not per day, keeps a month's interest equal to the figure a
    borrower computes by hand; callers that post daily accruals should accrue the cumulative
    amount and post the difference, so daily roundings never add up to more than one unit.
    """
    if type(outstanding) is not int or not 0 <= outstanding <= PRINCIPAL_MINOR_MAX:
        raise InvalidLendingInput("outstanding", "must be a non-negative int of minor units")
    if not isinstance(annual_rate, Decimal) or not Decimal(0) <= annual_rate <= ANNUAL_RATE_MAX:
        raise InvalidLendingInput("annual_rate", f"must be a Decimal from 0 to {ANNUAL_RATE_MAX}")
    if type(from_date) is not dt.date or type(to_date) is not dt.date:
        raise InvalidLendingInput("from_date", "dates must be datetime.date")
    if to_date < from_date:
        raise InvalidLendingInput("to_date", "must not precede from_date")
    return interest_for_days(outstanding, annual_rate, (to_date - from_date).days, convention)


def penalty_rate(contract_rate: Decimal, uplift: Decimal = PENALTY_UPLIFT_DEFAULT) -> Decimal:
    """The overdue (penalty) annual rate: the contract rate raised by `uplift` (0.5 → +50 %)."""
    if not isinstance(uplift, Decimal) or not Decimal(0) <= uplift <= Decimal(1):
        raise InvalidLendingInput("uplift", "must be a Decimal from 0 to 1")
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        return contract_rate * (1 + uplift)


def penalty_interest(
    overdue_principal: int,
    penalty_annual_rate: Decimal,
    overdue_since: dt.date,
    as_of: dt.date,
    convention: DayCount = DayCount.ACT_365,
) -> int:
    """Penalty interest on overdue principal from the missed due date to `as_of` (exclusive).

    The due date itself is the last day to pay, so interest starts the day after it; a payment
    missed on the 10th and made on the 12th bears one day (the 11th) of penalty interest.
    """
    start = overdue_since + dt.timedelta(days=1)
    if as_of <= start:
        return 0
    return accrue(overdue_principal, penalty_annual_rate, start, as_of, convention)


# --------------------------------------------------------------------------- waterfall


class Bucket(enum.Enum):
    """A kind of amount a borrower owes, in the order a waterfall may pay them."""

    FEES = "fees"
    PENALTY_INTEREST = "penalty_interest"
    INTEREST = "interest"
    PRINCIPAL = "principal"


# Civil Code Art. 561: costs first, then interest, then principal.
DEFAULT_WATERFALL: Final = (Bucket.FEES, Bucket.PENALTY_INTEREST, Bucket.INTEREST, Bucket.PRINCIPAL)


@dataclass(frozen=True, slots=True)
class LoanBalances:
    """What is owed on one loan, per bucket, in non-negative minor units."""

    fees: int = 0
    penalty_interest: int = 0
    interest: int = 0
    principal: int = 0

    def __post_init__(self) -> None:
        for bucket in Bucket:
            value = getattr(self, bucket.value)
            if type(value) is not int or not 0 <= value <= PRINCIPAL_MINOR_MAX * 10:
                raise InvalidLendingInput(bucket.value, "must be a non-negative int of minor units")

    @property
    def total(self) -> int:
        """Everything owed, in minor units."""
        return self.fees + self.penalty_interest + self.interest + self.principal

    def amount(self, bucket: Bucket) -> int:
        """The amount owed in one bucket."""
        value: int = getattr(self, bucket.value)
        return value


def _validated_waterfall(waterfall: Sequence[Bucket]) -> tuple[Bucket, ...]:
    order = tuple(waterfall)
    if len(order) != len(Bucket) or set(order) != set(Bucket):
        raise InvalidLendingInput("waterfall", "must name every bucket exactly once")
    return order


def apply_payment(
    balances: LoanBalances, amount: int, waterfall: Sequence[Bucket] = DEFAULT_WATERFALL
) -> tuple[LoanBalances, dict[Bucket, int], int]:
    """Apply a payment bucket by bucket in waterfall order.

    Returns the new balances, the allocation (minor units applied to each bucket, every bucket
    present) and the overpayment (what is left once everything is paid). The allocation plus the
    overpayment always equals the payment exactly.
    """
    if type(amount) is not int or not 0 <= amount <= PRINCIPAL_MINOR_MAX * 10:
        raise InvalidLendingInput("amount", "must be a non-negative int of minor units")
    order = _validated_waterfall(waterfall)
    remaining = amount
    allocation: dict[Bucket, int] = {}
    new_amounts: dict[str, int] = {}
    for bucket in order:
        owed = balances.amount(bucket)
        applied = min(owed, remaining)
        allocation[bucket] = applied
        new_amounts[bucket.value] = owed - applied
        remaining -= applied
    return LoanBalances(**new_amounts), allocation, remaining


# --------------------------------------------------------------------------- delinquency


def days_past_due(unpaid_due_dates: Iterable[dt.date], as_of: dt.date) -> int:
    """Days past due, counted from the oldest due date not yet fully paid.

    A payment due on day D is 0 days past due on D (the borrower has all of D to pay) and 1 day
    past due on D + 1. With no unpaid due date, or one still in the future, the loan is current.
    """
    dates = list(unpaid_due_dates)
    if len(dates) > DUE_DATES_MAX:
        raise InvalidLendingInput("unpaid_due_dates", f"at most {DUE_DATES_MAX} dates")
    if not dates:
        return 0
    oldest = min(dates)
    return max((as_of - oldest).days, 0)


class DpdBucket(enum.Enum):
    """Reporting buckets of days past due."""

    CURRENT = "current"
    DPD_1_30 = "1-30"
    DPD_31_60 = "31-60"
    DPD_61_90 = "61-90"
    DPD_91_180 = "91-180"
    DPD_OVER_180 = "180+"


def _require_dpd(dpd: int) -> None:
    if type(dpd) is not int or dpd < 0:
        raise InvalidLendingInput("dpd", "must be a non-negative int")


def dpd_bucket(dpd: int) -> DpdBucket:
    """The reporting bucket of a days-past-due count; "180+" means 181 days or more."""
    _require_dpd(dpd)
    if dpd == 0:
        return DpdBucket.CURRENT
    if dpd <= 30:
        return DpdBucket.DPD_1_30
    if dpd <= 60:
        return DpdBucket.DPD_31_60
    if dpd <= 90:
        return DpdBucket.DPD_61_90
    if dpd <= 180:
        return DpdBucket.DPD_91_180
    return DpdBucket.DPD_OVER_180


class RiskTier(enum.IntEnum):
    """China's five-tier loan classification, ordered from best to worst."""

    NORMAL = 1  # 正常
    SPECIAL_MENTION = 2  # 关注
    SUBSTANDARD = 3  # 次级
    DOUBTFUL = 4  # 可疑
    LOSS = 5  # 损失

    @property
    def is_non_performing(self) -> bool:
        """Substandard, doubtful and loss are the non-performing loans (不良贷款)."""
        return self >= RiskTier.SUBSTANDARD


@dataclass(frozen=True, slots=True)
class TierThresholds:
    """The first days-past-due count of each tier below normal."""

    special_mention_from: int
    substandard_from: int
    doubtful_from: int
    loss_from: int

    def __post_init__(self) -> None:
        ordered = (
            self.special_mention_from,
            self.substandard_from,
            self.doubtful_from,
            self.loss_from,
        )
        if any(type(value) is not int for value in ordered) or not (
            1 <= ordered[0] < ordered[1] < ordered[2] < ordered[3]
        ):
            raise InvalidLendingInput("thresholds", "must be strictly increasing ints from 1")


RETAIL_THRESHOLDS: Final = TierThresholds(1, 91, 181, 361)
FINANCIAL_ASSETS_2023_THRESHOLDS: Final = TierThresholds(1, 91, 271, 361)
CREDIT_CARD_THRESHOLDS: Final = TierThresholds(1, 91, 121, 181)


def classify(dpd: int, thresholds: TierThresholds = RETAIL_THRESHOLDS) -> RiskTier:
    """The five-tier class a days-past-due count requires at least."""
    _require_dpd(dpd)
    if dpd >= thresholds.loss_from:
        return RiskTier.LOSS
    if dpd >= thresholds.doubtful_from:
        return RiskTier.DOUBTFUL
    if dpd >= thresholds.substandard_from:
        return RiskTier.SUBSTANDARD
    if dpd >= thresholds.special_mention_from:
        return RiskTier.SPECIAL_MENTION
    return RiskTier.NORMAL


# --------------------------------------------------------------------------- write-off, recovery


@dataclass(frozen=True, slots=True)
class WriteOffAmounts:
    """The accounting amounts of writing a loan off against its loss allowance.

    `written_off` is the balance removed from the books (gross carrying amount, all buckets).
    It is charged first to the allowance already held for the loan (`allowance_used`); any
    shortfall is an extra impairment loss in profit or loss (`additional_loss_expense`), and any
    allowance left over is released back to profit or loss (`allowance_released`).
    """

    written_off: LoanBalances
    total_written_off: int
    allowance_used: int
    additional_loss_expense: int
    allowance_released: int


def write_off(balances: LoanBalances, allowance_held: int) -> WriteOffAmounts:
    """Write a loan off in full against the allowance (provision) held for it."""
    if type(allowance_held) is not int or allowance_held < 0:
        raise InvalidLendingInput("allowance_held", "must be a non-negative int of minor units")
    total = balances.total
    used = min(total, allowance_held)
    return WriteOffAmounts(
        written_off=balances,
        total_written_off=total,
        allowance_used=used,
        additional_loss_expense=total - used,
        allowance_released=allowance_held - used,
    )


@dataclass(frozen=True, slots=True)
class RecoveryAmounts:
    """A cash recovery on a written-off loan.

    `allocation` says which written-off buckets the cash settles (by the waterfall);
    `recovery_income` is the part credited to profit or loss (IFRS 9 credits recoveries of
    written-off amounts to the impairment line), which equals the sum of the allocation;
    `remaining_written_off` is what is still recoverable; `overpayment` is cash beyond everything
    written off, to be returned to the borrower, not booked as income.
    """

    allocation: dict[Bucket, int]
    recovery_income: int
    remaining_written_off: LoanBalances
    overpayment: int


def recover(
    written_off_remaining: LoanBalances,
    amount: int,
    waterfall: Sequence[Bucket] = DEFAULT_WATERFALL,
) -> RecoveryAmounts:
    """Apply cash recovered after write-off to what remains written off."""
    remaining, allocation, overpayment = apply_payment(written_off_remaining, amount, waterfall)
    return RecoveryAmounts(
        allocation=allocation,
        recovery_income=amount - overpayment,
        remaining_written_off=remaining,
        overpayment=overpayment,
    )
