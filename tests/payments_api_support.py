"""Customers as the payments and lending API tests onboard them: registered, verified to
Class II, a payment account, personal data, a same-name bound card and a wallet, all through
the HTTP routes; the payments service installed with a scripted simulated clearing house, and
the lending service with the stand-in credit model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import httpx

from identity_api_support import IdentityApi
from lending_support import FixedScorer
from tianping.lending.runtime import build_lending
from tianping.payments.clearing_sim import (
    ScriptedScenario,
    SimulatedClearingHouse,
    SimulatorBehaviour,
)
from tianping.payments.runtime import build_payments
from tianping.rules.config import cached_rulebook

PAYMENTS: Final = "/v1/payments"
NS: Final = 1_000_000_000


@dataclass
class Customer:
    party_id: str
    token: str
    card: str


def install_payments(api: IdentityApi, script: dict[str, ScriptedScenario] | None = None) -> None:
    """The payments service for `api`'s services, without the risk engine (its decisions on
    brand-new accounts are tested in the integration tests)."""
    services = api.services
    clock = api.clock
    identity = services.identity
    assert identity is not None
    clearing = SimulatedClearingHouse(
        lambda: clock() // NS, seed=3, behaviour=SimulatorBehaviour(script=script or {})
    )
    services.install_payments(
        build_payments(
            services.ledger,
            cached_rulebook("cn"),
            clock=clock,
            clearing=clearing,
            risk=None,
            secret_box=identity.auth.secret_box,
            privacy=identity.privacy,
        )
    )


def install_lending(api: IdentityApi, **options: Any) -> None:
    """The lending service for `api`'s services under the `cn` rulebook: `options` are
    `build_lending`'s, by default the stand-in credit model (`FixedScorer`) and the identity
    context's consents."""
    services = api.services
    assert services.identity is not None
    options.setdefault("scorer", FixedScorer())
    options.setdefault("consent", services.identity.privacy)
    services.install_lending(build_lending(services.ledger, cached_rulebook("cn"), **options))


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def onboard(api: IdentityApi, name: str, bank: str) -> Customer:
    party_id = api.customer(f"reg-{name}")
    for index, channel in enumerate(
        ("id_document_name_check", "bank_card_element_check", "mobile_carrier_check")
    ):
        ok(
            api.operator(
                "POST",
                f"/parties/{party_id}/verifications",
                {
                    "verification_id": f"v-{name}-{index}",
                    "channel": channel,
                    "source": "e2e",
                    "verified_at": api.clock() - NS,
                },
            )
        )
    token = api.login(party_id).json()["access_token"]

    def own(method: str, path: str, body: Any) -> Any:
        return ok(api.as_party(token, method, f"/parties/{party_id}{path}", body), 201)

    api.as_party(
        token,
        "PUT",
        f"/parties/{party_id}/personal-data",
        {"request_id": f"pd-{name}", "fields": {"name": f"Person {name}"}},
    )
    account = own(
        "POST",
        "/payment-accounts",
        {"request_id": f"acct-{name}", "institution_id": bank, "account_class": "II"},
    )
    card = own(
        "POST",
        "/cards",
        {
            "binding_id": f"card-{name}",
            "card_number": f"62220202001{abs(hash(name)) % 10**8:08d}",
            "holder_name": f"Person {name}",
        },
    )
    ok(
        api.as_party(
            token,
            "POST",
            f"/parties/{party_id}/wallet",
            {"payment_account_id": account["account_id"]},
            prefix=PAYMENTS,
        ),
        201,
    )
    return Customer(party_id, token, card["fingerprint"])
