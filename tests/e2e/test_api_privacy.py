"""End-to-end tests of consent, personal data and data-subject rights over HTTP.

A person acts for themselves with their own access token; the operator acts with the static
token; a supervisor reaches identity data only through a reasoned case access. Each test runs
on SQLite and on PostgreSQL. The last test drives the whole flow with every logger capturing at
DEBUG and then looks for every piece of personal data it used in the captured output.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import httpx
import pytest

from identity_api_support import IdentityApi, problem_code
from tianping.identity import party_service

PAYMENT_TEXT: Final = {
    "text_id": "payment-service",
    "version": 1,
    "purposes": ["payment_service"],
    "fields": ["name", "phone", "id_number"],
    "language": "en",
    "body": "Tianping uses my name, phone and ID number to provide payment services.",
}
MARKETING_TEXT: Final = {
    "text_id": "marketing",
    "version": 1,
    "purposes": ["marketing_personalisation"],
    "fields": ["name", "phone"],
    "language": "en",
    "body": "Tianping may use my name and phone to personalise offers. I can say no.",
}
# Personal data the flows use; the log scan looks for every one of these strings.
NAME: Final = "Zhang Xiuying"
PHONE: Final = "13912345678"
NEW_PHONE: Final = "13787654321"
ID_NUMBER: Final = "110101199003074512"
CARD_NUMBER: Final = "6222020200112233445"
STATEMENT: Final = "I earn more than the model assumed; my payslips show it"


class Person:
    """A registered person with a session, acting on their own resources."""

    def __init__(self, api: IdentityApi, request_id: str) -> None:
        self.api = api
        self.party_id = api.customer(request_id)
        self.token = api.login(self.party_id).json()["access_token"]

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.api.as_party(self.token, method, f"/parties/{self.party_id}{path}", body)


def _publish(api: IdentityApi, *texts: dict[str, Any]) -> None:
    for text in texts:
        response = api.operator("POST", "/consent-texts", text)
        assert response.status_code == 201, response.text


def _operator_read(
    api: IdentityApi, party_id: str, fields: list[str], purpose: str
) -> httpx.Response:
    body = {"fields": fields, "purpose": purpose, "reason": "e2e test read"}
    return api.operator("POST", f"/parties/{party_id}/personal-data/read", body)


@pytest.fixture
def person(identity_api: IdentityApi) -> Person:
    _publish(identity_api, PAYMENT_TEXT, MARKETING_TEXT)
    person = Person(identity_api, "req-privacy-person")
    put = person.call(
        "PUT",
        "/personal-data",
        {"request_id": "put-1", "fields": {"name": NAME, "phone": PHONE, "id_number": ID_NUMBER}},
    )
    assert put.status_code == 200, put.text
    assert sorted(put.json()["fields"]) == ["id_number", "name", "phone"]
    return person


def test_a_consent_text_is_read_before_it_is_granted(person: Person) -> None:
    text = person.api.as_party(person.token, "GET", "/consent-texts/marketing/versions/1")
    assert text.status_code == 200
    assert text.json()["body"] == MARKETING_TEXT["body"]
    assert len(text.json()["text_hash"]) == 64
    missing = person.api.as_party(person.token, "GET", "/consent-texts/marketing/versions/9")
    assert problem_code(missing) == "consent_text_not_found"


def test_grant_enables_a_read_and_withdrawal_stops_it(person: Person) -> None:
    api = person.api
    refused = _operator_read(api, person.party_id, ["phone"], "marketing_personalisation")
    assert refused.status_code == 403
    assert problem_code(refused) == "personal_data_access_refused"
    grant = person.call(
        "POST", "/consents", {"request_id": "grant-1", "text_id": "marketing", "version": 1}
    )
    assert grant.status_code == 201, grant.text
    allowed = _operator_read(api, person.party_id, ["phone"], "marketing_personalisation")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["values"] == {"phone": PHONE}
    live = person.call("GET", "/consents").json()
    assert [(state["text_id"], state["live"]) for state in live] == [("marketing", True)]
    withdrawal = person.call("POST", "/consents/marketing/withdrawal", {"request_id": "wd-1"})
    assert withdrawal.status_code == 200, withdrawal.text
    assert withdrawal.json()["kind"] == "withdraw"
    after = _operator_read(api, person.party_id, ["phone"], "marketing_personalisation")
    assert problem_code(after) == "personal_data_access_refused"
    # The person sees every read of their data, allowed or refused, with its purpose.
    log = person.call("GET", "/access-log").json()
    outcomes = [(entry["purpose"], entry["outcome"]) for entry in log]
    assert outcomes == [
        ("marketing_personalisation", "refused"),
        ("marketing_personalisation", "allowed"),
        ("marketing_personalisation", "refused"),
    ]


def test_refusing_marketing_never_blocks_payments(person: Person) -> None:
    payments = person.call("GET", "/services/payment_account")
    assert payments.status_code == 200, payments.text
    assert payments.json()["available"] is True
    # Payment reads rest on contract necessity, without any consent granted.
    read = _operator_read(person.api, person.party_id, ["name"], "payment_service")
    assert read.json()["values"] == {"name": NAME}


def test_prohibited_and_unknown_fields_are_refused_at_input(person: Person) -> None:
    religion = person.call(
        "PUT", "/personal-data", {"request_id": "put-bad", "fields": {"religion": "x"}}
    )
    assert religion.status_code == 422
    assert problem_code(religion) == "personal_field_prohibited"
    unknown = person.call(
        "PUT", "/personal-data", {"request_id": "put-bad-2", "fields": {"shoe_size": "42"}}
    )
    assert problem_code(unknown) == "personal_field_unknown"


def test_correction_export_and_idempotent_writes(person: Person) -> None:
    fix = person.call(
        "PATCH", "/personal-data", {"request_id": "fix-1", "changes": {"phone": NEW_PHONE}}
    )
    assert fix.status_code == 200, fix.text
    again = person.call(
        "PATCH", "/personal-data", {"request_id": "fix-1", "changes": {"phone": NEW_PHONE}}
    )
    assert again.json()["replayed"] is True
    conflict = person.call(
        "PATCH", "/personal-data", {"request_id": "fix-1", "changes": {"phone": PHONE}}
    )
    assert problem_code(conflict) == "request_conflict"
    read = _operator_read(person.api, person.party_id, ["phone"], "payment_service")
    assert read.json()["values"] == {"phone": NEW_PHONE}
    export = person.call("GET", "/export")
    assert export.status_code == 200
    assert NEW_PHONE in str(export.json())
    assert ID_NUMBER in str(export.json())


def test_explanation_and_review_requests_are_answered_by_the_operator(person: Person) -> None:
    explanation = person.call(
        "POST",
        "/explanation-requests",
        {"request_id": "why-1", "decision_reference": "loan-decision-7"},
    )
    assert explanation.status_code == 201, explanation.text
    assert explanation.json()["state"] == "open"
    review = person.call(
        "POST",
        "/review-requests",
        {"request_id": "rev-1", "decision_reference": "loan-decision-7", "statement": STATEMENT},
    )
    assert review.status_code == 201, review.text
    assert review.json()["has_statement"] is True
    answer = person.api.operator(
        "POST", "/subject-requests/why-1/answer", {"answer": "Income below the threshold."}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "answered"
    # An answered request is final: answering again changes nothing.
    again = person.api.operator("POST", "/subject-requests/why-1/answer", {"answer": "again"})
    assert again.json()["updated_at"] == answer.json()["updated_at"]
    missing = person.api.operator("POST", "/subject-requests/nope/answer", {"answer": "x"})
    assert problem_code(missing) == "data_subject_request_not_found"
    listed = person.call("GET", "/subject-requests").json()
    assert {(item["request_id"], item["state"]) for item in listed} == {
        ("why-1", "answered"),
        ("rev-1", "open"),
    }


def test_a_supervisor_reads_identity_data_only_through_a_logged_case(person: Person) -> None:
    api = person.api
    supervisor = api.customer("req-supervisor", role="supervisor")
    token = api.login(supervisor).json()["access_token"]
    path = f"/parties/{person.party_id}/case-access"
    body = {"case_reference": "CASE-2026-17", "reason": "AML inquiry", "fields": ["name"]}
    response = api.as_party(token, "POST", path, body)
    assert response.status_code == 200, response.text
    assert response.json()["values"] == {"name": NAME}
    # The ordinary purpose-bound read and the person's own routes stay closed to supervisors.
    read = api.as_party(
        token,
        "POST",
        f"/parties/{person.party_id}/personal-data/read",
        {"fields": ["name"], "purpose": "payment_service", "reason": "curious"},
    )
    assert problem_code(read) == "forbidden"
    assert problem_code(api.as_party(token, "GET", f"/parties/{person.party_id}/export")) == (
        "forbidden"
    )
    entry = person.call("GET", "/access-log").json()[-1]
    assert entry["accessor"] == f"supervisor:{supervisor}"
    assert entry["reason"] == "case CASE-2026-17: AML inquiry"
    assert entry["purpose"] == "aml_compliance"


def test_another_customer_cannot_reach_a_persons_data(person: Person) -> None:
    other = Person(person.api, "req-privacy-other")
    for method, path, body in (
        ("GET", "/export", None),
        ("GET", "/consents", None),
        ("GET", "/access-log", None),
        ("PUT", "/personal-data", {"request_id": "x", "fields": {"phone": "1"}}),
        ("POST", "/erasure", {"request_id": "x"}),
    ):
        response = person.api.as_party(
            other.token, method, f"/parties/{person.party_id}{path}", body
        )
        assert response.status_code == 403, (method, path)
        assert problem_code(response) == "forbidden"


def test_cards_bind_only_in_the_persons_own_name_and_accounts_need_verification(
    person: Person,
) -> None:
    api = person.api
    bank = party_service.register_institution(
        api.services.ledger, "bank-1", institution_kind="partner_bank", clock=api.clock
    )
    unverified = person.call(
        "POST",
        "/payment-accounts",
        {"request_id": "acct-1", "institution_id": bank, "account_class": "II"},
    )
    assert problem_code(unverified) == "account_class_not_verified"
    for index, channel in enumerate(
        ("id_document_name_check", "bank_card_element_check", "mobile_carrier_check")
    ):
        verification = api.operator(
            "POST",
            f"/parties/{person.party_id}/verifications",
            {
                "verification_id": f"ver-{index}",
                "channel": channel,
                "source": "e2e",
                "verified_at": api.clock() - 1_000_000_000,
            },
        )
        assert verification.status_code == 200, verification.text
    opened = person.call(
        "POST",
        "/payment-accounts",
        {"request_id": "acct-2", "institution_id": bank, "account_class": "II"},
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["account_class"] == "II"
    assert [a["account_id"] for a in person.call("GET", "/payment-accounts").json()] == [
        opened.json()["account_id"]
    ]
    mismatch = person.call(
        "POST",
        "/cards",
        {"binding_id": "bind-1", "card_number": CARD_NUMBER, "holder_name": "Li Lei"},
    )
    assert problem_code(mismatch) == "card_holder_mismatch"
    bound = person.call(
        "POST",
        "/cards",
        {"binding_id": "bind-2", "card_number": CARD_NUMBER, "holder_name": f" {NAME.upper()} "},
    )
    assert bound.status_code == 201, bound.text
    assert bound.json()["last_four"] == CARD_NUMBER[-4:]
    assert CARD_NUMBER not in bound.text
    cards = person.call("GET", "/cards").json()
    assert [card["last_four"] for card in cards] == [CARD_NUMBER[-4:]]


def test_erasure_shreds_the_data_and_explains_what_is_kept(person: Person) -> None:
    erased = person.call("POST", "/erasure", {"request_id": "erase-1"})
    assert erased.status_code == 200, erased.text
    receipt = erased.json()
    assert "aml" in str(receipt).lower()
    replay = person.call("POST", "/erasure", {"request_id": "erase-1"})
    assert replay.json()["replayed"] is True
    read = _operator_read(person.api, person.party_id, ["phone"], "payment_service")
    assert problem_code(read) == "personal_data_access_refused"
    assert "person_erased" in read.json()["detail"]
    put = person.call("PUT", "/personal-data", {"request_id": "put-2", "fields": {"phone": PHONE}})
    assert put.status_code == 410
    assert problem_code(put) == "person_erased"
    assert PHONE not in person.call("GET", "/export").text
    # The ledger and its audit chain stay valid on the pseudonymous id.
    assert person.api.services.ledger.check() == []


def test_no_personal_data_reaches_the_logs(
    identity_api: IdentityApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Run every flow above with all loggers at DEBUG, then scan the output for personal data."""
    caplog.set_level(logging.DEBUG)
    person = _logged_flow(identity_api)
    text = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert len(caplog.records) > 10  # the flows did log, so the scan below can fail
    for secret in (NAME, NAME.upper(), PHONE, NEW_PHONE, ID_NUMBER, CARD_NUMBER, STATEMENT):
        assert secret not in text
    assert person.party_id in text  # pseudonymous ids may be logged, and are


def _logged_flow(identity_api: IdentityApi) -> Person:
    """The flows of this module in one run, for the log scan."""
    _publish(identity_api, PAYMENT_TEXT, MARKETING_TEXT)
    person = Person(identity_api, "req-logged")
    person.call(
        "PUT",
        "/personal-data",
        {"request_id": "p", "fields": {"name": NAME, "phone": PHONE, "id_number": ID_NUMBER}},
    )
    person.call("POST", "/consents", {"request_id": "g", "text_id": "marketing", "version": 1})
    _operator_read(identity_api, person.party_id, ["phone", "name"], "marketing_personalisation")
    person.call("POST", "/consents/marketing/withdrawal", {"request_id": "w"})
    _operator_read(identity_api, person.party_id, ["phone"], "marketing_personalisation")
    person.call("PATCH", "/personal-data", {"request_id": "c", "changes": {"phone": NEW_PHONE}})
    person.call(
        "POST", "/cards", {"binding_id": "b", "card_number": CARD_NUMBER, "holder_name": NAME}
    )
    person.call(
        "POST",
        "/review-requests",
        {"request_id": "r", "decision_reference": "d", "statement": STATEMENT},
    )
    person.call("GET", "/export")
    person.call("POST", "/erasure", {"request_id": "e"})
    _operator_read(identity_api, person.party_id, ["phone"], "payment_service")
    return person
