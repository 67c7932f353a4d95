"""The AML case queue: legal transitions produce audit events; illegal ones are refused with
stable codes and leave the case as it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from tianping.payments.aml.cases import (
    NOTE_LENGTH_MAX,
    NOTES_MAX,
    Case,
    CaseEvent,
    annotate,
    assign,
    close,
    open_case,
)
from tianping.payments.aml.errors import AmlError

T0 = 1_800_000_000


def opened() -> Case:
    case, _ = open_case("case-1", ("alert-1", "alert-2"), T0, "system")
    return case


def assigned() -> Case:
    case, _ = assign(opened(), "op.li", "supervisor", T0 + 10)
    return case


def code_of(error: pytest.ExceptionInfo[AmlError]) -> str:
    return error.value.code


def test_full_lifecycle_produces_one_event_per_transition() -> None:
    case, opened_event = open_case("case-1", ("alert-1",), T0, "system")
    assert (case.status, case.assignee, case.disposition) == ("open", None, None)
    case, assigned_event = assign(case, "op.li", "supervisor", T0 + 1)
    case, note_event = annotate(case, "counterparties share a device", "op.li", T0 + 2)
    case, closed_event = close(case, "reported_str", "op.li", T0 + 3)

    assert case.status == "closed"
    assert case.disposition == "reported_str"
    assert case.closed_at == T0 + 3
    assert case.notes == ((T0 + 2, "op.li", "counterparties share a device"),)
    assert [event.action for event in (opened_event, assigned_event, note_event, closed_event)] == [
        "open",
        "assign",
        "annotate",
        "close",
    ]
    assert opened_event == CaseEvent("case-1", "system", T0, "open", (("alert_refs", "alert-1"),))
    assert assigned_event.details == (("assignee", "op.li"),)
    assert closed_event == CaseEvent(
        "case-1", "op.li", T0 + 3, "close", (("disposition", "reported_str"),)
    )


def test_reassignment_is_allowed_and_records_the_previous_assignee() -> None:
    case, event = assign(assigned(), "op.wang", "supervisor", T0 + 20)
    assert (case.status, case.assignee) == ("assigned", "op.wang")
    assert dict(event.details) == {"assignee": "op.wang", "previous_assignee": "op.li"}


def test_assigning_to_the_current_assignee_is_refused() -> None:
    with pytest.raises(AmlError) as raised:
        assign(assigned(), "op.li", "supervisor", T0 + 20)
    assert code_of(raised) == "invalid_case"


def test_an_open_case_can_be_annotated_before_assignment() -> None:
    case, _ = annotate(opened(), "first look", "op.li", T0 + 1)
    assert case.status == "open"
    assert len(case.notes) == 1


@pytest.mark.parametrize("disposition", [None, ""])
def test_closing_needs_a_disposition(disposition: str | None) -> None:
    with pytest.raises(AmlError) as raised:
        close(assigned(), disposition, "op.li", T0 + 20)
    assert code_of(raised) == "disposition_required"


def test_an_unknown_disposition_is_refused() -> None:
    with pytest.raises(AmlError) as raised:
        close(assigned(), "ignored", "op.li", T0 + 20)
    assert code_of(raised) == "invalid_disposition"


def test_an_unassigned_case_cannot_be_closed() -> None:
    with pytest.raises(AmlError) as raised:
        close(opened(), "no_action", "op.li", T0 + 20)
    assert code_of(raised) == "case_not_assigned"


@pytest.mark.parametrize("disposition", ["reported_str", "no_action", "false_positive"])
def test_a_closed_case_refuses_every_further_transition(disposition: str) -> None:
    case, _ = close(assigned(), disposition, "op.li", T0 + 20)
    assert case.disposition == disposition
    attempts: list[Callable[[], object]] = [
        lambda: annotate(case, "late note", "op.li", T0 + 30),
        lambda: assign(case, "op.wang", "supervisor", T0 + 30),
        lambda: close(case, "no_action", "op.li", T0 + 30),
    ]
    for attempt in attempts:
        with pytest.raises(AmlError) as raised:
            attempt()
        assert code_of(raised) == "case_closed"


def test_transitions_do_not_change_the_input_case() -> None:
    before = assigned()
    annotate(before, "note", "op.li", T0 + 20)
    close(before, "no_action", "op.li", T0 + 21)
    assert before == assigned()


def test_notes_are_bounded() -> None:
    with pytest.raises(AmlError) as raised:
        annotate(opened(), "x" * (NOTE_LENGTH_MAX + 1), "op.li", T0 + 1)
    assert code_of(raised) == "note_too_long"
    full = replace(opened(), notes=tuple((T0, "op.li", "n") for _ in range(NOTES_MAX)))
    with pytest.raises(AmlError) as raised:
        annotate(full, "one more", "op.li", T0 + 1)
    assert code_of(raised) == "too_many_notes"
    with pytest.raises(AmlError) as raised:
        annotate(opened(), "   ", "op.li", T0 + 1)
    assert code_of(raised) == "invalid_case"


def test_a_transition_cannot_predate_the_opening() -> None:
    with pytest.raises(AmlError) as raised:
        assign(opened(), "op.li", "supervisor", T0 - 1)
    assert code_of(raised) == "invalid_case"


@pytest.mark.parametrize(
    ("case_id", "alert_refs", "actor", "code"),
    [
        ("", ("alert-1",), "system", "invalid_case"),
        ("case 1", ("alert-1",), "system", "invalid_case"),
        ("case-1", (), "system", "invalid_case"),
        ("case-1", ("alert-1", "alert-1"), "system", "invalid_case"),
        ("case-1", ["alert-1"], "system", "invalid_case"),
        ("case-1", ("alert-1",), "", "invalid_actor"),
    ],
)
def test_invalid_openings_are_refused(
    case_id: str, alert_refs: tuple[str, ...], actor: str, code: str
) -> None:
    with pytest.raises(AmlError) as raised:
        open_case(case_id, alert_refs, T0, actor)
    assert code_of(raised) == code


def test_an_invalid_assignee_is_refused() -> None:
    with pytest.raises(AmlError) as raised:
        assign(opened(), "op li", "supervisor", T0 + 1)
    assert code_of(raised) == "invalid_actor"
