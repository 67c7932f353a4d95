"""Invariants of the credit line's money rules: a repayment is allocated without creating or
losing a minor unit and never pays a bucket more than is owed; a repayment's split between the
funders never repays a funder more than it is owed, whatever the earlier rounding."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tianping.lending.credit_lines import LineOwed, repayment_order, split_charge, split_repayment

AMOUNTS = st.integers(min_value=0, max_value=10**12)


@given(AMOUNTS, AMOUNTS, AMOUNTS, st.integers(min_value=1, max_value=10**12))
def test_a_repayment_is_allocated_exactly_in_order(
    fees: int, interest: int, principal: int, amount: int
) -> None:
    owed = LineOwed(fees, interest, principal)
    paid, overpayment = owed.pay(amount)
    assert sum(paid.values()) + overpayment == amount
    for bucket in repayment_order():
        assert 0 <= paid[bucket] <= owed.of(bucket)
    # A later bucket is paid only once every earlier one is paid in full.
    for earlier, later in itertools.pairwise(repayment_order()):
        if paid[later]:
            assert paid[earlier] == owed.of(earlier)
    assert overpayment == 0 or sum(paid.values()) == fees + interest + principal


@given(AMOUNTS, AMOUNTS, st.data())
def test_no_funder_is_repaid_more_than_it_is_owed(
    bank: int, platform: int, data: st.DataObject
) -> None:
    amount = data.draw(st.integers(min_value=0, max_value=bank + platform))
    bank_part, platform_part = split_repayment(amount, bank, platform)
    assert bank_part + platform_part == amount
    assert 0 <= bank_part <= bank and 0 <= platform_part <= platform


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=0, max_value=7_000))
def test_a_charge_is_split_exactly(amount: int, bank_share_bps: int) -> None:
    bank, platform = split_charge(amount, bank_share_bps)
    assert bank + platform == amount and bank >= 0 and platform >= 0
    assert platform * 10_000 >= amount * (10_000 - bank_share_bps) - 10_000
