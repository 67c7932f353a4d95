"""What a process needs to run payments: the service wired to its collaborators, and a batcher.

`build_payments` composes the payments service from the ledger, the configured rulebook, a
clearing house (the simulated one: the real adapters speak to NetsUnion or UnionPay and need
their credentials, which this repository does not have) and the risk engine (a model loaded
from a saved artefact when one is given, otherwise a small model trained at start-up on a
synthetic stream, which takes well under a second).

`PaymentBatcher` lets single payments from many request threads share one transaction and one
durable commit, exactly as the ledger's group commit does for transfers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tianping.identity.privacy_service import PrivacyService
from tianping.identity.totp import SecretBox
from tianping.ledger.group_commit import Batcher, split_by_request
from tianping.ledger.service import Ledger
from tianping.payments.clearing import ClearingHouse
from tianping.payments.clearing_sim import SimulatedClearingHouse
from tianping.payments.model import (
    COMMANDS_PER_BATCH_MAX,
    PaymentCommand,
    PaymentError,
    PaymentOutcome,
)
from tianping.payments.risk.features import FeatureState
from tianping.payments.risk.model import RiskModel, RiskScorer
from tianping.payments.risk.synthetic import train_default_model
from tianping.payments.service import PaymentsService, RiskEngine
from tianping.rules.rulebook import Rulebook
from tianping.rules.service import RulesService

__all__ = ["PaymentBatcher", "build_payments", "default_risk_engine"]

# China Standard Time, for the "time of day" risk feature.
_CHINA_UTC_OFFSET_S = 8 * 3600


def default_risk_engine(model_path: Path | None = None, seed: int = 0) -> RiskEngine:
    """The risk engine: the saved model at `model_path`, or one trained on synthetic data."""
    model = RiskModel.load(model_path) if model_path is not None else train_default_model(seed)
    return RiskEngine(
        RiskScorer(model), FeatureState("CNY", utc_offset_seconds=_CHINA_UTC_OFFSET_S)
    )


def build_payments(
    ledger: Ledger,
    rulebook: Rulebook,
    *,
    clock: Callable[[], int] = time.time_ns,
    clearing: ClearingHouse | None = None,
    risk: RiskEngine | bool | None = True,
    seed: int = 0,
    secret_box: SecretBox | None = None,
    privacy: PrivacyService | None = None,
) -> PaymentsService:
    """The payments service; `risk` is an engine, True for the default one, or None for none."""
    clearing = clearing or SimulatedClearingHouse(lambda: clock() // 1_000_000_000, seed)
    return PaymentsService(
        ledger,
        RulesService(ledger, rulebook),
        clearing,
        default_risk_engine(seed=seed) if risk is True else risk or None,
        clock=clock,
        secret_box=secret_box,
        privacy=privacy,
    )


class PaymentBatcher(Batcher[PaymentCommand, PaymentOutcome | PaymentError]):
    """Submit payments from any thread; one writer decides and commits them in groups."""

    def __init__(self, service: PaymentsService, linger_us: int = 500) -> None:
        self.service = service
        super().__init__(
            self._commit_payments,
            "payments-group-commit",
            COMMANDS_PER_BATCH_MAX,
            linger_us=linger_us,
        )

    def pay(self, command: PaymentCommand, timeout_s: int = 60) -> PaymentOutcome:
        (answer,) = self.submit([command], timeout_s)
        if isinstance(answer, PaymentError):
            raise answer
        return answer

    async def pay_async(self, command: PaymentCommand, timeout_s: int = 60) -> PaymentOutcome:
        """`pay` for a coroutine on an event loop (the HTTP API): no thread waits for it."""
        (answer,) = await self.submit_async([command], timeout_s)
        if isinstance(answer, PaymentError):
            raise answer
        return answer

    def _commit_payments(
        self, batches: list[Sequence[PaymentCommand]]
    ) -> list[list[PaymentOutcome | PaymentError]]:
        answers = self.service.pay([command for batch in batches for command in batch])
        return split_by_request(batches, answers)
