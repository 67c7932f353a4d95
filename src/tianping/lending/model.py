"""Lending's commands and outcomes: plain data, shared by the service and its store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Application",
    "ApplicationOutcome",
    "LendingRefusal",
    "PartnerBankFigures",
    "PayoffQuote",
    "RecoveryOutcome",
    "RepaymentOutcome",
    "WriteOffOutcome",
]


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
    # 等额本息 (`equal_instalment`) or 等额本金 (`equal_principal`); instalment and SME loans.
    repayment_method: str = "equal_instalment"


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
    # The comprehensive financing-cost table shown with an approved offer (L13).
    cost_disclosure: dict[str, Any] | None = None
    # The schedule the offer was priced on: 等额本息 or 等额本金 (see `Application`).
    repayment_method: str = "equal_instalment"


@dataclass(frozen=True, slots=True)
class RepaymentOutcome:
    loan_id: str
    payment_id: str
    allocation: dict[str, int]
    overpayment: int
    status: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class PayoffQuote:
    """What settles a loan on `on`: everything owed, with interest (and any penalty interest)
    counted up to that day. Repaying `total` that day closes the loan."""

    loan_id: str
    on: str
    principal: int
    interest: int
    penalty_interest: int
    fees: int
    prepayment_fee: int
    total: int


@dataclass(frozen=True, slots=True)
class WriteOffOutcome:
    loan_id: str
    write_off_id: str
    on: str
    reason: str
    written_off: dict[str, int]
    total: int
    allowance_used: int
    loss_expense: int
    by_funder: dict[str, dict[str, int]]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class RecoveryOutcome:
    loan_id: str
    recovery_id: str
    on: str
    amount: int
    allocation: dict[str, int]
    recovered: int
    overpayment: int
    still_written_off: int
    by_funder: dict[str, int]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class PartnerBankFigures:
    """A partner bank's registered figures for the L3 concentration limits, in minor units of
    `currency`: its net tier-1 capital, its total loans (co-lending included), and its
    co-lending balances with other platforms, which only the bank knows and reports."""

    tier1_capital: int
    total_loans: int
    currency: str = "CNY"
    other_partner_balances: Mapping[str, int] = field(default_factory=dict)
