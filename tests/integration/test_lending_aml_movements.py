"""The money lending moves in and out of customers' wallets in the AML large-value reports
(A1, A2), on SQLite and PostgreSQL: a loan paid into a wallet is money in for the borrower, a
repayment money out, an SME loan and its sweep the merchant's; a purchase on a credit line and
a loan paid on to a card are each counted once; cumulative totals add payments and lending."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ledger_support import ManualClock
from lending_support import FixedScorer
from payments_support import PaymentsWorld, make_world
from plan_support import CapturingConnection, plan_text
from tianping.ledger.service import Ledger
from tianping.lending.chart import PLATFORM
from tianping.lending.model import Application
from tianping.lending.service import LendingService
from tianping.payments import aml_service
from tianping.payments.aml.errors import AmlError
from tianping.payments.aml.large_value import CATEGORIES, LargeValueThresholds, to_json
from tianping.payments.aml_service import AmlService
from tianping.payments.model import PaymentCommand, PaymentOutcome, local_date
from tianping.rules.config import cached_rulebook
from tianping.rules.service import RulesService

DAY_S = 86_400
LOAN = 10_000_00


class Consents:
    """Every consent the identity context could be asked about is live."""

    available = True
    missing: tuple[str, ...] = ()

    def service_available(self, party_id: str, service: str, uow: Any = None) -> Any:
        return self


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    world = make_world(ledger, clock)
    for name in ("alice", "bob"):
        world.person(name)
    world.merchant("noodles")
    return world


def _lending(world: PaymentsWorld) -> LendingService:
    """Lending attached to payments as the composition root attaches it: credit lines fund
    checkouts, and the AML reports read lending's movements."""
    lending = LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=FixedScorer(),
        consent=Consents(),
        sme_scorer=FixedScorer(),
        acquiring=world.service,
        card_rails=world.service,
    )
    world.service.credit_line = lending
    world.service.wallet_movements = lending
    return lending


def _loan(world: PaymentsWorld, lending: LendingService, loan_id: str, **extra: Any) -> None:
    fields: dict[str, Any] = {
        "application_id": f"app-{loan_id}",
        "party_id": world.people["alice"],
        "amount": LOAN,
        "term_months": 12,
        "annual_income": 120_000_00,
    }
    fields.update(extra)
    assert lending.apply(Application(**fields)).outcome == "approved"
    lending.accept(f"app-{loan_id}", loan_id)


def _aml(world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch, threshold: int) -> AmlService:
    """The AML service with one threshold for every category, so small amounts reach it."""
    aml = AmlService(world.service)
    small = LargeValueThresholds({"CNY": dict.fromkeys(CATEGORIES, threshold)}, "test")
    monkeypatch.setattr(aml, "_thresholds", lambda on: small)
    return aml


def _reports(aml: AmlService, world: PaymentsWorld) -> dict[tuple[str, str], Any]:
    day = local_date(world.clock()).isoformat()
    return {(r.customer_id, r.direction): r for r in aml.large_value_reports(day)}


def test_a_loan_paid_in_and_repaid_is_reported_in_and_out_for_the_borrower(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = world.people["alice"]
    lending = _lending(world)
    _loan(world, lending, "loan-1", partner_bank_id="bank-7")
    world.clock.advance(60)
    lending.repay("loan-1", "r-1", 6_000_00)
    # More than is owed: only what the waterfall takes leaves the wallet.
    owed = lending.quote_payoff("loan-1", local_date(world.clock())).total
    world.clock.advance(60)
    lending.repay("loan-1", "payoff", owed + 1_00)
    assert lending.loan("loan-1").status == "repaid"

    aml = _aml(world, monkeypatch, 5_000_00)
    reports = _reports(aml, world)
    assert set(reports) == {(alice, "in"), (alice, "out")}
    paid_in, paid_out = reports[alice, "in"], reports[alice, "out"]
    assert (paid_in.customer_kind, paid_in.category, paid_in.trigger, paid_in.total_minor) == (
        "person",
        "person_domestic_transfer",
        "single",
        LOAN,
    )
    assert paid_in.transaction_ids == ("loan-disbursement:loan-1",)
    assert paid_in.transaction_flows == ("loan_disbursement",)
    assert paid_out.transaction_ids == ("loan-repayment:loan-1/r-1", "loan-repayment:loan-1/payoff")
    assert paid_out.transaction_flows == ("loan_repayment", "loan_repayment")
    assert paid_out.total_minor == 6_000_00 + owed
    # The counterparty is the lender of record (the partner bank's id), never a name.
    sides = aml._transactions(local_date(world.clock()).isoformat())
    assert {side.counterparty_id for side in sides} == {"bank-7"}
    assert '"transaction_flows": ["loan_disbursement"]' in to_json([paid_in])


def test_without_lending_attached_the_reports_are_the_payments_alone(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    lending = _lending(world)
    _loan(world, lending, "loan-1")
    world.service.wallet_movements = None
    assert _reports(_aml(world, monkeypatch, 1_00), world) == {}


def test_cumulative_totals_add_payments_and_lending_of_a_customer_day_and_direction(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = world.people["alice"]
    world.fund("bob", 5_000_00)
    lending = _lending(world)
    _loan(world, lending, "loan-1")
    world.clock.advance(1)
    paid = world.pay("bob-to-alice", "bob", "alice", 4_000_00, auth_factors=2)
    assert isinstance(paid, PaymentOutcome) and paid.status == "completed", paid

    # Neither reaches 12,000.00 alone; together, in the same direction, they do.
    reports = _reports(_aml(world, monkeypatch, 12_000_00), world)
    received = reports[alice, "in"]
    assert (received.trigger, received.total_minor) == ("cumulative", LOAN + 4_000_00)
    assert received.transaction_ids == ("loan-disbursement:loan-1", "payment:bob-to-alice:in")
    assert received.transaction_flows == ("loan_disbursement", "payment")


def test_a_purchase_on_a_credit_line_is_counted_once_and_its_repayment_is_money_out(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = world.people["alice"]
    lending = _lending(world)
    application = Application(
        application_id="app-line",
        party_id=alice,
        amount=LOAN,
        term_months=12,
        annual_income=120_000_00,
        product="credit_line",
    )
    assert lending.apply(application).outcome == "approved"
    lending.open_line("app-line", "line-1", 20)
    command = PaymentCommand(
        "buy-1",
        alice,
        world.merchants["noodles"],
        3_000_00,
        "CNY",
        kind="merchant",
        funding_source="credit_line",
    )
    (bought,) = world.service.pay([command])
    assert isinstance(bought, PaymentOutcome) and bought.status == "completed", bought
    world.fund("alice", 2_000_00)
    world.clock.advance(60)
    lending.repay_line("line-1", "lr-1", 2_000_00)

    aml = _aml(world, monkeypatch, 1_00)
    reports = _reports(aml, world)
    spent = reports[alice, "out"]
    # The purchase is the payment alone (the draw moved none of alice's money), next to the
    # repayment of the line from her wallet.
    assert spent.transaction_ids == ("payment:buy-1:out", "line-repayment:line-1/lr-1")
    assert spent.transaction_flows == ("payment", "line_repayment")
    assert spent.total_minor == 3_000_00 + 2_000_00
    assert reports[alice, "in"].transaction_flows == ("topup",)
    day = local_date(world.clock()).isoformat()
    assert [s.counterparty_id for s in aml._transactions(day) if s.flow == "line_repayment"] == [
        PLATFORM
    ]


def test_a_loan_paid_on_to_a_card_is_counted_once_each_way(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = world.people["alice"]
    lending = _lending(world)
    _loan(world, lending, "loan-card")
    payout = lending.disburse_to_card("loan-card", world.cards["alice"])
    world.clock.advance(30)
    world.service.process_callbacks()
    assert world.service.rail_request(payout["request_id"]).state == "succeeded"

    reports = _reports(_aml(world, monkeypatch, 5_000_00), world)
    assert reports[alice, "in"].transaction_ids == ("loan-disbursement:loan-card",)
    assert reports[alice, "out"].transaction_ids == (f"withdrawal:{payout['request_id']}",)
    assert reports[alice, "in"].total_minor == reports[alice, "out"].total_minor == LOAN


def test_an_sme_loan_and_its_sweep_are_the_merchants_as_an_entity(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    noodles = world.merchants["noodles"]
    world.fund("bob", 5_000_00)
    for month in range(3):
        paid = world.pay(f"m{month}", "bob", "noodles", 600_00, auth_factors=2)
        assert paid.status == "completed"
        world.clock.advance(31 * DAY_S)
    lending = _lending(world)
    application = Application(
        application_id="app-sme",
        party_id=noodles,
        amount=600_00,
        term_months=6,
        annual_income=7_200_00 * 12,
        product="sme",
    )
    assert lending.apply(application).outcome == "approved"
    lending.accept("app-sme", "loan-sme", 1_000)
    paid = world.pay("takings", "bob", "noodles", 500_00, auth_factors=2)
    assert paid.status == "completed"
    day = str(paid.business_date)
    swept = lending.sweep_repayments(date.fromisoformat(day))
    assert (swept.swept, swept.amount) == (1, 50_00)

    aml = _aml(world, monkeypatch, 1_00)
    sides = [s for s in aml._transactions(day) if s.customer_id == noodles]
    by_flow = {s.flow: s for s in sides}
    assert set(by_flow) == {"loan_disbursement", "payment", "sweep"}
    assert {s.customer_kind for s in sides} == {"entity"}
    assert (by_flow["sweep"].transaction_id, by_flow["sweep"].direction) == (
        f"sweep:loan-sme:{day}",
        "out",
    )
    assert by_flow["sweep"].amount_minor == 50_00
    assert by_flow["loan_disbursement"].direction == "in"


def test_lending_movements_count_toward_the_days_bound(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    lending = _lending(world)
    _loan(world, lending, "loan-1")
    world.clock.advance(60)
    lending.repay("loan-1", "r-1", 100_00)
    day = local_date(world.clock()).isoformat()
    # The day holds the disbursement and the repayment: within a bound of two, beyond one.
    monkeypatch.setattr(aml_service, "MOVEMENTS_PER_DAY_MAX", 2)
    assert len(AmlService(world.service)._movements(day)) == 2
    monkeypatch.setattr(aml_service, "MOVEMENTS_PER_DAY_MAX", 1)
    with pytest.raises(AmlError) as refused:
        AmlService(world.service)._movements(day)
    assert refused.value.code == "too_many_transactions"


def test_lendings_movements_are_read_through_time_indexes(world: PaymentsWorld) -> None:
    """Each part of lending's one statement reads an index by kind and time (migration 0020),
    never a whole table of loan events or line transactions. SQLite chooses them as it is;
    PostgreSQL plans these small tables by cost, so there the plan is asked for with
    sequential scans priced out."""
    from tianping.lending.movements import LendingMovementStore

    backend = world.ledger.pool.backend
    capture = CapturingConnection()
    LendingMovementStore(capture, backend).wallet_movements(0, DAY_S * 1_000_000_000, 10)
    parameters = (0, 1, 0, 1, "recovery/%", 0, 1, 10)
    with world.ledger.read() as store:
        text = plan_text(store.connection, backend, capture.sql, parameters)
    for index in ("loan_events_by_kind_time", "credit_line_transactions_by_kind_time"):
        assert index in text, text
    for table in ("loan_events", "credit_line_transactions"):
        assert f"Seq Scan on {table}" not in text, text
    assert "SCAN e " not in text and "SCAN t " not in text, text
