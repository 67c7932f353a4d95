"""Hypothesis properties of the lending maths.

Schedules: for any principal, rate, term, start date and repayment day within the limits, the
principal parts add up exactly to the principal and the outstanding principal never goes
negative or up. APR: the solver's rate makes the net present value of the flows zero to within
one fen.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.lending.pricing import LoanCashFlows, apr_irr, net_present_value, schedule_cash_flows
from tianping.lending.schedules import (
    AccrualBasis,
    DatedAmount,
    RepaymentMethod,
    build_schedule,
)

PRINCIPALS = st.integers(min_value=1, max_value=1_000_000_000)
RATES = st.integers(min_value=0, max_value=3_600).map(
    lambda basis_points: Decimal(basis_points) / 10_000
)
TERMS = st.integers(min_value=1, max_value=120)
STARTS = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))
REPAYMENT_DAYS = st.none() | st.integers(min_value=1, max_value=31)


@given(
    principal=PRINCIPALS,
    rate=RATES,
    term=TERMS,
    start=STARTS,
    repayment_day=REPAYMENT_DAYS,
    method=st.sampled_from(list(RepaymentMethod)),
    accrual=st.sampled_from(list(AccrualBasis)),
)
def test_schedule_repays_exactly_the_principal(
    principal: int,
    rate: Decimal,
    term: int,
    start: dt.date,
    repayment_day: int | None,
    method: RepaymentMethod,
    accrual: AccrualBasis,
) -> None:
    schedule = build_schedule(
        principal,
        rate,
        term,
        start,
        method=method,
        accrual=accrual,
        repayment_day=repayment_day,
    )
    instalments = schedule.instalments
    assert len(instalments) == term
    assert sum(instalment.principal for instalment in instalments) == principal
    assert instalments[0].opening_principal == principal
    assert instalments[-1].closing_principal == 0
    previous_closing = principal
    for instalment in instalments:
        assert instalment.principal >= 0
        assert instalment.interest >= 0
        assert instalment.opening_principal == previous_closing
        assert 0 <= instalment.closing_principal <= instalment.opening_principal
        previous_closing = instalment.closing_principal
    dates = [instalment.due_date for instalment in instalments]
    assert dates == sorted(dates)
    assert len(set(dates)) == len(dates)


@given(
    principal=st.integers(min_value=10_000, max_value=1_000_000_000),
    rate=RATES,
    term=st.integers(min_value=2, max_value=120),
    start=STARTS,
    method=st.sampled_from(list(RepaymentMethod)),
)
def test_monthly_accrual_closing_principal_strictly_decreases(
    principal: int, rate: Decimal, term: int, start: dt.date, method: RepaymentMethod
) -> None:
    """With regular monthly interest every instalment repays some principal."""
    schedule = build_schedule(
        principal, rate, term, start, method=method, accrual=AccrualBasis.MONTHLY
    )
    closings = [instalment.closing_principal for instalment in schedule.instalments]
    assert all(
        later < earlier for earlier, later in zip([principal, *closings], closings, strict=False)
    )


@settings(max_examples=60, deadline=None)
@given(
    principal=st.integers(min_value=10_000, max_value=100_000_000),
    rate=RATES,
    term=st.integers(min_value=1, max_value=36),
    start=STARTS,
    fee_per_mille=st.integers(min_value=0, max_value=20),
)
def test_apr_of_a_schedule_zeroes_its_npv_within_one_fen(
    principal: int, rate: Decimal, term: int, start: dt.date, fee_per_mille: int
) -> None:
    """Fees up to 2 % of the principal per instalment keep the APR inside the solver's bracket."""
    fee = principal * fee_per_mille // 1_000
    schedule = build_schedule(principal, rate, term, start, fee_per_instalment_minor=fee)
    flows = schedule_cash_flows(schedule)
    assert abs(net_present_value(flows, apr_irr(flows))) <= 1


@settings(max_examples=60, deadline=None)
@given(
    principal=st.integers(min_value=10_000, max_value=100_000_000),
    payments=st.lists(
        st.tuples(
            st.integers(min_value=28, max_value=1_095), st.integers(min_value=1, max_value=1_000)
        ),
        min_size=1,
        max_size=24,
    ),
    repaid_per_mille=st.integers(min_value=900, max_value=1_500),
)
def test_apr_of_arbitrary_flows_zeroes_npv_within_one_fen(
    principal: int, payments: list[tuple[int, int]], repaid_per_mille: int
) -> None:
    """Irregular dates and amounts: weights scaled so the borrower repays 90 % to 150 %."""
    day0 = dt.date(2025, 1, 1)
    total_weight = sum(weight for _, weight in payments)
    target = principal * repaid_per_mille // 1_000
    dated = tuple(
        DatedAmount(day0 + dt.timedelta(days=days), max(target * weight // total_weight, 1))
        for days, weight in payments
    )
    flows = LoanCashFlows(day0, principal, dated)
    assert abs(net_present_value(flows, apr_irr(flows))) <= 1
