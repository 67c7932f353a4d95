"""Repayment schedules for instalment cash loans and statements for revolving credit lines.

Two products are modelled, both as pure functions of their inputs (standard library only):

* Instalment cash loans (Jiebei-like): equal instalments (等额本息, an annuity) or equal principal
  (等额本金), monthly due dates from a disbursement date on a chosen repayment day, with interest
  accrued on the outstanding principal, and the early payoff amount on any day.
* A revolving credit line (Huabei-like): the monthly statement with its interest-free grace,
  revolving interest and minimum payment, and converting a bill into instalments (分期).

Conventions, stated once here because every function below relies on them:

* Money is an int count of minor units (fen for CNY); rates are `decimal.Decimal` fractions
  (Decimal("0.12") is 12 % a year); dates are `datetime.date`. No binary float is ever used.
* Rounding is ROUND_HALF_UP (四舍五入) to one minor unit, applied once per amount (one period's
  interest, one fee), never to intermediate products. Half-up is chosen over banker's rounding
  because PBoC's interest rules and every Chinese loan contract and bill state interest "to the
  fen, rounded half up", so a borrower can reproduce each figure by hand. Banker's rounding would
  only matter for bias across many roundings, and here no bias can build up: the final
  instalment of a schedule takes whatever principal is left, so principal is never lost or
  created and the rounding of interest is settled period by period.
* Day count: interest for a span of days is `principal * annual_rate * days / basis`, with
  `days` the actual calendar days and the basis 365 (ACT/365, the default) or 360 (ACT/360).
  ACT/365 is the default because Chinese consumer lenders quote a daily rate as the annual rate
  divided by 365 (a 0.05 %/day Huabei overdue rate is the 18.25 % a year shown under the PBoC 2021
  annualised-rate rule), while ACT/360 remains for products that contract it.
* A span of days runs from its start date (inclusive) to its end date (exclusive), so a loan
  disbursed on 1 March and repaid on 1 April bears 31 days of interest.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from typing import Final

__all__ = [
    "ANNUAL_RATE_MAX",
    "BILL_INSTALMENT_MONTHS_MAX",
    "CREDIT_LINE_ENTRIES_MAX",
    "CYCLE_DAYS_MAX",
    "DAILY_RATE_MAX",
    "DECIMAL_PRECISION",
    "PRINCIPAL_MINOR_MAX",
    "TERM_MONTHS_MAX",
    "AccrualBasis",
    "CreditLineTerms",
    "DatedAmount",
    "DayCount",
    "Instalment",
    "InvalidLendingInput",
    "LendingError",
    "Payoff",
    "PreviousStatement",
    "RepaymentMethod",
    "Schedule",
    "Statement",
    "add_months",
    "annuity_payment",
    "bill_to_instalments",
    "build_schedule",
    "due_dates",
    "early_payoff",
    "interest_for_days",
    "round_half_up",
    "statement",
]

# --------------------------------------------------------------------------- limits

# One loan is at most ten million yuan (in fen). The consumer caps in force are far lower (L1,
# L2, L4: 200,000 to 300,000 CNY); the bound only keeps hostile input from building schedules of
# absurd magnitude, while still covering SME working-capital loans.
PRINCIPAL_MINOR_MAX: Final = 10_000_000_00
# Thirty years of monthly instalments; Jiebei-like cash loans run 3 to 24 months.
TERM_MONTHS_MAX: Final = 360
# 100 % a year. Legal ceilings (24 %, 36 %, 4 * LPR) are applied by the rules package; this module
# only refuses rates that cannot be a loan's price at all.
ANNUAL_RATE_MAX: Final = Decimal("1")
# Huabei-like bill instalments (分期) are offered for 3 to 12 months, sometimes 24.
BILL_INSTALMENT_MONTHS_MAX: Final = 36
# Transactions plus payments on one credit-line statement.
CREDIT_LINE_ENTRIES_MAX: Final = 10_000
# The longest statement cycle: a calendar month never has more than 31 days.
CYCLE_DAYS_MAX: Final = 31
# Daily rate of a credit line: at most 1 % a day (365 % a year), far above any lawful price.
DAILY_RATE_MAX: Final = Decimal("0.01")
# Working precision of every Decimal computation here: 40 significant digits keep the annuity
# factor (1 + i)^-n exact far beyond one fen for any amount and term inside the limits above.
DECIMAL_PRECISION: Final = 40

_ONE_MINOR_UNIT: Final = Decimal(1)

# --------------------------------------------------------------------------- errors


class LendingError(Exception):
    """Root of the lending-maths errors; `code` is stable and the message holds no personal data."""

    code = "lending_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidLendingInput(LendingError):
    """An argument is of the wrong type or outside its documented range; `field` names it."""

    code = "invalid_lending_input"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


# --------------------------------------------------------------------------- shared helpers


def round_half_up(value: Decimal) -> int:
    """Round a Decimal amount of minor units to the nearest unit, halves away from zero."""
    return int(value.quantize(_ONE_MINOR_UNIT, rounding=ROUND_HALF_UP))


def _floor_division_toward_zero(value: Decimal) -> int:
    return int(value.quantize(_ONE_MINOR_UNIT, rounding=ROUND_DOWN))


def _require_minor(
    field_name: str, value: int, *, low: int = 0, high: int = PRINCIPAL_MINOR_MAX
) -> None:
    # bool is refused like in Money: True as an amount is always a bug.
    if type(value) is not int:
        raise InvalidLendingInput(
            field_name, f"must be an int of minor units, got {type(value).__name__}"
        )
    if not low <= value <= high:
        raise InvalidLendingInput(field_name, f"must be between {low} and {high} minor units")


def _require_rate(field_name: str, value: Decimal, high: Decimal = ANNUAL_RATE_MAX) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidLendingInput(field_name, "must be a finite decimal.Decimal")
    if not Decimal(0) <= value <= high:
        raise InvalidLendingInput(field_name, f"must be between 0 and {high}")


def _require_date(field_name: str, value: dt.date) -> None:
    # datetime is a subclass of date; a timestamp would silently drop its time of day.
    if type(value) is not dt.date:
        raise InvalidLendingInput(field_name, "must be a datetime.date")


class DayCount(enum.Enum):
    """How many days make the year that divides an annual rate into a daily one."""

    ACT_365 = 365
    ACT_360 = 360

    @property
    def basis(self) -> int:
        """Days in the conventional year."""
        return self.value


def interest_for_days(
    principal_minor: int, annual_rate: Decimal, days: int, day_count: DayCount = DayCount.ACT_365
) -> int:
    """Simple interest on a principal for a number of days, rounded half up to one minor unit."""
    if days < 0:
        raise InvalidLendingInput("days", "must not be negative")
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        exact = Decimal(principal_minor) * annual_rate * days / day_count.basis
    return round_half_up(exact)


def add_months(start: dt.date, months: int, day_of_month: int) -> dt.date:
    """The date `months` calendar months after `start`'s month, on `day_of_month`.

    A day past the end of the target month (29 to 31) falls on that month's last day, so a loan
    repaid on the 31st is due on 28 or 29 February and on 30 April; this is the usual "month-end
    rule" of Chinese loan contracts (遇月末顺延至当月最后一日).
    """
    month_index = start.year * 12 + (start.month - 1) + months
    year, month_zero_based = divmod(month_index, 12)
    month = month_zero_based + 1
    last_day = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day_of_month, last_day))


def due_dates(
    disbursement_date: dt.date, term_months: int, repayment_day: int | None = None
) -> tuple[dt.date, ...]:
    """Monthly due dates: instalment k falls in the k-th month after disbursement.

    The repayment day defaults to the disbursement day. The first period therefore lasts from
    about 1 to about 61 days, depending on how the repayment day lies against the disbursement
    day; interest accrued daily charges the borrower exactly for the days actually used.
    """
    _require_date("disbursement_date", disbursement_date)
    if type(term_months) is not int or not 1 <= term_months <= TERM_MONTHS_MAX:
        raise InvalidLendingInput("term_months", f"must be an int from 1 to {TERM_MONTHS_MAX}")
    day = disbursement_date.day if repayment_day is None else repayment_day
    if type(day) is not int or not 1 <= day <= 31:
        raise InvalidLendingInput("repayment_day", "must be an int from 1 to 31")
    return tuple(add_months(disbursement_date, k, day) for k in range(1, term_months + 1))


# --------------------------------------------------------------------------- instalment loans


class RepaymentMethod(enum.Enum):
    """How principal is spread over the instalments."""

    EQUAL_INSTALMENT = "equal_instalment"  # 等额本息: a constant total each month (annuity)
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金: a constant principal part each month


class AccrualBasis(enum.Enum):
    """How one period's interest is measured."""

    # Outstanding principal * annual rate / day-count basis * actual days in the period. This is
    # what Jiebei-like products do ("按日计息"), and it is the default.
    DAILY = "daily"
    # Outstanding principal * annual rate / 12, whatever the period's length: the textbook
    # annuity and most bank mortgages. Useful to reproduce published tables.
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class Instalment:
    """One scheduled repayment; every amount in minor units, `total` = principal+interest+fees."""

    number: int
    due_date: dt.date
    principal: int
    interest: int
    fees: int
    total: int
    opening_principal: int
    closing_principal: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """A full repayment plan and the terms it was built from."""

    principal: int
    annual_rate: Decimal
    method: RepaymentMethod
    accrual: AccrualBasis
    day_count: DayCount
    disbursement_date: dt.date
    instalments: tuple[Instalment, ...]

    @property
    def total_interest(self) -> int:
        """Interest over the whole plan in minor units."""
        return sum(instalment.interest for instalment in self.instalments)

    @property
    def total_fees(self) -> int:
        """Fees over the whole plan in minor units."""
        return sum(instalment.fees for instalment in self.instalments)

    @property
    def total_payable(self) -> int:
        """Everything the borrower repays under normal performance, in minor units."""
        return sum(instalment.total for instalment in self.instalments)


def annuity_payment(principal_minor: int, periodic_rate: Decimal, periods: int) -> int:
    """The constant payment that repays `principal_minor` over `periods` at `periodic_rate`.

    payment = P * i / (1 - (1 + i)^-n), rounded half up to one minor unit; with a zero rate the
    payment is P / n. 10,000.00 over 12 months at 1 % a month gives 888.49.
    """
    if type(periods) is not int or periods < 1:
        raise InvalidLendingInput("periods", "must be a positive int")
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        if periodic_rate == 0:
            return round_half_up(Decimal(principal_minor) / periods)
        factor = (1 + periodic_rate) ** -periods
        return round_half_up(Decimal(principal_minor) * periodic_rate / (1 - factor))


def _period_interest(
    opening_principal: int,
    annual_rate: Decimal,
    period_start: dt.date,
    period_end: dt.date,
    accrual: AccrualBasis,
    day_count: DayCount,
) -> int:
    if accrual is AccrualBasis.MONTHLY:
        with localcontext() as context:
            context.prec = DECIMAL_PRECISION
            return round_half_up(Decimal(opening_principal) * annual_rate / 12)
    return interest_for_days(
        opening_principal, annual_rate, (period_end - period_start).days, day_count
    )


def build_schedule(
    principal_minor: int,
    annual_rate: Decimal,
    term_months: int,
    disbursement_date: dt.date,
    *,
    method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALMENT,
    repayment_day: int | None = None,
    day_count: DayCount = DayCount.ACT_365,
    accrual: AccrualBasis = AccrualBasis.DAILY,
    fee_per_instalment_minor: int = 0,
) -> Schedule:
    """Build a monthly repayment schedule whose principal parts add up exactly to the principal.

    Equal instalments: the target payment is the annuity payment at the monthly rate
    annual_rate / 12 (so the quoted payment matches the textbook figure). Each period's interest
    is accrued on the opening principal (see `AccrualBasis`) and the principal part is the
    payment less that interest, never below zero (a long first period at a high rate can need
    more interest than the payment; the total then rises to cover it rather than capitalising
    interest) and never above the outstanding principal.

    Equal principal: each period repays floor(P / n); truncating rather than rounding keeps the
    remainder non-negative, so the final instalment is larger by fewer than n minor units.

    In both methods the final instalment repays whatever principal is still outstanding, which is
    what makes the principal parts sum exactly to the principal. A fixed fee per instalment
    (a service fee, if the product has one) is added to every instalment's total.
    """
    _require_minor("principal_minor", principal_minor, low=1)
    _require_rate("annual_rate", annual_rate)
    _require_minor("fee_per_instalment_minor", fee_per_instalment_minor)
    if not isinstance(method, RepaymentMethod):
        raise InvalidLendingInput("method", "must be a RepaymentMethod")
    dates = due_dates(disbursement_date, term_months, repayment_day)

    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        target_payment = annuity_payment(principal_minor, annual_rate / 12, term_months)
        equal_principal_part = _floor_division_toward_zero(Decimal(principal_minor) / term_months)

    instalments: list[Instalment] = []
    outstanding = principal_minor
    period_start = disbursement_date
    for number, due_date in enumerate(dates, start=1):
        interest = _period_interest(
            outstanding, annual_rate, period_start, due_date, accrual, day_count
        )
        if number == term_months:
            principal_part = outstanding
        elif method is RepaymentMethod.EQUAL_INSTALMENT:
            principal_part = min(max(target_payment - interest, 0), outstanding)
        else:
            principal_part = min(equal_principal_part, outstanding)
        closing = outstanding - principal_part
        instalments.append(
            Instalment(
                number=number,
                due_date=due_date,
                principal=principal_part,
                interest=interest,
                fees=fee_per_instalment_minor,
                total=principal_part + interest + fee_per_instalment_minor,
                opening_principal=outstanding,
                closing_principal=closing,
            )
        )
        outstanding = closing
        period_start = due_date
    return Schedule(
        principal=principal_minor,
        annual_rate=annual_rate,
        method=method,
        accrual=accrual,
        day_count=day_count,
        disbursement_date=disbursement_date,
        instalments=tuple(instalments),
    )


@dataclass(frozen=True, slots=True)
class Payoff:
    """What settles a loan early: outstanding principal, interest accrued since the last due
    date, any prepayment fee, and their total, all in minor units."""

    principal: int
    accrued_interest: int
    fees: int
    total: int


def early_payoff(
    schedule: Schedule,
    paid_through: int,
    payoff_date: dt.date,
    annual_rate: Decimal | None = None,
    *,
    day_count: DayCount | None = None,
    prepayment_fee_rate: Decimal = Decimal(0),
    prepayment_fee_minor: int = 0,
) -> Payoff:
    """The amount that settles the loan on `payoff_date` after instalments 1..`paid_through`.

    Interest accrues daily on the outstanding principal from the last paid due date (or the
    disbursement date) to the payoff date, whatever the schedule's own accrual basis, because a
    borrower repaying early owes interest only for the days the money was used. A payoff on a due
    date therefore equals the remaining principal. The payoff date may be at most the next due
    date: after it, that instalment is overdue and belongs to servicing, not to an early payoff.

    The optional prepayment fee is `prepayment_fee_rate` * outstanding principal (rounded half
    up) plus a flat `prepayment_fee_minor`; both default to none, as most Chinese consumer
    lenders now waive it.
    """
    count = len(schedule.instalments)
    if type(paid_through) is not int or not 0 <= paid_through < count:
        raise InvalidLendingInput("paid_through", f"must be an int from 0 to {count - 1}")
    _require_date("payoff_date", payoff_date)
    rate = schedule.annual_rate if annual_rate is None else annual_rate
    _require_rate("annual_rate", rate)
    _require_rate("prepayment_fee_rate", prepayment_fee_rate)
    _require_minor("prepayment_fee_minor", prepayment_fee_minor)
    convention = schedule.day_count if day_count is None else day_count

    if paid_through == 0:
        outstanding = schedule.principal
        last_due = schedule.disbursement_date
    else:
        last_paid = schedule.instalments[paid_through - 1]
        outstanding = last_paid.closing_principal
        last_due = last_paid.due_date
    next_due = schedule.instalments[paid_through].due_date
    if not last_due <= payoff_date <= next_due:
        raise InvalidLendingInput(
            "payoff_date", "must lie between the last paid due date and the next due date"
        )
    accrued = interest_for_days(outstanding, rate, (payoff_date - last_due).days, convention)
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        fees = round_half_up(Decimal(outstanding) * prepayment_fee_rate) + prepayment_fee_minor
    return Payoff(
        principal=outstanding,
        accrued_interest=accrued,
        fees=fees,
        total=outstanding + accrued + fees,
    )


# --------------------------------------------------------------------------- credit lines


@dataclass(frozen=True, slots=True)
class DatedAmount:
    """A positive amount in minor units on a date: a purchase, a payment, a repayment."""

    on: dt.date
    amount_minor: int

    def __post_init__(self) -> None:
        _require_date("on", self.on)
        _require_minor("amount_minor", self.amount_minor, low=1)


@dataclass(frozen=True, slots=True)
class CreditLineTerms:
    """The price and calendar of a revolving credit line (Huabei-like).

    `limit` is the credit limit in minor units. The statement is cut on `statement_day` each
    month (29 to 31 fall on the month's last day) and is due `due_day_offset` days later.
    `interest_free_days` is the longest interest-free period the product advertises; it must
    match the calendar, i.e. be no longer than a full cycle plus the due-day offset
    (`CYCLE_DAYS_MAX + due_day_offset`), so the advertisement can never promise more than the
    statement logic gives. `daily_rate` is the revolving interest rate per day.
    The minimum payment is `min_payment_ratio` * the new balance, at least `min_payment_floor`
    minor units, and never more than the balance.
    """

    limit: int
    statement_day: int
    due_day_offset: int
    interest_free_days: int
    daily_rate: Decimal
    min_payment_ratio: Decimal
    min_payment_floor: int

    def __post_init__(self) -> None:
        _require_minor("limit", self.limit, low=1)
        if type(self.statement_day) is not int or not 1 <= self.statement_day <= 31:
            raise InvalidLendingInput("statement_day", "must be an int from 1 to 31")
        if type(self.due_day_offset) is not int or not 1 <= self.due_day_offset <= CYCLE_DAYS_MAX:
            raise InvalidLendingInput(
                "due_day_offset", f"must be an int from 1 to {CYCLE_DAYS_MAX}"
            )
        longest = CYCLE_DAYS_MAX + self.due_day_offset
        if type(self.interest_free_days) is not int or not (
            self.due_day_offset <= self.interest_free_days <= longest
        ):
            raise InvalidLendingInput(
                "interest_free_days", f"must be from due_day_offset to {longest}"
            )
        _require_rate("daily_rate", self.daily_rate, DAILY_RATE_MAX)
        _require_rate("min_payment_ratio", self.min_payment_ratio, Decimal(1))
        _require_minor("min_payment_floor", self.min_payment_floor)


@dataclass(frozen=True, slots=True)
class PreviousStatement:
    """The last statement before the one being cut: its date, due date and balance (minor)."""

    statement_date: dt.date
    due_date: dt.date
    balance: int

    def __post_init__(self) -> None:
        _require_date("statement_date", self.statement_date)
        _require_date("due_date", self.due_date)
        if type(self.balance) is not int:
            raise InvalidLendingInput("balance", "must be an int of minor units")
        if self.due_date < self.statement_date:
            raise InvalidLendingInput("due_date", "must not precede the statement date")


@dataclass(frozen=True, slots=True)
class Statement:
    """A cut statement. Amounts in minor units; a negative balance is a credit to the customer."""

    statement_date: dt.date
    new_balance: int
    minimum_payment: int
    due_date: dt.date
    interest_charged: int
    purchases: int
    payments: int
    grace_kept: bool
    over_limit: bool


def _statement_date_for(terms: CreditLineTerms, statement_date: dt.date) -> None:
    last_day = calendar.monthrange(statement_date.year, statement_date.month)[1]
    if statement_date.day != min(terms.statement_day, last_day):
        raise InvalidLendingInput("statement_date", "does not fall on the terms' statement day")


def statement(
    transactions: Sequence[DatedAmount],
    previous_balance: PreviousStatement,
    payments: Sequence[DatedAmount],
    terms: CreditLineTerms,
    statement_date: dt.date,
) -> Statement:
    """Cut the statement for the cycle (previous statement date, `statement_date`].

    Grace: if the previous statement's balance was paid in full by its due date (payments dated
    after the previous statement date up to and including its due date), the grace is kept and
    no interest is charged on this statement: purchases are interest-free until their own due
    date.

    Revolving (grace lost) — the convention implemented: interest is charged from each
    transaction date, at `daily_rate`, on the end-of-day balance, counting the transaction day.
    It has two parts, summed exactly and rounded half up once:

    1. back interest on the previous cycle's purchases (the `transactions` dated on or before
       the previous statement date; they are already in its balance and are passed only for
       this), from each transaction date to the previous statement date inclusive, because the
       grace those purchases were given provisionally has now been lost;
    2. for each day of this cycle, the end-of-day balance (previous balance plus this cycle's
       purchases to date, less payments to date, never below zero) times the daily rate, so a
       partial payment reduces the interest from the day it is made.

    This is the traditional Chinese credit-card "interest from the transaction date" rule,
    applied to the balance actually unpaid each day. Huabei itself charges overdue interest only
    from the due date; a product wanting that rule should price it in servicing instead.
    Payments before the cycle (on or before the previous statement date) are ignored, since they
    are already in the previous balance.
    """
    _require_date("statement_date", statement_date)
    _statement_date_for(terms, statement_date)
    if len(transactions) + len(payments) > CREDIT_LINE_ENTRIES_MAX:
        raise InvalidLendingInput("transactions", f"at most {CREDIT_LINE_ENTRIES_MAX} entries")
    cycle_start = previous_balance.statement_date
    if not cycle_start < statement_date:
        raise InvalidLendingInput("statement_date", "must be after the previous statement date")
    if (statement_date - cycle_start).days > CYCLE_DAYS_MAX:
        raise InvalidLendingInput("statement_date", f"cycle longer than {CYCLE_DAYS_MAX} days")
    for entry in (*transactions, *payments):
        if not isinstance(entry, DatedAmount):
            raise InvalidLendingInput("transactions", "entries must be DatedAmount")
        if entry.on > statement_date:
            raise InvalidLendingInput("transactions", "entries must not be after statement date")

    cycle_purchases = [t for t in transactions if t.on > cycle_start]
    previous_purchases = [t for t in transactions if t.on <= cycle_start]
    cycle_payments = [p for p in payments if p.on > cycle_start]
    paid_by_due = sum(p.amount_minor for p in cycle_payments if p.on <= previous_balance.due_date)
    grace_kept = paid_by_due >= previous_balance.balance

    interest_charged = 0
    if not grace_kept:
        with localcontext() as context:
            context.prec = DECIMAL_PRECISION
            balance_days = sum(
                t.amount_minor * ((cycle_start - t.on).days + 1) for t in previous_purchases
            )
            balance = previous_balance.balance
            day = cycle_start + dt.timedelta(days=1)
            while day <= statement_date:
                balance += sum(t.amount_minor for t in cycle_purchases if t.on == day)
                balance -= sum(p.amount_minor for p in cycle_payments if p.on == day)
                balance_days += max(balance, 0)
                day += dt.timedelta(days=1)
            interest_charged = round_half_up(Decimal(balance_days) * terms.daily_rate)

    purchases_total = sum(t.amount_minor for t in cycle_purchases)
    payments_total = sum(p.amount_minor for p in cycle_payments)
    new_balance = previous_balance.balance + purchases_total - payments_total + interest_charged
    if new_balance <= 0:
        minimum = 0
    else:
        with localcontext() as context:
            context.prec = DECIMAL_PRECISION
            ratio_part = round_half_up(Decimal(new_balance) * terms.min_payment_ratio)
        minimum = min(new_balance, max(ratio_part, terms.min_payment_floor))
    return Statement(
        statement_date=statement_date,
        new_balance=new_balance,
        minimum_payment=minimum,
        due_date=statement_date + dt.timedelta(days=terms.due_day_offset),
        interest_charged=interest_charged,
        purchases=purchases_total,
        payments=payments_total,
        grace_kept=grace_kept,
        over_limit=new_balance > terms.limit,
    )


def bill_to_instalments(
    amount: int, months: int, monthly_fee_rate: Decimal, first_due_date: dt.date
) -> tuple[Instalment, ...]:
    """Convert a bill into `months` instalments (分期) with a fee each period and no interest.

    The total fee is amount * monthly_fee_rate * months, rounded half up once, so the borrower
    pays exactly the contractual total. Principal and fee are each spread by truncated equal
    parts with the final instalment taking the remainder, so no minor unit is lost or created.
    Later due dates fall on the first due date's day in following months (month-end rule).
    """
    _require_minor("amount", amount, low=1)
    if type(months) is not int or not 1 <= months <= BILL_INSTALMENT_MONTHS_MAX:
        raise InvalidLendingInput(
            "months", f"must be an int from 1 to {BILL_INSTALMENT_MONTHS_MAX}"
        )
    _require_rate("monthly_fee_rate", monthly_fee_rate, Decimal(1))
    _require_date("first_due_date", first_due_date)
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        total_fee = round_half_up(Decimal(amount) * monthly_fee_rate * months)
        principal_part = _floor_division_toward_zero(Decimal(amount) / months)
        fee_part = _floor_division_toward_zero(Decimal(total_fee) / months)
    instalments: list[Instalment] = []
    outstanding = amount
    for number in range(1, months + 1):
        is_final = number == months
        principal = outstanding if is_final else principal_part
        fee = total_fee - fee_part * (months - 1) if is_final else fee_part
        instalments.append(
            Instalment(
                number=number,
                due_date=add_months(first_due_date, number - 1, first_due_date.day),
                principal=principal,
                interest=0,
                fees=fee,
                total=principal + fee,
                opening_principal=outstanding,
                closing_principal=outstanding - principal,
            )
        )
        outstanding -= principal
    return tuple(instalments)
