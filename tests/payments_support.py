"""A payments world for tests: a ledger with identity parties, wallets, a merchant and a bank.

Parties are registered through the identity context's own service functions (verifications,
payment accounts, card binding), as the product does; the risk engine uses the small model
trained on synthetic data, once per test session.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ledger_support import ManualClock
from tianping.identity import party_service
from tianping.identity.parties import _USCC_ALPHABET, _USCC_WEIGHTS
from tianping.identity.party_service import FingerprintKey
from tianping.identity.totp import SecretBox
from tianping.ledger.service import Ledger
from tianping.payments.clearing_sim import SimulatedClearingHouse, SimulatorBehaviour
from tianping.payments.model import PaymentCommand
from tianping.payments.risk.features import FeatureState
from tianping.payments.risk.model import RiskModel, RiskScorer
from tianping.payments.risk.synthetic import train_default_model
from tianping.payments.runtime import RiskEngine, build_payments
from tianping.payments.service import PaymentsService
from tianping.rules.config import cached_rulebook

NS = 1_000_000_000
CARD = "6222020200112233445"


def registration_number(first_17: str) -> str:
    """A unified social credit code: the 17 characters and their check character."""
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(first_17, _USCC_WEIGHTS, strict=False))
    return first_17 + _USCC_ALPHABET[(31 - total % 31) % 31]


@cache
def risk_model() -> RiskModel:
    return train_default_model(0)


def risk_engine() -> RiskEngine:
    return RiskEngine(RiskScorer(risk_model()), FeatureState("CNY", utc_offset_seconds=8 * 3600))


@dataclass
class PaymentsWorld:
    ledger: Ledger
    clock: ManualClock
    service: PaymentsService
    clearing: SimulatedClearingHouse
    key: FingerprintKey
    bank: str
    people: dict[str, str] = field(default_factory=dict)
    merchants: dict[str, str] = field(default_factory=dict)
    cards: dict[str, str] = field(default_factory=dict)

    def person(self, name: str, channels: int = 3) -> str:
        """A verified person with a wallet on a payment account (Class II with 3 channels)."""
        party_id = party_service.register_person(
            self.ledger,
            f"reg-{name}",
            date_of_birth=dt.date(1990, 1, 1),
            clock=self.clock,
            key=self.key,
        )
        kinds = ("id_document_name_check", "bank_card_element_check", "mobile_carrier_check")
        for index in range(channels):
            party_service.record_verification(
                self.ledger,
                f"ver-{name}-{index}",
                party_id,
                channel=kinds[index % 3] if index < 3 else "face_match",
                source="test",
                verified_at=self.clock() - NS,
                clock=self.clock,
            )
        account = party_service.open_payment_account(
            self.ledger, f"acct-{name}", party_id, self.bank, clock=self.clock
        )
        self.service.open_wallet(party_id, account.account_id)
        card = self.key.card(CARD[:-4] + f"{len(self.people):04d}")
        party_service.bind_bank_card(
            self.ledger,
            f"bind-{name}",
            party_id,
            card_holder_name_matches=True,
            card_fingerprint=card.fingerprint,
            card_last_four=card.last_four,
            clock=self.clock,
        )
        self.people[name] = party_id
        self.cards[name] = card.fingerprint
        return party_id

    def merchant(self, name: str, category: str = "5812", discount_bps: int = 60) -> str:
        merchant_id = party_service.register_merchant(
            self.ledger,
            f"reg-{name}",
            registration_number=registration_number(f"91330100{len(self.merchants):09d}"),
            clock=self.clock,
        )
        self.service.register_merchant(merchant_id, category, discount_bps)
        self.merchants[name] = merchant_id
        return merchant_id

    def fund(self, name: str, amount: int) -> None:
        """Top up a person's wallet through the clearing house and let it succeed."""
        request_id = f"fund-{name}-{amount}-{self.clock()}"
        self.service.request_rail(request_id, "top_up", self.people[name], self.cards[name], amount)
        self.clock.advance(30)
        self.service.process_callbacks()
        assert self.service.rail_request(request_id).state == "succeeded"

    def pay(self, payment_id: str, payer: str, payee: str, amount: int, **extra: Any) -> Any:
        kind = "merchant" if payee in self.merchants else "p2p"
        payee_id = self.merchants.get(payee) or self.people[payee]
        command = PaymentCommand(
            payment_id, self.people[payer], payee_id, amount, "CNY", kind=kind, **extra
        )
        (answer,) = self.service.pay([command])
        return answer


def make_world(
    ledger: Ledger,
    clock: ManualClock,
    behaviour: SimulatorBehaviour | None = None,
    *,
    with_risk: bool = False,
) -> PaymentsWorld:
    """A world without the risk engine unless asked: most tests are about rules and money, and
    the synthetic model judges brand-new test accounts as the risk they are."""
    clearing = SimulatedClearingHouse(lambda: clock() // NS, seed=7, behaviour=behaviour)
    box = SecretBox(secrets.token_bytes(32))
    service = build_payments(
        ledger,
        cached_rulebook("cn"),
        clock=clock,
        clearing=clearing,
        risk=risk_engine() if with_risk else None,
        secret_box=box,
    )
    bank = party_service.register_institution(
        ledger, "bank-1", institution_kind="partner_bank", clock=clock
    )
    key = FingerprintKey(secrets.token_bytes(32))
    return PaymentsWorld(ledger, clock, service, clearing, key, bank)
