"""End-to-end payments over HTTP (/v1/payments), on SQLite and PostgreSQL.

People are onboarded through the identity routes (registration, verifications, payment
account, personal data, same-name card binding), then top up, pay, get refunds and withdraw as
customers with their own access tokens; the operator drives the simulated clearing house's
callbacks, settlement, reconciliation and the safeguarding check. The risk engine is left out
here (its decisions on brand-new synthetic accounts are tested in the integration tests), so
each answer below follows from the rules and the money alone.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
import pytest

from identity_api_support import IdentityApi, problem_code
from payments_api_support import Customer, install_payments, ok, onboard
from payments_support import registration_number
from tianping.identity import party_service
from tianping.payments.clearing_sim import (
    ScriptedScenario,
)

PAYMENTS: Final = "/v1/payments"
NS: Final = 1_000_000_000
SCRIPT: Final = {
    "w-decline": ScriptedScenario("decline", "do_not_honour"),
    "w-timeout": ScriptedScenario("timeout"),
    "t-dup": ScriptedScenario("duplicate"),
}


@pytest.fixture
def api(identity_api: IdentityApi) -> IdentityApi:
    install_payments(identity_api, SCRIPT)
    return identity_api


def _rail(api: IdentityApi, who: Customer, request_id: str, direction: str, amount: int) -> Any:
    body = {
        "request_id": request_id,
        "direction": direction,
        "card_fingerprint": who.card,
        "amount": amount,
    }
    return ok(api.as_party(who.token, "POST", "/rails", body, prefix=PAYMENTS), 202)


def _advance(api: IdentityApi, seconds: int) -> None:
    """Move time on, as a server's background refresh of revoked sessions would follow it."""
    api.clock.advance(seconds)
    identity = api.services.identity
    assert identity is not None
    identity.auth.refresh_revocations()


def _callbacks(api: IdentityApi, seconds: int = 60) -> list[dict[str, Any]]:
    _advance(api, seconds)
    response = api.client.post(
        PAYMENTS + "/clearing/callbacks",
        headers={"Authorization": f"Bearer {'o' * 40}"},
    )
    return list(ok(response))


def _merchant(api: IdentityApi, name: str, registration: str, category: str) -> tuple[str, str]:
    """A merchant registered with identity and payments, and its access token."""
    merchant = party_service.register_merchant(
        api.services.ledger,
        f"reg-{name}",
        registration_number=registration_number(registration),
        clock=api.clock,
    )
    body = {"category_code": category, "discount_bps": 60}
    ok(_operator(api, "POST", f"/merchants/{merchant}", body), 201)
    identity = api.services.identity
    assert identity is not None
    identity.auth.set_password(merchant, "merchant password long enough", role="merchant")
    return merchant, api.login(merchant, "merchant password long enough").json()["access_token"]


def _pay(api: IdentityApi, who: Customer, body: dict[str, Any]) -> httpx.Response:
    return api.as_party(who.token, "POST", "", body, prefix=PAYMENTS)


def _operator(api: IdentityApi, method: str, path: str, body: Any = None) -> httpx.Response:
    return api.client.request(
        method, PAYMENTS + path, json=body, headers={"Authorization": f"Bearer {'o' * 40}"}
    )


@pytest.fixture
def people(api: IdentityApi) -> dict[str, Customer]:
    bank = party_service.register_institution(
        api.services.ledger, "bank-e2e", institution_kind="partner_bank", clock=api.clock
    )
    alice, bob = onboard(api, "alice", bank), onboard(api, "bob", bank)
    _rail(api, alice, "t-alice", "top_up", 3_000_00)
    _callbacks(api)
    wallet = ok(
        api.as_party(alice.token, "GET", f"/parties/{alice.party_id}/wallet", prefix=PAYMENTS)
    )
    assert wallet["available"] == 3_000_00
    return {"alice": alice, "bob": bob}


def test_pay_retry_and_insufficient_funds(api: IdentityApi, people: dict[str, Customer]) -> None:
    alice, bob = people["alice"], people["bob"]
    body = {"payment_id": "p-1", "payee_id": bob.party_id, "amount": 200_00}
    first = ok(_pay(api, alice, body))
    assert first["status"] == "completed", first
    retry = ok(_pay(api, alice, body))
    assert retry["replayed"] is True and retry["transfer_id"] == first["transfer_id"]
    changed = _pay(api, alice, {**body, "amount": 201_00})
    assert problem_code(changed) == "request_conflict"
    broke = ok(_pay(api, bob, {"payment_id": "p-2", "payee_id": alice.party_id, "amount": 900_00}))
    assert (broke["status"], broke["decline_code"]) == ("declined", "insufficient_funds")
    # Each party reads the payment; a third party does not even learn that it exists.
    assert ok(api.as_party(bob.token, "GET", "/p-1", prefix=PAYMENTS))["amount"] == 200_00
    carol = api.login(api.customer("reg-carol")).json()["access_token"]
    assert problem_code(api.as_party(carol, "GET", "/p-1", prefix=PAYMENTS)) == (
        "payment_not_found"
    )
    # A customer pays only from their own wallet.
    stolen = _pay(api, bob, {**body, "payment_id": "p-3", "payer_id": alice.party_id})
    assert problem_code(stolen) == "forbidden"


def test_over_the_daily_cap_without_and_with_step_up(
    api: IdentityApi, people: dict[str, Customer]
) -> None:
    alice, bob = people["alice"], people["bob"]
    body = {"payment_id": "p-big", "payee_id": bob.party_id, "amount": 1_500_00}
    stopped = ok(_pay(api, alice, body))
    assert stopped["status"] == "step_up_required"
    assert "cn.payments.daily_cap_by_authentication" in stopped["reasons"]
    # Resuming from the same one-factor session decides it the same way.
    same = ok(api.as_party(alice.token, "POST", "/p-big/resume", prefix=PAYMENTS))
    assert same["status"] == "step_up_required"
    # After enrolling TOTP and stepping up, the session carries two factors and it goes through.
    import pyotp

    enrol = ok(api.as_party(alice.token, "POST", "/totp/enrol"))
    totp = pyotp.parse_uri(enrol["provisioning_uri"])
    at = api.clock() // NS
    ok(api.as_party(alice.token, "POST", "/totp/confirm", {"code": totp.at(at)}), 204)
    _advance(api, 31)
    stepped = ok(
        api.as_party(alice.token, "POST", "/step-up", {"totp_code": totp.at(api.clock() // NS)})
    )
    resumed = ok(api.as_party(stepped["access_token"], "POST", "/p-big/resume", prefix=PAYMENTS))
    assert resumed["status"] == "completed", resumed
    over = ok(
        _pay(
            api,
            Customer(alice.party_id, stepped["access_token"], alice.card),
            {"payment_id": "p-over", "payee_id": bob.party_id, "amount": 3_600_00},
        )
    )
    assert over["status"] in ("declined", "step_up_required")


def test_the_operator_acting_for_a_payer_states_the_sessions_factors(
    api: IdentityApi, people: dict[str, Customer]
) -> None:
    """A checkout backend paying as the operator for a payer states the factors of the payer's
    session, and the caps read them as they read a customer's own token; unstated, the operator
    counts as two factors, and a customer cannot state any."""
    alice, bob = people["alice"], people["bob"]
    body = {
        "payment_id": "p-op",
        "payer_id": alice.party_id,
        "payee_id": bob.party_id,
        "amount": 1_500_00,
    }
    stopped = ok(_operator(api, "POST", "", {**body, "payer_auth_factors": 1}))
    assert stopped["status"] == "step_up_required"
    assert "cn.payments.daily_cap_by_authentication" in stopped["reasons"]
    # The payer proved a second factor at the checkout; the operator resumes as two factors.
    assert ok(_operator(api, "POST", "/p-op/resume"))["status"] == "completed"

    merchant, shop = _merchant(api, "till", "91330100716105852", "5812")

    def order(reference: str) -> str:
        made = api.as_party(
            shop,
            "POST",
            f"/merchants/{merchant}/orders",
            {"reference": reference, "amount": 1_200_00, "merchant_name": "Till"},
            prefix=PAYMENTS,
        )
        payload: str = ok(made, 201)["payload"]
        return payload

    def pay_qr(payment_id: str, factors: int) -> Any:
        qr = {
            "payment_id": payment_id,
            "payload": order(f"o-{payment_id}"),
            "payer_id": alice.party_id,
            "payer_auth_factors": factors,
        }
        return ok(_operator(api, "POST", "/qr", qr))

    # A dynamic code paid from a one-factor session is grade C (1,000 CNY a day); from a
    # two-factor session grade B, which admits it.
    one = pay_qr("q-op-1", 1)
    assert (one["status"], one["channel"]) == ("step_up_required", "qr_dynamic")
    assert pay_qr("q-op-2", 2)["status"] == "completed"

    # A customer's strength is their token's: they cannot state another, on either route.
    stated = {**body, "payment_id": "p-self", "payer_id": None, "payer_auth_factors": 2}
    assert problem_code(_pay(api, alice, stated)) == "forbidden"
    own_qr = {"payment_id": "q-self", "payload": order("o-self"), "payer_auth_factors": 2}
    assert problem_code(api.as_party(alice.token, "POST", "/qr", own_qr, prefix=PAYMENTS)) == (
        "forbidden"
    )
    # From one factor up to the two the operator counts as.
    for factors in (0, 3):
        stating = {**body, "payment_id": "p-x", "payer_auth_factors": factors}
        out_of_range = _operator(api, "POST", "", stating)
        assert out_of_range.status_code == 422, out_of_range.text


def test_a_blocked_party_cannot_pay(api: IdentityApi, people: dict[str, Customer]) -> None:
    alice, bob = people["alice"], people["bob"]
    listed = api.operator(
        "POST",
        f"/parties/{alice.party_id}/blocklist",
        {"listed_on": "2027-01-01", "reason_code": "account_selling", "case_reference": "p-9"},
    )
    assert listed.status_code == 200, listed.text
    refused = ok(_pay(api, alice, {"payment_id": "p-b", "payee_id": bob.party_id, "amount": 1}))
    assert refused["status"] == "declined"
    assert "cn.payments.blocklisted_account_suspended" in refused["reasons"]


def test_merchant_qr_refunds_never_exceed_the_original(
    api: IdentityApi, people: dict[str, Customer]
) -> None:
    alice = people["alice"]
    merchant, shop = _merchant(api, "shop", "91330100716105852", "5812")
    order = ok(
        api.as_party(
            shop,
            "POST",
            f"/merchants/{merchant}/orders",
            {"reference": "order-1", "amount": 88_00, "merchant_name": "Noodle Bar"},
            prefix=PAYMENTS,
        ),
        201,
    )
    png = api.as_party(
        shop,
        "GET",
        f"/merchants/{merchant}/qr?merchant_name=Noodle%20Bar&image=png",
        prefix=PAYMENTS,
    )
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    paid = ok(
        api.as_party(
            alice.token,
            "POST",
            "/qr",
            {"payment_id": "q-1", "payload": order["payload"]},
            prefix=PAYMENTS,
        )
    )
    assert (paid["status"], paid["amount"], paid["channel"]) == ("completed", 88_00, "qr_dynamic")
    tampered = order["payload"][:-1] + ("0" if order["payload"][-1] != "0" else "1")
    bad = api.as_party(
        alice.token, "POST", "/qr", {"payment_id": "q-2", "payload": tampered}, prefix=PAYMENTS
    )
    assert problem_code(bad) == "qr_checksum_mismatch"

    def refund(refund_id: str, amount: int) -> httpx.Response:
        return api.as_party(
            shop,
            "POST",
            "/q-1/refunds",
            {"refund_id": refund_id, "amount": amount},
            prefix=PAYMENTS,
        )

    assert ok(refund("r-1", 50_00), 201)["refunded_total"] == 50_00
    beyond = refund("r-2", 38_01)
    assert beyond.status_code == 409 and problem_code(beyond) == "refund_exceeds_payment"
    assert ok(refund("r-2", 38_00), 201)["refunded_total"] == 88_00
    # The payer cannot refund to themself.
    assert (
        problem_code(
            api.as_party(
                alice.token,
                "POST",
                "/q-1/refunds",
                {"refund_id": "r-3", "amount": 1},
                prefix=PAYMENTS,
            )
        )
        == "forbidden"
    )


def test_bank_decline_timeout_and_duplicate_callbacks(
    api: IdentityApi, people: dict[str, Customer]
) -> None:
    alice = people["alice"]
    # The people fixture's top-up ("t-alice") ran normally; a duplicate-callback top-up now.
    _rail(api, alice, "t-dup", "top_up", 100_00)
    reports = _callbacks(api)
    assert {r["disposition"] for r in reports if r["request_id"] == "t-dup"} == {
        "applied",
        "duplicate",
    }
    declined = _rail(api, alice, "w-decline", "withdrawal", 500_00)
    assert declined["state"] == "submitted"
    _rail(api, alice, "w-timeout", "withdrawal", 400_00)
    wallet = f"/parties/{alice.party_id}/wallet"
    held = ok(api.as_party(alice.token, "GET", wallet, prefix=PAYMENTS))["available"]
    assert held == 3_100_00 - 900_00
    _callbacks(api)
    assert ok(api.as_party(alice.token, "GET", "/rails/w-decline", prefix=PAYMENTS))["state"] == (
        "declined"
    )
    _callbacks(api, 200)
    assert ok(api.as_party(alice.token, "GET", "/rails/w-timeout", prefix=PAYMENTS))["state"] == (
        "timed_out"
    )
    assert ok(api.as_party(alice.token, "GET", wallet, prefix=PAYMENTS))["available"] == 3_100_00
    again = _rail(api, alice, "w-decline", "withdrawal", 500_00)
    assert again["state"] == "declined"  # a retry with the same id replays, nothing new is held
    day = again["business_date"]
    report = ok(_operator(api, "POST", f"/reconciliations/{day}"))
    assert report["clean"] is True, report
    check = ok(_operator(api, "POST", "/safeguarding"))
    assert check["in_balance"] is True and check["reserve"] == 3_100_00


def test_aml_reports_and_the_case_queue(api: IdentityApi, people: dict[str, Customer]) -> None:
    alice, bob = people["alice"], people["bob"]
    paid = ok(_pay(api, alice, {"payment_id": "a-1", "payee_id": bob.party_id, "amount": 10_00}))
    day = paid["business_date"]
    csv = _operator(api, "GET", f"/aml/large-value/{day}?format=csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("report_key")  # the header, and no report
    scan = ok(_operator(api, "POST", f"/aml/scans/{day}?days=1"))
    assert scan["transfers"] >= 1
    missing = _operator(api, "POST", "/aml/cases/aml:none/close", {"value": "no_action"})
    assert problem_code(missing) == "aml_case_not_found"
    # Customers never see AML work (no tipping-off).
    assert api.as_party(alice.token, "GET", "/aml/cases", prefix=PAYMENTS).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/settlements/{}",
        "/reconciliations/{}",
        "/summary/{}",
        "/aml/large-value/{}",
        "/aml/scans/{}?days=7",
    ],
)
def test_a_business_date_is_a_day_the_platform_keeps(api: IdentityApi, path: str) -> None:
    """Found by tests/e2e/test_api_fuzz.py: a date of the right shape that is no calendar day,
    or a day the ledger's clock cannot stamp, answered 500 from the AML routes (year 0, year
    9999). Every route taking a business date now refuses such a date before it runs."""
    method = "GET" if path.startswith(("/summary", "/aml/large-value")) else "POST"
    for day in ("0000-00-00", "2024-02-30", "1969-12-31", "2262-04-11", "9999-12-31"):
        response = _operator(api, method, path.format(day))
        assert response.status_code == 422, (day, response.text)
        assert problem_code(response) == "invalid_request"
        # The fault names the field, never the value (which is in `instance`, the path).
        assert day not in str(response.json()["errors"])
    assert _operator(api, method, path.format("2262-04-10")).status_code == 200


def test_large_value_reports_name_the_flow_of_each_transaction(
    api: IdentityApi, people: dict[str, Customer]
) -> None:
    """A top-up and a withdrawal reaching the thresholds in force are reported on the day the
    clearing house posted them, each transaction with its flow; a declined one is not."""
    from tianping.payments.model import local_date

    alice = people["alice"]
    _rail(api, alice, "t-large", "top_up", 500_000_00)
    _callbacks(api)
    _rail(api, alice, "w-large", "withdrawal", 500_000_00)
    _rail(api, alice, "w-decline", "withdrawal", 1_000_00)
    _callbacks(api)
    day = local_date(api.clock()).isoformat()
    rows = ok(_operator(api, "GET", f"/aml/large-value/{day}"))
    by_direction = {row["direction"]: row for row in rows}
    assert set(by_direction) == {"in", "out"}
    top_ups = by_direction["in"]
    assert (top_ups["customer_id"], top_ups["category"], top_ups["trigger"]) == (
        alice.party_id,
        "person_domestic_transfer",
        "single",
    )
    # The people fixture's top-up of the same day counts towards the same report.
    assert top_ups["transaction_ids"] == ["topup:t-alice", "topup:t-large"]
    assert top_ups["transaction_flows"] == ["topup", "topup"]
    assert by_direction["out"]["transaction_ids"] == ["withdrawal:w-large"]
    assert by_direction["out"]["total"] == "500000.00"
    csv = _operator(api, "GET", f"/aml/large-value/{day}?format=csv")
    header, *lines = csv.text.splitlines()
    assert header.endswith(",transaction_flows") and len(lines) == 2
    assert any(line.endswith(",topup;topup") for line in lines)
    assert "w-decline" not in csv.text


def test_a_merchant_scans_a_customers_payment_code(
    api: IdentityApi, people: dict[str, Customer]
) -> None:
    import base64

    from tianping.payments.payment_codes import PaymentCodeCredential, PaymentCodeIssuer

    alice = people["alice"]
    enrolled = ok(
        api.as_party(
            alice.token, "POST", f"/parties/{alice.party_id}/payment-code", prefix=PAYMENTS
        ),
        201,
    )
    app = PaymentCodeIssuer(
        PaymentCodeCredential(enrolled["slot"], base64.b64decode(enrolled["secret"]))
    )
    _, till = _merchant(api, "till", "91440300715267261", "5411")
    code = app.code_at(api.clock() // NS)
    body = {"payment_id": "pc-1", "code": code, "amount": 23_00}
    paid = ok(api.as_party(till, "POST", "/payment-code", body, prefix=PAYMENTS))
    assert (paid["status"], paid["payer_id"], paid["channel"]) == (
        "completed",
        alice.party_id,
        "payment_code",
    )
    again = api.as_party(
        till, "POST", "/payment-code", {**body, "payment_id": "pc-2"}, prefix=PAYMENTS
    )
    assert problem_code(again) == "payment_code_used"
    # A customer cannot charge someone else's code.
    stolen = api.as_party(
        alice.token, "POST", "/payment-code", {**body, "payment_id": "pc-3"}, prefix=PAYMENTS
    )
    assert problem_code(stolen) == "forbidden"


def test_pay_a_phone_number_after_confirming_the_payee(
    api: IdentityApi, people: dict[str, Customer]
) -> None:
    alice, bob = people["alice"], people["bob"]
    phone = api.as_party(
        bob.token,
        "PATCH",
        f"/parties/{bob.party_id}/personal-data",
        {"request_id": "bob-phone", "changes": {"phone": "13812345678"}},
    )
    assert phone.status_code == 200, phone.text
    found = ok(
        api.as_party(alice.token, "POST", "/payees", {"phone": "13812345678"}, prefix=PAYMENTS)
    )
    assert found == {"party_id": bob.party_id, "masked_name": "*" * 9 + "b"}
    unknown = api.as_party(
        alice.token, "POST", "/payees", {"phone": "13800000000"}, prefix=PAYMENTS
    )
    assert problem_code(unknown) == "payee_not_found"
    body = {"payment_id": "ph-1", "payee_id": found["party_id"], "amount": 5_00}
    wrong = _pay(api, alice, {**body, "payee_name": "Person carol"})
    assert wrong.status_code == 422 and problem_code(wrong) == "payee_name_mismatch"
    # Nothing was stored for the refused attempt: the same id pays once the name is right.
    paid = ok(_pay(api, alice, {**body, "payee_name": "person  BOB"}))
    assert paid["status"] == "completed" and paid["payee_id"] == bob.party_id


def test_a_card_funded_checkout_over_http(api: IdentityApi, people: dict[str, Customer]) -> None:
    alice, bob = people["alice"], people["bob"]
    merchant, _ = _merchant(api, "card-shop", "91110000633713385H"[:17], "5411")
    body = {
        "payment_id": "cc-1",
        "merchant_id": merchant,
        "amount": 42_00,
        "card_fingerprint": alice.card,
    }
    started = ok(api.as_party(alice.token, "POST", "/card-checkouts", body, prefix=PAYMENTS), 202)
    assert started["state"] == "pending"
    _callbacks(api)
    state = ok(api.as_party(alice.token, "GET", "/card-checkouts/cc-1", prefix=PAYMENTS))
    assert state["state"] == "paid"
    paid = ok(api.as_party(alice.token, "GET", "/cc-1", prefix=PAYMENTS))
    assert (paid["status"], paid["amount"]) == ("completed", 42_00)
    # Someone else's checkout answers as missing; nobody pays with another person's card.
    hidden = api.as_party(bob.token, "GET", "/card-checkouts/cc-1", prefix=PAYMENTS)
    assert problem_code(hidden) == "payment_not_found"
    stolen = api.as_party(
        bob.token, "POST", "/card-checkouts", {**body, "payment_id": "cc-2"}, prefix=PAYMENTS
    )
    assert problem_code(stolen) == "card_not_bound"


def test_an_id_the_clearing_house_cannot_carry_is_refused_with_nothing_held(
    api: IdentityApi, people: dict[str, Customer]
) -> None:
    """Found by tests/e2e/test_api_fuzz.py: a payment id may hold a `/`, the clearing house's
    request ids may not. A top-up named so, or a card checkout whose rail request would be
    (`card-` and its payment id, so also one too long for the prefix), was written with its hold
    before the clearing house refused it: the money stayed held, and every reconciliation of
    the day failed on the stored id. Such a request is now refused before anything is written."""
    from tianping.payments.model import local_date

    alice = people["alice"]
    merchant, _ = _merchant(api, "slash-shop", "91330100716105852", "5812")
    top_up = {
        "request_id": "t/1",
        "direction": "top_up",
        "card_fingerprint": alice.card,
        "amount": 100_00,
    }
    refused = api.as_party(alice.token, "POST", "/rails", top_up, prefix=PAYMENTS)
    assert (refused.status_code, problem_code(refused)) == (422, "invalid_rail_input")
    checkout = {
        "merchant_id": merchant,
        "amount": 42_00,
        "card_fingerprint": alice.card,
    }
    for payment_id in ("cc/1", "c" * 60):
        body = checkout | {"payment_id": payment_id}
        refused = api.as_party(alice.token, "POST", "/card-checkouts", body, prefix=PAYMENTS)
        assert (refused.status_code, problem_code(refused)) == (422, "invalid_rail_input")
    missing = api.as_party(alice.token, "GET", "/card-checkouts/" + "c" * 60, prefix=PAYMENTS)
    assert problem_code(missing) == "payment_not_found"
    wallet = f"/parties/{alice.party_id}/wallet"
    assert ok(api.as_party(alice.token, "GET", wallet, prefix=PAYMENTS))["available"] == 3_000_00
    _callbacks(api)
    day = local_date(api.clock()).isoformat()
    report = ok(_operator(api, "POST", f"/reconciliations/{day}"))
    assert report["clean"] is True, report
