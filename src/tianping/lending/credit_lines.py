"""The revolving credit line's product rules as pure functions (standard library only).

A credit line (Huabei-like) is opened from an approved `credit_line` application; its limit is
the approved amount and its revolving rate the approved rate. What this module decides, without
any I/O:

* the calendar: statements on a fixed day of the month (1 to 28, so every month has it and no
  month-end rule is needed), due `DUE_DAY_OFFSET` days later; the first statement is the first
  statement day on or after the opening day;
* the line's terms as `schedules.CreditLineTerms` (the longest interest-free period is a full
  cycle plus the days to the due date);
* the order a repayment pays what is owed: fees, then interest, then principal. Principal is one
  pool on a line, drawn oldest first, so paying principal always pays the oldest draws first
  (those on the last statement before the current cycle's); principal converted into
  instalments is not in that pool until each instalment is billed, so a repayment never
  prepays a future instalment;
* how an amount is split between the funders (the partner bank and the platform) so that no
  funder is ever repaid more than it is owed;
* the quote for turning a statement's balance into monthly instalments: the fee, each
  instalment on the line's own future due dates, and the all-in APR as an IRR on those cash
  flows (pricing.apr_irr), which the rules engine checks against the cap before acceptance;
* what of a bill may be converted (its unpaid principal);
* where a merchant refund of a purchase on the line goes (the line first, the rest to the
  wallet);
* how cash recovered on a written-off line pays what remains written off and splits between
  the funders (`recover_line`, the loans' waterfall and funder positions);
* when a line is past due: days past due from the oldest minimum payment not paid, and the
  line's class and stage from them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from tianping.ledger.money import allocate
from tianping.lending.losses import Held
from tianping.lending.pricing import (
    CostDisclosure,
    CostItem,
    LoanCashFlows,
    build_cost_disclosure,
)
from tianping.lending.provisioning import stage_for
from tianping.lending.schedules import (
    CYCLE_DAYS_MAX,
    CreditLineTerms,
    DatedAmount,
    InvalidLendingInput,
    add_months,
    bill_to_instalments,
)
from tianping.lending.servicing import (
    CREDIT_CARD_THRESHOLDS,
    DEFAULT_WATERFALL,
    LoanBalances,
    TierThresholds,
    classify,
    days_past_due,
    recover,
)
from tianping.lending.servicing import Bucket as LoanBucket

__all__ = [
    "DUE_DAY_OFFSET",
    "INSTALMENT_MONTHLY_FEE_RATES",
    "LINE_THRESHOLDS",
    "MIN_PAYMENT_FLOOR",
    "MIN_PAYMENT_RATIO",
    "STATEMENT_DAY_MAX",
    "WRITTEN_OFF_BUCKETS",
    "BillDue",
    "Bucket",
    "InstalmentQuote",
    "LineOwed",
    "LineRecoveryAmounts",
    "LineStanding",
    "RefundAllocation",
    "WrittenOff",
    "allocate_refund",
    "convertible_principal",
    "daily_rate",
    "first_statement_date",
    "line_standing",
    "line_terms",
    "next_statement_date",
    "oldest_unpaid_due",
    "posting_date",
    "quote_instalments",
    "recover_line",
    "repayment_order",
    "split_charge",
    "split_repayment",
]

# Statements fall on day 1 to 28, which every month has.
STATEMENT_DAY_MAX: Final = 28
# The bill is due this many days after its statement (Huabei: statement on the 1st, due on
# the 10th). The interest-free period runs from a purchase to its bill's due date, so it is at
# most a full cycle plus these days.
DUE_DAY_OFFSET: Final = 9
# The minimum payment: 10 % of the new balance, at least CNY 10, never more than the balance.
MIN_PAYMENT_RATIO: Final = Decimal("0.10")
MIN_PAYMENT_FLOOR: Final = 10_00
# The monthly fee rate of turning a bill into instalments, by the number of months offered.
# The all-in APR these imply (about 14 % to 16 %) is what the customer is shown and what
# `loan.price` checks; a rate the cap in force refuses is never offered.
INSTALMENT_MONTHLY_FEE_RATES: Final[Mapping[int, Decimal]] = {
    3: Decimal("0.0070"),
    6: Decimal("0.0068"),
    9: Decimal("0.0066"),
    12: Decimal("0.0064"),
}
_DAYS_PER_YEAR: Final = 365


class Bucket(StrEnum):
    """What a line's holder owes, in the order a repayment pays it."""

    FEES = "fees"
    INTEREST = "interest"
    PRINCIPAL = "principal"


def repayment_order() -> tuple[Bucket, ...]:
    """Fees and interest before principal: charges are paid first so that they never become
    principal, and principal is paid last, oldest first (see the module docstring)."""
    return (Bucket.FEES, Bucket.INTEREST, Bucket.PRINCIPAL)


@dataclass(frozen=True, slots=True)
class LineOwed:
    """What is owed on a line now, in minor units, by bucket (revolving part only)."""

    fees: int
    interest: int
    principal: int

    def of(self, bucket: Bucket) -> int:
        return {
            Bucket.FEES: self.fees,
            Bucket.INTEREST: self.interest,
            Bucket.PRINCIPAL: self.principal,
        }[bucket]

    def pay(self, amount: int) -> tuple[dict[Bucket, int], int]:
        """How `amount` pays what is owed, by bucket, and what is left over (overpayment)."""
        if type(amount) is not int or amount <= 0:
            raise InvalidLendingInput("amount", "a repayment is a positive int of minor units")
        paid: dict[Bucket, int] = {}
        left = amount
        for bucket in repayment_order():
            part = min(left, self.of(bucket))
            paid[bucket] = part
            left -= part
        return paid, left


def daily_rate(rate_bps: int) -> Decimal:
    """The daily revolving rate of a nominal annual rate in basis points (ACT/365, the way
    Chinese consumer lenders quote a daily rate)."""
    if type(rate_bps) is not int or not 0 <= rate_bps <= 100_000:
        raise InvalidLendingInput("rate_bps", "must be an int from 0 to 100,000")
    return Decimal(rate_bps) / 10_000 / _DAYS_PER_YEAR


def _check_statement_day(statement_day: int) -> None:
    if type(statement_day) is not int or not 1 <= statement_day <= STATEMENT_DAY_MAX:
        raise InvalidLendingInput("statement_day", f"must be an int from 1 to {STATEMENT_DAY_MAX}")


def line_terms(limit: int, statement_day: int, rate_bps: int) -> CreditLineTerms:
    """The terms `schedules.statement` cuts this line's statements with."""
    _check_statement_day(statement_day)
    return CreditLineTerms(
        limit=limit,
        statement_day=statement_day,
        due_day_offset=DUE_DAY_OFFSET,
        interest_free_days=CYCLE_DAYS_MAX + DUE_DAY_OFFSET,
        daily_rate=daily_rate(rate_bps),
        min_payment_ratio=MIN_PAYMENT_RATIO,
        min_payment_floor=MIN_PAYMENT_FLOOR,
    )


def first_statement_date(opened_on: dt.date, statement_day: int) -> tuple[dt.date, dt.date]:
    """(the cycle's start, the first statement date) of a line opened on `opened_on`.

    The first statement is the first statement day on or after the opening day; the cycle
    starts on the statement day a month before it, so the first cycle is an ordinary month and
    every draw from the opening day on falls inside it (a cycle is (start, statement date]).
    """
    _check_statement_day(statement_day)
    this_month = opened_on.replace(day=statement_day)
    first = this_month if this_month >= opened_on else add_months(this_month, 1, statement_day)
    return add_months(first, -1, statement_day), first


def next_statement_date(statement_date: dt.date, statement_day: int) -> dt.date:
    _check_statement_day(statement_day)
    return add_months(statement_date, 1, statement_day)


def posting_date(today: dt.date, next_statement_on: dt.date, statement_day: int) -> dt.date:
    """The date a draw, repayment or conversion is booked on for the statements: today, or,
    when today's statement has already been cut, the next day, so an entry made after its
    cycle was cut falls in the next cycle instead of in none."""
    last_cut = add_months(next_statement_on, -1, statement_day)
    return max(today, last_cut + dt.timedelta(days=1))


def split_charge(amount: int, bank_share_bps: int) -> tuple[int, int]:
    """(bank part, platform part) of a draw or a charge, by the line's funding shares, largest
    remainder, so the parts add up to exactly `amount`."""
    if not bank_share_bps:
        return 0, amount
    bank, platform = allocate(amount, [bank_share_bps, 10_000 - bank_share_bps])
    return bank, platform


def split_repayment(amount: int, bank_owed: int, platform_owed: int) -> tuple[int, int]:
    """(bank part, platform part) of a repayment of one bucket, pro rata to what each funder is
    owed in it now: with `amount` at most their sum, neither part exceeds what that funder is
    owed (largest remainder never rounds a part above its exact share's ceiling), so a funder's
    receivable can never be overpaid, however the earlier charges were rounded."""
    if amount > bank_owed + platform_owed or min(amount, bank_owed, platform_owed) < 0:
        raise InvalidLendingInput("amount", "a repayment cannot exceed what the funders are owed")
    if not amount:
        return 0, 0
    bank, platform = allocate(amount, [bank_owed, platform_owed])
    return bank, platform


@dataclass(frozen=True, slots=True)
class QuotedInstalment:
    number: int
    bill_on: dt.date
    due_on: dt.date
    principal: int
    fee: int


@dataclass(frozen=True, slots=True)
class InstalmentQuote:
    """Turning `amount` of a statement into `months` monthly instalments: what is shown before
    acceptance (each instalment, the total fee, the all-in APR and the cost table, L9, L13)."""

    amount: int
    months: int
    monthly_fee_rate: Decimal
    total_fee: int
    instalments: tuple[QuotedInstalment, ...]
    apr: Decimal
    disclosure: CostDisclosure

    @property
    def apr_bps(self) -> int:
        return int((self.apr * 10_000).to_integral_value())


def quote_instalments(
    amount: int,
    months: int,
    converted_on: dt.date,
    next_statement_on: dt.date,
    statement_day: int,
) -> InstalmentQuote:
    """The quote for converting `amount` into `months` instalments on `converted_on`.

    The instalments are billed on the line's next `months` statements (the first on
    `next_statement_on`) and each is due `DUE_DAY_OFFSET` days after its statement; the amounts
    come from `schedules.bill_to_instalments` (an equal share of principal and of the fee each
    month, the last taking the remainders), and the APR is the IRR of exactly those payments
    on exactly those due dates against the amount converted on `converted_on`.
    """
    rate = INSTALMENT_MONTHLY_FEE_RATES.get(months)
    if rate is None:
        offered = ", ".join(str(m) for m in sorted(INSTALMENT_MONTHLY_FEE_RATES))
        raise InvalidLendingInput("months", f"instalments are offered over {offered} months")
    if next_statement_on <= converted_on:
        raise InvalidLendingInput("next_statement_on", "must be after the conversion date")
    first_due = next_statement_on + dt.timedelta(days=DUE_DAY_OFFSET)
    planned = bill_to_instalments(amount, months, rate, first_due)
    instalments = []
    for instalment in planned:
        bill_on = add_months(next_statement_on, instalment.number - 1, statement_day)
        instalments.append(
            QuotedInstalment(
                number=instalment.number,
                bill_on=bill_on,
                due_on=bill_on + dt.timedelta(days=DUE_DAY_OFFSET),
                principal=instalment.principal,
                fee=instalment.fees,
            )
        )
    total_fee = sum(instalment.fee for instalment in instalments)
    flows = LoanCashFlows(
        disbursed_on=converted_on,
        principal=amount,
        payments=tuple(DatedAmount(i.due_on, i.principal + i.fee) for i in instalments),
    )
    disclosure = build_cost_disclosure(
        flows,
        [
            CostItem(
                "instalment fee",
                "lender",
                f"{rate * 100} % of the amount converted per month, {months} months",
                total_fee,
            )
        ],
    )
    return InstalmentQuote(
        amount=amount,
        months=months,
        monthly_fee_rate=rate,
        total_fee=total_fee,
        instalments=tuple(instalments),
        apr=disclosure.annualised_all_in_cost,
        disclosure=disclosure,
    )


# --------------------------------------------------------------------------- bills converted


def convertible_principal(unpaid_bill: int, charges_owed: int, principal_owed: int) -> int:
    """What of a bill converts into instalments: its part still unpaid, less the interest and
    fees owed, never more than the revolving principal owed.

    Only principal converts. Interest and fees are charges already earned on the statement; to
    fold them into an instalment plan would be to lend them again at the plan's fee, which is
    interest on interest, and the plan's APR (checked by `loan.price`) would no longer describe
    the credit actually given. So they stay due on the bill. Every charge owed was billed (a
    charge arises only on a statement), and a repayment pays charges first, so the unpaid bill
    holds all of them; what is left of it is billed principal. Principal drawn after the bill
    (in `principal_owed` but not on the bill) never converts.
    """
    for name, value in (
        ("unpaid_bill", unpaid_bill),
        ("charges_owed", charges_owed),
        ("principal_owed", principal_owed),
    ):
        if type(value) is not int:
            raise InvalidLendingInput(name, "must be an int of minor units")
    return max(0, min(principal_owed, unpaid_bill - max(0, charges_owed)))


# --------------------------------------------------------------------------- refunds


@dataclass(frozen=True, slots=True)
class RefundAllocation:
    """A merchant refund of a purchase made on the line: what it credits to each bucket of the
    line and what is left over for the holder's wallet."""

    to_line: dict[Bucket, int]
    to_wallet: int

    @property
    def credited_to_line(self) -> int:
        return sum(self.to_line.values())


def allocate_refund(amount: int, owed: LineOwed) -> RefundAllocation:
    """Where a refund goes: to the line up to what its holder owes on it, in the repayment
    order (fees, interest, principal), and only the excess to the wallet.

    The refund reverses a purchase the line paid for, so it belongs to the line first: it
    restores the limit and shows on the next statement as a credit that lowers the balance,
    whether or not the purchase was already billed. The line never holds a credit balance (a
    balance owed *to* the holder would be a deposit-like liability, and the line's receivables
    may not go below zero), so what exceeds the amount owed is paid into the holder's wallet,
    which is client money. Principal converted into instalments and not yet billed is not
    paid by a refund, as no repayment prepays a future instalment; its excess goes to the
    wallet, from which the holder can pay the instalments as they are billed.
    """
    if type(amount) is not int or amount <= 0:
        raise InvalidLendingInput("amount", "a refund is a positive int of minor units")
    paid, left = owed.pay(amount)
    return RefundAllocation(paid, left)


# --------------------------------------------------------------------------- recovery

# What remains written off of a line, in the order a recovery pays it: the charges first, as
# every repayment pays them (`servicing.DEFAULT_WATERFALL`, Civil Code Art. 561), then the
# revolving principal, then the principal converted into instalments. A written-off line bills
# nothing more, so the two principals differ only in where the line keeps them.
WRITTEN_OFF_BUCKETS: Final = ("fees", "interest", "principal", "instalment_principal")


@dataclass(frozen=True, slots=True)
class WrittenOff:
    """What remains written off of a line, by bucket, with the partner bank's part of each as
    the line records it (the platform holds the rest)."""

    fees: int
    interest: int
    principal: int
    instalment_principal: int
    bank_fees: int = 0
    bank_interest: int = 0
    bank_principal: int = 0
    bank_instalment_principal: int = 0

    def __post_init__(self) -> None:
        for bucket in WRITTEN_OFF_BUCKETS:
            total, bank = self.of(bucket)
            if type(total) is not int or type(bank) is not int or not 0 <= bank <= total:
                raise InvalidLendingInput(bucket, "needs ints with 0 <= bank part <= balance")

    def of(self, bucket: str) -> tuple[int, int]:
        """(balance, the bank's part of it) of one bucket."""
        total: int = getattr(self, bucket)
        bank: int = getattr(self, f"bank_{bucket}")
        return total, bank

    @property
    def total(self) -> int:
        return self.fees + self.interest + self.principal + self.instalment_principal


@dataclass(frozen=True, slots=True)
class LineRecoveryAmounts:
    """Cash applied to what remains written off of a line: what it pays of each bucket, the
    bank's part of each of those (the platform's is the rest), what is left written off and
    the cash beyond it (`overpayment`, never income)."""

    allocation: dict[str, int]
    bank: dict[str, int]
    recovered: int
    overpayment: int
    remaining: WrittenOff

    @property
    def bank_total(self) -> int:
        return sum(self.bank.values())


def recover_line(remaining: WrittenOff, amount: int) -> LineRecoveryAmounts:
    """Apply `amount` recovered to what remains written off of a line.

    The loans' rules, not a copy of them: `servicing.recover` pays the charges and then the
    principal by the default waterfall (the two principals together, the revolving one first),
    and each bucket's payment is split by the change of the bank's position in it
    (`losses.Held.recorded`: `colending.position_change` with the bank's recorded part of the
    bucket as a fraction of the bucket). So the two parts add up to the payment, neither is
    negative, the bank's part of a bucket paid to zero is exactly what it held of it, and a
    line recovered in full returns to each funder exactly what it wrote off, whatever the
    instalments of the recovery; no funder ever recovers more than it lost.
    """
    if type(amount) is not int or amount <= 0:
        raise InvalidLendingInput("amount", "a recovery is a positive int of minor units")
    applied = recover(
        LoanBalances(
            fees=remaining.fees,
            interest=remaining.interest,
            principal=remaining.principal + remaining.instalment_principal,
        ),
        amount,
        DEFAULT_WATERFALL,
    )
    principal = applied.allocation[LoanBucket.PRINCIPAL]
    revolving = min(principal, remaining.principal)
    allocation = {
        "fees": applied.allocation[LoanBucket.FEES],
        "interest": applied.allocation[LoanBucket.INTEREST],
        "principal": revolving,
        "instalment_principal": principal - revolving,
    }
    bank: dict[str, int] = {}
    left: dict[str, int] = {}
    for bucket in WRITTEN_OFF_BUCKETS:
        total, held = remaining.of(bucket)
        paid = allocation[bucket]
        # The bank's position is the part the line recorded, as loans' is their share.
        bank[bucket] = Held.recorded(total, held).bank_change(total - paid)
        left[bucket] = total - paid
        left[f"bank_{bucket}"] = held - bank[bucket]
    return LineRecoveryAmounts(
        allocation=allocation,
        bank=bank,
        recovered=applied.recovery_income,
        overpayment=applied.overpayment,
        remaining=WrittenOff(**left),
    )


# --------------------------------------------------------------------------- delinquency

# A revolving line is classified as a card is: loss from 181 days past due. The loans' retail
# thresholds run to 361 days, which would keep a card-like balance accruing in the books twice
# as long as the card rules allow.
LINE_THRESHOLDS: Final = CREDIT_CARD_THRESHOLDS


@dataclass(frozen=True, slots=True)
class BillDue:
    """A statement whose due date has passed: its minimum payment and what has been credited
    to the line (repayments, refunds, conversions) since its statement date."""

    due_date: dt.date
    minimum_payment: int
    credited_after: int


def oldest_unpaid_due(bills: Sequence[BillDue]) -> dt.date | None:
    """The due date of the oldest bill whose minimum payment is still unpaid, or None.

    Credits pay the oldest minimum first, and a bill's own minimum can be paid only by what
    was credited after it was issued. So bill i is paid when the credits after it cover its
    minimum and the minimums of every later bill already due: a holder who misses one month and
    pays only the next month's minimum is still past due from the first. `bills` are oldest
    first.
    """
    later_minimums = 0
    oldest: dt.date | None = None
    for bill in reversed(bills):
        if bill.minimum_payment < 0 or bill.credited_after < 0:
            raise InvalidLendingInput("bills", "minimums and credits are non-negative")
        later_minimums += bill.minimum_payment
        if bill.credited_after < later_minimums:
            oldest = bill.due_date
    return oldest


@dataclass(frozen=True, slots=True)
class LineStanding:
    days_past_due: int
    tier: str
    stage: int


def line_standing(
    bills: Sequence[BillDue], day: dt.date, thresholds: TierThresholds = LINE_THRESHOLDS
) -> LineStanding:
    """Days past due on `day` (from the oldest unpaid minimum's due date; a bill is 0 days past
    due on its due date), the five-tier class and the expected-loss stage they require."""
    oldest = oldest_unpaid_due(bills)
    dpd = days_past_due([] if oldest is None else [oldest], day)
    tier = classify(dpd, thresholds)
    return LineStanding(dpd, tier.name.lower(), int(stage_for(dpd, tier)))
