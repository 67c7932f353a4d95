"""Properties of loan-book quality: daily penalty roundings stay within a fen a day of the exact
surcharge; PDs grow with the horizon."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tianping.lending.loan_book import (
    BASIS_POINTS,
    PenaltySurcharge,
    daily_penalty,
    horizon_pd,
)
from tianping.lending.schedules import PRINCIPAL_MINOR_MAX
from tianping.lending.servicing import penalty_interest


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
