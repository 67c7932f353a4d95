"""The clearing-house boundary: messages, the settlement file's text form, the outcome tracker,
and every scenario of the simulated clearing house as seen through the `ClearingHouse` protocol.
"""

from __future__ import annotations

import calendar

import pytest

from tianping.payments.clearing import (
    POLL_LIMIT_MAX,
    SETTLEMENT_LINE_LENGTH_MAX,
    ClearingHouse,
    InvalidRailInput,
    InvalidRailTransition,
    RailCallback,
    RailCallbackMismatch,
    RailOutcomeTracker,
    RailRequest,
    RailSubmission,
    SettlementFile,
    SettlementFileRejected,
    SettlementRecord,
    business_date_of,
)
from tianping.payments.clearing_sim import (
    ClearingSimulatorError,
    ScriptedScenario,
    SimulatedClearingHouse,
    SimulatorBehaviour,
)

# 2026-11-27 12:00:00 China Standard Time (04:00 UTC).
T0 = calendar.timegm((2026, 11, 27, 4, 0, 0))
DAY = "2026-11-27"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def make_request(
    request_id: str = "req-1",
    amount_minor: int = 10_000,
    direction: str = "top_up",
    currency: str = "CNY",
    requested_at: int = T0,
) -> RailRequest:
    return RailRequest(
        request_id=request_id,
        direction=direction,  # type: ignore[arg-type]
        partner_bank_id="bank-icbc-01",
        card_token="fp_3f9a0c",
        amount_minor=amount_minor,
        currency=currency,
        requested_at=requested_at,
    )


def make_callback(
    outcome: str = "succeeded",
    sequence: int = 1,
    request_id: str = "req-1",
    reference: str = "clr_1",
    amount_minor: int | None = None,
    decline_code: str | None = None,
    callback_id: str = "cb-1",
) -> RailCallback:
    if amount_minor is None:
        amount_minor = 10_000 if outcome == "succeeded" else 0
    if outcome == "declined" and decline_code is None:
        decline_code = "insufficient_funds"
    return RailCallback(
        callback_id=callback_id,
        request_id=request_id,
        clearing_reference=reference,
        sequence=sequence,
        outcome=outcome,  # type: ignore[arg-type]
        decline_code=decline_code,
        settled_amount_minor=amount_minor,
        business_date=DAY,
        sent_at=T0 + 5,
    )


def make_house(
    seed: int = 7, clock: FakeClock | None = None, **settings: object
) -> tuple[SimulatedClearingHouse, FakeClock]:
    clock = clock if clock is not None else FakeClock(T0)
    settings.setdefault("latency_buckets", ((5, 1),))
    behaviour = SimulatorBehaviour(**settings)  # type: ignore[arg-type]
    return SimulatedClearingHouse(clock, seed, behaviour), clock


def scripted(kind: str, **extra: str) -> dict[str, ScriptedScenario]:
    return {"req-1": ScriptedScenario(kind, **extra)}  # type: ignore[arg-type]


def poll_all(house: ClearingHouse, now: int) -> list[RailCallback]:
    return house.poll_callbacks(now, POLL_LIMIT_MAX)


# --------------------------------------------------------------------------- messages


def test_business_date_changes_at_23_00_china_time() -> None:
    """22:59:59 CST belongs to the calendar day, 23:00:00 CST to the next business day."""
    eleven_pm_cst = calendar.timegm((2026, 11, 27, 15, 0, 0))
    assert business_date_of(eleven_pm_cst - 1) == "2026-11-27"
    assert business_date_of(eleven_pm_cst) == "2026-11-28"
    assert business_date_of(calendar.timegm((2026, 11, 26, 16, 0, 0))) == "2026-11-27"


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"request_id": "x" * 65}, "request_id"),
        ({"request_id": "has space"}, "request_id"),
        ({"direction": "refund"}, "direction"),
        ({"amount_minor": 0}, "amount_minor"),
        ({"amount_minor": True}, "amount_minor"),
        ({"currency": "cny"}, "currency"),
        ({"card_token": "6222020200112233445"}, "card_token"),
        ({"card_token": "=cmd"}, "card_token"),
        ({"partner_bank_id": ""}, "partner_bank_id"),
    ],
)
def test_rail_request_refuses_bad_fields(changes: dict[str, object], field_name: str) -> None:
    """Each malformed field is refused with the stable code, naming the field."""
    fields: dict[str, object] = {
        "request_id": "req-1",
        "direction": "top_up",
        "partner_bank_id": "bank-1",
        "card_token": "fp_1",
        "amount_minor": 100,
        "currency": "CNY",
        "requested_at": T0,
    }
    fields.update(changes)
    with pytest.raises(InvalidRailInput) as caught:
        RailRequest(**fields)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_rail_input"
    assert caught.value.field == field_name


def test_a_card_number_given_as_token_is_refused_without_echoing_it() -> None:
    """The refusal message must not repeat the card number into logs."""
    card_number = "6222020200112233445"
    with pytest.raises(InvalidRailInput) as caught:
        make_request().__class__(
            request_id="r",
            direction="top_up",
            partner_bank_id="b",
            card_token=card_number,
            amount_minor=1,
            currency="CNY",
            requested_at=T0,
        )
    assert card_number not in str(caught.value)


def test_submission_and_callback_consistency_rules() -> None:
    """An accepted answer needs a reference; declines need a code; successes need an amount."""
    with pytest.raises(InvalidRailInput):
        RailSubmission(True, None, None)
    with pytest.raises(InvalidRailInput):
        RailSubmission(False, None, "not_a_code")
    with pytest.raises(InvalidRailInput):
        make_callback("declined", decline_code="made_up")
    with pytest.raises(InvalidRailInput):
        make_callback("failed", decline_code="card_blocked")
    with pytest.raises(InvalidRailInput):
        make_callback("succeeded", amount_minor=0)
    with pytest.raises(InvalidRailInput):
        make_callback("processing", sequence=33)
    assert make_callback(sequence=2).dedupe_key == ("req-1", 2)


# --------------------------------------------------------------------------- settlement file


def sample_file() -> SettlementFile:
    records = (
        SettlementRecord("clr_a", "req-a", "top_up", "bank-1", 10_000, "CNY", 10, DAY),
        SettlementRecord("clr_b", "req-b", "withdrawal", "bank-2", 2_500, "CNY", 3, DAY),
        SettlementRecord("clr_c", "req-c", "top_up", "bank-1", 700, "USD", 1, DAY),
        SettlementRecord("clr_d", "req-d", "top_up", "bank-3", 1_300, "CNY", 1, DAY),
    )
    return SettlementFile(DAY, "netsunion", records)


def test_settlement_file_round_trips_through_csv() -> None:
    """parse_csv(to_csv(f)) == f, and the text has header, columns, records and trailer."""
    settlement = sample_file()
    text = settlement.to_csv()
    lines = text.splitlines()
    assert lines[0] == f"H,1,netsunion,{DAY}"
    assert lines[1].startswith("clearing_reference,request_id,direction")
    assert lines[-1].startswith("T,4,14500,15,")
    assert len(lines) == 4 + 3
    assert SettlementFile.parse_csv(text) == settlement


def test_an_empty_settlement_file_round_trips() -> None:
    """A day without settled items still has a header and a trailer, and reads back."""
    empty = SettlementFile(DAY, "netsunion")
    assert SettlementFile.parse_csv(empty.to_csv()) == empty


def test_settlement_totals_are_per_direction_and_currency() -> None:
    """Totals never add amounts of different currencies together."""
    totals = {(t.direction, t.currency): t for t in sample_file().totals}
    assert totals[("top_up", "CNY")].amount_minor == 11_300
    assert totals[("top_up", "CNY")].record_count == 2
    assert totals[("top_up", "CNY")].fee_minor == 11
    assert totals[("top_up", "USD")].amount_minor == 700
    assert totals[("withdrawal", "CNY")].amount_minor == 2_500


def replace_line(text: str, index: int, new_line: str | None) -> str:
    lines = text.splitlines()
    if new_line is None:
        del lines[index]
    else:
        lines[index] = new_line
    return "\n".join(lines) + "\n"


def rejected_code(text: str) -> str:
    with pytest.raises(SettlementFileRejected) as caught:
        SettlementFile.parse_csv(text)
    return caught.value.code


def test_a_wrong_record_count_in_the_trailer_is_refused() -> None:
    """A trailer that states another count than the record lines is refused."""
    text = sample_file().to_csv()
    trailer = text.splitlines()[-1].split(",")
    trailer[1] = "5"
    assert rejected_code(replace_line(text, -1, ",".join(trailer))) == (
        "settlement_line_count_mismatch"
    )


def test_a_dropped_record_line_is_refused() -> None:
    """Losing a record in transit is caught by the count, before anything else."""
    text = sample_file().to_csv()
    assert rejected_code(replace_line(text, 3, None)) == "settlement_line_count_mismatch"


@pytest.mark.parametrize(
    "trailer",
    ["", "T,4,14500,15", "X,4,14500,15," + "0" * 64, "T,04,14500,15," + "0" * 64, "T,4,1,1,xyz"],
)
def test_a_bad_or_missing_trailer_is_refused(trailer: str) -> None:
    """A truncated or malformed last line means the file is incomplete."""
    text = sample_file().to_csv()
    assert rejected_code(replace_line(text, -1, trailer)) == "settlement_trailer_missing"


def test_a_truncated_file_is_refused() -> None:
    """A file cut inside its records has no trailer (and no final newline)."""
    text = sample_file().to_csv()
    assert rejected_code(text[: len(text) // 2]) == "settlement_file_malformed"
    cut_at_line = "\n".join(text.splitlines()[:4]) + "\n"
    assert rejected_code(cut_at_line) == "settlement_trailer_missing"


def test_a_changed_amount_is_caught_by_the_total() -> None:
    """Editing an amount changes the control total the trailer states."""
    text = sample_file().to_csv()
    edited = text.splitlines()[2].replace(",10000,", ",10001,")
    assert rejected_code(replace_line(text, 2, edited)) == "settlement_total_mismatch"


def test_a_changed_fee_is_caught_by_the_total() -> None:
    """Editing a fee changes the fee total the trailer states."""
    text = sample_file().to_csv()
    edited = text.splitlines()[2].replace(",CNY,10,", ",CNY,11,")
    assert rejected_code(replace_line(text, 2, edited)) == "settlement_total_mismatch"


def test_swapped_records_are_caught_by_the_checksum() -> None:
    """Swapping the partner banks of two lines keeps count and totals but not the digest."""
    text = sample_file().to_csv()
    lines = text.splitlines()
    lines[2] = lines[2].replace("bank-1", "bank-9")
    assert rejected_code("\n".join(lines) + "\n") == "settlement_checksum_mismatch"


@pytest.mark.parametrize(
    ("line_index", "new_line", "code"),
    [
        (0, "H,2,netsunion,2026-11-27", "settlement_header_invalid"),
        (0, "H,1,net union,2026-11-27", "settlement_header_invalid"),
        (0, "H,1,netsunion,2026-02-30", "settlement_header_invalid"),
        (1, "clearing_reference,request_id", "settlement_header_invalid"),
        (
            2,
            "clr_a,req-a,refund,bank-1,10000,CNY,10,2026-11-27,settled",
            "settlement_record_invalid",
        ),
        (
            2,
            "clr_a,req-a,top_up,bank-1,010000,CNY,10,2026-11-27,settled",
            "settlement_record_invalid",
        ),
        (
            2,
            "clr_a,req-a,top_up,bank-1,10000,CNY,10,2026-11-26,settled",
            "settlement_record_invalid",
        ),
        (2, "clr_a,req-a,top_up,bank-1,10000,CNY,10,2026-11-27", "settlement_record_invalid"),
        (
            2,
            '"clr_a",req-a,top_up,bank-1,10000,CNY,10,2026-11-27,settled',
            "settlement_record_invalid",
        ),
        (
            3,
            'clr_b,"req-b,withdrawal,bank-2,2500,CNY,3,2026-11-27,settled',
            "settlement_record_invalid",
        ),
        (2, "x" * (SETTLEMENT_LINE_LENGTH_MAX + 1), "settlement_file_too_large"),
    ],
)
def test_bad_header_and_record_lines_are_refused(line_index: int, new_line: str, code: str) -> None:
    """Each kind of bad line is refused with its own stable code, naming the line."""
    text = replace_line(sample_file().to_csv(), line_index, new_line)
    with pytest.raises(SettlementFileRejected) as caught:
        SettlementFile.parse_csv(text)
    assert caught.value.code == code
    assert caught.value.line == line_index + 1


def test_carriage_returns_are_refused() -> None:
    """A file rewritten with CRLF line ends is not the file the clearing house sent."""
    text = sample_file().to_csv().replace("\n", "\r\n")
    assert rejected_code(text) == "settlement_file_malformed"


# --------------------------------------------------------------------------- the tracker


def tracker(timeout_seconds: int = 60) -> RailOutcomeTracker:
    return RailOutcomeTracker.start(make_request(), timeout_seconds)


def submitted() -> RailOutcomeTracker:
    return tracker().record_submission(RailSubmission(True, "clr_1", None))


def test_tracker_moves_from_requested_to_submitted_to_succeeded() -> None:
    """The first final callback is applied and fixes the state."""
    state = submitted()
    assert state.state == "submitted"
    assert state.clearing_reference == "clr_1"
    verdict = state.apply_callback(make_callback())
    assert verdict.disposition == "applied"
    assert verdict.tracker.state == "succeeded"
    assert not verdict.tracker.is_open


@pytest.mark.parametrize("outcome", ["declined", "failed"])
def test_declined_and_failed_outcomes_are_applied(outcome: str) -> None:
    """A decline or a failure is applied too: the service voids the hold."""
    verdict = submitted().apply_callback(make_callback(outcome))
    assert (verdict.disposition, verdict.tracker.state) == ("applied", outcome)


def test_a_refused_submission_ends_in_refused() -> None:
    """A synchronous refusal is final; a later callback contradicts it."""
    refused = tracker().record_submission(RailSubmission(False, None, "bank_unavailable"))
    assert (refused.state, refused.refusal_code) == ("refused", "bank_unavailable")
    assert refused.apply_callback(make_callback()).disposition == "conflicting_outcome"


def test_a_redelivered_callback_is_a_duplicate() -> None:
    """The same (request_id, sequence) again changes nothing, whatever its callback id."""
    applied = submitted().apply_callback(make_callback()).tracker
    again = applied.apply_callback(make_callback(callback_id="cb-2"))
    assert again.disposition == "duplicate"
    assert again.tracker == applied


def test_a_restated_outcome_under_a_new_sequence_is_a_duplicate() -> None:
    """The same final outcome under another sequence needs no action either."""
    applied = submitted().apply_callback(make_callback()).tracker
    verdict = applied.apply_callback(make_callback(sequence=2))
    assert verdict.disposition == "duplicate"
    assert verdict.tracker.state == "succeeded"


def test_a_later_contradicting_outcome_is_flagged_and_the_first_wins() -> None:
    """A "failed" after "succeeded" is reported as a conflict; the state stays succeeded."""
    applied = submitted().apply_callback(make_callback()).tracker
    verdict = applied.apply_callback(make_callback("failed", sequence=2))
    assert verdict.disposition == "conflicting_outcome"
    assert verdict.tracker.state == "succeeded"
    assert verdict.tracker.final_outcome == applied.final_outcome


def test_a_different_outcome_under_a_seen_sequence_is_a_conflict() -> None:
    """Two different notices cannot share a sequence number."""
    applied = submitted().apply_callback(make_callback()).tracker
    assert applied.apply_callback(make_callback("failed")).disposition == "conflicting_outcome"


def test_an_interim_notice_is_progress_before_and_stale_after_the_outcome() -> None:
    """ "processing" never decides anything; after the final outcome it is out of order."""
    first = tracker().apply_callback(make_callback("processing", sequence=1))
    assert (first.disposition, first.tracker.state) == ("progress", "submitted")
    final = submitted().apply_callback(make_callback(sequence=2)).tracker
    late_interim = final.apply_callback(make_callback("processing", sequence=1))
    assert (late_interim.disposition, late_interim.tracker.state) == ("stale", "succeeded")


def test_timeout_only_when_due_and_only_while_open() -> None:
    """Timing out early, or after an outcome, is an invalid transition."""
    state = submitted()
    assert not state.is_due(T0 + 59)
    assert state.is_due(T0 + 60)
    with pytest.raises(InvalidRailTransition) as caught:
        state.time_out(T0 + 59)
    assert caught.value.code == "invalid_rail_transition"
    assert state.time_out(T0 + 60).state == "timed_out"
    decided = state.apply_callback(make_callback()).tracker
    with pytest.raises(InvalidRailTransition):
        decided.time_out(T0 + 600)


def test_a_callback_after_timeout_is_late_and_does_not_change_the_state() -> None:
    """The service has voided; the late outcome is kept for reconciliation to find."""
    timed_out = submitted().time_out(T0 + 60)
    verdict = timed_out.apply_callback(make_callback())
    assert verdict.disposition == "late_after_timeout"
    assert verdict.tracker.state == "timed_out"
    assert verdict.tracker.late_outcome is not None
    assert verdict.tracker.late_outcome.outcome == "succeeded"
    assert verdict.tracker.apply_callback(make_callback()).disposition == "duplicate"
    contradiction = verdict.tracker.apply_callback(make_callback("failed", sequence=2))
    assert contradiction.disposition == "conflicting_outcome"


def test_a_success_for_another_amount_is_not_applied() -> None:
    """The hold stays open, so the timeout voids it and reconciliation reports the item."""
    verdict = submitted().apply_callback(make_callback(amount_minor=9_999))
    assert verdict.disposition == "settled_amount_mismatch"
    assert verdict.tracker.is_open


def test_a_callback_may_overtake_the_synchronous_answer() -> None:
    """Applied in `requested`; the accepted answer then only fills in the reference."""
    applied = tracker().apply_callback(make_callback()).tracker
    after = applied.record_submission(RailSubmission(True, "clr_1", None))
    assert after.state == "succeeded"
    with pytest.raises(InvalidRailTransition):
        applied.record_submission(RailSubmission(True, "clr_other", None))
    with pytest.raises(InvalidRailTransition):
        submitted().record_submission(RailSubmission(True, "clr_1", None))


def test_callbacks_for_another_request_or_reference_are_refused() -> None:
    """A callback that does not belong to the tracked request is an error, not a verdict."""
    with pytest.raises(RailCallbackMismatch) as caught:
        submitted().apply_callback(make_callback(request_id="req-2"))
    assert caught.value.code == "rail_callback_mismatch"
    with pytest.raises(RailCallbackMismatch):
        submitted().apply_callback(make_callback(reference="clr_2"))


def test_tracker_timeout_is_bounded() -> None:
    """A zero or week-plus timeout is refused."""
    with pytest.raises(InvalidRailInput):
        RailOutcomeTracker.start(make_request(), 0)
    with pytest.raises(InvalidRailInput):
        RailOutcomeTracker.start(make_request(), 8 * 24 * 3600)


# --------------------------------------------------------------------------- the simulator


def test_the_simulator_satisfies_the_protocol() -> None:
    """Structural typing: the simulator can stand wherever a ClearingHouse is expected."""
    house: ClearingHouse = make_house()[0]
    assert isinstance(house.submit(make_request()), RailSubmission)


def test_normal_request_is_accepted_called_back_and_settled() -> None:
    """Accepted at once, one success after the latency, and listed in the settlement file."""
    house, _ = make_house()
    submission = house.submit(make_request())
    assert submission.accepted
    assert submission.clearing_reference is not None
    assert poll_all(house, T0 + 4) == []
    (callback,) = poll_all(house, T0 + 5)
    assert (callback.outcome, callback.settled_amount_minor) == ("succeeded", 10_000)
    assert callback.clearing_reference == submission.clearing_reference
    assert callback.business_date == DAY
    (record,) = house.settlement_file(DAY).records
    assert (record.request_id, record.amount_minor, record.fee_minor) == ("req-1", 10_000, 10)
    assert house.outstanding == 0


def test_decline_scenario_delivers_the_decline_code_and_settles_nothing() -> None:
    """A decline is called back with its code and never reaches the settlement file."""
    house, _ = make_house(script=scripted("decline", decline_code="card_blocked"))
    assert house.submit(make_request()).accepted
    (callback,) = poll_all(house, T0 + 5)
    assert (callback.outcome, callback.decline_code) == ("declined", "card_blocked")
    assert house.settlement_file(DAY).records == ()


def test_fail_scenario_delivers_a_failure() -> None:
    """A technical failure after acceptance is called back as "failed"."""
    house, _ = make_house(script=scripted("fail"))
    house.submit(make_request())
    assert [c.outcome for c in poll_all(house, T0 + 5)] == ["failed"]
    assert house.settlement_file(DAY).records == ()


def test_unavailable_scenario_refuses_synchronously() -> None:
    """The bank is down: refused with a stable code, and nothing follows."""
    house, _ = make_house(script=scripted("unavailable"))
    assert house.submit(make_request()) == RailSubmission(False, None, "bank_unavailable")
    assert poll_all(house, T0 + 10**6) == []
    assert house.settlement_file(DAY).records == ()


def test_random_unavailability_is_drawn_per_attempt_so_retries_can_succeed() -> None:
    """With half the attempts refused, some request is refused and then accepted on retry."""
    house, _ = make_house(unavailable_ppm=500_000)
    recovered = 0
    for index in range(40):
        request = make_request(f"req-{index}")
        first = house.submit(request)
        if not first.accepted:
            assert first.refusal_code == "bank_unavailable"
            retries = [house.submit(request) for _ in range(20)]
            recovered += any(answer.accepted for answer in retries)
    assert recovered > 0


def test_timeout_scenario_never_calls_back_and_settles_nothing() -> None:
    """Accepted, then silence: no callback however long the service waits."""
    house, _ = make_house(script=scripted("timeout"))
    assert house.submit(make_request()).accepted
    assert poll_all(house, T0 + 7 * 24 * 3600) == []
    assert house.settlement_file(DAY).records == ()
    assert house.outstanding == 0


def test_lost_callback_scenario_settles_without_calling_back() -> None:
    """The money moved but the notice never arrives; only the settlement file knows."""
    house, _ = make_house(script=scripted("lost_callback"))
    house.submit(make_request())
    assert poll_all(house, T0 + 7 * 24 * 3600) == []
    assert [r.request_id for r in house.settlement_file(DAY).records] == ["req-1"]


def test_late_scenario_calls_back_after_the_delay() -> None:
    """Nothing within the normal latency plus a service timeout; the success arrives later."""
    house, _ = make_house(script=scripted("late"), late_delay_seconds=900)
    house.submit(make_request())
    assert poll_all(house, T0 + 5 + 600) == []
    (callback,) = poll_all(house, T0 + 5 + 900)
    assert callback.outcome == "succeeded"
    assert callback.sent_at == T0 + 905
    assert len(house.settlement_file(DAY).records) == 1


def test_duplicate_scenario_delivers_the_same_notice_two_or_three_times() -> None:
    """Same dedupe key, different callback ids."""
    house, _ = make_house(script=scripted("duplicate"))
    house.submit(make_request())
    callbacks = poll_all(house, T0 + 60)
    assert 2 <= len(callbacks) <= 3
    assert {c.dedupe_key for c in callbacks} == {("req-1", 1)}
    assert len({c.callback_id for c in callbacks}) == len(callbacks)


def test_out_of_order_scenario_delivers_the_interim_notice_after_the_outcome() -> None:
    """Sequence 2 (succeeded) arrives before sequence 1 (processing)."""
    house, _ = make_house(script=scripted("out_of_order"))
    house.submit(make_request())
    callbacks = poll_all(house, T0 + 60)
    assert [(c.sequence, c.outcome) for c in callbacks] == [(2, "succeeded"), (1, "processing")]


def test_conflicting_scenario_contradicts_itself_but_settles() -> None:
    """A success followed by a failure; the settlement file lists the item."""
    house, _ = make_house(script=scripted("conflicting"))
    house.submit(make_request())
    callbacks = poll_all(house, T0 + 60)
    assert [(c.sequence, c.outcome) for c in callbacks] == [(1, "succeeded"), (2, "failed")]
    assert len(house.settlement_file(DAY).records) == 1


def test_each_scenario_drives_the_tracker_to_the_expected_dispositions() -> None:
    """Simulator and tracker together, as the service will use them with a 600 s timeout."""
    expected = {
        "normal": (["applied"], "succeeded"),
        "decline": (["applied"], "declined"),
        "duplicate": (["applied", "duplicate"], "succeeded"),
        "out_of_order": (["applied", "stale"], "succeeded"),
        "conflicting": (["applied", "conflicting_outcome"], "succeeded"),
        "late": (["late_after_timeout"], "timed_out"),
        "timeout": ([], "timed_out"),
    }
    script = {kind: ScriptedScenario(kind) for kind in expected}  # type: ignore[arg-type]
    house, _ = make_house(script=script, late_delay_seconds=3600)
    trackers = {}
    for kind in expected:
        request = make_request(kind)
        trackers[kind] = RailOutcomeTracker.start(request, 600).record_submission(
            house.submit(request)
        )
    dispositions: dict[str, list[str]] = {kind: [] for kind in expected}
    for now in range(T0, T0 + 4000, 50):
        for callback in house.poll_callbacks(now, POLL_LIMIT_MAX):
            verdict = trackers[callback.request_id].apply_callback(callback)
            trackers[callback.request_id] = verdict.tracker
            dispositions[callback.request_id].append(verdict.disposition)
        for kind, state in trackers.items():
            if state.is_due(now):
                trackers[kind] = state.time_out(now)
    for kind, (wanted, final_state) in expected.items():
        assert dispositions[kind][:2] == wanted[:2], kind
        assert set(dispositions[kind]) == set(wanted), kind
        assert trackers[kind].state == final_state, kind


def test_resubmitting_is_idempotent_and_a_changed_request_conflicts() -> None:
    """Same request: same answer and no second callback; same id, other fields: refused."""
    house, _ = make_house()
    first = house.submit(make_request())
    assert house.submit(make_request()) == first
    assert len(poll_all(house, T0 + 60)) == 1
    conflict = house.submit(make_request(amount_minor=10_001))
    assert conflict == RailSubmission(False, None, "request_id_conflict")


def test_an_unsupported_currency_is_refused() -> None:
    """The simulated rail carries CNY only unless configured otherwise."""
    house, _ = make_house()
    answer = house.submit(make_request(currency="USD"))
    assert answer.refusal_code == "currency_not_supported"


def test_outstanding_requests_are_capped() -> None:
    """Beyond the cap, submit refuses; once callbacks are taken there is room again."""
    house, _ = make_house(outstanding_max=2)
    assert house.submit(make_request("a")).accepted
    assert house.submit(make_request("b")).accepted
    assert house.submit(make_request("c")).refusal_code == "capacity_exceeded"
    poll_all(house, T0 + 5)
    assert house.outstanding == 0
    assert house.submit(make_request("c")).accepted


def test_poll_respects_its_limit_and_delivery_order() -> None:
    """At most `limit` callbacks per poll, earliest due first."""
    house, clock = make_house(latency_buckets=((1, 1),))
    for index in range(5):
        clock.now = T0 + index
        house.submit(make_request(f"req-{index}"))
    first = house.poll_callbacks(T0 + 100, 3)
    second = house.poll_callbacks(T0 + 100, 3)
    assert [c.request_id for c in first + second] == [f"req-{i}" for i in range(5)]
    with pytest.raises(ClearingSimulatorError):
        house.poll_callbacks(T0, 0)


def test_scenarios_can_be_forced_by_amount() -> None:
    """An amount script lets a demo trigger a decline by typing a magic amount."""
    house, _ = make_house(amount_script={4_040: ScriptedScenario("decline")})
    house.submit(make_request("a", amount_minor=4_040))
    house.submit(make_request("b", amount_minor=4_041))
    outcomes = {c.request_id: c.outcome for c in poll_all(house, T0 + 60)}
    assert outcomes == {"a": "declined", "b": "succeeded"}


def test_latency_distribution_follows_the_bucket_weights() -> None:
    """Every latency is one of the buckets, and a 9:1 weighting shows in the counts."""
    house, _ = make_house(latency_buckets=((2, 9), (20, 1)))
    for index in range(400):
        house.submit(make_request(f"req-{index}"))
    early = len(poll_all(house, T0 + 2))
    late = len(poll_all(house, T0 + 20))
    assert early + late == 400
    assert 300 < early < 390


def test_items_settled_after_the_cutoff_go_to_the_next_business_date() -> None:
    """Decided at 23:00:02 CST, the item is on the next day's file."""
    clock = FakeClock(calendar.timegm((2026, 11, 27, 14, 59, 57)))
    house, _ = make_house(clock=clock)
    house.submit(make_request())
    assert house.settlement_file(DAY).records == ()
    (record,) = house.settlement_file("2026-11-28").records
    assert record.business_date == "2026-11-28"


def test_the_fee_is_proportional_rounded_half_up_with_a_minimum() -> None:
    """10 basis points of 12,345 fen is 12.345 fen -> 12; of 5 fen it is the 1 fen minimum."""
    behaviour = SimulatorBehaviour(fee_basis_points=10, fee_minimum_minor=1)
    assert behaviour.fee_for(12_345) == 12
    assert behaviour.fee_for(12_355) == 12
    assert behaviour.fee_for(12_350) == 12
    assert behaviour.fee_for(12_850) == 13
    assert behaviour.fee_for(5) == 1


def test_misconfigured_behaviour_is_refused() -> None:
    """Probabilities are parts per million; anything else is refused with a code."""
    with pytest.raises(ClearingSimulatorError) as caught:
        SimulatorBehaviour(decline_ppm=1_000_001)
    assert caught.value.code == "clearing_simulator_invalid"
    with pytest.raises(ClearingSimulatorError):
        SimulatorBehaviour(latency_buckets=())
    with pytest.raises(ClearingSimulatorError):
        ScriptedScenario("vanish")  # type: ignore[arg-type]


def run_mixed(seed: int, order: list[int] | None = None) -> tuple[list[object], str]:
    """Submit 200 requests to a misbehaving house and collect everything it says."""
    house, _ = make_house(
        seed=seed,
        latency_buckets=((1, 5), (4, 3), (30, 1)),
        unavailable_ppm=50_000,
        timeout_ppm=50_000,
        lost_callback_ppm=50_000,
        decline_ppm=100_000,
        fail_ppm=50_000,
        late_ppm=50_000,
        duplicate_ppm=100_000,
        out_of_order_ppm=100_000,
        conflicting_ppm=50_000,
    )
    indices = order if order is not None else list(range(200))
    said: list[object] = [house.submit(make_request(f"req-{i}", 100 + i)) for i in indices]
    said.extend(
        (c.request_id, c.sequence, c.outcome, c.decline_code, c.sent_at)
        for c in poll_all(house, T0 + 10**5)
    )
    return said, house.settlement_file(DAY).to_csv()


def test_the_simulator_is_deterministic_for_a_seed() -> None:
    """Same seed, same requests: the same answers, callbacks and settlement file."""
    assert run_mixed(11) == run_mixed(11)
    assert run_mixed(11) != run_mixed(12)


def test_what_happens_to_a_request_does_not_depend_on_submission_order() -> None:
    """Draws are keyed by request id, so reversing the order changes no outcome."""
    forward, forward_file = run_mixed(11)
    backward, backward_file = run_mixed(11, list(reversed(range(200))))
    assert forward_file == backward_file
    assert sorted(map(repr, forward[200:])) == sorted(map(repr, backward[200:]))


def test_every_scenario_occurs_under_mixed_probabilities() -> None:
    """The probabilities are wired to the scenarios: each kind of behaviour shows up."""
    said, settlement_text = run_mixed(3)
    submissions = [item for item in said[:200] if isinstance(item, RailSubmission)]
    callbacks = [item for item in said[200:] if isinstance(item, tuple)]
    assert any(s.refusal_code == "bank_unavailable" for s in submissions)
    outcomes = {c[2] for c in callbacks}
    assert outcomes == {"succeeded", "declined", "failed", "processing"}
    keys = [(c[0], c[1]) for c in callbacks]
    assert len(keys) > len(set(keys))  # duplicates happened
    assert SettlementFile.parse_csv(settlement_text).record_count > 100
