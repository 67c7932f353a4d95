"""Properties of co-lending splits: exact, pro rata to within half a unit, bounded drift."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tianping.lending.colending import (
    AMOUNT_MINOR_MAX,
    BASIS_POINTS,
    PLATFORM_SHARE_MIN_BPS,
    CoLendingTerms,
    split,
    split_drift_bound,
)

# Every valid pair of shares under the default minimum: the bank funds 1 to 7000 bps.
terms_strategy = st.integers(min_value=1, max_value=BASIS_POINTS - PLATFORM_SHARE_MIN_BPS).map(
    lambda bank: CoLendingTerms(bank_share_bps=bank, platform_share_bps=BASIS_POINTS - bank)
)
amounts = st.integers(min_value=-AMOUNT_MINOR_MAX, max_value=AMOUNT_MINOR_MAX)
# Flows whose sum is still a valid amount.
flow_amounts = st.integers(min_value=-(10**12), max_value=10**12)


@given(amount=amounts, terms=terms_strategy)
def test_a_split_loses_and_creates_nothing(amount: int, terms: CoLendingTerms) -> None:
    parts = split(amount, terms)
    assert parts.bank + parts.platform == amount


@given(amount=amounts, terms=terms_strategy)
def test_each_part_is_within_half_a_unit_of_its_exact_share(
    amount: int, terms: CoLendingTerms
) -> None:
    parts = split(amount, terms)
    # |part - amount * share / 10000| <= 1/2, in integers: |part * 10000 - amount * share| * 2
    # <= 10000. This is stronger than the "within one unit" the brief asked for.
    assert 2 * abs(parts.bank * BASIS_POINTS - amount * terms.bank_share_bps) <= BASIS_POINTS
    assert (
        2 * abs(parts.platform * BASIS_POINTS - amount * terms.platform_share_bps) <= BASIS_POINTS
    )
    # Within one unit, as stated in the brief, follows; asserted directly as well.
    assert abs(parts.bank * BASIS_POINTS - amount * terms.bank_share_bps) < BASIS_POINTS


@given(flows=st.lists(flow_amounts, min_size=1, max_size=40), terms=terms_strategy)
def test_splitting_flows_and_summing_drifts_at_most_half_the_flow_count(
    flows: list[int], terms: CoLendingTerms
) -> None:
    per_flow = [split(flow, terms) for flow in flows]
    whole = split(sum(flows), terms)
    bank_drift = sum(part.bank for part in per_flow) - whole.bank
    platform_drift = sum(part.platform for part in per_flow) - whole.platform
    assert bank_drift == -platform_drift
    assert abs(bank_drift) <= split_drift_bound(len(flows)) == len(flows) // 2


@given(count=st.integers(min_value=1, max_value=4_999))
def test_the_drift_bound_is_reached_for_every_flow_count(count: int) -> None:
    # At a 50.01% bank share the bank's exact share of 1 fen is 0.5001, which rounds up to 1 on
    # every flow, while the share of `count` fen, count / 2 + count / 10000, rounds to
    # ceil(count / 2) as long as count / 10000 stays below one half. The drift is then exactly
    # floor(count / 2): the bound cannot be tightened.
    terms = CoLendingTerms(bank_share_bps=5_001, platform_share_bps=4_999)
    drift = count * split(1, terms).bank - split(count, terms).bank
    assert drift == split_drift_bound(count) == count // 2
