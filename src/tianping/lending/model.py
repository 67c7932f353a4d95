"""Lending's commands and outcomes: plain data, shared by the service and its store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Application", "ApplicationOutcome", "LendingRefusal", "RepaymentOutcome"]


class LendingRefusal(Exception):
    """A lending refusal with a stable `code`; messages never carry personal data.

    Defined here, with the plain data, so that the service and its credit-line use cases (in
    their own module) share it without importing each other."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Application:
    application_id: str
    party_id: str
    amount: int
    term_months: int
    annual_income: int
    has_income: bool = True
    is_student: bool = False
    product: str = "instalment"
    currency: str = "CNY"
    partner_bank_id: str | None = None
    features: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class ApplicationOutcome:
    application_id: str
    party_id: str
    outcome: str  # approved | declined
    score: int | None
    pd_ppm: int | None
    reasons: tuple[dict[str, str], ...]
    model_version: str | None
    rule_ids: tuple[str, ...]
    decision_id: int | None
    rate_bps: int | None
    apr_bps: int | None
    sources: tuple[str, ...]
    review_path: str | None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class RepaymentOutcome:
    loan_id: str
    payment_id: str
    allocation: dict[str, int]
    overpayment: int
    status: str
    replayed: bool = False
