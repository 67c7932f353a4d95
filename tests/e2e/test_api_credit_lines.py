"""End-to-end credit lines over HTTP, on SQLite: a credit-line application is opened as a line
once the person consents to credit-bureau reporting (L5); a merchant is paid on the line only
when the payer's request chooses it (L6), and a request cannot claim the source was
pre-selected; the operator issues the day's statement; the holder reads it, gets an instalment
quote with its APR, repays, and another customer cannot see the line at all."""

from __future__ import annotations

from typing import Any, Final

import pytest

from identity_api_support import IdentityApi, problem_code
from lending_support import rate_text
from payments_api_support import PAYMENTS, Customer, install_lending, install_payments, ok, onboard
from payments_support import registration_number
from tianping.identity import party_service
from tianping.payments.model import local_date

LENDING: Final = "/v1/lending"
OPERATOR: Final = {"Authorization": f"Bearer {'o' * 40}"}
BUREAU_TEXT: Final = {
    "text_id": "bureau-reporting",
    "version": 1,
    "purposes": ["credit_bureau_reporting"],
    "fields": ["name", "id_number"],
    "language": "en",
    "body": "Tianping reports my credit line to the credit reference centre every month.",
}


@pytest.fixture
def holder(identity_api: IdentityApi) -> tuple[IdentityApi, Customer, str]:
    install_payments(identity_api)
    install_lending(identity_api)
    bank = party_service.register_institution(
        identity_api.services.ledger,
        "bank-lines",
        institution_kind="partner_bank",
        clock=identity_api.clock,
    )
    merchant = party_service.register_merchant(
        identity_api.services.ledger,
        "reg-noodles",
        registration_number=registration_number("91330100716105852"),
        clock=identity_api.clock,
    )
    body = {"category_code": "5812", "discount_bps": 60}
    ok(
        identity_api.client.post(f"{PAYMENTS}/merchants/{merchant}", json=body, headers=OPERATOR),
        201,
    )
    ok(identity_api.operator("POST", "/consent-texts", BUREAU_TEXT), 201)
    return identity_api, onboard(identity_api, "lena", bank), merchant


def _call(api: IdentityApi, who: Customer, method: str, path: str, body: Any = None) -> Any:
    return api.as_party(who.token, method, path, body, prefix=LENDING)


def _open(api: IdentityApi, who: Customer, statement_day: int) -> Any:
    offer = ok(
        _call(
            api,
            who,
            "POST",
            "/applications",
            {
                "application_id": "app-line",
                "amount": 5_000_00,
                "term_months": 12,
                "annual_income": 100_000_00,
                "product": "credit_line",
            },
        )
    )
    assert offer["outcome"] == "approved", offer
    body = {"line_id": "line-1", "statement_day": statement_day}
    return _call(api, who, "POST", "/applications/app-line/credit-line", body)


def _pay(api: IdentityApi, who: Customer, merchant: str, payment_id: str, **extra: Any) -> Any:
    body = {"payment_id": payment_id, "payee_id": merchant, "amount": 800_00, "kind": "merchant"}
    return api.as_party(who.token, "POST", "", body | extra, prefix=PAYMENTS)


def test_checkout_on_a_credit_line_and_its_statement(
    holder: tuple[IdentityApi, Customer, str],
) -> None:
    api, lena, merchant = holder
    today = local_date(api.clock())
    assert today.day <= 28  # the test clock's day is a valid statement day
    # Without the consent to credit-bureau reporting there is no line (L5).
    refused = _open(api, lena, today.day)
    assert problem_code(refused) == "credit_reporting_consent_required"
    grant = {"request_id": "grant-bureau", "text_id": "bureau-reporting", "version": 1}
    ok(api.as_party(lena.token, "POST", f"/parties/{lena.party_id}/consents", grant), 201)
    line = ok(_open(api, lena, today.day), 201)
    assert (line["credit_limit"], line["available"], line["status"]) == (
        5_000_00,
        5_000_00,
        "active",
    )

    # The default source is the wallet (empty here): credit is never the default (L6).
    by_default = ok(_pay(api, lena, merchant, "pay-default"))
    assert (by_default["status"], by_default["decline_code"]) == ("declined", "insufficient_funds")
    # A request cannot claim the source was pre-selected: the field does not exist.
    claimed = _pay(api, lena, merchant, "pay-pre", funding_source="credit_line", preselected=True)
    assert claimed.status_code == 422
    # The payer's explicit choice pays the merchant from the lender's side.
    paid = ok(_pay(api, lena, merchant, "pay-1", funding_source="credit_line"))
    assert paid["status"] == "completed", paid
    wallet = ok(
        api.as_party(lena.token, "GET", f"/parties/{lena.party_id}/wallet", prefix=PAYMENTS)
    )
    assert wallet["available"] == 0
    assert ok(_call(api, lena, "GET", "/credit-lines/line-1"))["available"] == 4_200_00

    # The operator issues today's statements; the holder reads the bill.
    run = ok(api.client.post(f"{LENDING}/statement-runs/{today.isoformat()}", headers=OPERATOR))
    assert run["issued"] == 1
    bill = ok(_call(api, lena, "GET", f"/credit-lines/line-1/statements/{today.isoformat()}"))
    assert (bill["new_balance"], bill["minimum_payment"], bill["interest_charged"]) == (
        800_00,
        80_00,
        0,
    )
    listed = ok(_call(api, lena, "GET", "/credit-lines/line-1/statements"))
    assert [entry["statement_date"] for entry in listed] == [today.isoformat()]
    quote = ok(
        _call(
            api,
            lena,
            "POST",
            f"/credit-lines/line-1/statements/{today.isoformat()}/instalment-quotes",
            {"months": 3},
        )
    )
    assert quote["apr_bps"] > 0 and sum(i["principal"] for i in quote["instalments"]) == 800_00

    # Another customer cannot see the line, nor repay it.
    other = api.login(api.customer("reg-stranger")).json()["access_token"]
    hidden = api.as_party(other, "GET", "/credit-lines/line-1", prefix=LENDING)
    assert problem_code(hidden) == "credit_line_not_found"
    # Repaying from an empty wallet is refused and nothing moves.
    short = _call(
        api, lena, "POST", "/credit-lines/line-1/repayments", {"payment_id": "r-1", "amount": 1}
    )
    assert problem_code(short) == "insufficient_funds"


DAY_S: Final = 86_400


def _fresh_token(api: IdentityApi, who: Customer) -> str:
    """A new access token after the clock moved on by days (the old one has expired)."""
    identity = api.services.identity
    assert identity is not None
    identity.auth.refresh_revocations()
    return str(api.login(who.party_id).json()["access_token"])


def _granted_line(api: IdentityApi, lena: Customer) -> Any:
    grant = {"request_id": "grant-bureau", "text_id": "bureau-reporting", "version": 1}
    ok(api.as_party(lena.token, "POST", f"/parties/{lena.party_id}/consents", grant), 201)
    return ok(_open(api, lena, local_date(api.clock()).day), 201)


def _merchant_token(api: IdentityApi, merchant: str) -> str:
    identity = api.services.identity
    assert identity is not None
    identity.auth.set_password(merchant, "merchant password long enough", role="merchant")
    return str(api.login(merchant, "merchant password long enough").json()["access_token"])


def _operate(api: IdentityApi, path: str, body: Any = None) -> Any:
    return api.client.post(f"{LENDING}{path}", json=body, headers=OPERATOR)


def test_a_merchant_refund_goes_back_to_the_line(
    holder: tuple[IdentityApi, Customer, str],
) -> None:
    api, lena, merchant = holder
    _granted_line(api, lena)
    assert ok(_pay(api, lena, merchant, "pay-1", funding_source="credit_line"))["status"] == (
        "completed"
    )
    shop = _merchant_token(api, merchant)
    body = {"refund_id": "rf-1", "amount": 300_00}
    refunded = ok(api.as_party(shop, "POST", "/pay-1/refunds", body, prefix=PAYMENTS), 201)
    assert refunded["refunded_total"] == 300_00
    again = ok(api.as_party(shop, "POST", "/pay-1/refunds", body, prefix=PAYMENTS), 201)
    assert again["replayed"] and again["transfer_id"] == refunded["transfer_id"]
    line = ok(_call(api, lena, "GET", "/credit-lines/line-1"))
    assert (line["principal"], line["available"]) == (500_00, 4_500_00)
    page = ok(_call(api, lena, "GET", "/credit-lines/line-1/transactions?limit=1"))
    assert [t["kind"] for t in page["transactions"]] == ["draw"] and page["next"]
    rest = ok(_call(api, lena, "GET", f"/credit-lines/line-1/transactions?after={page['next']}"))
    assert [(t["kind"], t["amount"]) for t in rest["transactions"]] == [("refund", 300_00)]
    assert rest["next"] is None
    wallet = ok(
        api.as_party(lena.token, "GET", f"/parties/{lena.party_id}/wallet", prefix=PAYMENTS)
    )
    assert wallet["available"] == 0  # the refund paid the line, not the wallet


def test_withdrawn_consent_refuses_the_next_draw(
    holder: tuple[IdentityApi, Customer, str],
) -> None:
    api, lena, merchant = holder
    _granted_line(api, lena)
    withdrawal = {"request_id": "wd-bureau"}
    ok(
        api.as_party(
            lena.token,
            "POST",
            f"/parties/{lena.party_id}/consents/bureau-reporting/withdrawal",
            withdrawal,
        )
    )
    refused = ok(_pay(api, lena, merchant, "pay-1", funding_source="credit_line"))
    assert (refused["status"], refused["decline_code"]) == (
        "declined",
        "credit_reporting_consent_required",
    )
    # The operator cannot lift a freeze while the consent is withdrawn.
    assert ok(_operate(api, "/credit-lines/line-1/freeze"))["frozen_reason"] == "operator"
    thaw = _operate(api, "/credit-lines/line-1/unfreeze")
    assert problem_code(thaw) == "credit_reporting_consent_required"
    # The holder closes the line, which owes nothing; another customer may not.
    other = api.login(api.customer("reg-stranger")).json()["access_token"]
    hidden = api.as_party(other, "POST", "/credit-lines/line-1/closure", None, prefix=LENDING)
    assert problem_code(hidden) == "credit_line_not_found"
    closed = ok(_call(api, lena, "POST", "/credit-lines/line-1/closure"))
    assert closed["status"] == "closed"


def test_a_past_due_line_is_frozen_noticed_and_written_off(
    holder: tuple[IdentityApi, Customer, str],
) -> None:
    api, lena, merchant = holder
    _granted_line(api, lena)
    ok(_pay(api, lena, merchant, "pay-1", funding_source="credit_line"))
    today = local_date(api.clock())
    ok(_operate(api, f"/statement-runs/{today.isoformat()}"))
    # Twelve days on, the minimum due nine days after the statement is three days late.
    api.clock.advance(12 * DAY_S)
    late = local_date(api.clock())
    run = ok(_operate(api, f"/credit-line-classifications/{late.isoformat()}"))
    assert (run["past_due"], run["worsened"]) == (1, 1)
    token = _fresh_token(api, lena)
    line = ok(api.as_party(token, "GET", "/credit-lines/line-1", None, prefix=LENDING))
    assert (line["status"], line["frozen_reason"], line["days_past_due"]) == (
        "frozen",
        "past_due",
        3,
    )
    notices = ok(
        api.as_party(token, "GET", f"/parties/{lena.party_id}/notices", None, prefix=LENDING)
    )["notices"]
    assert [(n["line_id"], n["to_tier"]) for n in notices] == [("line-1", "special_mention")]
    assert notices[0]["review_path"].endswith("/review-requests")
    refused = ok(
        api.as_party(
            token,
            "POST",
            "",
            {"payment_id": "pay-2", "payee_id": merchant, "amount": 1_00, "kind": "merchant"}
            | {"funding_source": "credit_line"},
            prefix=PAYMENTS,
        )
    )
    assert refused["decline_code"] == "credit_line_not_active"
    body = {"write_off_id": "wo-1", "on": late.isoformat(), "reason": "uncollectable"}
    assert problem_code(_operate(api, "/credit-lines/line-1/write-off", body)) == (
        "write_off_not_allowed"
    )
    # Half a year of unpaid bills later, the line is in the loss class and written off.
    api.clock.advance(180 * DAY_S)
    day = local_date(api.clock()).isoformat()
    ok(_operate(api, f"/statement-runs/{day}"))
    ok(_operate(api, f"/credit-line-classifications/{day}"))
    body = {"write_off_id": "wo-1", "on": day, "reason": "uncollectable"}
    written = ok(_operate(api, "/credit-lines/line-1/write-off", body))
    assert written["total"] > 800_00 and not written["replayed"]
    assert ok(_operate(api, "/credit-lines/line-1/write-off", body))["replayed"]
    token = _fresh_token(api, lena)
    notices = ok(
        api.as_party(token, "GET", f"/parties/{lena.party_id}/notices", None, prefix=LENDING)
    )["notices"]
    assert notices[-1]["notice"] == "written_off"
    portfolio = ok(api.client.get(f"{LENDING}/portfolio", headers=OPERATOR))
    assert portfolio["credit_lines"]["ledger_agrees"]


def test_recoveries_on_a_written_off_line(holder: tuple[IdentityApi, Customer, str]) -> None:
    """The operator books recoveries on a written-off line from the holder's wallet (problem
    documents with stable codes for every refusal), and a merchant's refund of a purchase on
    it is booked as a recovery too."""
    api, lena, merchant = holder
    _granted_line(api, lena)
    ok(_pay(api, lena, merchant, "pay-1", funding_source="credit_line"))
    today = local_date(api.clock()).isoformat()
    ok(_operate(api, f"/statement-runs/{today}"))
    recovery = {"recovery_id": "rec-1", "amount": 300_00, "on": today}
    live = _operate(api, "/credit-lines/line-1/recoveries", recovery)
    assert (live.status_code, problem_code(live)) == (409, "line_not_written_off")
    api.clock.advance(192 * DAY_S)
    day = local_date(api.clock()).isoformat()
    ok(_operate(api, f"/statement-runs/{day}"))
    ok(_operate(api, f"/credit-line-classifications/{day}"))
    body = {"write_off_id": "wo-1", "on": day, "reason": "uncollectable"}
    written = ok(_operate(api, "/credit-lines/line-1/write-off", body))
    recovery["on"] = day
    # Only the operator books a recovery; the holder's wallet must hold it.
    token = _fresh_token(api, lena)
    path = "/credit-lines/line-1/recoveries"
    assert api.as_party(token, "POST", path, recovery, prefix=LENDING).status_code == 403
    assert problem_code(_operate(api, path, recovery)) == "insufficient_funds"
    assert problem_code(_operate(api, path, recovery | {"amount": 0})) == "invalid_request"
    assert problem_code(_operate(api, "/credit-lines/line-x/recoveries", recovery)) == (
        "credit_line_not_found"
    )
    rail = {"request_id": "t-lena", "direction": "top_up", "card_fingerprint": lena.card}
    ok(api.as_party(token, "POST", "/rails", rail | {"amount": 300_00}, prefix=PAYMENTS), 202)
    api.clock.advance(60)
    ok(api.client.post(PAYMENTS + "/clearing/callbacks", headers=OPERATOR))
    booked = ok(_operate(api, path, recovery))
    assert (booked["recovered"], booked["overpayment"], booked["replayed"]) == (300_00, 0, False)
    assert booked["still_written_off"] == written["total"] - 300_00
    # The platform funds this line alone (the integration tests split co-funded lines).
    assert booked["by_funder"] == {"platform": 300_00}
    assert ok(_operate(api, path, recovery))["replayed"] is True
    conflict = _operate(api, path, recovery | {"amount": 200_00})
    assert (conflict.status_code, problem_code(conflict)) == (
        409,
        "recovery_exists_with_different_fields",
    )
    # The merchant refunds 100.00 of the purchase: the line's funders recover it.
    refund = {"refund_id": "rf-1", "amount": 100_00}
    token = _fresh_token(api, lena)  # refreshes the revocations for the new tokens too
    shop = _merchant_token(api, merchant)
    ok(api.as_party(shop, "POST", "/pay-1/refunds", refund, prefix=PAYMENTS), 201)
    page = ok(api.as_party(token, "GET", "/credit-lines/line-1/transactions", None, prefix=LENDING))
    assert [(t["kind"], t["amount"], t["reference"]) for t in page["transactions"][-2:]] == [
        ("recovery", 300_00, "rec-1"),
        ("recovery", 100_00, "pay-1"),
    ]
    line = ok(api.as_party(token, "GET", "/credit-lines/line-1", None, prefix=LENDING))
    assert line["status"] == "written_off"
    assert line["fees"] + line["interest"] + line["principal"] == written["total"] - 400_00
    portfolio = ok(api.client.get(f"{LENDING}/portfolio", headers=OPERATOR))
    assert portfolio["credit_lines"]["ledger_agrees"] and portfolio["ledger_agrees"]
    # The credit losses count the refund on the written-off line as recovered, like the
    # operator's recovery, and agree with the platform's accounts.
    lines = portfolio["credit_losses"]["credit_lines"]
    assert (lines["written_off"], lines["recovered"], lines["write_offs"]) == (
        written["total"],
        400_00,
        1,
    )
    assert lines["net_charge_off"] == written["total"] - 400_00
    assert lines["by_funder"] == {
        "platform": {
            "written_off": written["total"],
            "recovered": 400_00,
            "net_charge_off": written["total"] - 400_00,
            "recovery_rate": rate_text(400_00, written["total"]),
        }
    }
    assert portfolio["credit_losses"]["ledger_agrees"]
