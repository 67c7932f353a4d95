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
from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.ledger.service import Ledger
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount
from tianping.lending.credit_lines import daily_rate
from tianping.lending.line_service import UNDRAWN_CONVERSION_BPS
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


# -- servicing: refunds, consent, freezing, overdue lines, write-off ---------------------------


def _merchant_payable(world: PaymentsWorld) -> int:
    from tianping.payments import chart as payments_chart

    account = world.ledger.get_account(
        payments_chart.merchant_account(world.merchants["noodles"], "CNY")
    )
    return account.credits_posted - account.debits_posted


def _opened(world: PaymentsWorld, consent: Any = None, **extra: Any) -> LendingService:
    lending = _lending(world, consent)
    _approve(lending, world, "app-line", **extra)
    lending.open_line("app-line", "line-1", 20)
    return lending


def test_a_refund_goes_back_to_the_line_and_restores_the_limit(world: PaymentsWorld) -> None:
    lending = _opened(world)
    assert _checkout(world, "pay-1", 1_000_00).status == "completed"
    payable = _merchant_payable(world)
    refund = world.service.refund("rf-1", "pay-1", 400_00)
    assert refund.refunded_total == 400_00 and not refund.replayed
    line = lending.line("line-1")
    assert (line.principal, line.available) == (600_00, LIMIT - 600_00)
    assert _merchant_payable(world) == payable - 400_00
    assert _receivable(world, LendingAccount.LINE_RECEIVABLE, PLATFORM) == 600_00
    assert world.service.balance(world.people["alice"]) == 0  # nothing to the wallet
    assert world.service.safeguarding_check().in_balance
    # A replay answers the same refund and moves nothing; the id with another amount conflicts.
    again = world.service.refund("rf-1", "pay-1", 400_00)
    assert again.replayed and again.transfer_id == refund.transfer_id
    assert lending.line("line-1").principal == 600_00
    with pytest.raises(PaymentError) as conflict:
        world.service.refund("rf-1", "pay-1", 300_00)
    assert conflict.value.code == "request_conflict"
    with pytest.raises(PaymentError) as too_much:
        world.service.refund("rf-2", "pay-1", 600_01)
    assert too_much.value.code == "refund_exceeds_payment"
    # The refund is on the line's record and the next statement shows it as a credit.
    page, _ = lending.line_transactions("line-1")
    assert [(t.kind, t.amount) for t in page] == [("draw", 1_000_00), ("refund", 400_00)]
    _to(world, dt.date(2027, 1, 20))
    lending.issue_statements(dt.date(2027, 1, 20))
    january = lending.line_statement("line-1", dt.date(2027, 1, 20))
    assert (january.purchases, january.payments, january.new_balance) == (
        1_000_00,
        400_00,
        600_00,
    )


def test_a_refund_beyond_what_is_owed_goes_to_the_wallet(world: PaymentsWorld) -> None:
    lending = _opened(world, partner_bank_id="bank-7")
    assert _checkout(world, "pay-1", 1_000_00).status == "completed"
    world.fund("alice", 1_000_00)
    lending.repay_line("line-1", "r-1", 700_00)  # 300.00 still owed
    before = world.service.balance(world.people["alice"])
    world.service.refund("rf-1", "pay-1", 500_00)
    line = lending.line("line-1")
    assert (line.principal, line.bank_principal, line.available) == (0, 0, LIMIT)
    assert world.service.balance(world.people["alice"]) == before + 200_00
    assert _receivable(world, LendingAccount.LINE_RECEIVABLE, "bank-7") == 0
    assert _receivable(world, LendingAccount.LINE_RECEIVABLE, PLATFORM) == 0
    page, _ = lending.line_transactions("line-1")
    refund = page[-1]
    assert (refund.kind, refund.amount, refund.details["to_wallet"]) == ("refund", 300_00, 200_00)
    # The rest of the purchase refunds entirely to the wallet: the line owes nothing.
    world.service.refund("rf-2", "pay-1", 500_00)
    assert world.service.balance(world.people["alice"]) == before + 700_00
    with pytest.raises(PaymentError) as exhausted:
        world.service.refund("rf-3", "pay-1", 1)
    assert exhausted.value.code == "refund_exceeds_payment"
    assert world.service.safeguarding_check().in_balance


def test_withdrawn_consent_stops_draws_at_once_and_freezes_at_the_statement(
    world: PaymentsWorld,
) -> None:
    consents = Consents()
    lending = _opened(world, consents)
    assert _checkout(world, "pay-1", 100_00).status == "completed"
    consents.reporting = False  # the holder withdraws the reporting consent (L5)
    refused = _checkout(world, "pay-2", 100_00)
    assert (refused.status, refused.decline_code) == (
        "declined",
        "credit_reporting_consent_required",
    )
    assert lending.line("line-1").status == "active"  # frozen at the next statement run
    world.fund("alice", 100_00)
    assert lending.repay_line("line-1", "r-1", 50_00).allocation["principal"] == 50_00
    _to(world, dt.date(2027, 1, 20))
    run = lending.issue_statements(dt.date(2027, 1, 20))
    assert (run.issued, run.frozen_for_consent) == (1, 1)
    line = lending.line("line-1")
    assert (line.status, line.frozen_reason) == ("frozen", "consent_withdrawn")
    # The freeze is an adverse change: the holder is told why and where to ask for a review.
    [notice] = [n for n in lending.notices(world.people["alice"]) if n["notice"] == "line_frozen"]
    assert (notice["line_id"], notice["cause"]) == ("line-1", "consent_withdrawn")
    assert [r["reason_id"] for r in notice["reasons"]] == ["N-LINE-CONSENT-WITHDRAWN"]
    assert notice["review_path"].endswith("/review-requests")
    # A second run the same day freezes nothing again and tells the holder nothing new.
    assert lending.issue_statements(dt.date(2027, 1, 20)).frozen_for_consent == 0
    assert sum(n["notice"] == "line_frozen" for n in lending.notices(world.people["alice"])) == 1
    assert lending.repay_line("line-1", "r-2", 50_00).available == LIMIT  # still repaid
    with pytest.raises(LendingRefusal) as still_withdrawn:
        lending.unfreeze_line("line-1")
    assert still_withdrawn.value.code == "credit_reporting_consent_required"
    consents.reporting = True
    assert lending.unfreeze_line("line-1").status == "active"
    assert _checkout(world, "pay-3", 100_00).status == "completed"


def test_freeze_unfreeze_and_close(world: PaymentsWorld) -> None:
    lending = _opened(world)
    assert _checkout(world, "pay-1", 100_00).status == "completed"
    frozen = lending.freeze_line("line-1")
    assert (frozen.status, frozen.frozen_reason) == ("frozen", "operator")
    assert lending.freeze_line("line-1") == frozen  # freezing again changes nothing
    notices = [n for n in lending.notices(world.people["alice"]) if n["notice"] == "line_frozen"]
    assert [(n["cause"], n["reasons"][0]["reason_id"]) for n in notices] == [
        ("operator", "N-LINE-FROZEN-BY-LENDER")
    ]
    assert _checkout(world, "pay-2", 10_00).decline_code == "credit_line_not_active"
    assert lending.unfreeze_line("line-1").status == "active"
    with pytest.raises(LendingRefusal) as owed:
        lending.close_line("line-1")
    assert owed.value.code == "credit_line_not_repaid"
    world.fund("alice", 100_00)
    lending.repay_line("line-1", "r-1", 100_00)
    closed = lending.close_line("line-1")
    assert closed.status == "closed" and lending.close_line("line-1") == closed
    for action in (lending.freeze_line, lending.unfreeze_line):
        with pytest.raises(LendingRefusal) as shut:
            action("line-1")
        assert shut.value.code == "credit_line_not_active"
    with pytest.raises(LendingRefusal) as invalid:
        lending.set_line_status("line-1", "open")
    assert invalid.value.code == "line_status_invalid"


def test_transactions_read_page_by_page(world: PaymentsWorld) -> None:
    lending = _opened(world)
    for number in range(5):
        assert _checkout(world, f"pay-{number}", 10_00).status == "completed"
    first, cursor = lending.line_transactions("line-1", limit=2)
    assert len(first) == 2 and cursor is not None
    second, cursor2 = lending.line_transactions("line-1", cursor, 2)
    third, last = lending.line_transactions("line-1", cursor2, 2)
    assert last is None
    seen = [t.reference for t in first + second + third]
    assert seen == [f"pay-{n}" for n in range(5)]
    for bad in ({"limit": 0}, {"limit": 201}, {"after": "x"}):
        with pytest.raises(LendingRefusal) as refused:
            lending.line_transactions("line-1", **bad)
        assert refused.value.code in ("page_size_invalid", "cursor_invalid")


def test_a_missed_minimum_makes_the_line_past_due_frozen_and_noticed(
    world: PaymentsWorld,
) -> None:
    lending = _opened(world)
    assert _checkout(world, "pay-1", 1_000_00).status == "completed"
    _to(world, dt.date(2027, 1, 20))
    lending.issue_statements(dt.date(2027, 1, 20))  # due 29 January, minimum 100.00
    assert lending.classify_lines(dt.date(2027, 1, 29)).past_due == 0  # the due date itself
    _to(world, dt.date(2027, 2, 1))
    run = lending.classify_lines(dt.date(2027, 2, 1))
    assert (run.lines, run.past_due, run.worsened) == (1, 1, 1)
    line = lending.line("line-1")
    assert (line.days_past_due, line.tier, line.stage) == (3, "special_mention", 2)
    assert (line.status, line.frozen_reason) == ("frozen", "past_due")
    assert _checkout(world, "pay-2", 10_00).decline_code == "credit_line_not_active"
    with pytest.raises(LendingRefusal) as past_due:
        lending.unfreeze_line("line-1")
    assert past_due.value.code == "credit_line_past_due"
    # The holder reads the notice with the loans' notices; a second run adds none.
    assert lending.classify_lines(dt.date(2027, 2, 1)).worsened == 0
    (notice,) = lending.notices(world.people["alice"])
    assert notice["line_id"] == "line-1" and notice["to_tier"] == "special_mention"
    assert notice["review_path"].endswith("/review-requests")
    assert notice["reasons"][0]["reason_id"] == "N-LINE-MINIMUM-OVERDUE"
    # Paying the minimum makes the line current again and thaws it.
    world.fund("alice", 100_00)
    lending.repay_line("line-1", "r-1", 100_00)
    cured = lending.classify_lines(dt.date(2027, 2, 2))
    assert cured.past_due == 0
    line = lending.line("line-1")
    assert (line.status, line.days_past_due, line.tier, line.frozen_reason) == (
        "active",
        0,
        "normal",
        None,
    )


def test_a_line_in_the_loss_class_is_written_off_per_funder(world: PaymentsWorld) -> None:
    lending = _opened(world, partner_bank_id="bank-7")
    assert _checkout(world, "pay-1", 1_000_00).status == "completed"
    _to(world, dt.date(2027, 1, 20))
    lending.issue_statements(dt.date(2027, 1, 20))
    lending.classify_lines(dt.date(2027, 2, 1))
    with pytest.raises(LendingRefusal) as early:
        lending.write_off_line("line-1", "wo-1", dt.date(2027, 2, 1), "uncollectable")
    assert early.value.code == "write_off_not_allowed"
    day = dt.date(2027, 7, 31)  # 183 days after the January bill's due date
    _to(world, day)
    lending.issue_statements(day)
    lending.classify_lines(day)
    line = lending.line("line-1")
    assert (line.days_past_due, line.tier, line.stage) == (183, "loss", 3)
    report = lending.portfolio()
    lines = report["credit_lines"]
    assert lines["by_tier"]["loss"]["lines"] == 1 and lines["ledger_agrees"]
    assert lines["by_stage"]["3"]["ecl"] == round_half_up(Decimal(line.owed) * Decimal("0.45"))
    done = lending.write_off_line("line-1", "wo-1", day, "uncollectable")
    assert done.total == line.owed and not done.replayed
    assert done.by_funder["bank-7"]["principal"] == line.bank_principal
    for funder in ("bank-7", PLATFORM):
        assert _receivable(world, LendingAccount.LINE_RECEIVABLE, funder) == 0
        assert _receivable(world, LendingAccount.LINE_CHARGES_RECEIVABLE, funder) == 0
    # Credit losses are an expense: a debit balance, read like a receivable.
    losses = sum(
        _receivable(world, LendingAccount.CREDIT_LOSSES, funder) for funder in ("bank-7", PLATFORM)
    )
    assert losses == line.owed
    assert lending.write_off_line("line-1", "wo-1", day, "uncollectable").replayed
    with pytest.raises(LendingRefusal) as conflict:
        lending.write_off_line("line-1", "wo-1", day, "other")
    assert conflict.value.code == "write_off_exists_with_different_fields"
    with pytest.raises(LendingRefusal) as twice:
        lending.write_off_line("line-1", "wo-2", day, "uncollectable")
    assert twice.value.code == "credit_line_not_active"
    written = lending.line("line-1")
    assert written.status == "written_off" and written.owed == line.owed
    assert lending.portfolio()["credit_lines"]["ledger_agrees"]
    notices = lending.notices(world.people["alice"])
    assert notices[-1]["notice"] == "written_off" and notices[-1]["line_id"] == "line-1"
    with pytest.raises(LendingRefusal) as no_repay:
        lending.repay_line("line-1", "r-late", 10_00)
    assert no_repay.value.code == "credit_line_written_off"
    assert lending.issue_statements(dt.date(2027, 8, 20)).issued == 0


def test_only_unpaid_billed_principal_converts_and_never_after_the_due_date(
    world: PaymentsWorld,
) -> None:
    lending = _opened(world)
    assert _checkout(world, "pay-1", 1_000_00).status == "completed"
    _to(world, dt.date(2027, 1, 20))
    lending.issue_statements(dt.date(2027, 1, 20))
    world.fund("alice", 200_00)
    _to(world, dt.date(2027, 1, 25))
    lending.repay_line("line-1", "r-1", 200_00)
    assert _checkout(world, "pay-2", 300_00).status == "completed"  # drawn after the bill
    quote = lending.quote_statement_instalments("line-1", dt.date(2027, 1, 20), 3)
    assert quote.amount == 800_00  # the bill's unpaid principal, not the new draw
    _to(world, dt.date(2027, 1, 30))
    with pytest.raises(LendingRefusal) as late:
        lending.quote_statement_instalments("line-1", dt.date(2027, 1, 20), 3)
    assert late.value.code == "statement_past_due"


def test_an_active_lines_undrawn_limit_is_provided_for(world: PaymentsWorld) -> None:
    """IFRS 9 provides for commitments: an active line's EAD is what is owed plus the undrawn
    limit times the conversion factor; a frozen line can draw nothing, so only what it owes."""
    lending = _opened(world)
    assert _checkout(world, "pay-1", 1_000_00).status == "completed"
    line = lending.line("line-1")
    undrawn = line.credit_limit - line.owed
    stage_1 = lending.portfolio()["credit_lines"]["by_stage"]["1"]
    assert (stage_1["exposure"], stage_1["undrawn"]) == (line.owed, undrawn)
    ead = line.owed + undrawn * UNDRAWN_CONVERSION_BPS // 10_000
    # FixedScorer's PD (2 %) is a 12-month PD; stage 1 provides for twelve months of it.
    assert stage_1["ecl"] == round_half_up(Decimal(ead) * Decimal("0.02") * Decimal("0.45"))
    lending.freeze_line("line-1")
    frozen = lending.portfolio()["credit_lines"]["by_stage"]["1"]
    assert frozen["undrawn"] == 0
    assert frozen["ecl"] == round_half_up(Decimal(line.owed) * Decimal("0.02") * Decimal("0.45"))


# -- recoveries on a written-off line ---------------------------------------------------------


def _recovered(world: PaymentsWorld, funder: str) -> int:
    # Recoveries are income: a credit balance.
    account = world.ledger.get_account(chart.account_id(LendingAccount.RECOVERIES, funder, "CNY"))
    return account.credits_posted - account.debits_posted


def _written_off(world: PaymentsWorld) -> tuple[LendingService, Any]:
    """A co-funded line with a 1,000.00 purchase, never repaid, written off at 183 days past
    due (after its interest was billed); and the write-off."""
    lending = _opened(world, partner_bank_id="bank-7")
    assert _checkout(world, "pay-1", 1_000_00).status == "completed"
    _to(world, dt.date(2027, 1, 20))
    lending.issue_statements(dt.date(2027, 1, 20))
    day = dt.date(2027, 7, 31)
    _to(world, day)
    lending.issue_statements(day)
    lending.classify_lines(day)
    return lending, lending.write_off_line("line-1", "wo-1", day, "uncollectable")


def test_a_written_off_line_recovers_per_funder_what_it_wrote_off(world: PaymentsWorld) -> None:
    lending, done = _written_off(world)
    day = dt.date(2027, 8, 3)
    with pytest.raises(LendingRefusal) as absent:
        lending.record_line_recovery("line-x", "rec-1", 100_00, day)
    assert absent.value.code == "credit_line_not_found"
    with pytest.raises(LendingRefusal) as zero:
        lending.record_line_recovery("line-1", "rec-1", 0, day)
    assert zero.value.code == "amount_invalid"
    with pytest.raises(LendingRefusal) as empty_wallet:
        lending.record_line_recovery("line-1", "rec-1", 100_00, day)
    assert empty_wallet.value.code == "insufficient_funds"
    written = lending.line("line-1")
    lost = {funder: sum(parts.values()) for funder, parts in done.by_funder.items()}
    assert sum(lost.values()) == written.owed > 1_000_00  # the billed interest is owed too
    world.fund("alice", 2_000_00)
    first = lending.record_line_recovery("line-1", "rec-1", 300_00, day)
    assert (first.recovered, first.overpayment) == (300_00, 0)
    assert first.allocation["interest"] == written.interest  # charges first
    assert first.still_written_off == written.owed - 300_00
    assert sum(first.by_funder.values()) == 300_00
    assert first.by_funder == {funder: _recovered(world, funder) for funder in ("bank-7", PLATFORM)}
    assert world.service.balance(world.people["alice"]) == 1_700_00
    assert world.service.safeguarding_check().in_balance
    line = lending.line("line-1")
    assert (line.status, line.owed) == ("written_off", written.owed - 300_00)
    # Idempotent by the recovery id; the id with another amount or date conflicts.
    again = lending.record_line_recovery("line-1", "rec-1", 300_00, day)
    assert again.replayed and again.by_funder == first.by_funder
    assert world.service.balance(world.people["alice"]) == 1_700_00
    for other in ((300_01, day), (300_00, dt.date(2027, 8, 4))):
        with pytest.raises(LendingRefusal) as conflict:
            lending.record_line_recovery("line-1", "rec-1", *other)
        assert conflict.value.code == "recovery_exists_with_different_fields"
    # The rest, with more than remains: each funder gets back exactly what it wrote off, and
    # the excess stays in the wallet.
    rest = lending.record_line_recovery("line-1", "rec-2", 1_500_00, day)
    assert (rest.recovered, rest.still_written_off) == (written.owed - 300_00, 0)
    assert rest.overpayment == 1_500_00 - rest.recovered
    assert {funder: _recovered(world, funder) for funder in ("bank-7", PLATFORM)} == lost
    assert world.service.balance(world.people["alice"]) == 2_000_00 - written.owed
    line = lending.line("line-1")
    assert line.owed == 0 and line.bank_principal == line.bank_interest == 0
    with pytest.raises(LendingRefusal) as nothing:
        lending.record_line_recovery("line-1", "rec-3", 1_00, day)
    assert nothing.value.code == "nothing_to_recover"
    page, _ = lending.line_transactions("line-1")
    assert [(t.kind, t.reference) for t in page[-2:]] == [
        ("recovery", "rec-1"),
        ("recovery", "rec-2"),
    ]
    assert sum(t.amount for t in page if t.kind == "recovery") == written.owed
    # The receivables stay empty and the books agree; the safeguarded money is whole.
    report = lending.portfolio()
    assert report["ledger_agrees"] and report["credit_lines"]["ledger_agrees"]
    assert world.service.safeguarding_check().in_balance


def test_only_a_written_off_line_takes_a_recovery(world: PaymentsWorld) -> None:
    lending = _opened(world)
    assert _checkout(world, "pay-1", 100_00).status == "completed"
    world.fund("alice", 100_00)
    with pytest.raises(LendingRefusal) as live:
        lending.record_line_recovery("line-1", "rec-1", 50_00, _today(world))
    assert live.value.code == "line_not_written_off"
    assert lending.line("line-1").principal == 100_00


def test_a_refund_on_a_written_off_line_is_a_recovery(world: PaymentsWorld) -> None:
    lending, done = _written_off(world)
    written = lending.line("line-1")
    payable = _merchant_payable(world)
    refund = world.service.refund("rf-1", "pay-1", 400_00)
    assert refund.refunded_total == 400_00 and not refund.replayed
    assert _merchant_payable(world) == payable - 400_00
    assert sum(_recovered(world, funder) for funder in ("bank-7", PLATFORM)) == 400_00
    assert lending.line("line-1").owed == written.owed - 400_00
    assert world.service.balance(world.people["alice"]) == 0  # all of it to the line
    (entry,) = [t for t in lending.line_transactions("line-1")[0] if t.kind == "recovery"]
    assert (entry.amount, entry.reference, entry.details["refunded"]) == (400_00, "pay-1", 400_00)
    assert world.service.refund("rf-1", "pay-1", 400_00).replayed
    with pytest.raises(PaymentError) as too_much:
        world.service.refund("rf-2", "pay-1", 600_01)
    assert too_much.value.code == "refund_exceeds_payment"
    # The operator recovers all but 1.00; the rest of the purchase then pays that 1.00 and
    # only the excess reaches the wallet.
    world.fund("alice", written.owed)
    lending.record_line_recovery("line-1", "rec-1", written.owed - 400_00 - 1_00, _today(world))
    before = world.service.balance(world.people["alice"])
    world.service.refund("rf-2", "pay-1", 600_00)
    assert world.service.balance(world.people["alice"]) == before + 599_00
    assert lending.line("line-1").owed == 0
    lost = {funder: sum(parts.values()) for funder, parts in done.by_funder.items()}
    assert {funder: _recovered(world, funder) for funder in ("bank-7", PLATFORM)} == lost
    assert world.service.safeguarding_check().in_balance
    assert lending.portfolio()["credit_lines"]["ledger_agrees"]


# A line transaction as 0013 to 0015 store it, written with sqlite3's placeholders.
_INSERT_TXN = (
    "INSERT INTO credit_line_transactions (line_id, txn_id, kind, amount, on_date, reference, "
    "details, digest, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _raw(ledger: Ledger, sql: str, *row: Any) -> None:
    with ledger.write() as uow:
        text = sql if uow.store.backend == "sqlite" else sql.replace("?", "%s")
        uow.connection.execute(text, row)


def _insert_txn(ledger: Ledger, txn_id: str, kind: str) -> None:
    _raw(ledger, _INSERT_TXN, "line-old", txn_id, kind, 5, "2027-01-15", None, "{}", b"d" * 32, 1)


def test_the_migration_keeps_line_transactions_and_takes_recoveries(database_url: str) -> None:
    """0017 widens `credit_line_transactions.kind` (SQLite rebuilds the table): rows written
    before it survive, `recovery` is accepted after it, an unknown kind is still refused, and
    the table is still append-only."""
    upgrade(database_url, "0016_payments_rowid")
    ledger = Ledger(ConnectionPool(database_url, size=2))
    _insert_txn(ledger, "write-off/old", "write_off")
    ledger.pool.close()
    upgrade(database_url)
    ledger = Ledger(ConnectionPool(database_url, size=2))
    try:
        with ledger.read() as store:
            kept = store.connection.execute(
                "SELECT kind, amount, on_date FROM credit_line_transactions "
                "WHERE txn_id = 'write-off/old'"
            ).fetchone()
        assert tuple(kept) == ("write_off", 5, "2027-01-15")
        _insert_txn(ledger, "recovery/new", "recovery")
        with pytest.raises(Exception, match=r"(?i)check"):
            _insert_txn(ledger, "gift/new", "gift")
        for change in (
            "UPDATE credit_line_transactions SET amount = 6",
            "DELETE FROM credit_line_transactions",
        ):
            with pytest.raises(Exception, match=r"append-only"):
                _raw(ledger, change)
    finally:
        ledger.pool.close()
