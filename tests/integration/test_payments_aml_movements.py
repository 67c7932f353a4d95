"""AML over every movement the platform executes, on SQLite and PostgreSQL: the large-value
reports (A1, A2) of a local business day cover its posted top-ups and withdrawals, refunds and
merchant payouts next to its payments, and the rapid in-and-out detector sees withdrawals."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

import pytest

from ledger_support import ManualClock
from payments_support import NS, PaymentsWorld, make_world
from plan_support import CapturingConnection, plan_text
from tianping.ledger.service import Ledger
from tianping.payments import aml_service
from tianping.payments.aml.errors import AmlError
from tianping.payments.aml.large_value import CATEGORIES, LargeValueThresholds, to_csv
from tianping.payments.aml.patterns import Alert, DetectorSuite
from tianping.payments.aml_service import AmlService
from tianping.payments.model import PaymentOutcome, local_date
from tianping.payments.service import DEFAULT_RAIL_TIMEOUT_S
from tianping.payments.store import PaymentsStore

DAY_S = 86_400
ACCOUNT = "6217 0000 1234 5678 901"


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    world = make_world(ledger, clock)
    for name in ("alice", "bob", "carol"):
        world.person(name)
    world.merchant("noodles")
    return world


def _today(world: PaymentsWorld) -> str:
    return local_date(world.clock()).isoformat()


def _withdraw(world: PaymentsWorld, request_id: str, name: str, amount: int) -> None:
    """A withdrawal to the person's own bound card, posted by the clearing house."""
    world.service.request_rail(
        request_id, "withdrawal", world.people[name], world.cards[name], amount
    )
    world.clock.advance(30)
    world.service.process_callbacks()
    assert world.service.rail_request(request_id).state == "succeeded"


def _pay(world: PaymentsWorld, payment_id: str, payer: str, payee: str, amount: int) -> None:
    # A second apart, so the reports list the transactions in the order the test made them.
    world.clock.advance(1)
    paid = world.pay(payment_id, payer, payee, amount, auth_factors=2)
    assert isinstance(paid, PaymentOutcome) and paid.status == "completed", paid


def _small(aml: AmlService, monkeypatch: pytest.MonkeyPatch, threshold: int) -> None:
    """The same threshold for every category, so a test's small amounts reach it."""
    small = LargeValueThresholds({"CNY": dict.fromkeys(CATEGORIES, threshold)}, "test")
    monkeypatch.setattr(aml, "_thresholds", lambda on: small)


def _by_customer(reports: list[Any]) -> dict[tuple[str, str], Any]:
    return {(report.customer_id, report.direction): report for report in reports}


def test_posted_top_ups_and_withdrawals_are_in_the_days_reports(world: PaymentsWorld) -> None:
    """Under the thresholds in force (500,000 CNY for a person's domestic transfer), a top-up
    and a withdrawal of that much are each reported; a request still pending and one the
    ledger voided after its timeout moved no money and are not."""
    alice = world.people["alice"]
    world.fund("alice", 600_000_00)
    _withdraw(world, "wd-big", "alice", 500_000_00)
    world.service.request_rail("wd-void", "withdrawal", alice, world.cards["alice"], 90_000_00)
    world.clock.advance(DEFAULT_RAIL_TIMEOUT_S + 1)
    world.service.expire_rail_requests()
    assert world.service.rail_request("wd-void").state == "timed_out"
    world.service.request_rail("tu-pending", "top_up", alice, world.cards["alice"], 700_000_00)
    assert world.service.rail_request("tu-pending").state == "submitted"

    aml = AmlService(world.service)
    day = _today(world)
    reports = _by_customer(aml.large_value_reports(day))
    assert set(reports) == {(alice, "in"), (alice, "out")}
    top_up, withdrawal = reports[alice, "in"], reports[alice, "out"]
    assert (top_up.category, top_up.trigger, top_up.total_minor) == (
        "person_domestic_transfer",
        "single",
        600_000_00,
    )
    assert top_up.transaction_ids[0].startswith("topup:fund-alice-")
    assert top_up.transaction_flows == ("topup",)
    assert (withdrawal.category, withdrawal.trigger, withdrawal.total_minor) == (
        "person_domestic_transfer",
        "single",
        500_000_00,
    )
    assert (withdrawal.transaction_ids, withdrawal.transaction_flows) == (
        ("withdrawal:wd-big",),
        ("withdrawal",),
    )
    # The bank side is the partner bank's pseudonymous id, never the card.
    rail = world.service.rail_request("wd-big")
    sides = aml._transactions(day)
    assert {side.counterparty_id for side in sides} == {rail.bank_id} != {rail.card_token}
    assert len(sides) == 2  # neither the voided nor the pending request
    # The export shows each transaction's flow next to its id.
    assert to_csv([withdrawal]).splitlines()[1].endswith(",withdrawal")


def test_a_day_before_the_thresholds_took_effect_has_no_thresholds(world: PaymentsWorld) -> None:
    """Found by tests/e2e/test_api_fuzz.py: the large-value reports of a day before the cn
    rulebook's thresholds are all in force (2017-07-01; only the CNY cash one is older) failed
    with a TypeError, reading the rulebook's `repealed` marker as an amount. Such a day has no
    thresholds: its reports are empty, and a movement that day would be refused
    (`threshold_missing`) rather than left unreported."""
    aml = AmlService(world.service)
    assert dict(aml._thresholds(date(2017, 6, 30)).by_currency) == {}
    assert aml.large_value_reports("2017-06-30") == []
    assert aml.large_value_reports("1970-01-01") == []
    assert set(aml._thresholds(date(2017, 7, 1)).by_currency) == {"CNY", "USD"}


def test_a_rail_belongs_to_the_local_day_it_was_posted(world: PaymentsWorld) -> None:
    """A top-up requested just before local midnight and posted after it is the new day's
    (the day the money moved), whatever the clearing house's business date."""
    now = world.clock() // NS
    local_midnight = ((now + 8 * 3600) // DAY_S + 1) * DAY_S - 8 * 3600
    world.clock.advance(local_midnight - 10 - now)
    before = _today(world)
    world.service.request_rail("late", "top_up", world.people["bob"], world.cards["bob"], 10_00)
    world.clock.advance(30)
    world.service.process_callbacks()
    assert world.service.rail_request("late").state == "succeeded"
    after = _today(world)
    assert after != before
    aml = AmlService(world.service)
    assert [s.transaction_id for s in aml._transactions(before)] == []
    assert [s.transaction_id for s in aml._transactions(after)] == ["topup:late"]


def test_cumulative_totals_add_payments_and_rails_of_a_customer_day_and_direction(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = world.people["alice"], world.people["bob"]
    world.fund("bob", 2_000_00)
    world.fund("alice", 600_00)
    _pay(world, "bob-to-alice", "bob", "alice", 500_00)
    _pay(world, "alice-to-bob", "alice", "bob", 400_00)
    _withdraw(world, "alice-out", "alice", 650_00)
    aml = AmlService(world.service)
    _small(aml, monkeypatch, 1_000_00)
    reports = _by_customer(aml.large_value_reports(_today(world)))
    received, sent = reports[alice, "in"], reports[alice, "out"]
    assert (received.trigger, received.total_minor) == ("cumulative", 1_100_00)
    assert received.transaction_flows == ("topup", "payment")
    assert received.transaction_ids[1] == "payment:bob-to-alice:in"
    assert (sent.trigger, sent.total_minor) == ("cumulative", 1_050_00)
    assert sent.transaction_ids == ("payment:alice-to-bob:out", "withdrawal:alice-out")
    assert sent.category == "person_domestic_transfer"
    # Bob's own top-up reaches the threshold alone; his payment and receipt are below it.
    assert reports[bob, "in"].trigger == "single"
    assert (bob, "out") not in reports


def test_refunds_and_merchant_payouts_are_the_merchants_transfers(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refund moves money from the merchant back to the payer, both sides reported; the
    next morning's settlement pays the merchant's net out to its bank: an entity's transfer
    on the day it was paid, not on the day of the takings."""
    shop, alice = world.merchants["noodles"], world.people["alice"]
    world.fund("alice", 1_000_00)
    _pay(world, "lunch", "alice", "noodles", 600_00)
    world.clock.advance(1)
    world.service.refund("lunch-back", "lunch", 100_00)
    takings_day = _today(world)
    aml = AmlService(world.service)
    _small(aml, monkeypatch, 50_00)
    reports = _by_customer(aml.large_value_reports(takings_day))
    assert reports[shop, "out"].transaction_ids == ("refund:lunch-back:out",)
    assert reports[shop, "out"].category == "entity_transfer"
    assert reports[alice, "in"].transaction_flows == ("topup", "refund")

    world.clock.advance(DAY_S)
    (settlement,) = world.service.settle_merchants(takings_day).settlements
    payout_day = _today(world)
    assert payout_day != takings_day and settlement.net == 500_00 - settlement.fee
    (payout,) = aml.large_value_reports(payout_day)
    assert (payout.customer_id, payout.customer_kind, payout.direction) == (shop, "entity", "out")
    assert (payout.category, payout.total_minor) == ("entity_transfer", settlement.net)
    assert payout.transaction_ids == (f"payout:{settlement.settlement_id}",)
    (side,) = aml._transactions(payout_day)
    assert side.counterparty_id == "merchant-payout"
    assert all(not r.transaction_ids[0].startswith("payout:") for r in reports.values())


def test_a_payout_of_the_free_balance_is_reported_once_posted(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Takings a sweep released are free; paid out to the merchant's registered bank account
    through the clearing house, they are the merchant's transfer to that bank."""
    from tianping.identity import party_service

    shop = world.merchants["noodles"]
    world.fund("alice", 1_000_00)
    _pay(world, "dinner", "alice", "noodles", 800_00)
    world.service.release_takings("sweep:demo", shop, _today(world), 300_00)
    registration = party_service.get_party(world.ledger, shop).registration_number
    assert registration is not None
    account = world.key.bank_account(ACCOUNT)
    world.service.register_payout_account(
        shop, account.fingerprint, account.last_four, registration
    )
    held = world.service.request_merchant_payout("po-1", shop, 300_00)
    aml = AmlService(world.service)
    _small(aml, monkeypatch, 100_00)
    assert (shop, "out") not in _by_customer(aml.large_value_reports(_today(world)))
    world.clock.advance(30)
    world.service.process_callbacks()
    assert world.service.merchant_payout(shop, "po-1").state == "succeeded"
    payout = _by_customer(aml.large_value_reports(_today(world)))[shop, "out"]
    assert (payout.customer_kind, payout.category) == ("entity", "entity_transfer")
    assert (payout.transaction_ids, payout.total_minor) == (("payout:rail:po-1",), 300_00)
    sides = [s for s in aml._transactions(_today(world)) if s.flow == "payout"]
    assert [s.counterparty_id for s in sides] == [held.bank_id]


def test_a_day_beyond_the_movement_limit_is_refused_not_cut(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.fund("alice", 100_00)
    _pay(world, "one", "alice", "bob", 10_00)
    _withdraw(world, "two", "alice", 10_00)
    aml = AmlService(world.service)
    monkeypatch.setattr(aml_service, "MOVEMENTS_PER_DAY_MAX", 2)
    with pytest.raises(AmlError) as refused:
        aml.large_value_reports(_today(world))
    assert refused.value.code == "too_many_transactions"
    monkeypatch.setattr(aml_service, "MOVEMENTS_PER_DAY_MAX", 3)
    assert len(aml._transactions(_today(world))) == 4  # the payment's two sides, two rails


def test_rapid_in_and_out_sees_withdrawals_but_not_top_ups(world: PaymentsWorld) -> None:
    """Carol takes two payments and withdraws them within the hour: a pass-through. Dave tops
    up twice and spends it at once: an ordinary wallet, not judged on its top-ups."""
    carol = world.people["carol"]
    world.person("dave")
    world.fund("alice", 500_00)
    world.fund("bob", 500_00)
    _pay(world, "a-to-c", "alice", "carol", 300_00)
    _pay(world, "b-to-c", "bob", "carol", 300_00)
    _withdraw(world, "c-out", "carol", 580_00)
    world.fund("dave", 200_00)
    world.fund("dave", 200_00)
    _pay(world, "d-to-shop", "dave", "noodles", 390_00)
    only_rapid = DetectorSuite(fan_in=None, fan_out=None, cycle=None)
    aml = AmlService(world.service, only_rapid)
    scan = aml.scan(_today(world), days=1)
    (case,) = aml.cases("open")
    assert scan.cases_opened == (case.case_id,)
    assert case.alert["accounts"][0] == carol
    assert "withdrawal:c-out" in case.alert["transactions"]
    assert scan.alerts == 1  # no alert for dave, nor for the bank that received the withdrawal
    assert aml.scan(_today(world), days=1).cases_opened == ()


def test_a_payments_alert_keeps_the_case_id_it_had_before_flows_were_named() -> None:
    """Alerts made of payments were keyed by `<payment id>:<side>`; their cases keep their ids,
    so a scan of days scanned before the flows were named opens no second case."""
    alert = Alert("fan_out", ("acct-a", "acct-b"), ("payment:p-2:out", "payment:p-1:out"), 900, "")
    legacy = json.dumps(["fan_out", ["acct-a", "acct-b"], ["p-1:out", "p-2:out"]])
    expected = f"aml:fan_out:{hashlib.sha256(legacy.encode()).hexdigest()[:20]}"
    assert aml_service._case_id(alert) == expected


def test_the_days_movements_are_read_through_indexes(world: PaymentsWorld) -> None:
    """Each part of the one statement can read an index: the payments by date, and the posted
    rail requests, refunds and settlements by time (migration 0019), never a whole table.
    SQLite chooses them as it is; PostgreSQL plans these small tables by cost, so there the
    plan is asked for with sequential scans priced out."""
    backend = world.ledger.pool.backend
    capture = CapturingConnection()
    PaymentsStore(capture, backend).executed_movements("2026-11-27", 0, DAY_S * NS, 10)
    parameters = ("2026-11-27", 0, 1, 0, 1, "x", 0, 1, 10)
    with world.ledger.read() as store:
        text = plan_text(store.connection, backend, capture.sql, parameters)
    for index in (
        "payments_by_date",
        "rail_requests_posted",
        "payment_refunds_by_time",
        "merchant_settlements_by_time",
    ):
        assert index in text, text
    assert "SCAN payments" not in text and "Seq Scan" not in text, text
