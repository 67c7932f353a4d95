"""End-to-end lending over HTTP (/v1/lending), on SQLite and PostgreSQL: apply, decline with
reasons and a review path, cap and student refusals, withdrawn consent, accept, accrue, repay
early in full. The credit model is a stand-in (see lending_support.py); the rules, pricing and
money are the real ones."""

from __future__ import annotations

from typing import Any, Final

import pytest

from identity_api_support import IdentityApi, problem_code
from lending_support import FixedScorer
from payments_api_support import PAYMENTS, Customer, install_lending, install_payments, ok, onboard
from tianping.identity import party_service
from tianping.payments.aml.large_value import CATEGORIES, LargeValueThresholds
from tianping.payments.aml_service import AmlService

LENDING: Final = "/v1/lending"
OPERATOR: Final = {"Authorization": f"Bearer {'o' * 40}"}


@pytest.fixture
def borrower(identity_api: IdentityApi) -> tuple[IdentityApi, Customer, FixedScorer]:
    install_payments(identity_api)
    scorer = FixedScorer()
    install_lending(identity_api, scorer=scorer, card_rails=identity_api.services.payments)
    bank = party_service.register_institution(
        identity_api.services.ledger,
        "bank-lending",
        institution_kind="partner_bank",
        clock=identity_api.clock,
    )
    return identity_api, onboard(identity_api, "lena", bank), scorer


def _apply(api: IdentityApi, who: Customer, application_id: str, **extra: Any) -> Any:
    body = {
        "application_id": application_id,
        "amount": 5_000_00,
        "term_months": 6,
        "annual_income": 100_000_00,
        **extra,
    }
    return api.as_party(who.token, "POST", "/applications", body, prefix=LENDING)


def test_apply_accept_accrue_and_repay_early(
    borrower: tuple[IdentityApi, Customer, FixedScorer],
) -> None:
    api, lena, _ = borrower
    offer = ok(_apply(api, lena, "app-1"))
    assert offer["outcome"] == "approved" and offer["apr_bps"] >= offer["rate_bps"]
    loan = ok(
        api.as_party(
            lena.token,
            "POST",
            "/applications/app-1/acceptance",
            {"loan_id": "loan-1"},
            prefix=LENDING,
        ),
        201,
    )
    assert loan["outstanding_principal"] == 5_000_00
    wallet = ok(
        api.as_party(lena.token, "GET", f"/parties/{lena.party_id}/wallet", prefix=PAYMENTS)
    )
    assert wallet["available"] == 5_000_00
    day = loan["disbursed_on"]
    from datetime import date, timedelta

    next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    accrued = ok(api.client.post(f"{LENDING}/accruals/{next_day}", headers=OPERATOR))
    assert accrued["loans"] == 1 and accrued["interest"] > 0
    owed = 5_000_00 + accrued["interest"]
    # The payoff is the principal plus the interest accrued so far; the wallet holds only the
    # principal, so paying it all off now is refused and nothing moves.
    short = api.as_party(
        lena.token,
        "POST",
        "/loans/loan-1/repayments",
        {"payment_id": "r-1", "amount": owed},
        prefix=LENDING,
    )
    assert problem_code(short) == "insufficient_funds"
    # An early part-repayment pays the accrued interest first, then principal.
    paid = ok(
        api.as_party(
            lena.token,
            "POST",
            "/loans/loan-1/repayments",
            {"payment_id": "r-2", "amount": 5_000_00},
            prefix=LENDING,
        )
    )
    assert paid["status"] == "active" and paid["allocation"]["interest"] == accrued["interest"]
    assert (
        ok(api.as_party(lena.token, "GET", "/loans/loan-1", prefix=LENDING))["status"] == "active"
    )
    # Another customer cannot see the loan at all.
    other = api.login(api.customer("reg-stranger")).json()["access_token"]
    assert problem_code(api.as_party(other, "GET", "/loans/loan-1", prefix=LENDING)) == (
        "loan_not_found"
    )


def test_declines_carry_reasons_and_the_review_path(
    borrower: tuple[IdentityApi, Customer, FixedScorer],
) -> None:
    api, lena, scorer = borrower
    student = ok(_apply(api, lena, "app-student", is_student=True))
    assert student["outcome"] == "declined"
    assert "cn.lending.student_microloan_ban" in student["rule_ids"]
    assert student["review_path"] == f"/v1/identity/parties/{lena.party_id}/review-requests"
    cap = ok(_apply(api, lena, "app-cap", amount=400_000_00, annual_income=3_000_000_00))
    assert cap["outcome"] == "declined" and cap["rule_ids"]
    scorer.score_points, scorer.pd = 420, 0.31
    risky = ok(_apply(api, lena, "app-risky"))
    assert risky["outcome"] == "declined"
    assert [reason["reason_id"] for reason in risky["reasons"]] == [
        "R-INCOME-LOW",
        "R-HISTORY-SHORT",
    ]
    # The person asks for a human review of the decision, through the identity context.
    review = api.as_party(
        lena.token,
        "POST",
        f"/parties/{lena.party_id}/review-requests",
        {"request_id": "rev-1", "decision_reference": "app-risky", "statement": "My income rose"},
    )
    assert review.status_code == 201, review.text
    refused = api.as_party(
        lena.token, "POST", "/applications/app-risky/acceptance", {"loan_id": "l"}, prefix=LENDING
    )
    assert problem_code(refused) == "application_not_approved"


def test_without_live_consent_only_application_data_is_scored(
    borrower: tuple[IdentityApi, Customer, FixedScorer],
) -> None:
    api, lena, scorer = borrower
    outcome = ok(_apply(api, lena, "app-nc"))
    assert outcome["sources"] == ["application"]
    assert scorer.seen_sources[-1] == frozenset({"application"})


def test_the_portfolio_shows_the_book_by_class_and_stage(
    borrower: tuple[IdentityApi, Customer, FixedScorer],
) -> None:
    api, lena, _ = borrower
    ok(_apply(api, lena, "app-p"))
    loan = ok(
        api.as_party(
            lena.token,
            "POST",
            "/applications/app-p/acceptance",
            {"loan_id": "loan-p"},
            prefix=LENDING,
        ),
        201,
    )
    classified = ok(
        api.client.post(f"{LENDING}/classifications/{loan['next_due_on']}", headers=OPERATOR)
    )
    assert classified == {"loans": 1}
    book = ok(api.client.get(f"{LENDING}/portfolio", headers=OPERATOR))
    assert book["by_tier"]["normal"]["loans"] == 1
    assert book["by_stage"]["1"]["exposure"] == 5_000_00
    assert api.as_party(lena.token, "GET", "/portfolio", prefix=LENDING).status_code == 403


def test_a_day_outside_the_platforms_days_is_refused(
    borrower: tuple[IdentityApi, Customer, FixedScorer],
) -> None:
    """Found by tests/e2e/test_api_fuzz.py: the accrual of 0001-01-01 answered 500 (the day
    before it is no date). Days are those the ledger's clock can stamp, 1970-01-01 to
    2262-04-10, in paths and queries alike."""
    api, _, _ = borrower
    for day in ("0001-01-01", "1969-12-31", "2262-04-11"):
        accrued = api.client.post(f"{LENDING}/accruals/{day}", headers=OPERATOR)
        assert (accrued.status_code, problem_code(accrued)) == (422, "invalid_request"), day
        book = api.client.get(f"{LENDING}/portfolio?since={day}", headers=OPERATOR)
        assert (book.status_code, problem_code(book)) == (400, "invalid_query"), day
    assert ok(api.client.post(f"{LENDING}/accruals/1970-01-01", headers=OPERATOR))["loans"] == 0


def test_acceptance_pays_the_loan_on_to_the_borrowers_own_card(
    borrower: tuple[IdentityApi, Customer, FixedScorer],
) -> None:
    api, lena, _ = borrower
    ok(_apply(api, lena, "app-card"))
    body = {"loan_id": "loan-card", "card_fingerprint": lena.card}
    path = "/applications/app-card/acceptance"
    loan = ok(api.as_party(lena.token, "POST", path, body, prefix=LENDING), 201)
    payout = loan["card_payout"]
    assert (payout["amount"], payout["state"]) == (5_000_00, "submitted")
    # The withdrawal holds the principal at once: nothing of it is spendable in the wallet.
    wallet = ok(
        api.as_party(lena.token, "GET", f"/parties/{lena.party_id}/wallet", prefix=PAYMENTS)
    )
    assert wallet["available"] == 0
    # Retrying the acceptance books nothing and pays nothing twice.
    again = ok(api.as_party(lena.token, "POST", path, body, prefix=LENDING), 201)
    assert again["card_payout"]["request_id"] == payout["request_id"]
    assert again["loan_id"] == "loan-card"


def test_the_large_value_reports_see_the_loan_through_the_composition_root(
    borrower: tuple[IdentityApi, Customer, FixedScorer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The services built by `tianping.bootstrap` attach lending to payments' AML reports: a
    loan paid into the wallet is money in for the borrower on the day it was paid."""
    api, lena, _ = borrower
    ok(_apply(api, lena, "app-aml"))
    loan = ok(
        api.as_party(
            lena.token,
            "POST",
            "/applications/app-aml/acceptance",
            {"loan_id": "loan-aml"},
            prefix=LENDING,
        ),
        201,
    )
    # One threshold for every category, so a loan of 5,000.00 reaches it.
    small = LargeValueThresholds({"CNY": dict.fromkeys(CATEGORIES, 5_000_00)}, "test")
    monkeypatch.setattr(AmlService, "_thresholds", lambda self, on: small)
    rows = ok(
        api.client.get(f"{PAYMENTS}/aml/large-value/{loan['disbursed_on']}", headers=OPERATOR)
    )
    (row,) = [row for row in rows if row["customer_id"] == lena.party_id]
    assert (row["direction"], row["total"], row["transaction_flows"]) == (
        "in",
        "5000.00",
        ["loan_disbursement"],
    )
    assert row["transaction_ids"] == ["loan-disbursement:loan-aml"]
