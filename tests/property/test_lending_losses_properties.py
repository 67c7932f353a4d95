"""Properties of the shared write-off and recovery planner (`lending.losses`), for a loan's
positions (the bank's share of every balance) and a line's (the part the line recorded) alike:
a write-off's parts add up to the balances of each receivable, none negative, and its ledger
transfers to the total; recoveries of any sizes split into non-negative parts adding up to
what they pay, never give a funder back more than it wrote off, and once everything is paid
have given each funder back exactly what it wrote off."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tianping.lending.chart import PLATFORM, LendingAccount
from tianping.lending.losses import (
    LINE,
    LOAN,
    Held,
    Product,
    Receivable,
    plan_write_off,
    recovery_parts,
    write_off_transfers,
)

BALANCE_MAX = 10**12
banks = st.sampled_from((None, "bank-7", "zbank-9"))  # none, before and after "platform"
products = st.sampled_from((LOAN, LINE))


@st.composite
def holdings(draw: st.DrawFn) -> tuple[bool, list[Held]]:
    """One to four balances of a loan (one share for all) or of a line (any recorded part of
    each, as largest-remainder splits leave it); True for a line."""
    recorded = draw(st.booleans())
    amounts = draw(st.lists(st.integers(0, BALANCE_MAX), min_size=1, max_size=4))
    if recorded:
        return True, [Held.recorded(a, draw(st.integers(0, a))) for a in amounts]
    share = draw(st.integers(0, 10_000))
    return False, [Held.by_share(a, share) for a in amounts]


def _moved(held: Held, after: int, line: bool) -> Held:
    """The balance once a flow takes it to `after`: a loan's bank keeps its share; a line
    records the bank's part less what the flow gave it (`credit_lines.recover_line`)."""
    if line:
        return Held.recorded(after, held.position - held.bank_change(after))
    return Held.by_share(after, held.share)


@given(product=products, bank=banks, held=holdings(), split_at=st.integers(0, 4))
def test_a_write_off_takes_exactly_each_receivable(
    product: Product, bank: str | None, held: tuple[bool, list[Held]], split_at: int
) -> None:
    _, balances = held
    # The balances in one or two receivables (a loan's interest receivable holds two).
    groups = [g for g in (balances[:split_at], balances[split_at:]) if g]
    receivables = [
        Receivable(f"r{index}", LendingAccount.LOAN_RECEIVABLE, tuple(group))
        for index, group in enumerate(groups)
    ]
    plan = plan_write_off(product, bank, receivables)
    for receivable in receivables:
        legs = [leg for leg in plan.legs if leg.receivable == receivable.name]
        assert all(leg.amount >= 0 for leg in legs)
        assert sum(leg.amount for leg in legs) == sum(h.balance for h in receivable.balances)
        bank_legs = [leg.amount for leg in legs if leg.funder != PLATFORM]
        expected = sum(h.position for h in receivable.balances) if bank else 0
        assert sum(bank_legs) == expected
        for leg in legs:
            shown = plan.by_funder.get(leg.funder, {}).get(receivable.name, 0)
            assert shown == leg.amount
    transfers = write_off_transfers(product, plan, "x/wo", "CNY")
    assert sum(t.amount for t in transfers) == sum(h.balance for h in balances)
    assert len(transfers) == sum(1 for leg in plan.legs if leg.amount)


@given(
    bank=st.sampled_from(("bank-7", "zbank-9")),
    held=holdings(),
    steps=st.lists(st.lists(st.floats(0, 1), min_size=4, max_size=4), max_size=8),
)
def test_recoveries_return_each_funder_exactly_what_it_wrote_off(
    bank: str, held: tuple[bool, list[Held]], steps: list[list[float]]
) -> None:
    line, balances = held
    lost = plan_write_off(
        LOAN, bank, [Receivable("all", LendingAccount.LOAN_RECEIVABLE, tuple(balances))]
    ).by_funder
    back = {funder: 0 for funder in lost}
    # Each step pays any part of each balance (the fractions only pick amounts; the money is
    # integers); a last step pays whatever is left.
    for fractions in [*steps, [1.0] * 4]:
        after = [h.balance - int(h.balance * f) for h, f in zip(balances, fractions, strict=False)]
        parts = recovery_parts(bank, balances, after)
        assert all(part >= 0 for part in parts.values())
        assert sum(parts.values()) == sum(h.balance for h in balances) - sum(after)
        for funder, part in parts.items():
            back[funder] += part
            assert back[funder] <= lost[funder]["all"]
        balances = [_moved(h, a, line) for h, a in zip(balances, after, strict=True)]
    assert all(h.balance == 0 for h in balances)
    assert back == {funder: parts["all"] for funder, parts in lost.items()}
