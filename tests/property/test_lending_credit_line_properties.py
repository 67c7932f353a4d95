"""Invariants of the credit line's money rules: a repayment is allocated without creating or
losing a minor unit and never pays a bucket more than is owed; a repayment's split between the
funders never repays a funder more than it is owed, whatever the earlier rounding; a refund is
split between the line and the wallet without losing a unit; paying more never makes a line
more past due, and covering every minimum makes it current; a conversion takes only billed
principal; the funders' parts of any sequence of recoveries on a written-off line add up to
each recovery and never exceed, per bucket and in all, what each funder wrote off, and a line
recovered in full gives each back exactly that."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from tianping.lending.credit_lines import (
    WRITTEN_OFF_BUCKETS,
    BillDue,
    LineOwed,
    WrittenOff,
    allocate_refund,
    convertible_principal,
    line_standing,
    oldest_unpaid_due,
    recover_line,
    repayment_order,
    split_charge,
    split_repayment,
)
from tianping.lending.schedules import PRINCIPAL_MINOR_MAX

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


BILLS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10**9)),
    max_size=13,
)


def _bills(rows: list[tuple[int, int]]) -> list[BillDue]:
    start = dt.date(2027, 1, 29)
    return [
        BillDue(start + dt.timedelta(days=31 * index), minimum, credited)
        for index, (minimum, credited) in enumerate(rows)
    ]


@given(BILLS, st.integers(min_value=1, max_value=10**9), st.data())
def test_paying_more_never_makes_a_line_more_past_due(
    rows: list[tuple[int, int]], extra: int, data: st.DataObject
) -> None:
    bills = _bills(rows)
    day = dt.date(2028, 3, 1)
    before = line_standing(bills, day).days_past_due
    # A payment made after bill k is credited after every bill up to k.
    k = data.draw(st.integers(min_value=0, max_value=max(len(bills) - 1, 0)))
    paid = [
        replace(bill, credited_after=bill.credited_after + (extra if i <= k else 0))
        for i, bill in enumerate(bills)
    ]
    assert line_standing(paid, day).days_past_due <= before


@given(BILLS)
def test_covering_every_minimum_makes_the_line_current(rows: list[tuple[int, int]]) -> None:
    bills = _bills(rows)
    total = sum(bill.minimum_payment for bill in bills)
    covered = [replace(bill, credited_after=total) for bill in bills]
    assert oldest_unpaid_due(covered) is None


@given(
    st.integers(min_value=1, max_value=10**12),
    AMOUNTS,
    AMOUNTS,
    AMOUNTS,
)
def test_a_refund_neither_creates_nor_loses_a_unit(
    amount: int, fees: int, interest: int, principal: int
) -> None:
    owed = LineOwed(fees, interest, principal)
    refund = allocate_refund(amount, owed)
    assert refund.credited_to_line + refund.to_wallet == amount
    assert refund.credited_to_line <= fees + interest + principal
    assert refund.to_wallet == 0 or refund.credited_to_line == fees + interest + principal


@given(AMOUNTS, AMOUNTS, AMOUNTS)
def test_a_conversion_never_takes_more_than_billed_principal(
    unpaid: int, charges: int, principal: int
) -> None:
    amount = convertible_principal(unpaid, charges, principal)
    assert 0 <= amount <= principal and amount <= max(0, unpaid - charges)


@st.composite
def written_off_lines(draw: st.DrawFn) -> WrittenOff:
    """A written-off line: any balance per bucket up to the largest principal a line can lend
    (`PRINCIPAL_MINOR_MAX`; so a recovery of everything stays within the largest recovery
    amount), the bank holding any part of each (a line's parts come from largest-remainder
    splits, so no formula gives them)."""
    fields: dict[str, int] = {}
    for bucket in WRITTEN_OFF_BUCKETS:
        total = draw(st.integers(min_value=0, max_value=PRINCIPAL_MINOR_MAX))
        fields[bucket] = total
        fields[f"bank_{bucket}"] = draw(st.integers(min_value=0, max_value=total))
    return WrittenOff(**fields)


@given(
    written_off_lines(),
    st.lists(st.integers(min_value=1, max_value=10**10), min_size=1, max_size=12),
    st.booleans(),
)
def test_recoveries_split_exactly_and_never_return_more_than_was_written_off(
    written: WrittenOff, amounts: list[int], finish: bool
) -> None:
    bank_lost = {bucket: written.of(bucket)[1] for bucket in WRITTEN_OFF_BUCKETS}
    platform_lost = {b: written.of(b)[0] - bank_lost[b] for b in WRITTEN_OFF_BUCKETS}
    bank_back = dict.fromkeys(WRITTEN_OFF_BUCKETS, 0)
    platform_back = dict.fromkeys(WRITTEN_OFF_BUCKETS, 0)
    remaining = written
    # Optionally a last recovery of everything left, to check the full return.
    for amount in [*amounts, *([written.total + 1] if finish else [])]:
        step = recover_line(remaining, amount)
        assert step.recovered + step.overpayment == amount
        assert step.recovered == sum(step.allocation.values())
        for bucket in WRITTEN_OFF_BUCKETS:
            paid, bank = step.allocation[bucket], step.bank[bucket]
            assert 0 <= bank <= paid
            bank_back[bucket] += bank
            platform_back[bucket] += paid - bank
            assert bank_back[bucket] <= bank_lost[bucket]
            assert platform_back[bucket] <= platform_lost[bucket]
            # What the line still records for the bank is exactly what it has not recovered.
            assert step.remaining.of(bucket)[1] == bank_lost[bucket] - bank_back[bucket]
        remaining = step.remaining
    if finish:
        assert remaining.total == 0
        assert bank_back == bank_lost and platform_back == platform_lost
