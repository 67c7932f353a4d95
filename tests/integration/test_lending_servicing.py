"""Loan servicing and loan-book quality on both backends: penalty interest on overdue principal,
payoff quotes and payoffs, adverse-change notices, write-off and recovery per funder, PDs from
each loan's own decision, the L3 concentration report and the L13 cost table."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger_support import ManualClock
from lending_support import FixedScorer
from payments_support import PaymentsWorld, make_world
from tianping.ledger.service import Ledger
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount
from tianping.lending.loan_book import PenaltySurcharge, daily_penalty, horizon_pd
from tianping.lending.model import Application, PartnerBankFigures
from tianping.lending.schedules import build_schedule
from tianping.lending.service import LendingRefusal, LendingService
from tianping.lending.store import ACCRUAL_DENOMINATOR, LendingStore
from tianping.payments.model import local_date
from tianping.rules.config import cached_rulebook
from tianping.rules.service import RulesService

DAY_S = 86_400


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    world = make_world(ledger, clock)
    world.person("alice")
    return world


def _service(world: PaymentsWorld, **extra: Any) -> LendingService:
    return LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=FixedScorer(),
        **extra,
    )


def _loan(
    lending: LendingService, world: PaymentsWorld, loan_id: str, **extra: Any
) -> tuple[str, date]:
    fields: dict[str, Any] = {
        "application_id": f"app-{loan_id}",
        "party_id": world.people["alice"],
        "amount": 3_000_00,
        "term_months": 6,
        "annual_income": 120_000_00,
    }
    fields.update(extra)
    assert lending.apply(Application(**fields)).outcome == "approved"
    loan = lending.accept(f"app-{loan_id}", loan_id)
    assert loan.next_due_on is not None
    return loan_id, date.fromisoformat(loan.next_due_on)


def _balance(world: PaymentsWorld, kind: LendingAccount, funder: str) -> int:
    account = world.ledger.lookup_account(chart.account_id(kind, funder, "CNY"))
    if account is None:
        return 0
    if kind in (LendingAccount.LOAN_RECEIVABLE, LendingAccount.INTEREST_RECEIVABLE):
        return account.debits_posted - account.credits_posted
    if kind is LendingAccount.CREDIT_LOSSES:
        return account.debits_posted - account.credits_posted
    return account.credits_posted - account.debits_posted


def _unpaid(world: PaymentsWorld, loan_id: str) -> list[tuple[str, int]]:
    with LendingStore.reading(world.ledger) as store:
        return store.unpaid_principal_by_due(loan_id)


# -- penalty interest -------------------------------------------------------------------------


def test_penalty_accrues_on_overdue_principal_only_and_is_repaid_first(
    world: PaymentsWorld,
) -> None:
    lending = _service(world)
    loan_id, first_due = _loan(lending, world, "loan-pen")
    disbursed = date.fromisoformat(lending.loan(loan_id).disbursed_on)
    # Up to the day after the due date nothing is overdue: the due date is the last day to pay.
    reports = lending.accrue_through(first_due + timedelta(days=1), disbursed)
    assert sum(report.penalty for report in reports) == 0
    assert lending.loan(loan_id).penalty_due == 0
    # Four more batches cover the four days after the due date: the first instalment's
    # principal bears the surcharge (half the contract rate) on each.
    reports = lending.accrue_through(first_due + timedelta(days=5), first_due + timedelta(days=1))
    loan = lending.loan(loan_id)
    overdue = _unpaid(world, loan_id)[0][1]
    per_day = daily_penalty(overdue, loan.rate_bps, PenaltySurcharge(1, 2))
    assert per_day > 0
    assert loan.penalty_due == 4 * per_day == sum(report.penalty for report in reports)
    # The interest receivable holds ordinary and penalty interest, exactly as the sub-ledger.
    assert _balance(world, LendingAccount.INTEREST_RECEIVABLE, PLATFORM) == (
        loan.accrued_interest + loan.penalty_due
    )
    # A run replayed adds nothing.
    assert lending.accrue(first_due + timedelta(days=5)).replayed
    assert lending.loan(loan_id).penalty_due == 4 * per_day
    # A repayment pays penalty interest before interest and principal (the waterfall).
    world.fund("alice", 100_00)
    paid = lending.repay(loan_id, "r-pen", loan.penalty_due + 1)
    assert paid.allocation["penalty_interest"] == 4 * per_day
    assert paid.allocation["interest"] == 1
    after = lending.loan(loan_id)
    assert after.penalty_due == 0
    assert _balance(world, LendingAccount.INTEREST_RECEIVABLE, PLATFORM) == after.accrued_interest
    assert world.service.safeguarding_check().in_balance


def test_a_paid_instalment_stops_the_penalty(world: PaymentsWorld) -> None:
    lending = _service(world)
    loan_id, first_due = _loan(lending, world, "loan-cure")
    disbursed = date.fromisoformat(lending.loan(loan_id).disbursed_on)
    lending.accrue_through(first_due + timedelta(days=3), disbursed)
    penalty = lending.loan(loan_id).penalty_due
    assert penalty > 0
    world.fund("alice", 1_000_00)
    lending.repay(loan_id, "r-cure", 900_00)  # more than the first instalment and all interest
    loan = lending.loan(loan_id)
    assert loan.next_due_on == _unpaid(world, loan_id)[0][0] > first_due.isoformat()
    lending.accrue_through(first_due + timedelta(days=10), first_due + timedelta(days=3))
    assert lending.loan(loan_id).penalty_due == 0


# -- payoff -----------------------------------------------------------------------------------


def test_the_payoff_quote_closes_the_loan_between_batches(world: PaymentsWorld) -> None:
    lending = _service(world)
    loan_id, _ = _loan(lending, world, "loan-pay")
    loan = lending.loan(loan_id)
    today = local_date(world.clock())
    at_once = lending.quote_payoff(loan_id, today)
    assert (at_once.principal, at_once.interest, at_once.total) == (3_000_00, 0, 3_000_00)
    # Ten days later, no batch having run: the quote counts the ten days as the batch would.
    world.clock.advance(10 * DAY_S)
    today = local_date(world.clock())
    days = (today - date.fromisoformat(loan.disbursed_on)).days
    quote = lending.quote_payoff(loan_id, today)
    assert quote.interest == 3_000_00 * loan.rate_bps * days // ACCRUAL_DENOMINATOR > 0
    assert quote.prepayment_fee == 0 and quote.total == 3_000_00 + quote.interest
    world.fund("alice", 100_00)
    paid = lending.repay(loan_id, "payoff", quote.total)
    assert (paid.status, paid.overpayment) == ("repaid", 0)
    assert paid.allocation == {
        "fees": 0,
        "penalty_interest": 0,
        "interest": quote.interest,
        "principal": 3_000_00,
    }
    assert lending.repay(loan_id, "payoff", quote.total).replayed
    # The ledger booked the ten days' interest and the payoff cleared both receivables.
    assert _balance(world, LendingAccount.INTEREST_RECEIVABLE, PLATFORM) == 0
    assert _balance(world, LendingAccount.LOAN_RECEIVABLE, PLATFORM) == 0
    assert _balance(world, LendingAccount.INTEREST_INCOME, PLATFORM) == quote.interest
    assert world.service.safeguarding_check().in_balance
    assert lending.loan(loan_id).next_due_on is None
    # The batch for those days later skips the closed loan.
    assert lending.accrue(today).loans == 0
    with pytest.raises(LendingRefusal) as closed:
        lending.quote_payoff(loan_id, today)
    assert closed.value.code == "loan_not_active"


def test_a_quote_ahead_counts_what_the_batches_will_accrue(world: PaymentsWorld) -> None:
    """The quote's own arithmetic (Python) and the batch's (SQL) agree to the fen, penalty
    interest included."""
    lending = _service(world)
    loan_id, first_due = _loan(lending, world, "loan-ahead", partner_bank_id="bank-7")
    disbursed = date.fromisoformat(lending.loan(loan_id).disbursed_on)
    lending.accrue_through(first_due + timedelta(days=1), disbursed)
    quote = lending.quote_payoff(loan_id, first_due + timedelta(days=9))
    lending.accrue_through(first_due + timedelta(days=9), first_due + timedelta(days=1))
    loan = lending.loan(loan_id)
    assert quote.penalty_interest == loan.penalty_due > 0
    assert quote.interest == loan.accrued_interest
    assert quote.total == loan.outstanding_principal + loan.accrued_interest + loan.penalty_due


def test_a_payment_below_the_quote_leaves_the_loan_open(world: PaymentsWorld) -> None:
    lending = _service(world)
    loan_id, _ = _loan(lending, world, "loan-short")
    world.clock.advance(5 * DAY_S)
    quote = lending.quote_payoff(loan_id, local_date(world.clock()))
    world.fund("alice", 100_00)
    short = lending.repay(loan_id, "short", quote.total - 1)
    # The loan was accrued to date first: the interest is paid, one fen of principal is left.
    assert short.status == "active" and short.allocation["interest"] == quote.interest
    assert lending.loan(loan_id).outstanding_principal == 1
    with pytest.raises(LendingRefusal) as before:
        lending.quote_payoff(loan_id, date(2000, 1, 1))
    assert before.value.code == "payoff_date_invalid"


# -- notices, write-off, recovery ---------------------------------------------------------------


def test_default_notices_write_off_and_recovery_per_funder(world: PaymentsWorld) -> None:
    lending = _service(world)
    loan_id, first_due = _loan(lending, world, "loan-bad", partner_bank_id="bank-7")
    alice = world.people["alice"]
    with pytest.raises(LendingRefusal) as early:
        lending.write_off(loan_id, "wo-1", first_due, "uncollectable")
    assert early.value.code == "write_off_not_allowed"
    # A day late: special mention; 92 days: substandard; 400 days: loss. Each worse class is a
    # notice with reasons and the review path; a second run on a day adds none.
    for days in (1, 1, 92, 400):
        lending.classify(first_due + timedelta(days=days))
    notices = lending.notices(alice)
    assert [n["to_tier"] for n in notices] == ["special_mention", "substandard", "loss"]
    assert notices[-1]["days_past_due"] == 400
    assert notices[-1]["review_path"] == f"/v1/identity/parties/{alice}/review-requests"
    assert [r["reason_id"] for r in notices[0]["reasons"]][:2] == [
        "N-PAYMENT-OVERDUE",
        "N-CLASS-WORSENED",
    ]
    loan = lending.loan(loan_id)
    assert (loan.tier, loan.stage) == ("loss", 3)
    written = lending.write_off(loan_id, "wo-1", first_due + timedelta(days=400), "uncollectable")
    assert written.total == 3_000_00 and written.loss_expense == 3_000_00
    assert written.by_funder == {
        "bank-7": {"principal": 2_100_00, "interest": 0},
        PLATFORM: {"principal": 900_00, "interest": 0},
    }
    assert lending.write_off(
        loan_id, "wo-1", first_due + timedelta(days=400), "uncollectable"
    ).replayed
    with pytest.raises(LendingRefusal) as changed:
        lending.write_off(loan_id, "wo-1", first_due + timedelta(days=400), "other reason")
    assert changed.value.code == "write_off_exists_with_different_fields"
    with pytest.raises(LendingRefusal) as twice:
        lending.write_off(loan_id, "wo-2", first_due + timedelta(days=400), "uncollectable")
    assert twice.value.code == "loan_not_active"
    assert lending.loan(loan_id).status == "written_off"
    for funder, share in (("bank-7", 2_100_00), (PLATFORM, 900_00)):
        assert _balance(world, LendingAccount.LOAN_RECEIVABLE, funder) == 0
        assert _balance(world, LendingAccount.CREDIT_LOSSES, funder) == share
    assert lending.notices(alice)[-1]["notice"] == "written_off"
    book = lending.portfolio()
    assert book["by_stage"] == {} and book["ledger_agrees"]
    # A recovery from the wallet (which still holds the loan's money): 70/30 recovery income.
    recovered = lending.record_recovery(loan_id, "rec-1", 1_000_01, first_due + timedelta(days=401))
    assert recovered.recovered == 1_000_01 and recovered.overpayment == 0
    assert recovered.by_funder == {"bank-7": 700_01, PLATFORM: 300_00}
    assert recovered.still_written_off == 3_000_00 - 1_000_01
    assert lending.record_recovery(
        loan_id, "rec-1", 1_000_01, first_due + timedelta(days=401)
    ).replayed
    with pytest.raises(LendingRefusal) as other:
        lending.record_recovery(loan_id, "rec-1", 5_00, first_due + timedelta(days=401))
    assert other.value.code == "recovery_exists_with_different_fields"
    assert _balance(world, LendingAccount.RECOVERIES, "bank-7") == 700_01
    assert _balance(world, LendingAccount.RECOVERIES, PLATFORM) == 300_00
    # More than remains written off: the rest stays in the wallet.
    rest = lending.record_recovery(loan_id, "rec-2", 3_000_00, first_due + timedelta(days=402))
    assert (rest.recovered, rest.overpayment, rest.still_written_off) == (
        3_000_00 - 1_000_01,
        1_000_01,
        0,
    )
    with pytest.raises(LendingRefusal) as nothing:
        lending.record_recovery(loan_id, "rec-3", 1_00, first_due + timedelta(days=403))
    assert nothing.value.code == "nothing_to_recover"
    assert world.service.balance(alice) == 0
    assert world.service.safeguarding_check().in_balance
    assert world.ledger.check() == []


def test_recovery_needs_a_written_off_loan_and_write_off_a_reason(world: PaymentsWorld) -> None:
    lending = _service(world, write_off_dpd_threshold=30)
    loan_id, first_due = _loan(lending, world, "loan-x")
    with pytest.raises(LendingRefusal) as active:
        lending.record_recovery(loan_id, "rec", 1_00, first_due)
    assert active.value.code == "loan_not_written_off"
    with pytest.raises(LendingRefusal) as reason:
        lending.write_off(loan_id, "wo", first_due, " ")
    assert reason.value.code == "reason_invalid"
    # Past the configured threshold (30 days) the loan may go before reaching the loss class.
    lending.classify(first_due + timedelta(days=30))
    assert lending.loan(loan_id).tier == "special_mention"
    assert lending.write_off(loan_id, "wo", first_due + timedelta(days=30), "fraud").total > 0


# -- provisioning, concentration, disclosure ---------------------------------------------------


def test_the_provision_uses_each_loans_decision_pd(world: PaymentsWorld) -> None:
    lending = _service(world)
    _loan(lending, world, "loan-a", amount=10_000_00, term_months=12)
    loan_b, first_due = _loan(lending, world, "loan-b", amount=2_000_00, term_months=6)
    book = lending.portfolio()
    # FixedScorer: PD 2 % at decision. Stage 1, twelve instalments left: PD12 itself; six left:
    # the six-month PD; LGD 45 %.
    six = horizon_pd(Decimal("0.02"), 6)
    expected = round(Decimal("0.02") * Decimal("0.45") * 10_000_00) + round(
        six * Decimal("0.45") * 2_000_00
    )
    assert book["pd_basis"] == "decision_pd"
    assert book["by_stage"]["1"] == {"loans": 2, "exposure": 12_000_00, "ecl": expected}
    lending.classify(first_due + timedelta(days=40))
    book = lending.portfolio()
    # Both first instalments fell due on the same day and went unpaid: 40 days past due is
    # stage 2, provisioned with the lifetime PD over each loan's remaining instalments.
    assert book["by_stage"]["2"]["loans"] == 2
    assert book["by_stage"]["2"]["ecl"] == (
        round(horizon_pd(Decimal("0.02"), 12) * Decimal("0.45") * 10_000_00)
        + round(horizon_pd(Decimal("0.02"), 6) * Decimal("0.45") * 2_000_00)
    )
    assert book["ledger_agrees"]
    assert lending.loan(loan_b).stage == 2
    collective = lending.portfolio(stage_pd={1: Decimal("0.02"), 2: Decimal("0.15"), 3: Decimal(1)})
    assert collective["pd_basis"] == "collective"
    assert collective["by_stage"]["2"]["ecl"] == round(
        Decimal("0.15") * Decimal("0.45") * 12_000_00
    )


def test_partner_concentration_against_l3(world: PaymentsWorld) -> None:
    figures = {
        "bank-7": PartnerBankFigures(tier1_capital=20_000_00, total_loans=1_000_000_00),
        "bank-8": PartnerBankFigures(
            tier1_capital=10**9, total_loans=10_000_00, other_partner_balances={"other": 3_000_00}
        ),
    }
    lending = _service(world, partner_banks=figures)
    _loan(lending, world, "loan-co", amount=10_000_00, term_months=12, partner_bank_id="bank-7")
    report = lending.concentration_report("bank-7")
    assert report["co_lent_balance"] == 7_000_00
    assert report["single_partner_limit"] == 5_000_00
    assert not report["compliant"]
    assert report["breaches"] == [
        {
            "kind": "single_partner",
            "partner_id": "tianping",
            "balance": 7_000_00,
            "limit": 5_000_00,
            "excess": 2_000_00,
        }
    ]
    _loan(lending, world, "loan-co8", amount=3_000_00, term_months=6, partner_bank_id="bank-8")
    bank8 = lending.concentration_report("bank-8")
    assert bank8["co_lent_balance"] == 2_100_00
    assert bank8["all_partners_balance"] == 5_100_00
    assert [b["kind"] for b in bank8["breaches"]] == ["all_partners"]
    with pytest.raises(LendingRefusal) as unknown:
        lending.concentration_report("bank-9")
    assert unknown.value.code == "partner_not_registered"


def test_the_offer_carries_the_cost_disclosure(world: PaymentsWorld) -> None:
    lending = _service(world)
    application = Application("app-cd", world.people["alice"], 6_000_00, 6, 120_000_00)
    offer = lending.apply(application)
    table = offer.cost_disclosure
    assert table is not None and offer.rate_bps is not None
    schedule = build_schedule(
        6_000_00, Decimal(offer.rate_bps) / 10_000, 6, local_date(world.clock())
    )
    assert [item["name"] for item in table["items"]] == ["interest"]
    assert table["total_cost"] == schedule.total_interest == table["items"][0]["amount"]
    assert table["apr_bps"] == offer.apr_bps
    assert table["deducts_upfront"] is False and table["prepayment_fee"] == 0
    assert "penalty" in table["contingent_charges"][0]["name"]
    assert lending.apply(application).cost_disclosure == table
    assert lending.application("app-cd").cost_disclosure == table
    declined = _service(world).apply(
        Application("app-cd-no", world.people["alice"], 6_000_00, 6, 0, is_student=True)
    )
    assert declined.outcome == "declined" and declined.cost_disclosure is None
