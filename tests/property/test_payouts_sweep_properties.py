"""Hypothesis properties of a day's settlement with a sweep: whatever the takings, the discount,
the swept share and a refund landing between the sweep and the settlement, settlement takes
exactly the day's takings less the swept part from the payable (never more, so it never
overdraws what the sweep left), its fee and net are never negative, and without a late refund
the merchant is charged the full discount."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tianping.lending.sweep import SWEEP_BPS_MAX, sweep_share
from tianping.payments.model import settlement_split

TAKINGS = st.integers(min_value=0, max_value=10**12)
DISCOUNT_BPS = st.integers(min_value=0, max_value=1_000)
SWEEP_BPS = st.integers(min_value=0, max_value=SWEEP_BPS_MAX)


@given(TAKINGS, DISCOUNT_BPS, SWEEP_BPS, st.integers(min_value=0, max_value=10**12))
def test_settlement_takes_the_takings_less_the_swept_part(
    kept: int, discount_bps: int, sweep_bps: int, refund: int
) -> None:
    swept = sweep_share(kept, sweep_bps)
    later = max(0, kept - refund)  # a refund after the sweep lowers what the day kept
    fee, net = settlement_split(later, discount_bps, swept)
    assert fee >= 0 and net >= 0
    assert fee + net == max(0, later - swept)


@given(TAKINGS, DISCOUNT_BPS, SWEEP_BPS)
def test_without_a_late_refund_the_full_discount_is_charged(
    kept: int, discount_bps: int, sweep_bps: int
) -> None:
    swept = sweep_share(kept, sweep_bps)
    full_fee, full_net = settlement_split(kept, discount_bps)
    fee, net = settlement_split(kept, discount_bps, swept)
    assert fee == full_fee
    assert net == full_net - swept
    assert swept <= kept * sweep_bps // 10_000
