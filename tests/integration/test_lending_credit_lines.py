"""Revolving credit lines on the ledger, on both backends: open from an approved application
(with the credit-reporting consent of L5), draw at checkout (L6: only when the payer chose the
line), statements over a cycle with and without full payment, repayment, bills into
instalments, and idempotent replays of every write."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from ledger_support import ManualClock
from lending_support import FixedScorer
from payments_support import PaymentsWorld, make_world
from tianping.ledger.service import Ledger
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount
from tianping.lending.credit_lines import daily_rate
from tianping.lending.model import Application, ApplicationOutcome
from tianping.lending.schedules import round_half_up
from tianping.lending.service import LendingRefusal, LendingService
from tianping.payments.model import PaymentCommand, PaymentError, PaymentOutcome, local_date
from tianping.payments.store import PaymentsStore
from tianping.rules.config import cached_rulebook
from tianping.rules.service import RulesService

DAY_NS = 86_400 * 1_000_000_000
LIMIT = 10_000_00


@dataclass
class Check:
    available: bool
    missing: tuple[str, ...]


class Consents:
    """The identity context's service check, with or without the bureau-reporting consent."""

    def __init__(self, reporting: bool = True) -> None:
        self.reporting = reporting

    def service_available(self, party_id: str, service: str, uow: Any = None) -> Check:
        assert service == "credit_line"
        missing = () if self.reporting else ("credit_bureau_reporting",)
        return Check(not missing, missing)


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    world = make_world(ledger, clock)
    world.person("alice")
    world.merchant("noodles")
    return world


def _lending(world: PaymentsWorld, consent: Any = None) -> LendingService:
    lending = LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=FixedScorer(),
        consent=consent if consent is not None else Consents(),
    )
    world.service.credit_line = lending
    return lending


def _approve(
    lending: LendingService, world: PaymentsWorld, application_id: str, **extra: Any
) -> ApplicationOutcome:
    fields: dict[str, Any] = {
        "application_id": application_id,
        "party_id": world.people["alice"],
        "amount": LIMIT,
        "term_months": 12,
        "annual_income": 120_000_00,
        "product": "credit_line",
    }
    fields.update(extra)
    offer = lending.apply(Application(**fields))
    assert offer.outcome == "approved", offer
    return offer


def _checkout(world: PaymentsWorld, payment_id: str, amount: int, **extra: Any) -> Any:
    command = PaymentCommand(
        payment_id,
        world.people["alice"],
        world.merchants["noodles"],
        amount,
        "CNY",
        kind="merchant",
        **({"funding_source": "credit_line"} | extra),
    )
    (answer,) = world.service.pay([command])
    return answer


def _today(world: PaymentsWorld) -> dt.date:
    return local_date(world.clock())


def _to(world: PaymentsWorld, day: dt.date) -> None:
    while _today(world) < day:
        world.clock.advance(nanoseconds=DAY_NS)


def _receivable(world: PaymentsWorld, kind: LendingAccount, funder: str) -> int:
    account = world.ledger.get_account(chart.account_id(kind, funder, "CNY"))
    return account.debits_posted - account.credits_posted


def test_open_draw_and_the_limit(world: PaymentsWorld) -> None:
    lending = _lending(world)
    _approve(lending, world, "app-line")
    opened = lending.open_line("app-line", "line-1", 20)
    assert (opened.credit_limit, opened.status, opened.available) == (LIMIT, "active", LIMIT)
    assert opened.next_statement_on == "2027-01-20"
    assert lending.open_line("app-line", "line-1", 20) == opened  # a replay
    with pytest.raises(LendingRefusal) as conflict:
        lending.open_line("app-line", "line-1", 5)
    assert conflict.value.code == "request_conflict"
    with pytest.raises(LendingRefusal) as taken:
        lending.open_line("app-line", "line-2", 20)
    assert taken.value.code == "offer_taken"

    paid = _checkout(world, "pay-1", 1_000_00)
    assert isinstance(paid, PaymentOutcome) and paid.status == "completed", paid
    # The merchant was paid from the lender's side: the wallet is untouched, the platform's
    # line receivable holds the draw, and the reserve still covers client money.
    assert world.service.balance(world.people["alice"]) == 0
    assert _receivable(world, LendingAccount.LINE_RECEIVABLE, PLATFORM) == 1_000_00
    assert world.service.safeguarding_check().in_balance
    assert lending.line("line-1").available == LIMIT - 1_000_00
    # A replay of the payment replays its outcome and draws nothing more.
    again = _checkout(world, "pay-1", 1_000_00)
    assert again.replayed and lending.line("line-1").principal == 1_000_00
    # Over the available limit: declined with a stable code, nothing moves.
    over = _checkout(world, "pay-2", LIMIT)
    assert (over.status, over.decline_code) == ("declined", "credit_limit_exceeded")
    assert lending.line("line-1").principal == 1_000_00
    # A frozen line takes no draws.
    lending.set_line_status("line-1", "frozen")
    frozen = _checkout(world, "pay-3", 10_00)
    assert (frozen.status, frozen.decline_code) == ("declined", "credit_line_not_active")
    # Balance caps (P1/P2) do not count a credit-funded payment; the AML daily total does.
    alice, day = world.people["alice"], _today(world).isoformat()
    keys = [(alice, "spent_today", day), (alice, "outflow/CNY", day)]
    with PaymentsStore.reading(world.ledger) as store:
        counters = store.counters(keys)
    assert (counters[keys[0]], counters[keys[1]]) == (0, 1_000_00)


def test_a_credit_line_needs_the_bureau_reporting_consent(world: PaymentsWorld) -> None:
    lending = _lending(world, Consents(reporting=False))
    _approve(lending, world, "app-nc")
    with pytest.raises(LendingRefusal) as refused:
        lending.open_line("app-nc", "line-nc", 20)
    assert refused.value.code == "credit_reporting_consent_required"


def test_an_instalment_offer_is_not_a_line_and_a_line_offer_is_not_a_loan(
    world: PaymentsWorld,
) -> None:
    lending = _lending(world)
    _approve(lending, world, "app-loan", product="instalment")
    with pytest.raises(LendingRefusal) as not_line:
        lending.open_line("app-loan", "line-x", 20)
    assert not_line.value.code == "application_not_credit_line"
    _approve(lending, world, "app-line")
    with pytest.raises(LendingRefusal) as not_loan:
        lending.accept("app-line", "loan-x")
    assert not_loan.value.code == "application_is_credit_line"


def test_a_preselected_credit_source_is_refused_by_the_rules(world: PaymentsWorld) -> None:
    lending = _lending(world)
    _approve(lending, world, "app-line")
    lending.open_line("app-line", "line-1", 20)
    refused = _checkout(world, "pay-pre", 100_00, preselected=True)
    assert (refused.status, refused.decline_code) == ("declined", "rule_denied")
    assert "cn.lending.credit_not_preselected" in refused.reasons
    assert lending.line("line-1").principal == 0


def test_credit_needs_the_port_and_pays_merchants_only(world: PaymentsWorld) -> None:
    with pytest.raises(PaymentError) as p2p:
        PaymentCommand("p", "a" * 30, "b" * 30, 1, "CNY", funding_source="credit_line")
    assert p2p.value.code == "payment_input_invalid"
    answer = _checkout(world, "pay-none", 100_00)
    assert isinstance(answer, PaymentError) and answer.code == "credit_line_unavailable"


def _cycle(world: PaymentsWorld, repay: int) -> tuple[LendingService, Any, Any]:
    """Open on 2027-01-15 (statement day 20), draw 1,000.00 the same day, get the January
    statement, repay `repay` on the 25th, get the February statement."""
    lending = _lending(world)
    _approve(lending, world, "app-line")
    lending.open_line("app-line", "line-1", 20)
    assert _checkout(world, "pay-1", 1_000_00).status == "completed"
    _to(world, dt.date(2027, 1, 20))
    run = lending.issue_statements(dt.date(2027, 1, 20))
    assert run.issued == 1
    assert lending.issue_statements(dt.date(2027, 1, 20)).issued == 0  # idempotent
    january = lending.line_statement("line-1", dt.date(2027, 1, 20))
    world.fund("alice", 2_000_00)
    _to(world, dt.date(2027, 1, 25))
    paid = lending.repay_line("line-1", "r-1", repay)
    assert lending.repay_line("line-1", "r-1", repay).replayed
    with pytest.raises(LendingRefusal) as conflict:
        lending.repay_line("line-1", "r-1", repay + 1)
    assert conflict.value.code == "request_conflict"
    assert paid.available == LIMIT - 1_000_00 + repay
    _to(world, dt.date(2027, 2, 20))
    lending.issue_statements(dt.date(2027, 2, 20))
    february = lending.line_statement("line-1", dt.date(2027, 2, 20))
    return lending, january, february


def test_a_cycle_paid_in_full_keeps_the_grace(world: PaymentsWorld) -> None:
    lending, january, february = _cycle(world, 1_000_00)
    assert (january.previous_balance, january.purchases, january.new_balance) == (
        0,
        1_000_00,
        1_000_00,
    )
    assert (january.minimum_payment, january.due_date, january.grace_kept) == (
        100_00,
        "2027-01-29",
        True,
    )
    assert (february.interest_charged, february.new_balance, february.grace_kept) == (0, 0, True)
    line = lending.line("line-1")
    assert (line.principal, line.available) == (0, LIMIT)
    assert _receivable(world, LendingAccount.LINE_RECEIVABLE, PLATFORM) == 0
    assert world.service.safeguarding_check().in_balance


def test_a_cycle_not_paid_in_full_bears_interest_from_each_draw(world: PaymentsWorld) -> None:
    lending, _, february = _cycle(world, 300_00)
    rate = daily_rate(lending.line("line-1").rate_bps)
    # Back interest on the draw from 15 to 20 January (6 days), then the unpaid balance each
    # day of the cycle: 1,000.00 from 21 to 24 January, 700.00 from 25 January to 20 February.
    balance_days = 6 * 1_000_00 + 4 * 1_000_00 + 27 * 700_00
    interest = round_half_up(Decimal(balance_days) * rate)
    assert interest > 0
    assert (february.grace_kept, february.interest_charged) == (False, interest)
    assert february.new_balance == 700_00 + interest
    line = lending.line("line-1")
    assert (line.interest, line.principal) == (interest, 700_00)
    assert _receivable(world, LendingAccount.LINE_CHARGES_RECEIVABLE, PLATFORM) == interest
    # A repayment pays the interest first, then principal, and restores the limit.
    paid = lending.repay_line("line-1", "r-2", interest + 100_00)
    assert paid.allocation == {"fees": 0, "interest": interest, "principal": 100_00}
    assert paid.available == LIMIT - 600_00
    # More than is owed pays what is owed; the rest stays in the wallet.
    before = world.service.balance(world.people["alice"])
    final = lending.repay_line("line-1", "r-3", 1_000_00)
    assert (final.overpayment, final.available) == (400_00, LIMIT)
    assert world.service.balance(world.people["alice"]) == before - 600_00
    assert world.service.safeguarding_check().in_balance


def test_a_bill_turns_into_instalments_after_a_priced_quote(world: PaymentsWorld) -> None:
    lending = _lending(world)
    _approve(lending, world, "app-line")
    lending.open_line("app-line", "line-1", 20)
    assert _checkout(world, "pay-1", 3_000_00).status == "completed"
    _to(world, dt.date(2027, 1, 20))
    lending.issue_statements(dt.date(2027, 1, 20))
    bill = dt.date(2027, 1, 20)
    quote = lending.quote_statement_instalments("line-1", bill, 3)
    assert quote.amount == 3_000_00 and len(quote.instalments) == 3
    assert sum(i.principal for i in quote.instalments) == 3_000_00
    assert quote.total_fee == round_half_up(Decimal(3_000_00) * quote.monthly_fee_rate * 3)
    assert quote.apr > quote.monthly_fee_rate * 12  # the IRR is above the flat rate
    with pytest.raises(LendingRefusal) as months:
        lending.quote_statement_instalments("line-1", bill, 5)
    assert months.value.code == "months_invalid"
    plan = lending.convert_statement("line-1", bill, "plan-1", 3)
    assert plan.apr_bps == quote.apr_bps and plan.decision_id is not None
    assert lending.convert_statement("line-1", bill, "plan-1", 3) == plan  # a replay
    with pytest.raises(LendingRefusal) as conflict:
        lending.convert_statement("line-1", bill, "plan-1", 6)
    assert conflict.value.code == "request_conflict"
    with pytest.raises(LendingRefusal) as twice:
        lending.convert_statement("line-1", bill, "plan-2", 6)
    assert twice.value.code == "statement_not_convertible"
    line = lending.line("line-1")
    assert (line.principal, line.instalment_principal, line.available) == (
        0,
        3_000_00,
        LIMIT - 3_000_00,
    )
    # The next statement bills the first instalment and its fee; the conversion counted as
    # settling the January bill, so no interest is charged.
    _to(world, dt.date(2027, 2, 20))
    lending.issue_statements(dt.date(2027, 2, 20))
    february = lending.line_statement("line-1", dt.date(2027, 2, 20))
    first = quote.instalments[0]
    assert (february.grace_kept, february.interest_charged) == (True, 0)
    assert february.fees_charged == first.fee
    assert february.new_balance == first.principal + first.fee
    line = lending.line("line-1")
    assert (line.principal, line.fees) == (first.principal, first.fee)
    assert line.instalment_principal == 3_000_00 - first.principal
    assert _receivable(world, LendingAccount.LINE_CHARGES_RECEIVABLE, PLATFORM) == first.fee


def test_a_co_funded_line_books_each_funders_share(world: PaymentsWorld) -> None:
    lending = _lending(world)
    _approve(lending, world, "app-co", partner_bank_id="bank-7")
    line = lending.open_line("app-co", "line-co", 20)
    assert (line.partner_bank_id, line.bank_share_bps) == ("bank-7", 7_000)
    assert _checkout(world, "pay-co", 1_000_01).status == "completed"
    bank = _receivable(world, LendingAccount.LINE_RECEIVABLE, "bank-7")
    platform = _receivable(world, LendingAccount.LINE_RECEIVABLE, PLATFORM)
    assert (bank, platform) == (700_01, 300_00)
    world.fund("alice", 2_000_00)
    lending.repay_line("line-co", "r-co", 1_000_01)
    assert _receivable(world, LendingAccount.LINE_RECEIVABLE, "bank-7") == 0
    assert _receivable(world, LendingAccount.LINE_RECEIVABLE, PLATFORM) == 0
    assert world.service.safeguarding_check().in_balance
