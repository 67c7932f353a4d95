"""When the database itself fails, the API answers 503 problem+json, never a 500."""

from __future__ import annotations

import warnings
from pathlib import Path

from tianping.api.app import create_app
from tianping.api.problems import PROBLEM_MEDIA_TYPE
from tianping.bootstrap import build_services
from tianping.config import load_settings

with warnings.catch_warnings():
    # Starlette's TestClient warns about its preferred HTTP client package at import.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_an_uninitialised_database_answers_service_unavailable(tmp_path: Path) -> None:
    """A ledger whose schema was never created answers 503 with Retry-After, not 500."""
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path}/never-migrated.db", data_dir=tmp_path
    )
    services = build_services(settings, migrate=False)
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            response = client.get("/v1/ledger/accounts/1")
            write = client.post(
                "/v1/ledger/transfers",
                json={
                    "transfers": [
                        {
                            "id": "1",
                            "debit_account_id": "1",
                            "credit_account_id": "2",
                            "amount": 1,
                            "currency": "CNY",
                            "code": 1,
                        }
                    ]
                },
            )
    finally:
        services.close()
    for answer in (response, write):
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
        assert answer.json()["code"] == "service_unavailable"
        assert "Retry-After" in answer.headers
