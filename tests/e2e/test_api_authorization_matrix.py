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
from tianping.api.app import create_app
from tianping.api.security import (
    PUBLIC_PATHS,
    ROLE_SCOPES,
    BearerTokenAuthenticator,
    route_declarations,
)
from tianping.bootstrap import Services, build_services
from tianping.config import load_settings
from tianping.identity import party_service
from tianping.identity.party_service import CARD_FINGERPRINT_KEY_ENV
from tianping.identity.tokens import ROLES, SIGNING_KEY_ENV_VAR, SigningKey
from tianping.identity.totp import SECRETS_KEY_ENV_VAR

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

ANONYMOUS: Final = "anonymous"
ALL_ROLES: Final = (*ROLES, ANONYMOUS)
EVERYONE: Final = frozenset(ALL_ROLES)
SIGNED_IN: Final = frozenset(ROLES)
OPERATOR: Final = frozenset({"operator"})
LEDGER_READERS: Final = frozenset({"operator", "auditor"})
RULES_READERS: Final = frozenset({"operator", "supervisor", "auditor"})

# (method, path) -> the roles allowed. Customers, merchants and partners reach no ledger route:
# the ledger routes do not yet check that an account is the caller's own, so granting them a
# ledger scope would let one customer read another's accounts and transfers.
EXPECTED: Final[dict[tuple[str, str], frozenset[str]]] = {
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
    ("GET", "/v1/ledger/check"): LEDGER_READERS,
    ("GET", "/v1/ledger/audit/verify"): LEDGER_READERS,
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


def _served_routes(app: Any) -> dict[tuple[str, str], tuple[str, ...]]:
    """(method, path) -> declared scopes, for every route the app serves (HEAD aside)."""
    return {
        (method, route.path): route.scopes
        for route in route_declarations(app)
        for method in route.methods - {"HEAD"}
    }


def _allowed_by_declarations(path: str, scopes: tuple[str, ...]) -> frozenset[str]:
    if path in PUBLIC_PATHS:
        return EVERYONE
    return frozenset(role for role in ROLES if set(scopes) <= ROLE_SCOPES[role])


@pytest.fixture(scope="module")
def declared() -> dict[tuple[str, str], tuple[str, ...]]:
    return _served_routes(create_app(authenticator=BearerTokenAuthenticator(OPERATOR_TOKEN)))


def test_every_route_is_in_the_table(declared: dict[tuple[str, str], tuple[str, ...]]) -> None:
    missing = sorted(set(declared) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(declared))
    assert missing == [], f"routes without an authorisation entry: {missing}"
    assert stale == [], f"table entries for routes the app does not serve: {stale}"


def test_the_table_matches_the_declarations(
    declared: dict[tuple[str, str], tuple[str, ...]],
) -> None:
    for (method, path), scopes in declared.items():
        assert _allowed_by_declarations(path, scopes) == EXPECTED[(method, path)], (method, path)


def test_every_role_has_its_scopes_declared() -> None:
    assert set(ROLE_SCOPES) == set(ROLES)


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def matrix_client(sqlite_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Any]:
    environ = {
        SIGNING_KEY_ENV_VAR: SigningKey.generate().to_pem().decode(),
        SECRETS_KEY_ENV_VAR: base64.b64encode(secrets.token_bytes(32)).decode(),
        CARD_FINGERPRINT_KEY_ENV: secrets.token_hex(32),
    }
    settings = load_settings(database_url=sqlite_url, data_dir=tmp_path)
    services: Services = build_services(
        settings, migrate=True, clock=clock, environ=environ, role_scopes=ROLE_SCOPES
    )
    try:
        app = create_app(services, authenticator=BearerTokenAuthenticator(OPERATOR_TOKEN))
        with TestClient(app) as client:
            yield client, services
    finally:
        services.close()


def _concrete(path: str, party_id: str) -> str:
    path = path.replace("{party_id}", party_id)
    path = re.sub(r"\{rule_id\}", "no-such-rule", path)
    return re.sub(r"\{[a-z_]+\}", "1", path)


def test_every_route_answers_every_role_as_the_table_says(matrix_client: Any) -> None:
    client, services = matrix_client
    identity = services.identity
    assert identity is not None
    tokens: dict[str, str | None] = {ANONYMOUS: None}
    party_id = ""
    for index, role in enumerate(ROLES):
        party_id = party_service.register_person(
            services.ledger,
            f"matrix-{index}",
            date_of_birth=dt.date(1990, 1, 1),
            clock=identity.auth.clock,
            key=identity.fingerprint_key,
        )
        identity.auth.set_password(party_id, PASSWORD, role=role)
        login = client.post(
            "/v1/identity/login", json={"identifier": party_id, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        assert login.json()["role"] == role
        tokens[role] = login.json()["access_token"]
    # Logout ends the caller's session, so it is called last.
    routes = sorted(EXPECTED, key=lambda route: route[1] == "/v1/identity/logout")
    for method, path in routes:
        for role in ALL_ROLES:
            token = tokens[role]
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.request(method, _concrete(path, party_id), headers=headers)
            where = (method, path, role, response.status_code, response.text[:200])
            if role in EXPECTED[(method, path)]:
                assert response.status_code not in (401, 403), where
                assert response.status_code < 500, where
            elif role == ANONYMOUS:
                assert response.status_code == 401, where
            else:
                assert response.status_code == 403, where
                assert response.json()["code"] == "forbidden", where
