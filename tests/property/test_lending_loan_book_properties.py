"""Properties of loan-book quality: daily penalty roundings stay within a fen a day of the exact
surcharge; PDs grow with the horizon; charge-offs by funder add up to the totals, with the net
charge-off the loss less the recoveries and the recovery rate within rounding of the exact
fraction."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tianping.lending.loan_book import (
    BASIS_POINTS,
    ChargeOffGroup,
    PenaltySurcharge,
    charge_offs,
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


@st.composite
def _groups(draw: st.DrawFn) -> list[ChargeOffGroup]:
    """Groups as the sub-ledger gives them: per funder, a platform part within each gross
    amount (everything for the platform's own loans), and recoveries in which no funder gets
    back more than it lost (the split of every recovery guarantees it)."""
    groups = []
    for funder in draw(st.lists(st.sampled_from(["platform", "bank-1", "bank-2"]), unique=True)):
        written = draw(st.integers(0, 10**12))
        recovered = draw(st.integers(0, written))
        own = written if funder == "platform" else draw(st.integers(0, written))
        bank = written - own
        own_recovered = draw(st.integers(max(0, recovered - bank), min(own, recovered)))
        count = draw(st.integers(0 if written == 0 else 1, 1_000))
        groups.append(ChargeOffGroup(funder, written, own, recovered, own_recovered, count))
    return groups


@given(_groups())
def test_funders_add_up_to_the_totals_and_net_is_lost_less_recovered(
    groups: list[ChargeOffGroup],
) -> None:
    report = charge_offs(groups, "platform")
    funders = report["by_funder"].values()
    assert report["written_off"] == sum(g.written_off for g in groups)
    assert report["recovered"] == sum(g.recovered for g in groups)
    assert report["write_offs"] == sum(g.write_offs for g in groups)
    for name in ("written_off", "recovered", "net_charge_off"):
        assert sum(figures[name] for figures in funders) == report[name]
    for figures in (report, *funders):
        assert figures["net_charge_off"] == figures["written_off"] - figures["recovered"] >= 0
        rate = figures["recovery_rate"]
        if figures["written_off"] == 0:
            assert rate is None
        else:
            # Within half a unit of the sixth place of the exact fraction, and at most one.
            exact = Decimal(figures["recovered"]) / Decimal(figures["written_off"])
            assert abs(Decimal(rate) - exact) <= Decimal("0.0000005")
            assert Decimal(0) <= Decimal(rate) <= Decimal(1)
