"""Reconciliation of a settlement file against the ledger: every break kind on a hand-made
example, a clean run, scope and totals, and a whole simulated day driven through the tracker.
"""

from __future__ import annotations

import calendar
import dataclasses
import random

import pytest

from tianping.payments import reconciliation
from tianping.payments.clearing import (
    POLL_LIMIT_MAX,
    InvalidRailInput,
    RailOutcomeTracker,
    RailRequest,
    SettlementFile,
    SettlementRecord,
)
from tianping.payments.clearing_sim import SimulatedClearingHouse, SimulatorBehaviour
from tianping.payments.reconciliation import (
    DuplicateLedgerEntry,
    LedgerRailEntry,
    ReconciliationInputTooLarge,
    reconcile,
)

DAY = "2026-11-27"
T0 = calendar.timegm((2026, 11, 27, 4, 0, 0))


def record(request_id: str, amount: int = 1_000, direction: str = "top_up", currency: str = "CNY"):
    return SettlementRecord(
        clearing_reference=f"clr_{request_id}",
        request_id=request_id,
        direction=direction,  # type: ignore[arg-type]
        partner_bank_id="bank-1",
        amount_minor=amount,
        currency=currency,
        fee_minor=1,
        business_date=DAY,
    )


def entry_for(item: SettlementRecord, **changes: object) -> LedgerRailEntry:
    fields: dict[str, object] = {
        "request_id": item.request_id,
        "clearing_reference": item.clearing_reference,
        "direction": item.direction,
        "amount_minor": item.amount_minor,
        "currency": item.currency,
        "state": "posted",
        "business_date": DAY,
    }
    fields.update(changes)
    return LedgerRailEntry(**fields)  # type: ignore[arg-type]


def test_a_matching_ledger_gives_a_clean_report_with_totals() -> None:
    """Every settled item posted with the same fields: no break, all matched."""
    records = (record("a", 1_000), record("b", 2_000), record("c", 500, "withdrawal"))
    settlement = SettlementFile(DAY, "netsunion", records)
    report = reconcile(settlement, [entry_for(item) for item in records])
    assert report.is_clean
    assert report.breaks == ()
    totals = {(t.direction, t.currency): t for t in report.totals}
    assert totals[("top_up", "CNY")].matched_count == 2
    assert totals[("top_up", "CNY")].matched_amount_minor == 3_000
    assert totals[("top_up", "CNY")].fee_minor == 2
    assert totals[("withdrawal", "CNY")].matched_amount_minor == 500
    assert totals[("top_up", "CNY")].unmatched_settlement_count == 0


def hand_made_example() -> tuple[SettlementFile, list[LedgerRailEntry]]:
    """One settled item and/or ledger entry per break kind, plus two that match."""
    ok_1, ok_2 = record("ok-1"), record("ok-2", 3_000, "withdrawal")
    missing = record("missing-ledger")
    late = record("late-success")
    pending = record("pending")
    amount = record("amount", 1_000)
    direction = record("direction", 1_000, "withdrawal")
    currency = record("currency", 1_000, "top_up", "USD")
    reference = record("reference")
    duplicate = record("duplicate")
    records = (
        ok_1,
        ok_2,
        missing,
        late,
        pending,
        amount,
        direction,
        currency,
        reference,
        duplicate,
        duplicate,
    )
    ledger = [
        entry_for(ok_1),
        entry_for(ok_2),
        entry_for(late, state="voided", clearing_reference=None),
        entry_for(pending, state="pending"),
        entry_for(amount, amount_minor=999),
        entry_for(direction, direction="top_up"),
        entry_for(currency, currency="CNY"),
        entry_for(reference, clearing_reference="clr_other"),
        entry_for(duplicate),
        LedgerRailEntry("unsettled", "clr_unsettled", "withdrawal", 700, "CNY", "posted", DAY),
        LedgerRailEntry("held-unsettled", None, "top_up", 80, "CNY", "pending", DAY),
        LedgerRailEntry("declined", None, "top_up", 90, "CNY", "voided", DAY),
        LedgerRailEntry("yesterday", None, "top_up", 60, "CNY", "posted", "2026-11-26"),
    ]
    return SettlementFile(DAY, "netsunion", records), ledger


def test_each_break_kind_is_found_with_both_sides() -> None:
    """The hand-made example yields exactly the expected break per request."""
    settlement, ledger = hand_made_example()
    report = reconcile(settlement, ledger)
    found = [(item.request_id, item.kind) for item in report.breaks]
    assert found == [
        ("amount", "amount_mismatch"),
        ("currency", "currency_mismatch"),
        ("direction", "direction_mismatch"),
        ("duplicate", "duplicate_in_settlement"),
        ("held-unsettled", "still_pending_in_ledger"),
        ("late-success", "missing_in_ledger"),
        ("missing-ledger", "missing_in_ledger"),
        ("pending", "still_pending_in_ledger"),
        ("reference", "reference_mismatch"),
        ("unsettled", "missing_in_settlement"),
    ]
    by_request = {item.request_id: item for item in report.breaks}
    amount_break = by_request["amount"]
    assert amount_break.settlement is not None and amount_break.ledger is not None
    assert (amount_break.settlement.amount_minor, amount_break.ledger.amount_minor) == (1_000, 999)
    assert by_request["late-success"].ledger is not None
    assert by_request["late-success"].ledger.state == "voided"
    assert by_request["missing-ledger"].ledger is None
    assert by_request["unsettled"].settlement is None
    assert by_request["duplicate"].settlement_occurrences == 2
    assert not report.is_clean
    assert [b.request_id for b in report.breaks_of("missing_in_ledger")] == [
        "late-success",
        "missing-ledger",
    ]


def test_totals_split_matched_and_unmatched_per_direction_and_currency() -> None:
    """Matched, unmatched-settlement and unmatched-ledger sums of the hand-made example."""
    settlement, ledger = hand_made_example()
    totals = {(t.direction, t.currency): t for t in reconcile(settlement, ledger).totals}
    top_up = totals[("top_up", "CNY")]
    # ok-1 and the first duplicate line match.
    assert (top_up.matched_count, top_up.matched_amount_minor) == (2, 2_000)
    # missing-ledger, late-success, pending, amount, reference.
    assert top_up.unmatched_settlement_count == 5
    # pending, amount (999), direction's ledger side, currency's ledger side, reference,
    # held-unsettled (80).
    assert top_up.unmatched_ledger_count == 6
    assert top_up.unmatched_ledger_amount_minor == 1_000 + 999 + 1_000 + 1_000 + 1_000 + 80
    withdrawal = totals[("withdrawal", "CNY")]
    assert (withdrawal.matched_count, withdrawal.matched_amount_minor) == (1, 3_000)
    assert withdrawal.unmatched_settlement_count == 1  # direction
    assert (withdrawal.unmatched_ledger_count, withdrawal.unmatched_ledger_amount_minor) == (1, 700)
    assert totals[("top_up", "USD")].unmatched_settlement_amount_minor == 1_000


def test_the_report_does_not_depend_on_input_order() -> None:
    """Shuffled records and entries give an identical report."""
    settlement, ledger = hand_made_example()
    expected = reconcile(settlement, ledger)
    shuffler = random.Random(5)
    for _ in range(5):
        records = list(settlement.records)
        shuffler.shuffle(records)
        entries = list(ledger)
        shuffler.shuffle(entries)
        shuffled = dataclasses.replace(settlement, records=tuple(records))
        report = reconcile(shuffled, entries)
        assert report.breaks == expected.breaks
        assert report.totals == expected.totals


def test_voided_and_other_day_entries_without_a_record_are_not_breaks() -> None:
    """Declines void their hold; other days' entries belong to other runs."""
    settlement = SettlementFile(DAY, "netsunion")
    ledger = [
        LedgerRailEntry("declined", None, "top_up", 90, "CNY", "voided", DAY),
        LedgerRailEntry("tomorrow", None, "top_up", 60, "CNY", "posted", "2026-11-28"),
        LedgerRailEntry("tomorrow-held", None, "top_up", 60, "CNY", "pending", "2026-11-28"),
    ]
    assert reconcile(settlement, ledger).is_clean


def test_an_item_straddling_the_cutoff_matches_a_neighbouring_days_entry() -> None:
    """A settled record pairs with its entry even if the service dated it the day before."""
    item = record("straddle")
    settlement = SettlementFile(DAY, "netsunion", (item,))
    assert reconcile(settlement, [entry_for(item, business_date="2026-11-26")]).is_clean


def test_two_ledger_entries_for_one_request_are_refused() -> None:
    """Idempotency makes this impossible; if it happens the input is wrong, not a break."""
    item = record("a")
    with pytest.raises(DuplicateLedgerEntry) as caught:
        reconcile(SettlementFile(DAY, "netsunion", (item,)), [entry_for(item), entry_for(item)])
    assert caught.value.code == "reconciliation_duplicate_ledger_entry"


def test_the_input_size_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """More entries than the bound are refused with a stable code."""
    monkeypatch.setattr(reconciliation, "RECONCILIATION_ENTRIES_MAX", 2)
    items = [record(name) for name in "abc"]
    with pytest.raises(ReconciliationInputTooLarge) as caught:
        reconcile(SettlementFile(DAY, "netsunion"), [entry_for(item) for item in items])
    assert caught.value.code == "reconciliation_input_too_large"


def test_ledger_entries_validate_their_fields() -> None:
    """A bad state or amount is refused like every rail message."""
    with pytest.raises(InvalidRailInput):
        LedgerRailEntry("a", None, "top_up", 10, "CNY", "settled", DAY)  # type: ignore[arg-type]
    with pytest.raises(InvalidRailInput):
        LedgerRailEntry("a", None, "top_up", -1, "CNY", "posted", DAY)


def test_a_simulated_day_reconciles_to_exactly_the_expected_breaks() -> None:
    """A service-like loop over the simulator leaves breaks only where money moved unseen.

    Lost callbacks and late successes settle at the clearing house while the service voids its
    hold on timeout: each is one `missing_in_ledger` break. Everything else matches.
    """
    behaviour = SimulatorBehaviour(
        latency_buckets=((1, 5), (10, 2), (40, 1)),
        unavailable_ppm=30_000,
        timeout_ppm=30_000,
        lost_callback_ppm=30_000,
        decline_ppm=100_000,
        fail_ppm=30_000,
        late_ppm=30_000,
        duplicate_ppm=100_000,
        out_of_order_ppm=100_000,
        conflicting_ppm=30_000,
        late_delay_seconds=7_200,
    )
    house = SimulatedClearingHouse(lambda: T0, 21, behaviour)
    trackers: dict[str, RailOutcomeTracker] = {}
    ledger_state: dict[str, str] = {}
    requests: dict[str, RailRequest] = {}
    for index in range(500):
        request = RailRequest(
            request_id=f"r{index:04d}",
            direction="top_up" if index % 3 else "withdrawal",
            partner_bank_id="bank-1",
            card_token="fp_1",
            amount_minor=1_000 + index,
            currency="CNY",
            requested_at=T0,
        )
        requests[request.request_id] = request
        submission = house.submit(request)
        ledger_state[request.request_id] = "pending" if submission.accepted else "voided"
        trackers[request.request_id] = RailOutcomeTracker.start(request, 600).record_submission(
            submission
        )
    for now in range(T0, T0 + 10_000, 30):
        for callback in house.poll_callbacks(now, POLL_LIMIT_MAX):
            verdict = trackers[callback.request_id].apply_callback(callback)
            trackers[callback.request_id] = verdict.tracker
            if verdict.disposition == "applied":
                outcome = callback.outcome
                ledger_state[callback.request_id] = "posted" if outcome == "succeeded" else "voided"
        for request_id, tracker in trackers.items():
            if tracker.is_due(now):
                trackers[request_id] = tracker.time_out(now)
                ledger_state[request_id] = "voided"
    ledger = [
        LedgerRailEntry(
            request_id,
            trackers[request_id].clearing_reference,
            request.direction,
            request.amount_minor,
            request.currency,
            ledger_state[request_id],  # type: ignore[arg-type]
            DAY,
        )
        for request_id, request in requests.items()
    ]
    settlement = SettlementFile.parse_csv(house.settlement_file(DAY).to_csv())
    report = reconcile(settlement, ledger)
    unseen_successes = sorted(
        request_id
        for request_id, tracker in trackers.items()
        if tracker.state == "timed_out"
        and request_id in {item.request_id for item in settlement.records}
    )
    assert unseen_successes  # the run did exercise lost and late callbacks
    assert [(b.request_id, b.kind) for b in report.breaks] == [
        (request_id, "missing_in_ledger") for request_id in unseen_successes
    ]
    late = [t for t in trackers.values() if t.late_outcome is not None]
    assert late and all(t.request.request_id in unseen_successes for t in late)
