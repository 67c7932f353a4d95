"""Funders' positions in co-lent loans, on both backends: each funder's receivables hold exactly
its position in every balance of every active loan (the bank floor(balance x 70 %), the platform
the rest), whatever the flows; a co-lent loan alone in the book is paid off, or written off and
recovered, with every funder's receivable ending at exactly zero."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest

from ledger_support import ManualClock
from lending_support import FixedScorer
from payments_support import PaymentsWorld, make_world
from tianping.ledger.service import Ledger
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount
from tianping.lending.colending import bank_position
from tianping.lending.model import Application
from tianping.lending.service import LendingService
from tianping.lending.store import LendingStore, LoanRow, new_loan
from tianping.payments.model import local_date
from tianping.rules.config import cached_rulebook
from tianping.rules.service import RulesService

DAY_S = 86_400
# Repayments and recoveries in awkward amounts: single fen, primes, odd thousands.
AWKWARD = (1, 3, 7, 99, 101, 333, 1_009, 4_321, 12_345, 55_557)


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    world = make_world(ledger, clock)
    world.person("alice")
    world.person("bob")
    return world


def _service(world: PaymentsWorld, **extra: Any) -> LendingService:
    return LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=FixedScorer(),
        **extra,
    )


def _take(
    lending: LendingService,
    world: PaymentsWorld,
    loan_id: str,
    person: str = "alice",
    amount: int = 7_777_77,
    partner: str | None = "bank-7",
) -> str:
    application = Application(
        application_id=f"app-{loan_id}",
        party_id=world.people[person],
        amount=amount,
        term_months=6,
        annual_income=240_000_00,
        partner_bank_id=partner,
    )
    assert lending.apply(application).outcome == "approved"
    lending.accept(f"app-{loan_id}", loan_id)
    return loan_id


def _held(world: PaymentsWorld, kind: LendingAccount, funder: str) -> int:
    """Debits less credits of a funder's lending account (a receivable's or a loss's balance)."""
    account = world.ledger.lookup_account(chart.account_id(kind, funder, "CNY"))
    return 0 if account is None else account.debits_posted - account.credits_posted


def _positions(loans: list[LoanRow]) -> dict[str, tuple[int, int]]:
    """(principal, interest and penalty interest) each funder should hold of active loans."""
    held: dict[str, tuple[int, int]] = {PLATFORM: (0, 0)}
    for loan in loans:
        if loan.status != "active":
            continue
        share = loan.bank_share_bps
        bank = (
            bank_position(loan.outstanding_principal, share),
            bank_position(loan.accrued_interest, share) + bank_position(loan.penalty_due, share),
        )
        owed = (loan.outstanding_principal, loan.accrued_interest + loan.penalty_due)
        platform = held[PLATFORM]
        held[PLATFORM] = (platform[0] + owed[0] - bank[0], platform[1] + owed[1] - bank[1])
        other = held.get(loan.partner_bank_id, (0, 0))
        held[loan.partner_bank_id] = (other[0] + bank[0], other[1] + bank[1])
    return held


def _assert_positions(world: PaymentsWorld, lending: LendingService, loan_ids: list[str]) -> None:
    """Every funder's receivables hold exactly its positions, checked directly on the ledger
    and by the portfolio's own check."""
    expected = _positions([lending.loan(loan_id) for loan_id in loan_ids])
    for funder, (principal, interest) in expected.items():
        assert _held(world, LendingAccount.LOAN_RECEIVABLE, funder) == principal, funder
        assert _held(world, LendingAccount.INTEREST_RECEIVABLE, funder) == interest, funder
    book = lending.portfolio()
    assert book["ledger_agrees"], book["ledger_by_funder"]
    for funder, (principal, interest) in expected.items():
        figures = book["ledger_by_funder"][funder]
        assert (figures["sub_ledger_principal"], figures["sub_ledger_interest"]) == (
            principal,
            interest,
        )


def _advance(world: PaymentsWorld, days: int) -> date:
    world.clock.advance(days * DAY_S)
    return local_date(world.clock())


def test_one_co_lent_loan_part_repaid_in_awkward_amounts_then_paid_off(
    world: PaymentsWorld,
) -> None:
    """The book holds this one 70/30 loan, so no other loan's rounding can hide a drift: each
    payment (and the payoff) must find in each funder's receivable what its part asks."""
    lending = _service(world)
    loan_id = _take(lending, world, "solo")
    world.fund("alice", 500_00)
    rng = random.Random(70_30)
    batched = date.fromisoformat(lending.loan(loan_id).disbursed_on)
    for step in range(45):
        today = _advance(world, rng.choice((1, 2, 3, 5, 7)))
        if rng.random() < 0.6:
            lending.accrue_through(today, batched)
            batched = today
        if rng.random() < 0.7:
            lending.repay(loan_id, f"r-{step}", rng.choice(AWKWARD))
        _assert_positions(world, lending, [loan_id])
    loan = lending.loan(loan_id)
    # Past its first due dates, with penalty interest accrued, in odd amounts.
    assert loan.penalty_due > 0 and loan.accrued_interest > 0
    today = local_date(world.clock())
    payoff = lending.quote_payoff(loan_id, today)
    paid = lending.repay(loan_id, "payoff", payoff.total)
    assert (paid.status, paid.overpayment) == ("repaid", 0)
    for funder in ("bank-7", PLATFORM):
        assert _held(world, LendingAccount.LOAN_RECEIVABLE, funder) == 0
        assert _held(world, LendingAccount.INTEREST_RECEIVABLE, funder) == 0
    _assert_positions(world, lending, [loan_id])
    assert world.service.safeguarding_check().in_balance
    assert world.ledger.check() == []


def test_one_co_lent_loan_written_off_then_recovered_in_full(world: PaymentsWorld) -> None:
    lending = _service(world, write_off_dpd_threshold=30)
    loan_id = _take(lending, world, "lost", amount=5_432_19)
    rng = random.Random(30)
    loan = lending.loan(loan_id)
    batched = date.fromisoformat(loan.disbursed_on)
    assert loan.next_due_on is not None
    first_due = date.fromisoformat(loan.next_due_on)
    step = 0
    while local_date(world.clock()) < first_due + timedelta(days=40):
        today = _advance(world, rng.choice((1, 3, 4)))
        lending.accrue_through(today, batched)
        batched = today
        if rng.random() < 0.3:
            lending.repay(loan_id, f"r-{step}", rng.choice(AWKWARD[:6]))
        step += 1
        _assert_positions(world, lending, [loan_id])
    lending.classify(local_date(world.clock()))
    loan = lending.loan(loan_id)
    assert loan.days_past_due >= 30 and loan.penalty_due > 0
    expected_losses = {
        "bank-7": bank_position(loan.outstanding_principal, 7_000)
        + bank_position(loan.accrued_interest, 7_000)
        + bank_position(loan.penalty_due, 7_000),
    }
    total = loan.outstanding_principal + loan.accrued_interest + loan.penalty_due
    expected_losses[PLATFORM] = total - expected_losses["bank-7"]
    written = lending.write_off(loan_id, "wo", local_date(world.clock()), "uncollectable")
    assert written.total == total
    for funder, loss in expected_losses.items():
        assert _held(world, LendingAccount.LOAN_RECEIVABLE, funder) == 0
        assert _held(world, LendingAccount.INTEREST_RECEIVABLE, funder) == 0
        assert _held(world, LendingAccount.CREDIT_LOSSES, funder) == loss
        assert sum(written.by_funder[funder].values()) == loss
    _assert_positions(world, lending, [loan_id])
    # Recoveries in awkward amounts until nothing remains: every part is non-negative, and in
    # full each funder has recovered exactly what it wrote off.
    world.fund("alice", 1_000_00)
    index = 0
    while lending.loan(loan_id).outstanding_principal:
        amount = rng.choice(AWKWARD) * 7
        recovered = lending.record_recovery(
            loan_id, f"rec-{index}", amount, local_date(world.clock())
        )
        assert all(part >= 0 for part in recovered.by_funder.values())
        assert sum(recovered.by_funder.values()) == recovered.recovered
        index += 1
    for funder, loss in expected_losses.items():
        # The recoveries account is credited: its debits less credits is minus the income.
        assert -_held(world, LendingAccount.RECOVERIES, funder) == loss
    assert world.service.safeguarding_check().in_balance
    assert world.ledger.check() == []


def test_a_mixed_book_keeps_every_funders_positions_after_every_step(
    world: PaymentsWorld,
) -> None:
    """Loans of two banks and of the platform alone, two borrowers, a long seeded sequence of
    batches, catch-ups, awkward repayments, payoffs, a write-off and recoveries: after every
    step each funder's receivables equal the sum of its positions in the sub-ledger."""
    lending = _service(world, write_off_dpd_threshold=30)
    loans = [
        _take(lending, world, "m-1", "alice", 3_333_33, "bank-7"),
        _take(lending, world, "m-2", "alice", 4_000_01, None),
        _take(lending, world, "m-3", "bob", 6_666_67, "bank-8"),
        _take(lending, world, "m-4", "bob", 2_500_03, "bank-7"),
        _take(lending, world, "m-5", "alice", 1_234_57, "bank-8"),
    ]
    world.fund("alice", 300_00)
    world.fund("bob", 300_00)
    _assert_positions(world, lending, loans)
    rng = random.Random(2026)
    batched = local_date(world.clock())
    written_off: list[str] = []
    for step in range(70):
        today = _advance(world, rng.choice((1, 1, 2, 3)))
        action = rng.random()
        active = [loan_id for loan_id in loans if lending.loan(loan_id).status == "active"]
        if action < 0.5:
            lending.accrue_through(today, batched)
            batched = today
        elif action < 0.85 and active:
            lending.repay(rng.choice(active), f"r-{step}", rng.choice(AWKWARD))
        elif action < 0.9 and active:
            target = rng.choice(active)
            lending.repay(target, f"off-{step}", lending.quote_payoff(target, today).total)
        elif written_off:
            target = rng.choice(written_off)
            if lending.loan(target).outstanding_principal:
                lending.record_recovery(target, f"rec-{step}", rng.choice(AWKWARD), today)
        if step == 50:
            lending.classify(today)
            overdue = [
                loan_id
                for loan_id in loans
                if lending.loan(loan_id).status == "active"
                and lending.loan(loan_id).days_past_due >= 30
            ]
            if overdue:
                lending.write_off(overdue[0], "wo", today, "uncollectable")
                written_off.append(overdue[0])
        _assert_positions(world, lending, loans)
    assert written_off, "the sequence is meant to write a loan off"
    assert world.service.safeguarding_check().in_balance
    assert world.ledger.check() == []


def _book_loan(index: int, principal: int, rate_bps: int, bank: str, share: int) -> LoanRow:
    return new_loan(
        loan_id=f"bulk-{index}",
        application_id=f"app-bulk-{index}",
        party_id=f"pty_{index:026d}",
        currency="CNY",
        partner_bank_id=bank,
        bank_share_bps=share,
        rate_bps=rate_bps,
        principal=principal,
        disbursed_on="2026-01-01",
        at=1,
        next_due_on="2026-01-10",
    )


def test_the_set_based_accrual_books_each_banks_positions(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The batch's bank part, summed in SQL, is the sum of the changes of the bank's positions:
    after 60 days of interest (and penalty interest from the tenth) on sixty loans of odd
    amounts and shares, each funder's interest receivable is exactly its positions."""
    rng = random.Random(60)
    funding = (("bank-a", 7_000), ("bank-b", 6_543), (PLATFORM, 0))
    loans = []
    for index in range(60):
        bank, share = funding[index % 3]
        loans.append(
            _book_loan(index, rng.randint(1_00, 50_000_00), rng.randint(720, 2_400), bank, share)
        )
    with ledger.write() as uow:
        store = LendingStore(uow.connection, uow.store.backend)
        store.insert_loans(loans)
        for loan in loans:
            store.insert_instalments(loan.loan_id, [(1, "2026-01-10", loan.principal, 0)])
    service = LendingService(ledger, clock)
    reports = service.accrue_through(date(2026, 3, 2), date(2026, 1, 1))
    assert sum(report.penalty for report in reports) > 0
    with ledger.read() as read:
        rows = [LendingStore(read.connection, read.backend).loan(loan.loan_id) for loan in loans]
    expected: dict[str, int] = {}
    for row in rows:
        assert row is not None
        bank = bank_position(row.accrued_interest, row.bank_share_bps) + bank_position(
            row.penalty_due, row.bank_share_bps
        )
        owed = row.accrued_interest + row.penalty_due
        expected[row.partner_bank_id] = expected.get(row.partner_bank_id, 0) + bank
        expected[PLATFORM] = expected.get(PLATFORM, 0) + owed - bank
    for funder, interest in expected.items():
        account = ledger.get_account(
            chart.account_id(LendingAccount.INTEREST_RECEIVABLE, funder, "CNY")
        )
        assert account.debits_posted - account.credits_posted == interest, funder
