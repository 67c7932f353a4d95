"""How the risk engine's verdict changes a planned outcome (`PaymentsService._apply_risk`)."""

from __future__ import annotations

import dataclasses

import pytest

from tianping.payments.model import PaymentOutcome
from tianping.payments.risk.model import RiskDecision
from tianping.payments.service import PaymentsService

# Every field differs from its default, so a field the verdict failed to carry over shows.
PLANNED = PaymentOutcome(
    payment_id="p-1",
    status="completed",
    decline_code=None,
    reasons=("planned",),
    amount=12_34,
    currency="CNY",
    payer_id="pty_" + "a" * 26,
    payee_id="pty_" + "b" * 26,
    kind="merchant",
    channel="qr_static",
    decision_id=7,
    risk_action=None,
    risk_score_ppm=None,
    model_version=None,
    transfer_id=99,
    business_date="2026-11-28",
    created_at=1_800_000_000_000_000_000,
    refunded=5,
    replayed=True,
)


@pytest.mark.parametrize(
    ("action", "auth_factors", "status", "decline_code", "transfer_id"),
    [
        ("allow", 1, "completed", None, 99),
        ("challenge", 2, "completed", None, 99),
        ("challenge", 1, "step_up_required", None, None),
        ("deny", 2, "declined", "risk_denied", None),
    ],
)
def test_the_verdict_changes_only_status_and_risk_fields(
    action: str, auth_factors: int, status: str, decline_code: str | None, transfer_id: int | None
) -> None:
    risk = RiskDecision(action=action, score=0.25, reasons=("model:amount",), model_version="v9")
    judged = PaymentsService._apply_risk(PLANNED, risk, auth_factors)
    assert judged == dataclasses.replace(
        PLANNED,
        status=status,
        decline_code=decline_code,
        reasons=("model:amount",),
        risk_action=action,
        risk_score_ppm=250_000,
        model_version="v9",
        transfer_id=transfer_id,
    )
