"""Loan pricing: the all-in annualised rate (APR) as an IRR, and the cost disclosure table.

PBoC Announcement [2021] No. 3 (regulation.md L9) requires every lender to show the annualised
rate computed from *all* loan costs (interest and every directly related fee) on the principal
actually outstanding, which for instalment loans is an internal rate of return (IRR). NFRA's
guarantee-fee rule (L12) puts credit-enhancement fees into that cost, and the disclosure rule
(L13) asks for a table of each fee item, its payee and standard, with the all-in annualised
cost under normal performance. This module computes both from the borrower's actual cash flows.

The APR solves, for r, NPV(r) = -net_disbursed + Σ payment_k / (1 + r)^(days_k / 365) = 0, with
days_k counted from the disbursement date (ACT/365 compounding). Net disbursed is the principal
less any amount deducted up front. Civil Code Art. 670 and the 2017 cash-loan notice (L10) forbid
such deductions; the input is still accepted so that the cost is measured honestly and the rules
package can refuse the contract on `LoanCashFlows.deducts_upfront`, rather than the deduction
being invisible.

The solver is hand-written bisection on Decimal. The domain is standard-library only (no scipy),
and bisection is the right tool anyway: with one outflow followed by inflows NPV is strictly
decreasing in r, so a bracket that changes sign holds exactly one root and bisection is
guaranteed to converge to it, unlike Newton's method, which can diverge for fee-heavy short loans.
Each step costs one fractional power (the daily factor (1 + r)^(1/365)); every payment's
discount is then an integer power of that factor, which Decimal computes exactly and quickly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Final

from tianping.lending.schedules import (
    DECIMAL_PRECISION,
    PRINCIPAL_MINOR_MAX,
    DatedAmount,
    InvalidLendingInput,
    LendingError,
    Schedule,
)

__all__ = [
    "APR_MAX",
    "APR_MIN",
    "APR_TOLERANCE",
    "CASH_FLOWS_MAX",
    "COST_ITEMS_MAX",
    "AprNotBracketed",
    "CostDisclosure",
    "CostItem",
    "CostItemsDoNotReconcile",
    "LoanCashFlows",
    "apr_irr",
    "build_cost_disclosure",
    "net_present_value",
    "nominal_annual_rate",
    "schedule_cash_flows",
]

# The solver stops when the bracket around the rate is narrower than this (1e-10, i.e. a
# millionth of a basis point), far finer than the two decimals a disclosure shows.
APR_TOLERANCE: Final = Decimal("1e-10")
# The search bracket. Just above -100 % every discount factor explodes, so NPV is positive there
# whenever anything is repaid; 10,000,000 % a year covers the most extreme fee-laden payday loan.
APR_MIN: Final = Decimal("-0.9999")
APR_MAX: Final = Decimal("100000")
# Payments in one loan: thirty years of monthly instalments plus a generous margin for fees.
CASH_FLOWS_MAX: Final = 1_000
# Fee lines in one disclosure table.
COST_ITEMS_MAX: Final = 50
# Bisection halves the bracket each step; 80 steps shrink APR_MAX - APR_MIN below the tolerance
# with room to spare, and bound the work on any input.
_BISECTION_STEPS_MAX: Final = 80
_DAYS_PER_YEAR: Final = 365


class AprNotBracketed(LendingError):
    """The cash flows have no rate in [APR_MIN, APR_MAX] where NPV changes sign."""

    code = "apr_not_bracketed"


class CostItemsDoNotReconcile(LendingError):
    """The disclosed cost items do not add up to what the borrower pays beyond the principal."""

    code = "cost_items_do_not_reconcile"


@dataclass(frozen=True, slots=True)
class LoanCashFlows:
    """The borrower's cash flows: principal, up-front deductions, and every later payment.

    Payments include interest, principal and every fee, whoever the payee (a guarantor's fee
    counts too, L12). A payment dated on the disbursement date (an up-front fee paid separately)
    is allowed and discounted by nothing.
    """

    disbursed_on: dt.date
    principal: int
    payments: tuple[DatedAmount, ...]
    deductions: int = 0

    def __post_init__(self) -> None:
        if type(self.disbursed_on) is not dt.date:
            raise InvalidLendingInput("disbursed_on", "must be a datetime.date")
        for name, value, low in (
            ("principal", self.principal, 1),
            ("deductions", self.deductions, 0),
        ):
            if type(value) is not int or not low <= value <= PRINCIPAL_MINOR_MAX:
                raise InvalidLendingInput(
                    name, f"must be an int from {low} to {PRINCIPAL_MINOR_MAX}"
                )
        if self.deductions >= self.principal:
            raise InvalidLendingInput("deductions", "must be less than the principal")
        if not 1 <= len(self.payments) <= CASH_FLOWS_MAX:
            raise InvalidLendingInput("payments", f"must hold 1 to {CASH_FLOWS_MAX} payments")
        for payment in self.payments:
            if not isinstance(payment, DatedAmount):
                raise InvalidLendingInput("payments", "must be DatedAmount entries")
            if payment.on < self.disbursed_on:
                raise InvalidLendingInput("payments", "must not precede the disbursement date")

    @property
    def net_disbursed(self) -> int:
        """What the borrower actually receives, in minor units."""
        return self.principal - self.deductions

    @property
    def deducts_upfront(self) -> bool:
        """Whether interest or fees were taken out of the principal (forbidden by L10)."""
        return self.deductions > 0

    @property
    def total_repaid(self) -> int:
        """Everything the borrower pays after receiving the money, in minor units."""
        return sum(payment.amount_minor for payment in self.payments)


def schedule_cash_flows(schedule: Schedule, deductions: int = 0) -> LoanCashFlows:
    """The cash flows of a schedule under normal performance: each instalment on its due date."""
    return LoanCashFlows(
        disbursed_on=schedule.disbursement_date,
        principal=schedule.principal,
        payments=tuple(
            DatedAmount(instalment.due_date, instalment.total)
            for instalment in schedule.instalments
            if instalment.total > 0
        ),
        deductions=deductions,
    )


def _npv_for_daily_factor(flows: LoanCashFlows, daily_factor: Decimal) -> Decimal:
    npv = Decimal(-flows.net_disbursed)
    for payment in flows.payments:
        days = (payment.on - flows.disbursed_on).days
        npv += Decimal(payment.amount_minor) / daily_factor**days
    return npv


def net_present_value(flows: LoanCashFlows, annual_rate: Decimal) -> Decimal:
    """NPV in minor units of the flows at `annual_rate`, ACT/365 compounding, at disbursement."""
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        daily_factor = (1 + annual_rate) ** (Decimal(1) / _DAYS_PER_YEAR)
        return _npv_for_daily_factor(flows, daily_factor)


def _bisect(npv_at: _NpvFunction, low: Decimal, high: Decimal) -> Decimal:
    """The root of a strictly decreasing function inside [low, high], to APR_TOLERANCE."""
    if npv_at(low) < 0 or npv_at(high) > 0:
        raise AprNotBracketed(f"no rate between {low} and {high} makes the net present value zero")
    for _ in range(_BISECTION_STEPS_MAX):
        if high - low <= APR_TOLERANCE:
            break
        middle = (low + high) / 2
        value = npv_at(middle)
        if value == 0:
            return middle
        if value > 0:
            low = middle
        else:
            high = middle
    return (low + high) / 2


class _NpvFunction:
    """NPV as a function of the rate, in one of the two compounding conventions."""

    def __init__(self, flows: LoanCashFlows, periods_per_year: int | None) -> None:
        self._flows = flows
        self._periods_per_year = periods_per_year
        # Period index of each payment for the nominal (per-period) convention: its position in
        # date order, counted from 1, as in a contract's repayment table.
        self._ordered = sorted(flows.payments, key=lambda payment: payment.on)

    def __call__(self, rate: Decimal) -> Decimal:
        with localcontext() as context:
            context.prec = DECIMAL_PRECISION
            if self._periods_per_year is None:
                daily_factor = (1 + rate) ** (Decimal(1) / _DAYS_PER_YEAR)
                return _npv_for_daily_factor(self._flows, daily_factor)
            periodic_factor = 1 + rate / self._periods_per_year
            npv = Decimal(-self._flows.net_disbursed)
            for index, payment in enumerate(self._ordered, start=1):
                npv += Decimal(payment.amount_minor) / periodic_factor**index
            return npv


def apr_irr(flows: LoanCashFlows) -> Decimal:
    """The all-in annualised rate (L9): the effective annual IRR of the flows, ACT/365.

    Returns r with |NPV(r)| as close to zero as the tolerance allows, rounded to 12 decimals.
    A negative result means the borrower repays less than was received.
    """
    rate = _bisect(_NpvFunction(flows, None), APR_MIN, APR_MAX)
    return rate.quantize(Decimal("1e-12"))


def nominal_annual_rate(flows: LoanCashFlows, periods_per_year: int = 12) -> Decimal:
    """The nominal annual rate: the per-period IRR times `periods_per_year`.

    Payments are taken as falling one period apart, in date order, whatever their calendar
    spacing; this is the rate a contract quotes ("12 % a year, 1 % a month"). It is not the
    all-in APR: compounding within the year and uneven calendar months are ignored, which is
    exactly why L9 requires the effective `apr_irr` to be shown more prominently.
    """
    if type(periods_per_year) is not int or not 1 <= periods_per_year <= 365:
        raise InvalidLendingInput("periods_per_year", "must be an int from 1 to 365")
    low = APR_MIN * periods_per_year
    rate = _bisect(_NpvFunction(flows, periods_per_year), low, APR_MAX)
    return rate.quantize(Decimal("1e-12"))


@dataclass(frozen=True, slots=True)
class CostItem:
    """One line of the cost disclosure: what is charged, to whom it goes, on what standard.

    `standard` is the human-readable basis ("0.5 % of principal per month", "CNY 20 flat"); the
    amount is the minor units paid under normal performance.
    """

    name: str
    payee: str
    standard: str
    amount: int

    def __post_init__(self) -> None:
        for field_name in ("name", "payee", "standard"):
            text = getattr(self, field_name)
            if not isinstance(text, str) or not 1 <= len(text) <= 200:
                raise InvalidLendingInput(field_name, "must be text of 1 to 200 characters")
        if type(self.amount) is not int or not 0 <= self.amount <= PRINCIPAL_MINOR_MAX:
            raise InvalidLendingInput("amount", "must be a non-negative int of minor units")


@dataclass(frozen=True, slots=True)
class CostDisclosure:
    """The comprehensive financing cost table (L13) of one loan offer."""

    principal: int
    net_disbursed: int
    items: tuple[CostItem, ...]
    total_cost: int
    nominal_annual_rate: Decimal | None
    annualised_all_in_cost: Decimal
    deducts_upfront: bool


def build_cost_disclosure(
    flows: LoanCashFlows,
    items: Sequence[CostItem],
    nominal_rate: Decimal | None = None,
) -> CostDisclosure:
    """Build the L13 disclosure and check that no cost is left out of it.

    The items (interest included, as an item payable to the lender) must add up exactly to what
    the borrower pays beyond the money received: total repaid + deductions - principal. A fee
    missing from the table, or a table item missing from the cash flows, raises
    `CostItemsDoNotReconcile`, so the disclosed APR always covers every disclosed cost and
    vice versa.
    """
    if not 1 <= len(items) <= COST_ITEMS_MAX:
        raise InvalidLendingInput("items", f"must hold 1 to {COST_ITEMS_MAX} cost items")
    total_cost = sum(item.amount for item in items)
    borrower_cost = flows.total_repaid + flows.deductions - flows.principal
    if total_cost != borrower_cost:
        raise CostItemsDoNotReconcile(
            f"cost items total {total_cost} minor units but the cash flows cost "
            f"{borrower_cost}; every fee must appear in both"
        )
    return CostDisclosure(
        principal=flows.principal,
        net_disbursed=flows.net_disbursed,
        items=tuple(items),
        total_cost=total_cost,
        nominal_annual_rate=nominal_rate,
        annualised_all_in_cost=apr_irr(flows),
        deducts_upfront=flows.deducts_upfront,
    )
