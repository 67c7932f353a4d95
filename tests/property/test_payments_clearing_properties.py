"""Hypothesis properties of the settlement file, reconciliation and the outcome tracker.

* A settlement file reads back from its text unchanged.
* Reconciling a file against ledger entries derived exactly from it gives no break; removing
  or altering any one entry gives exactly one break, naming that entry's request, of the kind
  the alteration calls for; an extra posted entry gives exactly one `missing_in_settlement`.
* Whatever the delivery order and duplication of a request's callbacks, the tracker applies at
  most one outcome, the first final one delivered, and never changes it afterwards.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.payments.clearing import (
    RailCallback,
    RailOutcomeTracker,
    RailRequest,
    SettlementFile,
    SettlementRecord,
)
from tianping.payments.reconciliation import LedgerRailEntry, reconcile

DAY = "2026-11-27"
T0 = 1_795_752_000

identifiers = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
directions = st.sampled_from(["top_up", "withdrawal"])
currencies = st.sampled_from(["CNY", "USD", "HKD"])


@st.composite
def settlement_files(draw: st.DrawFn) -> SettlementFile:
    """A file of 1 to 25 records with distinct request ids and distinct references."""
    request_ids = draw(st.lists(identifiers, min_size=1, max_size=25, unique=True))
    records = tuple(
        SettlementRecord(
            clearing_reference=f"clr-{index}",
            request_id=f"r{request_id}",
            direction=draw(directions),
            partner_bank_id=draw(st.sampled_from(["bank-1", "bank-2"])),
            amount_minor=draw(st.integers(1, 10**9)),
            currency=draw(currencies),
            fee_minor=draw(st.integers(0, 1_000)),
            business_date=DAY,
        )
        for index, request_id in enumerate(request_ids)
    )
    return SettlementFile(DAY, "netsunion", records)


def ledger_from(settlement: SettlementFile) -> list[LedgerRailEntry]:
    """The ledger a perfect service would hold for the file: every item posted."""
    return [
        LedgerRailEntry(
            request_id=item.request_id,
            clearing_reference=item.clearing_reference,
            direction=item.direction,
            amount_minor=item.amount_minor,
            currency=item.currency,
            state="posted",
            business_date=DAY,
        )
        for item in settlement.records
    ]


@given(settlement_files())
def test_settlement_files_round_trip_through_csv(settlement: SettlementFile) -> None:
    """The text form loses nothing."""
    assert SettlementFile.parse_csv(settlement.to_csv()) == settlement


@given(settlement_files())
def test_a_ledger_derived_from_the_file_reconciles_cleanly(settlement: SettlementFile) -> None:
    """No break, and every record counted as matched."""
    report = reconcile(settlement, ledger_from(settlement))
    assert report.breaks == ()
    assert sum(total.matched_count for total in report.totals) == settlement.record_count
    assert sum(total.matched_amount_minor for total in report.totals) == (
        settlement.control_total_minor
    )


@given(settlement_files(), st.data())
def test_removing_one_entry_gives_one_missing_in_ledger(
    settlement: SettlementFile, data: st.DataObject
) -> None:
    """The settled item whose entry is gone is the one break."""
    ledger = ledger_from(settlement)
    removed = ledger.pop(data.draw(st.integers(0, len(ledger) - 1)))
    report = reconcile(settlement, ledger)
    assert [(b.kind, b.request_id) for b in report.breaks] == [
        ("missing_in_ledger", removed.request_id)
    ]


ALTERATIONS = {
    "amount_up": "amount_mismatch",
    "amount_down": "amount_mismatch",
    "direction": "direction_mismatch",
    "currency": "currency_mismatch",
    "voided": "missing_in_ledger",
    "pending": "still_pending_in_ledger",
    "reference": "reference_mismatch",
}


def altered(entry: LedgerRailEntry, alteration: str) -> LedgerRailEntry:
    if alteration == "amount_up":
        return dataclasses.replace(entry, amount_minor=entry.amount_minor + 1)
    if alteration == "amount_down":
        return dataclasses.replace(entry, amount_minor=entry.amount_minor - 1)
    if alteration == "direction":
        flipped = "withdrawal" if entry.direction == "top_up" else "top_up"
        return dataclasses.replace(entry, direction=flipped)
    if alteration == "currency":
        return dataclasses.replace(entry, currency="EUR")
    if alteration == "reference":
        return dataclasses.replace(entry, clearing_reference="clr-other")
    return dataclasses.replace(entry, state=alteration)


@given(settlement_files(), st.data(), st.sampled_from(sorted(ALTERATIONS)))
def test_altering_one_entry_gives_exactly_one_break_naming_it(
    settlement: SettlementFile, data: st.DataObject, alteration: str
) -> None:
    """Each kind of alteration is reported once, on the altered request, with its kind."""
    ledger = ledger_from(settlement)
    index = data.draw(st.integers(0, len(ledger) - 1))
    if alteration == "amount_down" and ledger[index].amount_minor == 1:
        alteration = "amount_up"
    ledger[index] = altered(ledger[index], alteration)
    report = reconcile(settlement, ledger)
    assert [(b.kind, b.request_id) for b in report.breaks] == [
        (ALTERATIONS[alteration], ledger[index].request_id)
    ]
    (only,) = report.breaks
    assert only.ledger == ledger[index]
    assert only.settlement == settlement.records[index]


@given(settlement_files(), st.integers(1, 10**6))
def test_an_extra_posted_entry_gives_one_missing_in_settlement(
    settlement: SettlementFile, amount: int
) -> None:
    """The ledger posted something the clearing house never settled."""
    extra = LedgerRailEntry("extra-entry", None, "top_up", amount, "CNY", "posted", DAY)
    report = reconcile(settlement, [*ledger_from(settlement), extra])
    assert [(b.kind, b.request_id) for b in report.breaks] == [
        ("missing_in_settlement", "extra-entry")
    ]


# --------------------------------------------------------------------------- the tracker

REQUEST = RailRequest("req-1", "top_up", "bank-1", "fp_1", 5_000, "CNY", T0)


def notice(sequence: int, outcome: str, copy: int) -> RailCallback:
    return RailCallback(
        callback_id=f"cb-{sequence}-{copy}",
        request_id="req-1",
        clearing_reference="clr-1",
        sequence=sequence,
        outcome=outcome,  # type: ignore[arg-type]
        decline_code="do_not_honour" if outcome == "declined" else None,
        settled_amount_minor=5_000 if outcome == "succeeded" else 0,
        business_date=DAY,
        sent_at=T0 + sequence,
    )


@st.composite
def deliveries(draw: st.DrawFn) -> list[RailCallback]:
    """Distinct notices (one outcome per sequence), each delivered 1-3 times, in any order."""
    outcomes = draw(
        st.lists(
            st.sampled_from(["processing", "succeeded", "declined", "failed"]),
            min_size=1,
            max_size=5,
        )
    )
    delivered = [
        notice(sequence, outcome, copy)
        for sequence, outcome in enumerate(outcomes, start=1)
        for copy in range(draw(st.integers(1, 3)))
    ]
    return draw(st.permutations(delivered))


@settings(max_examples=200)
@given(deliveries(), st.booleans())
def test_the_first_final_outcome_wins_whatever_the_delivery(
    callbacks: list[RailCallback], timed_out_first: bool
) -> None:
    """At most one `applied`; it is the first final notice delivered, and it sticks."""
    tracker = RailOutcomeTracker.start(REQUEST, 600)
    if timed_out_first:
        tracker = tracker.time_out(T0 + 600)
    dispositions = []
    for callback in callbacks:
        verdict = tracker.apply_callback(callback)
        tracker = verdict.tracker
        dispositions.append(verdict.disposition)
    first_final = next((c for c in callbacks if c.is_final), None)
    if timed_out_first:
        assert "applied" not in dispositions
        assert tracker.state == "timed_out"
        assert tracker.late_outcome == first_final
        assert dispositions.count("late_after_timeout") == (first_final is not None)
    elif first_final is None:
        assert "applied" not in dispositions
        assert tracker.is_open
    else:
        assert dispositions.count("applied") == 1
        assert callbacks[dispositions.index("applied")] == first_final
        assert tracker.state == first_final.outcome
        assert tracker.final_outcome == first_final
    # The first delivery of a contradicting final notice is flagged; its redeliveries are
    # duplicates of a notice already flagged, and every redelivery is a duplicate.
    decided = first_final.outcome if first_final is not None else None
    delivered_keys: set[tuple[str, int]] = set()
    for callback, disposition in zip(callbacks, dispositions, strict=True):
        if callback.dedupe_key in delivered_keys:
            assert disposition == "duplicate"
        elif callback.is_final and callback.outcome != decided:
            assert disposition == "conflicting_outcome"
        delivered_keys.add(callback.dedupe_key)
