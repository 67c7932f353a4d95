"""Every route of the app against every role: who may call what, from one table.

`EXPECTED` below is the authorisation contract, written out by hand: for each route, the roles
allowed to call it ("anonymous" is a request without credentials). The tests check that

* every route the app serves is in the table, and nothing else is: a new route without an
  entry fails here, so no route ships without someone deciding who may call it;
* the table agrees with the declarations the app enforces (each route's scope in
  `route_declarations`, each role's scopes in `security.ROLE_SCOPES`);
* the app really answers that way over HTTP: each role logs in through the identity routes
  and calls every route; a denied call is 403 (401 when anonymous), an allowed one is neither.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from ledger_support import ManualClock
from lending_support import FixedScorer
from tianping.api.app import create_app
from tianping.api.security import (
    PUBLIC_PATHS,
    ROLE_SCOPES,
    BearerTokenAuthenticator,
    RouteDeclaration,
    route_declarations,
)
from tianping.bootstrap import Services, build_services
from tianping.config import load_settings
from tianping.identity import party_service
from tianping.identity.party_service import CARD_FINGERPRINT_KEY_ENV
from tianping.identity.tokens import ROLES, SIGNING_KEY_ENV_VAR, SigningKey
from tianping.identity.totp import SECRETS_KEY_ENV_VAR
from tianping.identity.vault import MASTER_KEY_ENV
from tianping.ledger.model import NewAccount, NewTransfer
from tianping.ledger.results import CreateAccountResult, CreateTransferResult
from tianping.lending.runtime import build_lending
from tianping.rules.config import cached_rulebook

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

ANONYMOUS: Final = "anonymous"
ALL_ROLES: Final = (*ROLES, ANONYMOUS)
ALL: Final = "all"  # the role may call the route for every resource
OWN: Final = "own"  # only for resources its party owns; others answer as forbidden or absent


def _grant(access: str, *roles: str) -> dict[str, str]:
    return dict.fromkeys(roles, access)


EVERYONE: Final = _grant(ALL, *ALL_ROLES)
SIGNED_IN: Final = _grant(ALL, *ROLES)
OPERATOR: Final = _grant(ALL, "operator")
OWNERS: Final = ("customer", "merchant", "partner")
# Supervisors read the pseudonymous ledger; customers, merchants and partners read their own.
LEDGER_READERS: Final = _grant(ALL, "operator", "supervisor", "auditor") | _grant(OWN, *OWNERS)
LEDGER_AUDITORS: Final = _grant(ALL, "operator", "auditor")
RULES_READERS: Final = _grant(ALL, "operator", "supervisor", "auditor")
# A person's consents and personal data: the operator for anyone, the party for itself.
DATA_SUBJECT: Final = _grant(ALL, "operator") | _grant(OWN, *OWNERS)
ACCOUNT_HOLDER: Final = _grant(ALL, "operator") | _grant(OWN, "customer")
CASE_READERS: Final = _grant(ALL, "operator", "supervisor")
PAYMENT_READERS: Final = _grant(ALL, "operator", "supervisor", "auditor") | _grant(OWN, *OWNERS)
PAYER: Final = _grant(ALL, "operator") | _grant(OWN, "customer")
MERCHANT: Final = _grant(ALL, "operator") | _grant(OWN, "merchant")
PAYMENT_SUPERVISORS: Final = _grant(ALL, "operator", "supervisor", "auditor")
# Customers apply for consumer loans, merchants for SME loans, each for itself.
BORROWER: Final = _grant(ALL, "operator") | _grant(OWN, "customer", "merchant")

# (method, path) -> {role: ALL or OWN}; a role not named is denied.
EXPECTED: Final[dict[tuple[str, str], dict[str, str]]] = {
    ("GET", "/health"): EVERYONE,
    ("GET", "/docs"): EVERYONE,
    ("GET", "/docs/oauth2-redirect"): EVERYONE,
    ("GET", "/redoc"): EVERYONE,
    ("GET", "/openapi.json"): EVERYONE,
    # identity
    ("POST", "/v1/identity/login"): EVERYONE,
    ("POST", "/v1/identity/refresh"): EVERYONE,
    ("GET", "/v1/identity/me"): SIGNED_IN,
    ("POST", "/v1/identity/logout"): SIGNED_IN,
    ("POST", "/v1/identity/step-up"): SIGNED_IN,
    ("POST", "/v1/identity/totp/enrol"): SIGNED_IN,
    ("POST", "/v1/identity/totp/confirm"): SIGNED_IN,
    ("POST", "/v1/identity/persons"): OPERATOR,
    ("PUT", "/v1/identity/parties/{party_id}/password"): OPERATOR,
    ("POST", "/v1/identity/parties/{party_id}/verifications"): OPERATOR,
    ("POST", "/v1/identity/parties/{party_id}/blocklist"): OPERATOR,
    ("GET", "/v1/identity/parties/{party_id}/blocklist"): OPERATOR,
    # privacy
    ("POST", "/v1/identity/consent-texts"): OPERATOR,
    ("GET", "/v1/identity/consent-texts/{text_id}/versions/{version}"): SIGNED_IN,
    ("GET", "/v1/identity/parties/{party_id}/consents"): DATA_SUBJECT,
    ("POST", "/v1/identity/parties/{party_id}/consents"): DATA_SUBJECT,
    ("POST", "/v1/identity/parties/{party_id}/consents/{text_id}/withdrawal"): DATA_SUBJECT,
    ("GET", "/v1/identity/parties/{party_id}/services/{service}"): DATA_SUBJECT,
    ("PUT", "/v1/identity/parties/{party_id}/personal-data"): DATA_SUBJECT,
    ("PATCH", "/v1/identity/parties/{party_id}/personal-data"): DATA_SUBJECT,
    ("POST", "/v1/identity/parties/{party_id}/personal-data/read"): OPERATOR,
    ("POST", "/v1/identity/parties/{party_id}/case-access"): CASE_READERS,
    ("GET", "/v1/identity/parties/{party_id}/access-log"): DATA_SUBJECT,
    ("GET", "/v1/identity/parties/{party_id}/export"): DATA_SUBJECT,
    ("POST", "/v1/identity/parties/{party_id}/erasure"): DATA_SUBJECT,
    ("POST", "/v1/identity/parties/{party_id}/explanation-requests"): DATA_SUBJECT,
    ("POST", "/v1/identity/parties/{party_id}/review-requests"): DATA_SUBJECT,
    ("GET", "/v1/identity/parties/{party_id}/subject-requests"): DATA_SUBJECT,
    ("POST", "/v1/identity/subject-requests/{request_id}/answer"): OPERATOR,
    ("POST", "/v1/identity/parties/{party_id}/payment-accounts"): ACCOUNT_HOLDER,
    ("GET", "/v1/identity/parties/{party_id}/payment-accounts"): ACCOUNT_HOLDER,
    ("POST", "/v1/identity/parties/{party_id}/cards"): ACCOUNT_HOLDER,
    ("GET", "/v1/identity/parties/{party_id}/cards"): ACCOUNT_HOLDER,
    # payments
    ("POST", "/v1/payments/parties/{party_id}/wallet"): PAYER,
    ("GET", "/v1/payments/parties/{party_id}/wallet"): PAYMENT_READERS,
    ("POST", "/v1/payments/merchants/{party_id}"): OPERATOR,
    ("GET", "/v1/payments/merchants/{party_id}/qr"): MERCHANT | PAYMENT_SUPERVISORS,
    ("POST", "/v1/payments/merchants/{party_id}/orders"): MERCHANT,
    ("PUT", "/v1/payments/merchants/{party_id}/payout-account"): MERCHANT,
    ("GET", "/v1/payments/merchants/{party_id}/payout-account"): MERCHANT | PAYMENT_SUPERVISORS,
    ("GET", "/v1/payments/merchants/{party_id}/free-balance"): MERCHANT | PAYMENT_SUPERVISORS,
    ("POST", "/v1/payments/merchants/{party_id}/payouts"): MERCHANT,
    (
        "GET",
        "/v1/payments/merchants/{party_id}/payouts/{request_id}",
    ): MERCHANT | PAYMENT_SUPERVISORS,
    ("POST", "/v1/payments"): PAYER,
    ("POST", "/v1/payments/qr"): PAYER,
    ("POST", "/v1/payments/payees"): PAYER,
    ("POST", "/v1/payments/card-checkouts"): PAYER,
    ("GET", "/v1/payments/card-checkouts/{payment_id}"): PAYMENT_READERS,
    ("POST", "/v1/payments/parties/{party_id}/payment-code"): PAYER,
    ("POST", "/v1/payments/payment-code"): MERCHANT,
    ("POST", "/v1/payments/{payment_id}/resume"): PAYER,
    ("GET", "/v1/payments/{payment_id}"): PAYMENT_READERS,
    ("POST", "/v1/payments/{payment_id}/refunds"): MERCHANT,
    ("POST", "/v1/payments/rails"): PAYER,
    ("GET", "/v1/payments/rails/{request_id}"): PAYMENT_READERS,
    ("POST", "/v1/payments/clearing/callbacks"): OPERATOR,
    ("POST", "/v1/payments/settlements/{business_date}"): OPERATOR,
    ("POST", "/v1/payments/reconciliations/{business_date}"): OPERATOR,
    ("POST", "/v1/payments/safeguarding"): OPERATOR,
    ("GET", "/v1/payments/summary/{business_date}"): PAYMENT_SUPERVISORS,
    ("GET", "/v1/payments/aml/large-value/{business_date}"): PAYMENT_SUPERVISORS,
    ("POST", "/v1/payments/aml/scans/{business_date}"): OPERATOR,
    ("GET", "/v1/payments/aml/cases"): PAYMENT_SUPERVISORS,
    ("POST", "/v1/payments/aml/cases/{case_id}/{action}"): OPERATOR,
    # lending
    ("POST", "/v1/lending/applications"): BORROWER,
    ("GET", "/v1/lending/applications/{application_id}"): PAYMENT_READERS,
    ("POST", "/v1/lending/applications/{application_id}/acceptance"): BORROWER,
    ("GET", "/v1/lending/loans/{loan_id}"): PAYMENT_READERS,
    ("POST", "/v1/lending/loans/{loan_id}/repayments"): BORROWER,
    ("POST", "/v1/lending/accruals/{day}"): OPERATOR,
    ("POST", "/v1/lending/classifications/{day}"): OPERATOR,
    ("POST", "/v1/lending/sweeps/{day}"): OPERATOR,
    ("GET", "/v1/lending/portfolio"): PAYMENT_SUPERVISORS,
    ("GET", "/v1/lending/loans/{loan_id}/schedule"): PAYMENT_READERS,
    ("GET", "/v1/lending/loans/{loan_id}/payoff"): PAYMENT_READERS,
    ("POST", "/v1/lending/loans/{loan_id}/write-off"): OPERATOR,
    ("POST", "/v1/lending/loans/{loan_id}/recoveries"): OPERATOR,
    ("GET", "/v1/lending/parties/{party_id}/notices"): PAYMENT_READERS,
    ("GET", "/v1/lending/partners/{bank_id}/concentration"): PAYMENT_READERS,
    ("POST", "/v1/lending/applications/{application_id}/credit-line"): BORROWER,
    ("GET", "/v1/lending/credit-lines/{line_id}"): PAYMENT_READERS,
    ("GET", "/v1/lending/credit-lines/{line_id}/statements"): PAYMENT_READERS,
    ("GET", "/v1/lending/credit-lines/{line_id}/statements/{statement_date}"): PAYMENT_READERS,
    ("POST", "/v1/lending/credit-lines/{line_id}/repayments"): BORROWER,
    (
        "POST",
        "/v1/lending/credit-lines/{line_id}/statements/{statement_date}/instalment-quotes",
    ): BORROWER,
    (
        "POST",
        "/v1/lending/credit-lines/{line_id}/statements/{statement_date}/instalments",
    ): BORROWER,
    ("POST", "/v1/lending/statement-runs/{day}"): OPERATOR,
    ("POST", "/v1/lending/credit-lines/{line_id}/freeze"): OPERATOR,
    ("POST", "/v1/lending/credit-lines/{line_id}/unfreeze"): OPERATOR,
    ("POST", "/v1/lending/credit-lines/{line_id}/closure"): BORROWER,
    ("GET", "/v1/lending/credit-lines/{line_id}/transactions"): PAYMENT_READERS,
    ("POST", "/v1/lending/credit-line-classifications/{day}"): OPERATOR,
    ("POST", "/v1/lending/credit-lines/{line_id}/write-off"): OPERATOR,
    ("POST", "/v1/lending/credit-lines/{line_id}/recoveries"): OPERATOR,
    # ledger
    ("POST", "/v1/ledger/accounts"): OPERATOR,
    ("POST", "/v1/ledger/transfers"): OPERATOR,
    ("POST", "/v1/ledger/accounts/{account_id}/close"): OPERATOR,
    ("POST", "/v1/ledger/accounts/{account_id}/reopen"): OPERATOR,
    ("GET", "/v1/ledger/accounts"): LEDGER_READERS,
    ("POST", "/v1/ledger/accounts/lookup"): LEDGER_READERS,
    ("GET", "/v1/ledger/accounts/{account_id}"): LEDGER_READERS,
    ("GET", "/v1/ledger/accounts/{account_id}/transfers"): LEDGER_READERS,
    ("GET", "/v1/ledger/accounts/{account_id}/balances"): LEDGER_READERS,
    ("GET", "/v1/ledger/accounts/{account_id}/balance"): LEDGER_READERS,
    ("GET", "/v1/ledger/accounts/{account_id}/statement"): LEDGER_READERS,
    ("GET", "/v1/ledger/transfers"): LEDGER_READERS,
    ("POST", "/v1/ledger/transfers/lookup"): LEDGER_READERS,
    ("GET", "/v1/ledger/transfers/{transfer_id}"): LEDGER_READERS,
    ("GET", "/v1/ledger/result-codes"): LEDGER_READERS,
    ("GET", "/v1/ledger/check"): LEDGER_AUDITORS,
    ("GET", "/v1/ledger/audit/verify"): LEDGER_AUDITORS,
    # rules
    ("GET", "/v1/rules"): RULES_READERS,
    ("GET", "/v1/rules/diff"): RULES_READERS,
    ("GET", "/v1/rules/reference"): RULES_READERS,
    ("POST", "/v1/rules/check"): RULES_READERS,
    ("GET", "/v1/rules/decisions/{decision_id}"): RULES_READERS,
    ("GET", "/v1/rules/{rule_id}"): RULES_READERS,
}

OPERATOR_TOKEN: Final = "m" * 40
PASSWORD: Final = "matrix password long enough"


def _served_routes(app: Any) -> dict[tuple[str, str], RouteDeclaration]:
    """(method, path) -> declaration, for every route the app serves (HEAD aside)."""
    return {
        (method, route.path): route
        for route in route_declarations(app)
        for method in route.methods - {"HEAD"}
    }


def _allowed_by_declarations(route: RouteDeclaration) -> dict[str, str]:
    if route.path in PUBLIC_PATHS:
        return EVERYONE
    allowed: dict[str, str] = {}
    for role in ROLES:
        held = ROLE_SCOPES[role]
        if set(route.scopes) <= held:
            allowed[role] = ALL
        elif route.own_scopes and set(route.own_scopes) <= held:
            allowed[role] = OWN
    return allowed


@pytest.fixture(scope="module")
def declared() -> dict[tuple[str, str], RouteDeclaration]:
    return _served_routes(create_app(authenticator=BearerTokenAuthenticator(OPERATOR_TOKEN)))


def test_every_route_is_in_the_table(declared: dict[tuple[str, str], RouteDeclaration]) -> None:
    missing = sorted(set(declared) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(declared))
    assert missing == [], f"routes without an authorisation entry: {missing}"
    assert stale == [], f"table entries for routes the app does not serve: {stale}"


def test_the_table_matches_the_declarations(
    declared: dict[tuple[str, str], RouteDeclaration],
) -> None:
    for (method, path), route in declared.items():
        assert _allowed_by_declarations(route) == EXPECTED[(method, path)], (method, path)


def test_every_restricted_route_declares_how_ownership_is_decided(
    declared: dict[tuple[str, str], RouteDeclaration],
) -> None:
    """An own scope without an ownership rule would admit an owner to everything."""
    for key, route in declared.items():
        assert len(route.own_scopes) == len(route.ownership), key


def test_every_role_has_its_scopes_declared() -> None:
    assert set(ROLE_SCOPES) == set(ROLES)


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def matrix_client(sqlite_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Any]:
    environ = {
        SIGNING_KEY_ENV_VAR: SigningKey.generate().to_pem().decode(),
        SECRETS_KEY_ENV_VAR: base64.b64encode(secrets.token_bytes(32)).decode(),
        CARD_FINGERPRINT_KEY_ENV: secrets.token_hex(32),
        MASTER_KEY_ENV: base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    settings = load_settings(database_url=sqlite_url, data_dir=tmp_path)
    services: Services = build_services(
        settings, migrate=True, clock=clock, environ=environ, role_scopes=ROLE_SCOPES
    )
    services.install_lending(
        build_lending(services.ledger, cached_rulebook("cn"), scorer=FixedScorer())
    )
    try:
        app = create_app(services, authenticator=BearerTokenAuthenticator(OPERATOR_TOKEN))
        with TestClient(app) as client:
            yield client, services
    finally:
        services.close()


PLATFORM_ACCOUNT_ID: Final = 1


def _concrete(path: str, party: dict[str, str]) -> str:
    """The path with each placeholder replaced by the resource of `party` (or a dummy)."""
    for name in ("party_id", "account_id", "transfer_id"):
        path = path.replace("{" + name + "}", party[name])
    # A partner bank is a party: its own concentration is the one at its party id.
    path = path.replace("{bank_id}", party["party_id"])
    path = re.sub(r"\{rule_id\}", "no-such-rule", path)
    return re.sub(r"\{[a-z_]+\}", "1", path)


def _register(client: Any, services: Services, index: int, role: str) -> tuple[dict[str, str], str]:
    """A party of `role` that owns one ledger account and one transfer, and its access token."""
    identity = services.identity
    assert identity is not None
    party_id = party_service.register_person(
        services.ledger,
        f"matrix-{index}",
        date_of_birth=dt.date(1990, 1, 1),
        clock=identity.auth.clock,
        key=identity.fingerprint_key,
    )
    identity.auth.set_password(party_id, PASSWORD, role=role)
    account_id, transfer_id = 1_000 + index, 2_000 + index
    assert services.ledger.create_accounts([NewAccount(account_id, "CNY", 1, owner=party_id)]) == [
        CreateAccountResult.ok
    ]
    assert services.ledger.create_transfers(
        [NewTransfer(transfer_id, account_id, PLATFORM_ACCOUNT_ID, 100, "CNY", 1)]
    ) == [CreateTransferResult.ok]
    login = client.post("/v1/identity/login", json={"identifier": party_id, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["role"] == role
    party = {"party_id": party_id, "account_id": str(account_id), "transfer_id": str(transfer_id)}
    return party, login.json()["access_token"]


# The answers a caller with an own scope gets for another party's resource.
NOT_YOURS: Final = {
    "forbidden": 403,
    "account_not_found": 404,
    "transfer_not_found": 404,
    "payment_not_found": 404,
    "rail_request_not_found": 404,
    "application_not_found": 404,
    "loan_not_found": 404,
    "credit_line_not_found": 404,
}


def test_every_route_answers_every_role_as_the_table_says(
    matrix_client: Any, declared: dict[tuple[str, str], RouteDeclaration]
) -> None:
    client, services = matrix_client
    assert services.ledger.create_accounts([NewAccount(PLATFORM_ACCOUNT_ID, "CNY", 2)]) == [
        CreateAccountResult.ok
    ]
    tokens: dict[str, str | None] = {ANONYMOUS: None}
    parties: dict[str, dict[str, str]] = {}
    for index, role in enumerate(ROLES):
        parties[role], tokens[role] = _register(client, services, index, role)
    parties[ANONYMOUS] = parties["operator"]
    # Erasure and logout end what later calls rely on, so they are called last.
    last = ("/v1/identity/parties/{party_id}/erasure", "/v1/identity/logout")
    routes = sorted(EXPECTED, key=lambda route: last.index(route[1]) if route[1] in last else -1)
    for method, path in routes:
        for role in ALL_ROLES:
            token = tokens[role]
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.request(method, _concrete(path, parties[role]), headers=headers)
            where = (method, path, role, response.status_code, response.text[:200])
            access = EXPECTED[(method, path)].get(role)
            if access is not None:
                assert response.status_code not in (401, 403), where
                assert response.status_code < 500, where
            elif role == ANONYMOUS:
                assert response.status_code == 401, where
            else:
                assert response.status_code == 403, where
                assert response.json()["code"] == "forbidden", where
            if access == OWN and declared[(method, path)].ownership != ("filtered by the handler",):
                # The same call on someone else's resource is refused.
                other = parties["operator"]
                response = client.request(method, _concrete(path, other), headers=headers)
                where = (method, path, role, "other's", response.status_code, response.text[:200])
                body = response.json()
                code = body.get("code") if isinstance(body, dict) else None
                assert code in NOT_YOURS, where
                assert response.status_code == NOT_YOURS[code], where
