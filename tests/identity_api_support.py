"""The identity API as a test drives it: fresh keys, the operator's static token, parties'
access tokens, and a fixture serving the app on SQLite and PostgreSQL (`serve_identity_api` serves
it for fixtures of a wider scope)."""

from __future__ import annotations

import base64
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from ledger_support import ManualClock
from tianping.api.app import create_app
from tianping.api.problems import PROBLEM_MEDIA_TYPE
from tianping.api.security import ROLE_SCOPES, BearerTokenAuthenticator
from tianping.bootstrap import Services, build_services
from tianping.config import load_settings
from tianping.identity.party_service import CARD_FINGERPRINT_KEY_ENV
from tianping.identity.tokens import SIGNING_KEY_ENV_VAR, SigningKey
from tianping.identity.totp import SECRETS_KEY_ENV_VAR
from tianping.identity.vault import MASTER_KEY_ENV

with warnings.catch_warnings():
    # See test_api_ledger.py: Starlette's TestClient warns about the `httpx` package.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

OPERATOR_TOKEN = "o" * 40
IDENTITY = "/v1/identity"
PASSWORD = "correct horse battery staple"
ADULT_BORN = "1990-01-01"


def identity_environment() -> dict[str, str]:
    """Fresh identity keys for one test: never stored anywhere but this process."""
    return {
        SIGNING_KEY_ENV_VAR: SigningKey.generate().to_pem().decode(),
        SECRETS_KEY_ENV_VAR: base64.b64encode(secrets.token_bytes(32)).decode(),
        CARD_FINGERPRINT_KEY_ENV: secrets.token_hex(32),
        MASTER_KEY_ENV: base64.b64encode(secrets.token_bytes(32)).decode(),
    }


@dataclass
class IdentityApi:
    client: TestClient
    services: Services
    clock: ManualClock

    def operator(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        return self.client.request(method, IDENTITY + path, json=body, headers=headers)

    def as_party(
        self, token: str, method: str, path: str, body: Any = None, *, prefix: str = IDENTITY
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return self.client.request(method, prefix + path, json=body, headers=headers)

    def register(self, request_id: str, born: str = ADULT_BORN, **extra: Any) -> str:
        response = self.operator(
            "POST", "/persons", {"request_id": request_id, "date_of_birth": born, **extra}
        )
        assert response.status_code == 201, response.text
        party_id: str = response.json()["party_id"]
        return party_id

    def customer(self, request_id: str, role: str | None = None) -> str:
        """A registered person with a password (and `role`, customer by default)."""
        party_id = self.register(request_id)
        body: dict[str, Any] = {"password": PASSWORD}
        if role is not None:
            body["role"] = role
        response = self.operator("PUT", f"/parties/{party_id}/password", body)
        assert response.status_code == 204, response.text
        return party_id

    def login(self, identifier: str, password: str = PASSWORD) -> httpx.Response:
        return self.client.post(
            IDENTITY + "/login", json={"identifier": identifier, "password": password}
        )


def problem_code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), response.text
    code: str = response.json()["code"]
    return code


@contextmanager
def serve_identity_api(
    database_url: str, data_dir: Path, clock: ManualClock
) -> Iterator[IdentityApi]:
    """The app on a freshly migrated database at `database_url`, with fresh identity keys and
    the operator's static token; the ledger's invariants are checked when the block ends."""
    settings = load_settings(database_url=database_url, data_dir=data_dir)
    services = build_services(
        settings,
        migrate=True,
        clock=clock,
        environ=identity_environment(),
        role_scopes=ROLE_SCOPES,
    )
    try:
        app = create_app(services, authenticator=BearerTokenAuthenticator(OPERATOR_TOKEN))
        with TestClient(app) as client:
            yield IdentityApi(client, services, clock)
        assert services.ledger.check() == []
    finally:
        services.close()


@pytest.fixture
def identity_api(database_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[IdentityApi]:
    with serve_identity_api(database_url, tmp_path, clock) as api:
        yield api
