"""SME working-capital loans over HTTP (/v1/lending), on SQLite and PostgreSQL: a merchant with
a month of takings applies for itself; without its credit-assessment consent it is refused,
with it the offer is priced within the cap its receipts support, paid into its settlement
account and repaid from there; a risky merchant is declined with reasons and the review path.
The credit model is a stand-in (see lending_support.py); consent, rules, pricing and money are
the real ones."""

from __future__ import annotations

from typing import Any, Final

import pytest

from identity_api_support import IdentityApi, problem_code
from lending_support import FixedScorer
from payments_api_support import Customer, install_lending, install_payments, ok, onboard
from payments_support import registration_number
from tianping.identity import party_service
from tianping.payments.model import PaymentCommand

LENDING: Final = "/v1/lending"
NS: Final = 1_000_000_000
MERCHANT_PASSWORD: Final = "merchant password long enough"
SME_CONSENT: Final = {
    "text_id": "sme-credit-assessment",
    "version": 1,
    "purposes": ["credit_assessment"],
    "fields": ["income"],
    "language": "en",
    "body": "Tianping may assess my business's credit from its own card and QR takings.",
}


class Shop:
    def __init__(self, party_id: str, token: str) -> None:
        self.party_id = party_id
        self.token = token


@pytest.fixture
def shop(identity_api: IdentityApi) -> tuple[IdentityApi, Shop, Customer, FixedScorer]:
    """A merchant paid 600.00 by a customer in January (2027); the clock is then in February."""
    api = identity_api
    install_payments(api)
    services = api.services
    identity = services.identity
    assert identity is not None
    scorer = FixedScorer()
    install_lending(api, sme_scorer=scorer, acquiring=services.payments)
    bank = party_service.register_institution(
        services.ledger, "bank-sme", institution_kind="partner_bank", clock=api.clock
    )
    alice = onboard(api, "alice", bank)
    payments = services.payments
    payments.request_rail("top-alice", "top_up", alice.party_id, alice.card, 1_000_00)
    api.clock.advance(60)
    payments.process_callbacks()
    merchant = party_service.register_merchant(
        services.ledger,
        "reg-shop",
        registration_number=registration_number("91330100716105852"),
        clock=api.clock,
    )
    payments.register_merchant(merchant, "5812", 60)
    identity.auth.set_password(merchant, MERCHANT_PASSWORD, role="merchant")
    for index, amount in enumerate((250_00, 350_00)):
        command = PaymentCommand(
            f"jan-{index}", alice.party_id, merchant, amount, "CNY", kind="merchant", auth_factors=2
        )
        (paid,) = payments.pay([command])
        assert paid.status == "completed", paid
    api.clock.advance(31 * 86_400)
    identity.auth.refresh_revocations()
    token = api.login(merchant, MERCHANT_PASSWORD).json()["access_token"]
    assert api.operator("POST", "/consent-texts", SME_CONSENT).status_code == 201
    return api, Shop(merchant, token), alice, scorer


def _apply(api: IdentityApi, token: str, application_id: str, **extra: Any) -> Any:
    body = {
        "application_id": application_id,
        "amount": 1_200_00,
        "term_months": 6,
        "annual_income": 8_000_00,
        "product": "sme",
        **extra,
    }
    return api.as_party(token, "POST", "/applications", body, prefix=LENDING)


def _consent(api: IdentityApi, shop: Shop) -> None:
    body = {"request_id": "grant-sme", "text_id": "sme-credit-assessment", "version": 1}
    granted = api.as_party(shop.token, "POST", f"/parties/{shop.party_id}/consents", body)
    assert granted.status_code == 201, granted.text


def test_consent_then_approval_disbursement_and_repayment(
    shop: tuple[IdentityApi, Shop, Customer, FixedScorer],
) -> None:
    api, merchant, alice, scorer = shop
    refused = _apply(api, merchant.token, "sme-1")
    assert refused.status_code == 409 and problem_code(refused) == "sme_consent_required"
    _consent(api, merchant)
    over = _apply(api, merchant.token, "sme-over", amount=3 * 600_00 + 1)
    assert over.status_code == 422 and problem_code(over) == "amount_above_receipts_cap"
    consumer = _apply(api, merchant.token, "sme-c", product="instalment")
    assert problem_code(consumer) == "applicant_not_person"
    offer = ok(_apply(api, merchant.token, "sme-1"))
    assert offer["outcome"] == "approved", offer
    assert offer["sources"] == ["acquiring_cash_flows", "application"]
    assert offer["apr_bps"] >= offer["rate_bps"]
    assert scorer.seen_sources[-1] == frozenset({"application", "acquiring_cash_flows"})
    loan = ok(
        api.as_party(
            merchant.token,
            "POST",
            "/applications/sme-1/acceptance",
            {"loan_id": "sme-loan-1"},
            prefix=LENDING,
        ),
        201,
    )
    assert (loan["product"], loan["party_id"]) == ("sme", merchant.party_id)
    read = ok(api.as_party(merchant.token, "GET", "/loans/sme-loan-1", prefix=LENDING))
    assert read["outstanding_principal"] == 1_200_00
    paid = ok(
        api.as_party(
            merchant.token,
            "POST",
            "/loans/sme-loan-1/repayments",
            {"payment_id": "sme-r-1", "amount": 200_00},
            prefix=LENDING,
        )
    )
    assert paid["allocation"]["principal"] == 200_00 and paid["status"] == "active"
    # Paying off the rest: what is paid beyond the debt stays in the settlement account.
    final = ok(
        api.as_party(
            merchant.token,
            "POST",
            "/loans/sme-loan-1/repayments",
            {"payment_id": "sme-r-2", "amount": 1_000_01},
            prefix=LENDING,
        )
    )
    assert (final["status"], final["overpayment"]) == ("repaid", 1)
    assert ok(api.as_party(merchant.token, "GET", "/loans/sme-loan-1", prefix=LENDING))[
        "status"
    ] == ("repaid")
    # A customer neither applies for an SME loan nor sees the merchant's loan.
    customer = api.login(alice.party_id).json()["access_token"]
    person = _apply(api, customer, "sme-person")
    assert problem_code(person) == "applicant_not_merchant"
    assert problem_code(api.as_party(customer, "GET", "/loans/sme-loan-1", prefix=LENDING)) == (
        "loan_not_found"
    )


def test_a_risky_merchant_is_declined_with_reasons_and_a_review_path(
    shop: tuple[IdentityApi, Shop, Customer, FixedScorer],
) -> None:
    api, merchant, _, scorer = shop
    _consent(api, merchant)
    scorer.score_points, scorer.pd = 420, 0.31
    declined = ok(_apply(api, merchant.token, "sme-risky"))
    assert declined["outcome"] == "declined"
    assert [reason["reason_id"] for reason in declined["reasons"]] == [
        "R-INCOME-LOW",
        "R-HISTORY-SHORT",
    ]
    assert declined["review_path"] == f"/v1/identity/parties/{merchant.party_id}/review-requests"
    assert ok(api.as_party(merchant.token, "GET", "/applications/sme-risky", prefix=LENDING))[
        "outcome"
    ] == ("declined")
    refused = api.as_party(
        merchant.token,
        "POST",
        "/applications/sme-risky/acceptance",
        {"loan_id": "l"},
        prefix=LENDING,
    )
    assert problem_code(refused) == "application_not_approved"
