"""The one exception type of the anti-money-laundering package, with stable error codes.

Callers (the API edge, the operator console, the audit trail) branch on `code`, never on the
message, so codes are part of the public contract and never change meaning. Messages name the
offending field or state but never carry personal data such as a customer id or an amount, so
they are safe to log.
"""

from __future__ import annotations

from typing import Final

__all__ = ["AML_ERROR_CODES", "AmlError"]

# Every code this package raises, so that a test can check that no code is invented ad hoc.
AML_ERROR_CODES: Final = frozenset(
    {
        "invalid_transaction",
        "invalid_thresholds",
        "threshold_missing",
        "invalid_calendar",
        "too_many_transactions",
        "invalid_detector_parameter",
        "invalid_case",
        "case_closed",
        "case_not_assigned",
        "disposition_required",
        "invalid_disposition",
        "invalid_actor",
        "note_too_long",
        "too_many_notes",
        "too_many_alerts",
        "invalid_dataset",
    }
)


class AmlError(ValueError):
    """A refused AML input or transition; `code` is a stable snake_case identifier.

    It derives from ValueError because every case is a well-typed value that the domain does not
    accept (a malformed transaction, an illegal case transition).
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in AML_ERROR_CODES:
            raise ValueError(f"unregistered AML error code {code!r}")
        super().__init__(message)
        self.code = code
