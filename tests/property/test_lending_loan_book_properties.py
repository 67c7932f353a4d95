"""Properties of loan-book quality: a write-off (or any flow) split between funders never loses
or invents a minor unit; daily penalty roundings stay within a fen a day of the exact
surcharge; PDs grow with the horizon."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tianping.lending.loan_book import (
    BASIS_POINTS,
    PenaltySurcharge,
    bounded_split,
    daily_penalty,
    funder_split,
    horizon_pd,
)
from tianping.lending.schedules import PRINCIPAL_MINOR_MAX
from tianping.lending.servicing import penalty_interest

amounts = st.integers(min_value=0, max_value=10**12)
bank_shares = st.integers(min_value=0, max_value=7_000)


@given(amount=amounts, share=bank_shares)
def test_a_funder_split_adds_up_and_each_part_is_within_a_unit(amount: int, share: int) -> None:
    parts = funder_split(amount, share, "bank-1", "platform")
    assert sum(parts.values()) == amount
    assert all(part >= 0 for part in parts.values())
    bank = parts.get("bank-1", 0)
    assert abs(bank * BASIS_POINTS - amount * share) < BASIS_POINTS


@given(
    balances=st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=4),
    share=bank_shares,
)
def test_a_write_off_by_bucket_loses_nothing(balances: list[int], share: int) -> None:
    """Written off bucket by bucket (principal, interest), each funder's total is exact."""
    per_funder: dict[str, int] = {}
    for amount in balances:
        for funder, part in funder_split(amount, share, "bank-1", "platform").items():
            per_funder[funder] = per_funder.get(funder, 0) + part
    assert sum(per_funder.values()) == sum(balances)


@given(
    overdue=st.integers(min_value=0, max_value=PRINCIPAL_MINOR_MAX),
    rate_bps=st.integers(min_value=0, max_value=2_400),
    days=st.integers(min_value=1, max_value=400),
    uplift_percent=st.integers(min_value=0, max_value=100),
)
def test_daily_penalties_fall_short_of_the_exact_surcharge_by_under_a_fen_a_day(
    overdue: int, rate_bps: int, days: int, uplift_percent: int
) -> None:
    surcharge = PenaltySurcharge.for_uplift(Decimal(uplift_percent) / 100)
    daily = days * daily_penalty(overdue, rate_bps, surcharge)
    rate = Decimal(rate_bps) / BASIS_POINTS * surcharge.numerator / surcharge.denominator
    start = date(2026, 1, 1)
    exact = penalty_interest(overdue, rate, start, start + timedelta(days=days + 1))
    # `penalty_interest` rounds half up once, so it may exceed the true sum by half a fen.
    assert -1 <= exact - daily <= days


@given(
    pd_ppm=st.integers(min_value=0, max_value=1_000_000),
    shorter=st.integers(min_value=0, max_value=360),
    longer=st.integers(min_value=0, max_value=360),
)
def test_a_longer_horizon_never_has_a_smaller_pd(pd_ppm: int, shorter: int, longer: int) -> None:
    shorter, longer = sorted((shorter, longer))
    pd = Decimal(pd_ppm) / 1_000_000
    assert Decimal(0) <= horizon_pd(pd, shorter) <= horizon_pd(pd, longer) <= Decimal(1)


@given(
    amount=st.integers(min_value=0, max_value=10**9),
    share=bank_shares,
    slack=st.integers(min_value=-3, max_value=3),
)
def test_a_bounded_split_keeps_the_total_and_the_holdings(
    amount: int, share: int, slack: int
) -> None:
    """Whatever the funders hold (their pro-rata parts give or take a few units, as per-flow
    splits leave them), the write-off parts add up to the amount and none exceeds what its
    funder holds when together they hold enough."""
    parts = funder_split(amount, share, "bank-1", "platform")
    held = {funder: part for funder, part in parts.items()}
    if len(held) == 2:
        held["bank-1"] = max(0, held["bank-1"] + slack)
        held["platform"] = max(0, amount - held["bank-1"] + max(0, -slack))
    bounded = bounded_split(parts, held)
    assert sum(bounded.values()) == amount
    if sum(held.values()) >= amount:
        assert all(0 <= bounded[funder] <= held[funder] for funder in bounded)
    if all(parts[funder] <= held[funder] for funder in parts):
        assert bounded == parts
