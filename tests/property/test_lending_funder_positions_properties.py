"""Properties of funders' positions in a co-lent loan: whatever sequence of flows a loan sees
(disbursement, daily interest and penalty interest, repayments of any size by the waterfall,
write-off, recoveries), booking each flow as the change of the bank's position
(`colending.position_change`, `loan_book.funder_parts`) keeps every funder's holding of every
balance at its position: never negative, adding up to the balance, zero when the balance is
zero. The same flows split one by one with largest remainder (`colending.split`) do not."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from tianping.lending.colending import (
    AMOUNT_MINOR_MAX,
    BASIS_POINTS,
    CoLendingTerms,
    bank_position,
    position_change,
    split,
)
from tianping.lending.loan_book import funder_parts
from tianping.lending.servicing import DEFAULT_WATERFALL, Bucket, LoanBalances, apply_payment

BANK = "bank-7"
PLATFORM = "platform"

shares = st.integers(min_value=0, max_value=BASIS_POINTS)
balances = st.integers(min_value=0, max_value=AMOUNT_MINOR_MAX)


@given(before=balances, after=balances, share=shares)
def test_a_change_of_position_is_exact_non_negative_and_within_a_unit(
    before: int, after: int, share: int
) -> None:
    parts = position_change(before, after, share)
    assert parts.bank >= 0 and parts.platform >= 0
    assert parts.bank + parts.platform == abs(after - before)
    # Within one unit of the exact pro-rata share of the flow: a difference of two floors.
    assert abs(parts.bank * BASIS_POINTS - abs(after - before) * share) < BASIS_POINTS
    # Moving there and back gives the same parts.
    assert position_change(after, before, share) == parts


# One step of a loan's life: what happens, and an amount (ignored where it does not apply).
steps = st.lists(
    st.tuples(
        st.sampled_from(("accrue", "penalty", "repay", "repay", "write_off", "recover")),
        st.integers(min_value=1, max_value=5_000_00),
    ),
    min_size=1,
    max_size=80,
)


@dataclass
class Loan:
    """A loan's balances and what each funder's receivables hold of each of them, every flow
    booked as the service books it."""

    share: int
    balances: LoanBalances = field(default_factory=LoanBalances)
    held: dict[str, dict[Bucket, int]] = field(default_factory=dict)

    def move(self, after: LoanBalances) -> dict[str, int]:
        """Book every bucket's move to `after` (up: the funders' receivables grow; down: they
        shrink); returns each funder's total part."""
        totals: dict[str, int] = {}
        for bucket in Bucket:
            before = self.balances.amount(bucket)
            sign = 1 if after.amount(bucket) >= before else -1
            for funder, part in funder_parts(
                before, after.amount(bucket), self.share, BANK, PLATFORM
            ).items():
                holding = self.held.setdefault(funder, dict.fromkeys(Bucket, 0))
                holding[bucket] += sign * part
                totals[funder] = totals.get(funder, 0) + part
        self.balances = after
        return totals

    def check(self) -> None:
        for bucket in Bucket:
            balance = self.balances.amount(bucket)
            bank = self.held.get(BANK, {}).get(bucket, 0)
            platform = self.held[PLATFORM][bucket]
            assert bank >= 0 and platform >= 0
            assert bank + platform == balance
            assert bank == (bank_position(balance, self.share) if self.share else 0)


def _plus(balances: LoanBalances, bucket: Bucket, amount: int) -> LoanBalances:
    values = {b.value: balances.amount(b) for b in Bucket}
    values[bucket.value] += amount
    return LoanBalances(**values)


@given(
    principal=st.integers(min_value=1, max_value=10**9),
    share=st.integers(min_value=0, max_value=7_000),
    flows=steps,
)
def test_holdings_never_drift_from_the_positions_of_the_balances(
    principal: int, share: int, flows: list[tuple[str, int]]
) -> None:
    loan = Loan(share=share)
    loan.move(LoanBalances(principal=principal))  # disbursement
    loan.check()
    # After a write-off: what remains written off, each funder's loss and its recoveries.
    written_off: LoanBalances | None = None
    losses: dict[str, int] = {}
    recovered: dict[str, int] = {}
    for kind, amount in flows:
        if written_off is None and kind in ("accrue", "penalty"):
            bucket = Bucket.INTEREST if kind == "accrue" else Bucket.PENALTY_INTEREST
            loan.move(_plus(loan.balances, bucket, amount))
        elif written_off is None and kind == "repay":
            loan.move(apply_payment(loan.balances, amount, DEFAULT_WATERFALL)[0])
        elif written_off is None and kind == "write_off":
            written_off = loan.balances
            losses = loan.move(LoanBalances())
        elif written_off is not None and kind == "recover":
            left = apply_payment(written_off, amount, DEFAULT_WATERFALL)[0]
            for bucket in Bucket:
                parts = funder_parts(
                    written_off.amount(bucket), left.amount(bucket), share, BANK, PLATFORM
                )
                for funder, part in parts.items():
                    recovered[funder] = recovered.get(funder, 0) + part
            written_off = left
        loan.check()
        if written_off is not None:
            # Written off, the receivables are empty; no funder recovers more than it lost.
            assert all(v == 0 for holding in loan.held.values() for v in holding.values())
            assert all(recovered.get(f, 0) <= loss for f, loss in losses.items())
            if written_off.total == 0:
                assert all(recovered.get(f, 0) == loss for f, loss in losses.items())
    # Paying off (or writing off) whatever is left closes every funder's holding at zero.
    loan.move(LoanBalances())
    assert all(v == 0 for holding in loan.held.values() for v in holding.values())


@given(
    written=st.tuples(*(st.integers(min_value=0, max_value=10**9) for _ in Bucket)),
    share=st.integers(min_value=0, max_value=7_000),
    recoveries=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=30),
)
def test_recoveries_return_each_funder_what_it_wrote_off(
    written: tuple[int, ...], share: int, recoveries: list[int]
) -> None:
    """Recoveries split by the change of each funder's position in what remains written off:
    each part non-negative, together the recovery, and in full exactly each funder's loss."""
    remaining = LoanBalances(**dict(zip((b.value for b in Bucket), written, strict=True)))
    losses: dict[str, int] = {}
    for bucket in Bucket:
        for funder, part in funder_parts(
            remaining.amount(bucket), 0, share, BANK, PLATFORM
        ).items():
            losses[funder] = losses.get(funder, 0) + part
    recovered: dict[str, int] = {}
    for amount in [*recoveries, remaining.total]:  # the last one recovers whatever is left
        left, allocation, _ = apply_payment(remaining, amount, DEFAULT_WATERFALL)
        parts: dict[str, int] = {}
        for bucket in Bucket:
            for funder, part in funder_parts(
                remaining.amount(bucket), left.amount(bucket), share, BANK, PLATFORM
            ).items():
                assert part >= 0
                parts[funder] = parts.get(funder, 0) + part
        assert sum(parts.values()) == sum(allocation.values())
        for funder, part in parts.items():
            recovered[funder] = recovered.get(funder, 0) + part
        remaining = left
    assert remaining.total == 0
    assert recovered == losses


def test_per_flow_largest_remainder_splits_overdraw_a_funder() -> None:
    """Why positions: split flow by flow (the former way), a 70/30 loan of 1 fen accrued 1 fen
    a day and repaid 1 fen at a time leaves the bank owed a fen it was never given."""
    terms = CoLendingTerms(bank_share_bps=7_000, platform_share_bps=3_000)
    held_by_split = 0
    held_by_position = 0
    balance = 0
    # Accrue 1 fen three times (70 % of a fen rounds to 1 each time), then repay 3 fen at once.
    for _ in range(3):
        held_by_split += split(1, terms).bank
        held_by_position += position_change(balance, balance + 1, 7_000).bank
        balance += 1
    held_by_split -= split(3, terms).bank
    held_by_position -= position_change(balance, 0, 7_000).bank
    assert held_by_split == 1  # the bank keeps a fen of a loan repaid in full
    assert held_by_position == 0
