"""Every refusal code the payments context can raise has a problem document (never a 500)."""

from __future__ import annotations

import re
from pathlib import Path

import tianping.payments.clearing_sim
import tianping.payments.reconciliation  # noqa: F401 - imported for their error classes
from tianping.api.problems import PROBLEMS
from tianping.payments.clearing import ClearingError
from tianping.payments.qr import QrError

PAYMENTS = Path(__file__).resolve().parents[2] / "src" / "tianping" / "payments"
# Roots that group errors and are never raised themselves.
ABSTRACT_CODES = frozenset({"clearing_error", "qr_error", "payment_error", "reconciliation_error"})


def _subclass_codes(cls: type) -> set[str]:
    codes = set()
    for sub in cls.__subclasses__():
        codes.add(str(sub.code))
        codes |= _subclass_codes(sub)
    return codes


def test_every_payment_error_code_in_the_source_has_a_problem() -> None:
    raised = set()
    for path in PAYMENTS.glob("*.py"):
        raised |= set(re.findall(r'PaymentError\(\s*"([a-z_]+)"', path.read_text("utf-8")))
    assert len(raised) > 15  # the scan found the service's refusals
    assert sorted(raised - set(PROBLEMS)) == []


def test_every_qr_and_clearing_error_code_has_a_problem() -> None:
    codes = _subclass_codes(QrError) | _subclass_codes(ClearingError)
    assert len(codes) > 10
    assert sorted(codes - ABSTRACT_CODES - set(PROBLEMS)) == []


def test_every_aml_error_code_has_a_problem() -> None:
    from tianping.payments.aml.errors import AML_ERROR_CODES

    assert sorted(AML_ERROR_CODES - set(PROBLEMS)) == []
