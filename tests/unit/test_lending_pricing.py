"""Unit tests of the all-in APR (IRR) solver and the cost disclosure table."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tianping.lending.pricing import (
    AprNotBracketed,
    CostItem,
    CostItemsDoNotReconcile,
    LoanCashFlows,
    apr_irr,
    build_cost_disclosure,
    net_present_value,
    nominal_annual_rate,
    schedule_cash_flows,
)
from tianping.lending.schedules import (
    AccrualBasis,
    DatedAmount,
    InvalidLendingInput,
    build_schedule,
)

DAY0 = dt.date(2025, 1, 1)
ONE_YEAR_LATER = dt.date(2026, 1, 1)  # 365 days
TEN_THOUSAND_YUAN = 1_000_000


def single_repayment(amount: int, on: dt.date = ONE_YEAR_LATER, **extra: int) -> LoanCashFlows:
    return LoanCashFlows(DAY0, TEN_THOUSAND_YUAN, (DatedAmount(on, amount),), **extra)


@pytest.mark.parametrize(
    "start", [dt.date(2025, 1, 15), dt.date(2025, 1, 31), dt.date(2024, 2, 29), dt.date(2025, 6, 1)]
)
def test_annuity_without_fees_has_apr_equal_to_effective_rate_of_its_nominal_rate(
    start: dt.date,
) -> None:
    """Daily-accrued 12 % annuity: APR = 1.01^12 - 1 = 12.6825 %, to within fen rounding."""
    schedule = build_schedule(TEN_THOUSAND_YUAN, Decimal("0.12"), 12, start)
    effective = Decimal("1.01") ** 12 - 1
    assert abs(apr_irr(schedule_cash_flows(schedule)) - effective) < Decimal("0.00001")


def test_nominal_rate_of_the_textbook_annuity_is_its_contract_rate() -> None:
    schedule = build_schedule(
        TEN_THOUSAND_YUAN, Decimal("0.12"), 12, DAY0, accrual=AccrualBasis.MONTHLY
    )
    flows = schedule_cash_flows(schedule)
    assert abs(nominal_annual_rate(flows) - Decimal("0.12")) < Decimal("0.00001")
    # The effective APR exceeds the nominal rate: monthly compounding is not free.
    assert apr_irr(flows) > Decimal("0.1265")


def test_single_repayment_after_one_year_is_simple_interest() -> None:
    assert abs(apr_irr(single_repayment(1_120_000)) - Decimal("0.12")) < Decimal("1e-10")


def test_two_year_single_repayment_compounds_annually() -> None:
    # 1,210,000 after 730 days: (1 + r)^2 = 1.21, r = 10 %.
    flows = single_repayment(1_210_000, dt.date(2027, 1, 1))
    assert abs(apr_irr(flows) - Decimal("0.1")) < Decimal("1e-10")


def test_known_fee_example_matches_hand_computation() -> None:
    """A 100.00 fee paid at disbursement plus 10,600.00 after a year: r = 10600/9900 - 1."""
    flows = LoanCashFlows(
        DAY0,
        TEN_THOUSAND_YUAN,
        (DatedAmount(DAY0, 10_000), DatedAmount(ONE_YEAR_LATER, 1_060_000)),
    )
    expected = Decimal(1_060_000) / Decimal(990_000) - 1  # 7.0707... %
    assert abs(apr_irr(flows) - expected) < Decimal("1e-10")
    # Deducting the same fee from the principal costs the borrower exactly the same.
    deducted = single_repayment(1_060_000, deductions=10_000)
    assert deducted.deducts_upfront
    assert deducted.net_disbursed == 990_000
    assert abs(apr_irr(deducted) - expected) < Decimal("1e-10")


def test_more_fees_give_a_higher_apr() -> None:
    aprs = [
        apr_irr(
            schedule_cash_flows(
                build_schedule(
                    TEN_THOUSAND_YUAN, Decimal("0.10"), 12, DAY0, fee_per_instalment_minor=fee
                )
            )
        )
        for fee in (0, 1, 500, 5_000)
    ]
    assert aprs == sorted(aprs)
    assert len(set(aprs)) == len(aprs)


def test_repaying_less_than_received_gives_a_negative_apr() -> None:
    assert abs(apr_irr(single_repayment(500_000)) - Decimal("-0.5")) < Decimal("1e-10")


def test_unsolvable_flows_raise_apr_not_bracketed() -> None:
    flows = LoanCashFlows(DAY0, TEN_THOUSAND_YUAN, (DatedAmount(DAY0, 10),))
    with pytest.raises(AprNotBracketed) as raised:
        apr_irr(flows)
    assert raised.value.code == "apr_not_bracketed"


def test_npv_at_the_apr_is_within_one_fen() -> None:
    schedule = build_schedule(
        12_345_678, Decimal("0.2399"), 24, dt.date(2025, 3, 31), fee_per_instalment_minor=1_234
    )
    flows = schedule_cash_flows(schedule)
    assert abs(net_present_value(flows, apr_irr(flows))) <= 1


def test_cost_disclosure_lists_every_fee_and_the_all_in_rate() -> None:
    schedule = build_schedule(
        TEN_THOUSAND_YUAN, Decimal("0.12"), 12, DAY0, fee_per_instalment_minor=1_000
    )
    flows = schedule_cash_flows(schedule)
    items = [
        CostItem(
            "interest",
            "lender",
            "12 % a year on outstanding principal, ACT/365",
            schedule.total_interest,
        ),
        CostItem("guarantee fee", "guarantor", "10.00 per instalment", 12_000),
    ]
    disclosure = build_cost_disclosure(flows, items, nominal_rate=Decimal("0.12"))
    assert disclosure.total_cost == schedule.total_interest + 12_000
    assert disclosure.annualised_all_in_cost == apr_irr(flows)
    assert disclosure.annualised_all_in_cost > Decimal("0.14")
    assert not disclosure.deducts_upfront


def test_cost_disclosure_refuses_a_missing_fee() -> None:
    schedule = build_schedule(
        TEN_THOUSAND_YUAN, Decimal("0.12"), 12, DAY0, fee_per_instalment_minor=1_000
    )
    items = [CostItem("interest", "lender", "12 % a year", schedule.total_interest)]
    with pytest.raises(CostItemsDoNotReconcile) as raised:
        build_cost_disclosure(schedule_cash_flows(schedule), items)
    assert raised.value.code == "cost_items_do_not_reconcile"


def test_deductions_must_leave_something_disbursed() -> None:
    with pytest.raises(InvalidLendingInput):
        single_repayment(1_100_000, deductions=TEN_THOUSAND_YUAN)
