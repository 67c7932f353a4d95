"""Payments on the ledger, under the rules engine, with identity, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ledger_support import ManualClock
from payments_support import NS, PaymentsWorld, make_world
from tianping.ledger.service import Ledger
from tianping.payments.model import PaymentError, PaymentOutcome


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    world = make_world(ledger, clock)
    world.person("alice")
    world.person("bob")
    world.merchant("noodles")
    return world


def test_top_up_pay_and_safeguard(world: PaymentsWorld) -> None:
    world.fund("alice", 300_00)
    assert world.service.balance(world.people["alice"]) == 300_00
    paid = world.pay("p-1", "alice", "bob", 120_00, auth_factors=2)
    assert isinstance(paid, PaymentOutcome), paid
    assert paid.status == "completed", paid
    assert world.service.balance(world.people["bob"]) == 120_00
    check = world.service.safeguarding_check()
    assert check.in_balance, check
    assert check.reserve == 300_00


def _pay(world: PaymentsWorld, *args: object, **extra: object) -> PaymentOutcome:
    answer = world.pay(*args, **extra)  # type: ignore[arg-type]
    assert isinstance(answer, PaymentOutcome), answer
    return answer


def test_a_retry_replays_and_a_changed_retry_conflicts(world: PaymentsWorld) -> None:
    world.fund("alice", 100_00)
    first = _pay(world, "p-r", "alice", "bob", 10_00, auth_factors=2)
    again = _pay(world, "p-r", "alice", "bob", 10_00, auth_factors=2)
    assert again.replayed and again.transfer_id == first.transfer_id
    assert world.service.balance(world.people["bob"]) == 10_00
    conflict = world.pay("p-r", "alice", "bob", 11_00, auth_factors=2)
    assert isinstance(conflict, PaymentError) and conflict.code == "request_conflict"


def test_insufficient_funds_declines_and_counts_nothing(world: PaymentsWorld) -> None:
    world.fund("alice", 5_00)
    declined = _pay(world, "p-poor", "alice", "bob", 6_00, auth_factors=2)
    assert (declined.status, declined.decline_code) == ("declined", "insufficient_funds")
    paid = _pay(world, "p-ok", "alice", "bob", 5_00, auth_factors=2)
    assert paid.status == "completed"


def test_the_daily_cap_asks_for_a_step_up_and_the_payment_resumes(world: PaymentsWorld) -> None:
    world.fund("alice", 3_000_00)
    stopped = _pay(world, "p-big", "alice", "bob", 1_500_00, auth_factors=1)
    assert stopped.status == "step_up_required"
    assert "cn.payments.daily_cap_by_authentication" in stopped.reasons
    assert world.service.balance(world.people["bob"]) == 0
    resumed = world.service.resume("p-big", auth_factors=2)
    assert resumed.status == "completed", resumed
    assert world.service.balance(world.people["bob"]) == 1_500_00
    assert world.service.payment("p-big").status == "completed"


def test_a_class_i_wallet_is_capped_at_1000_yuan_since_opening(
    world: PaymentsWorld,
) -> None:
    world.person("carol", channels=1)
    world.fund("carol", 2_000_00)
    assert _pay(world, "c-1", "carol", "bob", 600_00, auth_factors=2).status == "completed"
    assert _pay(world, "c-2", "carol", "bob", 400_00, auth_factors=2).status == "completed"
    over = _pay(world, "c-3", "carol", "bob", 1, auth_factors=2)
    assert (over.status, over.decline_code) == ("declined", "rule_denied")
    assert over.reasons == ("cn.payments.class_i_cumulative_cap",)


def test_a_blocklisted_payer_is_refused(world: PaymentsWorld) -> None:
    from tianping.identity import party_service
    from tianping.payments.model import local_date

    world.fund("alice", 100_00)
    party_service.add_to_blocklist(
        world.ledger,
        world.people["alice"],
        listed_on=local_date(world.clock()),
        reason_code="account_selling",
        case_reference="police-1",
        clock=world.clock,
    )
    refused = _pay(world, "p-blocked", "alice", "bob", 1_00, auth_factors=2)
    assert refused.status == "declined"
    assert "cn.payments.blocklisted_account_suspended" in refused.reasons


def test_merchant_qr_payments_static_and_dynamic(world: PaymentsWorld) -> None:
    from tianping.payments.qr import parse_merchant_qr

    world.fund("alice", 1_000_00)
    shop = world.merchants["noodles"]
    payload = world.service.static_qr(shop, "Noodle Bar")
    command = world.service.qr_command("q-1", world.people["alice"], payload, 45_50, auth_factors=2)
    assert command.channel == "qr_static" and command.qr_grade == "D"
    (paid,) = world.service.pay([command])
    assert isinstance(paid, PaymentOutcome) and paid.status == "completed", paid
    order, dynamic = world.service.create_order(shop, "Noodle Bar", "order-7", 88_00)
    assert (order.amount, order.payment_id) == (88_00, None)
    assert parse_merchant_qr(dynamic).amount_minor == 88_00
    command = world.service.qr_command("q-2", world.people["alice"], dynamic, auth_factors=2)
    assert (command.amount, command.channel) == (88_00, "qr_dynamic")
    (paid,) = world.service.pay([command])
    assert isinstance(paid, PaymentOutcome) and paid.status == "completed", paid
    again = world.service.qr_command("q-3", world.people["alice"], dynamic, auth_factors=2)
    (refused,) = world.service.pay([again])
    assert isinstance(refused, PaymentError) and refused.code == "qr_order_paid"
    with pytest.raises(PaymentError, match="fixed"):
        world.service.qr_command("q-4", world.people["alice"], dynamic, 1_00, auth_factors=2)


def test_static_qr_payments_are_capped_at_500_yuan_a_day(world: PaymentsWorld) -> None:
    world.fund("alice", 2_000_00)
    payload = world.service.static_qr(world.merchants["noodles"], "Noodle Bar")
    outcomes = []
    for index, amount in enumerate((300_00, 200_00, 1)):
        command = world.service.qr_command(
            f"s-{index}", world.people["alice"], payload, amount, auth_factors=2
        )
        (answer,) = world.service.pay([command])
        assert isinstance(answer, PaymentOutcome)
        outcomes.append(answer)
    assert [o.status for o in outcomes] == ["completed", "completed", "declined"]
    assert outcomes[2].reasons == ("cn.payments.qr_daily_cap",)


def test_refunds_never_exceed_the_payment(world: PaymentsWorld) -> None:
    world.fund("alice", 100_00)
    paid = _pay(world, "m-1", "alice", "noodles", 60_00, auth_factors=2)
    assert paid.status == "completed"
    first = world.service.refund("r-1", "m-1", 20_00)
    second = world.service.refund("r-2", "m-1", 40_00)
    assert (first.refunded_total, second.refunded_total) == (20_00, 60_00)
    assert world.service.refund("r-1", "m-1", 20_00).replayed
    with pytest.raises(PaymentError) as beyond:
        world.service.refund("r-3", "m-1", 1)
    assert beyond.value.code == "refund_exceeds_payment"
    with pytest.raises(PaymentError) as conflict:
        world.service.refund("r-1", "m-1", 10_00)
    assert conflict.value.code == "request_conflict"
    assert world.service.balance(world.people["alice"]) == 100_00


def test_settlement_pays_merchants_net_of_the_discount_and_keeps_client_money_whole(
    world: PaymentsWorld,
) -> None:
    world.fund("alice", 500_00)
    for index in range(3):
        assert _pay(world, f"m-{index}", "alice", "noodles", 100_00, auth_factors=2).status == (
            "completed"
        )
    world.service.refund("r-0", "m-0", 50_00)
    day = world.service.payment("m-0").business_date
    report = world.service.settle_merchants(day)
    (settlement,) = report.settlements
    assert (settlement.gross, settlement.refunds) == (300_00, 50_00)
    assert settlement.fee == (250_00 * 60 + 5_000) // 10_000
    assert settlement.net == 250_00 - settlement.fee
    assert world.service.settle_merchants(day).settlements == report.settlements
    check = world.service.safeguarding_check()
    assert check.in_balance, check
    assert check.client_liabilities == 500_00 - 300_00 + 50_00


def test_withdrawals_declines_timeouts_and_duplicate_callbacks(
    ledger: Ledger, clock: ManualClock
) -> None:
    from tianping.payments.clearing_sim import ScriptedScenario, SimulatorBehaviour

    behaviour = SimulatorBehaviour(
        script={
            "w-decline": ScriptedScenario("decline", "insufficient_funds"),
            "w-timeout": ScriptedScenario("timeout"),
            "w-dup": ScriptedScenario("duplicate"),
            "w-late": ScriptedScenario("late"),
        }
    )
    world = make_world(ledger, clock, behaviour)
    world.person("alice")
    world.fund("alice", 1_000_00)
    alice, card = world.people["alice"], world.cards["alice"]
    for request_id in ("w-decline", "w-timeout", "w-dup", "w-late"):
        world.service.request_rail(request_id, "withdrawal", alice, card, 100_00)
    # Every hold is reserved at once.
    assert world.service.balance(alice) == 600_00
    clock.advance(60)
    reports = world.service.process_callbacks()
    dispositions = {(r.request_id, r.disposition) for r in reports}
    assert ("w-decline", "applied") in dispositions
    assert ("w-dup", "applied") in dispositions
    assert ("w-dup", "duplicate") in dispositions
    assert world.service.rail_request("w-decline").state == "declined"
    assert world.service.rail_request("w-dup").state == "succeeded"
    clock.advance(200)
    world.service.process_callbacks()
    assert world.service.rail_request("w-timeout").state == "timed_out"
    assert world.service.rail_request("w-late").state == "timed_out"
    # The declined, timed-out and late holds are back; the duplicate-callback one paid once.
    assert world.service.balance(alice) == 900_00
    clock.advance(4_000)
    late = world.service.process_callbacks()
    assert ("w-late", "late_after_timeout") in {(r.request_id, r.disposition) for r in late}
    day = world.service.rail_request("w-late").business_date
    report = world.service.reconcile(day)
    assert {b.request_id for b in report.breaks} == {"w-late"}
    assert world.service.safeguarding_check().in_balance


def test_counters_are_exact_under_concurrent_payments(world: PaymentsWorld) -> None:
    """Eight threads pay from one Class I wallet at once: the 1,000-yuan cap holds exactly."""
    import threading

    world.person("dave", channels=1)
    world.fund("dave", 2_000_00)
    results: list[object] = []

    def pay(thread: int) -> None:
        for index in range(5):
            results.append(world.pay(f"t-{thread}-{index}", "dave", "bob", 30_00, auth_factors=2))

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    completed = [r for r in results if isinstance(r, PaymentOutcome) and r.status == "completed"]
    assert len(results) == 40
    assert len(completed) == 1_000_00 // 30_00
    assert world.service.balance(world.people["dave"]) == 2_000_00 - len(completed) * 30_00


def test_a_reserve_that_disagrees_with_client_money_is_reported(world: PaymentsWorld) -> None:
    from tianping.ledger.model import NewTransfer
    from tianping.payments import chart

    world.fund("alice", 100_00)
    assert world.service.safeguarding_check().in_balance
    # Someone moves reserve money to the operating account outside any payment flow.
    world.ledger.create_transfers(
        [
            NewTransfer(
                999, chart.operating_account("CNY"), chart.reserve_account("CNY"), 7_00, "CNY", 1
            )
        ]
    )
    broken = world.service.safeguarding_check()
    assert not broken.in_balance
    assert broken.difference == -7_00
    assert broken.transfers_since_last_good == 1


def test_aml_scan_opens_cases_and_every_case_action_is_audited(world: PaymentsWorld) -> None:
    from tianping.payments.aml_service import AmlService

    world.fund("alice", 2_000_00)
    for index in range(5):
        world.person(f"payee{index}")
        assert _pay(
            world, f"f-{index}", "alice", f"payee{index}", 10_00, auth_factors=2
        ).status == ("completed")
    aml = AmlService(world.service)
    day = world.service.payment("f-0").business_date
    scan = aml.scan(day, days=1)
    fan_out = [c for c in aml.cases("open") if c.kind == "fan_out"]
    assert len(fan_out) == 1 and scan.cases_opened
    assert world.people["alice"] in fan_out[0].alert["accounts"]
    assert aml.scan(day, days=1).cases_opened == ()  # the same alert opens no second case
    case_id = fan_out[0].case_id
    aml.act(case_id, "assign", "officer-1", "officer-1")
    aml.act(case_id, "annotate", "officer-1", "a salary run, documented")
    closed = aml.act(case_id, "close", "officer-1", "no_action")
    assert (closed.status, closed.disposition) == ("closed", "no_action")
    with pytest.raises(Exception, match="closed"):
        aml.act(case_id, "annotate", "officer-1", "too late")
    actions = [event[3] for event in aml.case_events(case_id)]
    assert actions == ["open", "assign", "annotate", "close"]


def test_a_scan_opens_at_most_its_case_limit_highest_scores_first(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tianping.payments import aml_service
    from tianping.payments.aml.patterns import DetectorSuite, FanParameters

    # Three payers fan out to 4, 6 and 8 payees: fan-out scores 500, 750 and 1000.
    for payer, payees in (("p4", 4), ("p6", 6), ("p8", 8)):
        world.person(payer)
        world.fund(payer, 1_000_00)
        for index in range(payees):
            world.person(f"{payer}-payee{index}")
            _pay(world, f"{payer}-{index}", payer, f"{payer}-payee{index}", 10_00, auth_factors=2)
    fans_only = DetectorSuite(
        rapid_in_out=None,
        fan_in=None,
        cycle=None,
        fan_out=FanParameters(window_seconds=86_400, min_counterparties=4),
    )
    aml = aml_service.AmlService(world.service, fans_only)
    day = world.service.payment("p4-0").business_date
    monkeypatch.setattr(aml_service, "CASES_PER_SCAN_MAX", 2)
    first = aml.scan(day, days=1)
    assert (first.alerts, len(first.cases_opened), first.alerts_not_opened) == (3, 2, 1)
    opened = {case.case_id: case for case in aml.cases("open")}
    assert sorted(case.alert["score"] for case in opened.values()) == [750, 1000]
    # The next scan opens the one left over; the two already open are not counted again.
    second = aml.scan(day, days=1)
    assert (len(second.cases_opened), second.alerts_not_opened) == (1, 0)
    assert [
        case.alert["score"] for case in aml.cases("open") if case.case_id in second.cases_opened
    ] == [500]


def test_a_merchants_ordinary_trade_opens_no_fan_in_case(world: PaymentsWorld) -> None:
    from tianping.payments.aml.patterns import DetectorSuite
    from tianping.payments.aml_service import AmlService

    # Four days of a shop's trade: the same eight customers buy lunch every day. On the last
    # day they also pay bob back for a dinner, a fan-in of eight payers into a person.
    payers = [f"eater{index}" for index in range(8)]
    for payer in payers:
        world.person(payer)
        world.fund(payer, 500_00)
    days = []
    for day in range(4):
        for index, payer in enumerate(payers):
            lunch = 25_00 + 150 * index
            paid = _pay(world, f"lunch-{day}-{payer}", payer, "noodles", lunch, auth_factors=2)
            assert paid.status == "completed", paid
        days.append(paid.business_date)
        if day == 3:
            for payer in payers:
                _pay(world, f"dinner-{payer}", payer, "bob", 60_00, auth_factors=2)
        world.clock.advance(86_400)
    assert len(set(days)) == 4 and world.service.payment("dinner-eater0").business_date == days[-1]
    aml = AmlService(world.service, DetectorSuite(rapid_in_out=None, fan_out=None, cycle=None))
    scan = aml.scan(days[-1], days=4)
    fan_in = [case for case in aml.cases("open") if case.kind == "fan_in"]
    assert [case.alert["accounts"][0] for case in fan_in] == [world.people["bob"]]
    assert scan.alerts == 1
    # The merchant's eight payers a day would open a case if it were judged like a person:
    # the service knows it is a merchant from its payments.
    as_person = DetectorSuite(rapid_in_out=None, fan_out=None, cycle=None, merchant_fan_in=None)
    again = AmlService(world.service, as_person).scan(days[-1], days=4)
    (opened,) = again.cases_opened
    merchant_case = next(case for case in aml.cases("open") if case.case_id == opened)
    assert merchant_case.alert["accounts"][0] == world.merchants["noodles"]


def test_large_value_reports_see_both_sides_of_each_payment(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Payments here; the other flows (rails, refunds, payouts) are in
    test_payments_aml_movements.py."""
    from tianping.payments.aml.large_value import LargeValueThresholds
    from tianping.payments.aml_service import AmlService

    world.fund("alice", 100_00)
    _pay(world, "lv-1", "alice", "bob", 30_00, auth_factors=2)
    _pay(world, "lv-2", "alice", "bob", 30_00, auth_factors=2)
    aml = AmlService(world.service)
    day = world.service.payment("lv-1").business_date
    assert aml.large_value_reports(day) == []  # far below the thresholds in force
    small = LargeValueThresholds(
        {
            "CNY": dict.fromkeys(
                ("cash", "entity_transfer", "person_domestic_transfer", "person_cross_border"),
                50_00,
            )
        },
        "test",
    )
    monkeypatch.setattr(aml, "_thresholds", lambda on: small)
    reports = aml.large_value_reports(day)
    sides = {(r.customer_id, r.direction, r.total_minor, r.trigger) for r in reports}
    assert sides == {
        (world.people["alice"], "in", 100_00, "single"),  # her top-up
        (world.people["alice"], "out", 60_00, "cumulative"),
        (world.people["bob"], "in", 60_00, "cumulative"),
    }


def test_a_dynamic_qr_payment_held_for_a_step_up_resumes_against_its_order(
    world: PaymentsWorld,
) -> None:
    world.fund("alice", 3_000_00)
    shop = world.merchants["noodles"]
    _, payload = world.service.create_order(shop, "Noodle Bar", "big-order", 1_500_00)
    command = world.service.qr_command("q-big", world.people["alice"], payload, auth_factors=1)
    (held,) = world.service.pay([command])
    assert isinstance(held, PaymentOutcome) and held.status == "step_up_required", held
    resumed = world.service.resume("q-big", auth_factors=2)
    assert resumed.status == "completed", resumed
    again = world.service.qr_command("q-again", world.people["alice"], payload, auth_factors=2)
    (refused,) = world.service.pay([again])
    assert isinstance(refused, PaymentError) and refused.code == "qr_order_paid"


def test_a_customer_presented_payment_code_pays_once(world: PaymentsWorld) -> None:
    from tianping.payments.payment_codes import PaymentCodeIssuer

    world.fund("alice", 100_00)
    credential = world.service.enrol_payment_code(world.people["alice"])
    app = PaymentCodeIssuer(credential)
    code = app.code_at(world.clock() // NS)
    shop = world.merchants["noodles"]
    command = world.service.payment_code_command("pc-1", shop, code, 12_00)
    assert (command.payer_id, command.channel, command.qr_grade) == (
        world.people["alice"],
        "payment_code",
        "C",
    )
    (paid,) = world.service.pay([command])
    assert isinstance(paid, PaymentOutcome) and paid.status == "completed", paid
    with pytest.raises(PaymentError) as used:
        world.service.payment_code_command("pc-2", shop, code, 12_00)
    assert used.value.code == "payment_code_used"
    world.clock.advance(600)
    with pytest.raises(PaymentError) as expired:
        world.service.payment_code_command("pc-3", shop, app.code_at(world.clock() // NS - 300), 1)
    assert expired.value.code == "payment_code_expired"
    forged = code[:-1] + str((int(code[-1]) + 1) % 10)
    with pytest.raises(PaymentError) as invalid:
        world.service.payment_code_command("pc-4", shop, forged, 1)
    assert invalid.value.code in ("payment_code_invalid", "payment_code_expired")
    # Re-enrolling retires the old secret.
    fresh = world.service.enrol_payment_code(world.people["alice"])
    old = app.code_at(world.clock() // NS)
    with pytest.raises(PaymentError):
        world.service.payment_code_command("pc-5", shop, old, 1)
    new = PaymentCodeIssuer(fresh).code_at(world.clock() // NS)
    assert (
        world.service.payment_code_command("pc-6", shop, new, 1).payer_id == world.people["alice"]
    )


def test_a_checkout_paid_from_the_bound_card(ledger: Ledger, clock: ManualClock) -> None:
    """The card's money arrives through the clearing house, then pays the merchant; balance
    caps do not count it (P1/P2 count balance payments); a declined card fails the checkout."""
    from tianping.payments.clearing_sim import ScriptedScenario, SimulatorBehaviour

    behaviour = SimulatorBehaviour(
        script={"card-co-2": ScriptedScenario("decline", "insufficient_funds")}
    )
    world = make_world(ledger, clock, behaviour)
    world.person("carol", channels=1)  # Class I: 1,000 yuan of balance payments since opening
    world.merchant("shop")
    shop, carol, card = world.merchants["shop"], world.people["carol"], world.cards["carol"]
    state = world.service.checkout_with_card("co-1", carol, shop, 1_500_00, card)
    assert state == "pending"
    assert world.service.checkout_with_card("co-1", carol, shop, 1_500_00, card) == "pending"
    clock.advance(60)
    world.service.process_callbacks()
    assert world.service.card_checkout_state("co-1") == (carol, "paid")
    paid = world.service.payment("co-1")
    assert (paid.status, paid.amount) == ("completed", 1_500_00)  # above the Class I cap
    assert world.service.balance(carol) == 0
    world.service.checkout_with_card("co-2", carol, shop, 10_00, card)
    clock.advance(60)
    world.service.process_callbacks()
    assert world.service.card_checkout_state("co-2") == (carol, "failed")
    with pytest.raises(PaymentError):
        world.service.payment("co-2")
    assert world.service.safeguarding_check().in_balance


def test_a_checkout_the_rail_refuses_at_once_ends_failed(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A card the payer has not bound is refused before any rail request is written; the
    checkout, already on record, must end failed rather than stay pending for ever."""
    world = make_world(ledger, clock)
    world.person("carol")
    world.person("dave")
    world.merchant("shop")
    shop, carol = world.merchants["shop"], world.people["carol"]
    with pytest.raises(PaymentError) as refused:
        world.service.checkout_with_card("co-x", carol, shop, 10_00, world.cards["dave"])
    assert refused.value.code == "card_not_bound"
    assert world.service.card_checkout_state("co-x") == (carol, "failed")
    # A retry of the same checkout answers with its outcome; nothing was held or moved.
    assert world.service.checkout_with_card("co-x", carol, shop, 10_00, world.cards["dave"]) == (
        "failed"
    )
    assert world.service.balance(carol) == 0
    assert world.service.safeguarding_check().in_balance


def test_a_callback_that_overtakes_the_submission_is_kept(
    world: PaymentsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clearing house may call back before the submitting request has recorded its
    reference (another worker polls callbacks meanwhile): the posted outcome must stand, and
    the request must not time out later with its money already moved."""
    service = world.service
    submit = service.clearing.submit

    def submit_then_poll(request: object) -> object:
        submission = submit(request)  # type: ignore[arg-type]
        world.clock.advance(30)
        service.process_callbacks()
        return submission

    monkeypatch.setattr(service.clearing, "submit", submit_then_poll)
    alice = world.people["alice"]
    row = service.request_rail("race-1", "top_up", alice, world.cards["alice"], 50_00)
    assert row.clearing_reference is not None
    stored = service.rail_request("race-1")
    assert (stored.state, stored.clearing_reference) == ("succeeded", row.clearing_reference)
    world.clock.advance(2 * 86_400)
    service.process_callbacks()  # also expires overdue requests
    assert service.rail_request("race-1").state == "succeeded"
    assert service.balance(alice) == 50_00
    assert service.safeguarding_check().in_balance


def test_a_reused_id_in_one_batch_charges_only_the_first_payers_counters(
    world: PaymentsWorld,
) -> None:
    from tianping.payments.model import PaymentCommand
    from tianping.payments.store import PaymentsStore

    world.fund("alice", 100_00)
    world.fund("bob", 100_00)
    alice, bob = world.people["alice"], world.people["bob"]
    first, second = world.service.pay(
        [
            PaymentCommand("p-twice", alice, bob, 10_00, "CNY", auth_factors=2),
            PaymentCommand("p-twice", bob, alice, 20_00, "CNY", auth_factors=2),
        ]
    )
    assert isinstance(first, PaymentOutcome) and first.status == "completed", first
    assert isinstance(second, PaymentError) and second.code == "request_conflict", second
    day = first.business_date
    with PaymentsStore.reading(world.service.ledger) as store:
        spent = store.counters([(alice, "spent_today", day), (bob, "spent_today", day)])
    assert spent == {(alice, "spent_today", day): 10_00, (bob, "spent_today", day): 0}
    assert world.service.balance(alice) == 90_00
    assert world.service.balance(bob) == 110_00


def test_a_step_up_answered_the_next_day_belongs_to_that_day(world: PaymentsWorld) -> None:
    from tianping.payments.store import PaymentsStore

    world.fund("alice", 3_000_00)
    stopped = _pay(world, "p-late", "alice", "noodles", 1_500_00, auth_factors=1)
    assert stopped.status == "step_up_required"
    world.clock.advance(86_400)
    resumed = world.service.resume("p-late", auth_factors=2)
    assert resumed.status == "completed", resumed
    assert resumed.business_date > stopped.business_date
    stored = world.service.payment("p-late")
    assert (stored.business_date, stored.created_at) == (
        resumed.business_date,
        resumed.created_at,
    )
    # Settlement of the new day finds it; the first attempt's day has nothing to pay out.
    merchant = world.merchants["noodles"]
    with PaymentsStore.reading(world.service.ledger) as store:
        assert store.unsettled_merchant_payments(merchant, stopped.business_date, 10) == []
        later = store.unsettled_merchant_payments(merchant, resumed.business_date, 10)
    assert [row[0] for row in later] == ["p-late"]
