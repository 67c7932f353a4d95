"""End-to-end tests of the identity routes (/v1/identity), on SQLite and on PostgreSQL.

The identity keys are generated here, per test, and handed to the composition root as its
environment; none is ever read from the repository. The operator acts with the static API
token; parties act with the access tokens the login route issues. Time is the test's
`ManualClock`, so token expiry is driven by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from identity_api_support import (
    ADULT_BORN,
    IDENTITY,
    OPERATOR_TOKEN,
    PASSWORD,
    IdentityApi,
    TestClient,
    problem_code,
)
from tianping.api.app import create_app
from tianping.api.security import ROLE_SCOPES, BearerTokenAuthenticator
from tianping.bootstrap import build_services
from tianping.config import load_settings
from tianping.identity.tokens import ACCESS_TOKEN_LIFETIME_NS
from tianping.ledger.model import NewAccount, NewTransfer
from tianping.ledger.results import CreateAccountResult, CreateTransferResult

# -- configuration -----------------------------------------------------------------------------


def test_identity_routes_answer_503_when_identity_is_not_configured(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = load_settings(database_url=sqlite_url, data_dir=tmp_path)
    services = build_services(settings, migrate=True, environ={})
    try:
        assert services.identity is None
        app = create_app(services, authenticator=BearerTokenAuthenticator(OPERATOR_TOKEN))
        with TestClient(app) as client:
            login = client.post(IDENTITY + "/login", json={"identifier": "a", "password": "b"})
            assert login.status_code == 503
            assert problem_code(login) == "service_unavailable"
            register = client.post(
                IDENTITY + "/persons",
                json={"request_id": "r1", "date_of_birth": ADULT_BORN},
                headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
            )
            assert problem_code(register) == "service_unavailable"
            # The ledger works as before without identity.
            health = client.get("/health")
            assert health.status_code == 200
    finally:
        services.close()


# -- login, tokens, sessions -------------------------------------------------------------------


def test_login_issues_tokens_that_authenticate_the_party(identity_api: IdentityApi) -> None:
    party_id = identity_api.customer("req-login-1")
    response = identity_api.login(party_id)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["subject"] == party_id
    assert tokens["role"] == "customer"
    assert tokens["factors"] == ["password"]
    me = identity_api.as_party(tokens["access_token"], "GET", "/me")
    assert me.status_code == 200, me.text
    assert me.json()["subject"] == party_id
    assert me.json()["session_id"] == tokens["session_id"]
    assert set(me.json()["scopes"]) == set(ROLE_SCOPES["customer"])


def test_login_by_login_name(identity_api: IdentityApi) -> None:
    party_id = identity_api.register("req-name-1")
    response = identity_api.operator(
        "PUT", f"/parties/{party_id}/password", {"password": PASSWORD, "login_name": "alice.w"}
    )
    assert response.status_code == 204, response.text
    assert identity_api.login("alice.w").json()["subject"] == party_id


def test_wrong_password_is_refused_and_five_failures_lock(identity_api: IdentityApi) -> None:
    party_id = identity_api.customer("req-lock-1")
    for _ in range(5):
        wrong = identity_api.login(party_id, "not the password at all")
        assert wrong.status_code == 401
        assert problem_code(wrong) == "invalid_credentials"
        assert "not the password" not in wrong.text
    locked = identity_api.login(party_id)
    assert locked.status_code == 423
    assert problem_code(locked) == "credential_locked"


def test_unknown_party_gets_the_same_refusal(identity_api: IdentityApi) -> None:
    response = identity_api.login("pty_01arz3ndektsv4rrffq69g5fav")
    assert response.status_code == 401
    assert problem_code(response) == "invalid_credentials"


def test_expired_access_token_is_refused(identity_api: IdentityApi) -> None:
    party_id = identity_api.customer("req-exp-1")
    access = identity_api.login(party_id).json()["access_token"]
    identity_api.clock.advance(nanoseconds=ACCESS_TOKEN_LIFETIME_NS + 120 * 1_000_000_000)
    response = identity_api.as_party(access, "GET", "/me")
    assert response.status_code == 401
    assert problem_code(response) == "unauthenticated"


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(
    identity_api: IdentityApi,
) -> None:
    party_id = identity_api.customer("req-refresh-1")
    first = identity_api.login(party_id).json()
    rotated = identity_api.client.post(
        IDENTITY + "/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert identity_api.as_party(second["access_token"], "GET", "/me").status_code == 200
    reused = identity_api.client.post(
        IDENTITY + "/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert problem_code(reused) == "refresh_token_reused"
    # The whole session has ended: its newest access token stops working too.
    assert identity_api.as_party(second["access_token"], "GET", "/me").status_code == 401
    again = identity_api.client.post(
        IDENTITY + "/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert problem_code(again) == "refresh_token_invalid"


def test_logout_revokes_the_session(identity_api: IdentityApi) -> None:
    party_id = identity_api.customer("req-logout-1")
    tokens = identity_api.login(party_id).json()
    response = identity_api.as_party(tokens["access_token"], "POST", "/logout")
    assert response.status_code == 204, response.text
    identity_api.services.identity.auth.refresh_revocations()  # type: ignore[union-attr]
    assert identity_api.as_party(tokens["access_token"], "GET", "/me").status_code == 401
    refreshed = identity_api.client.post(
        IDENTITY + "/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert problem_code(refreshed) == "refresh_token_invalid"


def test_revocation_from_another_process_takes_effect_after_refresh(
    identity_api: IdentityApi,
) -> None:
    party_id = identity_api.customer("req-revoke-1")
    tokens = identity_api.login(party_id).json()
    auth = identity_api.services.identity.auth  # type: ignore[union-attr]
    assert auth.revoke_session(tokens["session_id"], "operator_revoked")
    auth.refresh_revocations()
    assert identity_api.as_party(tokens["access_token"], "GET", "/me").status_code == 401


def test_operator_token_is_not_a_session(identity_api: IdentityApi) -> None:
    response = identity_api.operator("POST", "/logout")
    assert response.status_code == 403
    assert problem_code(response) == "forbidden"


# -- registration ------------------------------------------------------------------------------


def test_minor_needs_a_guardian_and_their_consent(identity_api: IdentityApi) -> None:
    refused = identity_api.operator(
        "POST", "/persons", {"request_id": "req-minor-1", "date_of_birth": "2020-03-01"}
    )
    assert refused.status_code == 422
    assert problem_code(refused) == "guardian_consent_required"
    guardian = identity_api.register("req-guardian-1")
    minor = identity_api.register(
        "req-minor-2",
        born="2020-03-01",
        guardian_party_id=guardian,
        guardian_consent_reference="consent-ref-1",
    )
    assert minor.startswith("pty_") and minor != guardian


def test_registration_is_idempotent_by_request_id(identity_api: IdentityApi) -> None:
    first = identity_api.register("req-same-1")
    assert identity_api.register("req-same-1") == first
    conflict = identity_api.operator(
        "POST", "/persons", {"request_id": "req-same-1", "date_of_birth": "1985-05-05"}
    )
    assert conflict.status_code == 409
    assert problem_code(conflict) == "request_conflict"


def test_customer_cannot_register_or_set_passwords(identity_api: IdentityApi) -> None:
    party_id = identity_api.customer("req-cust-1")
    access = identity_api.login(party_id).json()["access_token"]
    register = identity_api.as_party(
        access, "POST", "/persons", {"request_id": "r9", "date_of_birth": ADULT_BORN}
    )
    assert problem_code(register) == "forbidden"
    other = identity_api.customer("req-cust-2")
    password = identity_api.as_party(
        access, "PUT", f"/parties/{other}/password", {"password": "x" * 20}
    )
    assert problem_code(password) == "forbidden"


def test_a_customer_reads_only_its_own_ledger_accounts_and_transfers(
    identity_api: IdentityApi,
) -> None:
    """Ownership on the ledger: a customer sees its accounts and the transfers touching them;
    another customer's account or transfer answers as if it did not exist."""
    alice, bob = identity_api.customer("req-owner-a"), identity_api.customer("req-owner-b")
    ledger = identity_api.services.ledger
    assert (
        ledger.create_accounts(
            [
                NewAccount(11, "CNY", 1, owner=alice),
                NewAccount(12, "CNY", 1, owner=bob),
                NewAccount(13, "CNY", 2),
            ]
        )
        == [CreateAccountResult.ok] * 3
    )
    assert (
        ledger.create_transfers(
            [
                NewTransfer(21, 13, 11, 500, "CNY", 1),  # platform -> alice
                NewTransfer(22, 11, 12, 200, "CNY", 1),  # alice -> bob
                NewTransfer(23, 13, 12, 700, "CNY", 1),  # platform -> bob
            ]
        )
        == [CreateTransferResult.ok] * 3
    )
    token = identity_api.login(alice).json()["access_token"]

    def get(path: str) -> httpx.Response:
        return identity_api.as_party(token, "GET", path, prefix="/v1/ledger")

    own = get("/accounts/11")
    assert own.status_code == 200
    assert own.json()["credits_posted"] == 500
    assert problem_code(get("/accounts/12")) == "account_not_found"
    assert problem_code(get("/accounts/13/transfers")) == "account_not_found"
    assert problem_code(get("/accounts/12/statement")) == "account_not_found"
    assert get("/transfers/21").status_code == 200
    assert get("/transfers/22").status_code == 200  # alice pays bob: both sides see it
    assert problem_code(get("/transfers/23")) == "transfer_not_found"
    listed = get("/accounts?ids=11,12,13").json()["accounts"]
    assert [account["id"] for account in listed] == ["11"]
    transfers = get("/transfers?ids=21,22,23").json()["transfers"]
    assert [transfer["id"] for transfer in transfers] == ["21", "22"]
    page = get("/accounts/11/transfers").json()["transfers"]
    assert [transfer["id"] for transfer in page] == ["21", "22"]
    for path in ("/check", "/audit/verify"):
        assert problem_code(get(path)) == "forbidden"
    write = identity_api.as_party(token, "POST", "/accounts", {"accounts": []}, prefix="/v1/ledger")
    assert problem_code(write) == "forbidden"


def test_request_fields_are_bounded(identity_api: IdentityApi) -> None:
    response = identity_api.operator(
        "POST", "/persons", {"request_id": "r" * 1000, "date_of_birth": ADULT_BORN}
    )
    assert response.status_code == 422
    login = identity_api.client.post(
        IDENTITY + "/login", json={"identifier": "x" * 5000, "password": "p"}
    )
    assert login.status_code == 422


# -- verification and the blocklist ----------------------------------------------------------


def test_verification_raises_the_account_class(identity_api: IdentityApi) -> None:
    party_id = identity_api.register("req-verify-1")
    body = {
        "verification_id": "ver-1",
        "channel": "in_person",
        "source": "branch-001",
        "verified_at": identity_api.clock() - 1_000_000_000,
    }
    response = identity_api.operator("POST", f"/parties/{party_id}/verifications", body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["party_id"] == party_id
    assert result["account_class"] is not None
    assert result["replayed"] is False
    replay = identity_api.operator("POST", f"/parties/{party_id}/verifications", body)
    assert replay.json()["replayed"] is True
    unknown = identity_api.operator(
        "POST",
        "/parties/pty_01arz3ndektsv4rrffq69g5fav/verifications",
        {**body, "verification_id": "v2"},
    )
    assert unknown.status_code == 404
    assert problem_code(unknown) == "party_not_found"


def test_blocked_party_is_suspended_and_barred(identity_api: IdentityApi) -> None:
    party_id = identity_api.register("req-block-1")
    status = identity_api.operator("GET", f"/parties/{party_id}/blocklist")
    assert status.status_code == 200, status.text
    assert status.json()["listed"] is False
    listing = {
        "listed_on": "2027-01-01",
        "reason_code": "account_selling",
        "case_reference": "police-case-7",
    }
    added = identity_api.operator("POST", f"/parties/{party_id}/blocklist", listing)
    assert added.status_code == 200, added.text
    assert added.json()["payment_services_suspended"] is True
    assert added.json()["new_accounts_barred"] is True
    later = identity_api.operator("GET", f"/parties/{party_id}/blocklist?on=2030-06-01")
    assert later.json()["new_accounts_barred"] is False
    assert later.json()["payment_services_suspended"] is True
    conflict = identity_api.operator(
        "POST", f"/parties/{party_id}/blocklist", {**listing, "reason_code": "account_buying"}
    )
    assert conflict.status_code == 409
    assert problem_code(conflict) == "request_conflict"


def test_customer_cannot_read_the_blocklist(identity_api: IdentityApi) -> None:
    party_id = identity_api.customer("req-block-2")
    access = identity_api.login(party_id).json()["access_token"]
    response = identity_api.as_party(access, "GET", f"/parties/{party_id}/blocklist")
    assert response.status_code == 403


def test_static_operator_token_with_dots_still_authenticates() -> None:
    from tianping.api.security import OPERATOR, IdentityTokenAuthenticator
    from tianping.identity.tokens import TokenInvalid

    def refuse(token: str) -> Any:
        raise TokenInvalid("not an access token")

    static = "a" * 20 + "." + "b" * 20 + "." + "c" * 20
    authenticator = IdentityTokenAuthenticator(BearerTokenAuthenticator(static), lambda: refuse)
    assert authenticator.authenticate(static) == OPERATOR
    assert authenticator.authenticate("x.y.z") is None
    assert authenticator.authenticate(None) is None
