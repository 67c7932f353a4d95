"""The operator case queue for AML alerts, as a pure state machine.

An alert, or several related ones, becomes a case. An operator takes the case (assign), writes
what they found (annotate) and closes it with a disposition: a suspicious transaction report was
filed ("reported_str"), nothing needed doing ("no_action"), or the alert was wrong
("false_positive"). Every transition returns the new immutable `Case` and a `CaseEvent` for the
audit trail, so the storage layer persists both in one transaction and the history of a case
can be replayed from its events.

Rules:

* open -> assigned by `assign`; an assigned case may be reassigned to another operator;
* `annotate` works on open and assigned cases and never on a closed one;
* `close` needs an assigned case and a disposition; a closed case is final (no reopen: a new
  case is opened instead, so the earlier disposition stays on record unchanged).

Nothing here reads the clock or makes ids: `opened_at`, `at` and `case_id` come from the
caller. Notes are free text written by operators and may hold personal data; they are stored
with the case and never copied into error messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final, Literal, get_args

from tianping.payments.aml.errors import AmlError

__all__ = [
    "ALERT_REFS_MAX",
    "NOTES_MAX",
    "NOTE_LENGTH_MAX",
    "Case",
    "CaseAction",
    "CaseEvent",
    "CaseStatus",
    "Disposition",
    "annotate",
    "assign",
    "close",
    "open_case",
]

CaseStatus = Literal["open", "assigned", "closed"]
Disposition = Literal["reported_str", "no_action", "false_positive"]
CaseAction = Literal["open", "assign", "annotate", "close"]
# Looked up rather than tested with `in`, so the checked value keeps its Literal type.
_DISPOSITIONS_BY_NAME: Final[dict[str, Disposition]] = {
    name: name for name in get_args(Disposition)
}

# A case groups at most this many alerts; an operator cannot review more in one case.
ALERT_REFS_MAX: Final = 1_000
# Notes are bounded so one case cannot grow without limit in storage or on screen.
NOTE_LENGTH_MAX: Final = 4_000
NOTES_MAX: Final = 500
# Case ids, alert references and actor ids: bounded, printable, no whitespace.
REFERENCE_LENGTH_MAX: Final = 128
_REFERENCE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]*")


def _check_reference(value: object, name: str, code: str = "invalid_case") -> str:
    """Refuse an id that is not a bounded string from the safe alphabet; return it."""
    if (
        not isinstance(value, str)
        or len(value) > REFERENCE_LENGTH_MAX
        or _REFERENCE_PATTERN.fullmatch(value) is None
    ):
        raise AmlError(code, f"{name} must be 1 to {REFERENCE_LENGTH_MAX} letters, digits or _.:@-")
    return value


def _check_at(at: object) -> int:
    if type(at) is not int or at < 0:
        raise AmlError("invalid_case", "times are non-negative int unix seconds")
    return at


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One transition, as the audit trail records it: who did what to which case, when.

    `details` holds the transition's inputs (assignee, note, disposition) as sorted pairs, so
    the event is hashable and serialises identically every time.
    """

    case_id: str
    actor: str
    at: int
    action: CaseAction
    details: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Case:
    """One case. Immutable: every transition returns a new `Case`."""

    case_id: str
    opened_at: int
    alert_refs: tuple[str, ...]
    status: CaseStatus = "open"
    assignee: str | None = None
    notes: tuple[tuple[int, str, str], ...] = ()
    disposition: Disposition | None = None
    closed_at: int | None = None


def _event(case: Case, actor: str, at: int, action: CaseAction, **details: str) -> CaseEvent:
    return CaseEvent(case.case_id, actor, at, action, tuple(sorted(details.items())))


def open_case(
    case_id: str, alert_refs: tuple[str, ...], opened_at: int, actor: str
) -> tuple[Case, CaseEvent]:
    """A new open case for one or more alerts (ids in the caller's alert store)."""
    _check_reference(case_id, "case_id")
    _check_reference(actor, "actor", "invalid_actor")
    _check_at(opened_at)
    if not isinstance(alert_refs, tuple) or not 1 <= len(alert_refs) <= ALERT_REFS_MAX:
        raise AmlError("invalid_case", f"a case needs 1 to {ALERT_REFS_MAX} alert references")
    for reference in alert_refs:
        _check_reference(reference, "alert reference")
    if len(set(alert_refs)) != len(alert_refs):
        raise AmlError("invalid_case", "alert references must be distinct")
    case = Case(case_id=case_id, opened_at=opened_at, alert_refs=alert_refs)
    return case, _event(case, actor, opened_at, "open", alert_refs=",".join(alert_refs))


def _require_not_closed(case: Case) -> None:
    if case.status == "closed":
        raise AmlError("case_closed", "the case is closed; open a new case instead")


def _require_not_before_opening(case: Case, at: int) -> None:
    if at < case.opened_at:
        raise AmlError("invalid_case", "a transition cannot predate the case's opening")


def assign(case: Case, assignee: str, actor: str, at: int) -> tuple[Case, CaseEvent]:
    """Give the case to an operator; an assigned case may be given to another one."""
    _require_not_closed(case)
    _check_reference(assignee, "assignee", "invalid_actor")
    _check_reference(actor, "actor", "invalid_actor")
    _require_not_before_opening(case, _check_at(at))
    if case.assignee == assignee:
        raise AmlError("invalid_case", "the case is already assigned to this operator")
    details = {"assignee": assignee}
    if case.assignee is not None:
        details["previous_assignee"] = case.assignee
    updated = replace(case, status="assigned", assignee=assignee)
    return updated, _event(case, actor, at, "assign", **details)


def annotate(case: Case, note: str, actor: str, at: int) -> tuple[Case, CaseEvent]:
    """Add an operator's note to an open or assigned case."""
    _require_not_closed(case)
    _check_reference(actor, "actor", "invalid_actor")
    _require_not_before_opening(case, _check_at(at))
    if not isinstance(note, str) or not note.strip():
        raise AmlError("invalid_case", "a note needs some text")
    if len(note) > NOTE_LENGTH_MAX:
        raise AmlError("note_too_long", f"a note holds at most {NOTE_LENGTH_MAX} characters")
    if len(case.notes) >= NOTES_MAX:
        raise AmlError("too_many_notes", f"a case holds at most {NOTES_MAX} notes")
    updated = replace(case, notes=(*case.notes, (at, actor, note)))
    return updated, _event(case, actor, at, "annotate", note=note)


def close(case: Case, disposition: str | None, actor: str, at: int) -> tuple[Case, CaseEvent]:
    """Close an assigned case with its disposition. Closing is final."""
    _require_not_closed(case)
    _check_reference(actor, "actor", "invalid_actor")
    _require_not_before_opening(case, _check_at(at))
    if case.status != "assigned":
        raise AmlError("case_not_assigned", "a case is assigned before it is closed")
    if disposition is None or disposition == "":
        raise AmlError("disposition_required", "closing a case needs a disposition")
    checked = _DISPOSITIONS_BY_NAME.get(disposition)
    if checked is None:
        raise AmlError(
            "invalid_disposition", f"disposition must be one of {sorted(_DISPOSITIONS_BY_NAME)}"
        )
    updated = replace(case, status="closed", disposition=checked, closed_at=at)
    return updated, _event(case, actor, at, "close", disposition=disposition)
