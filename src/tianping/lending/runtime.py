"""The lending service wired to its collaborators: the rulebook, the identity context's
consents, the platform's credit scorecards, and the payments context's data (a person's
payments, a merchant's acquiring)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tianping.ledger.service import Ledger
from tianping.lending.model import PartnerBankFigures
from tianping.lending.service import CardRails, ConsentLookup, CreditScorer, LendingService
from tianping.lending.sme import AcquiringData
from tianping.rules.rulebook import Rulebook
from tianping.rules.service import RulesService

__all__ = ["TrainedOnFirstUse", "build_lending"]


class TrainedOnFirstUse:
    """A credit scorer built (trained or loaded) by the first application that needs it.

    The synthetic platform cards take a few seconds to train; a process that never decides an
    application (a loan lookup, the daily accrual, a statement run, a CLI command) should not
    wait for them. Thread-safe: concurrent first applications build it once.
    """

    def __init__(self, build: Callable[[], CreditScorer]) -> None:
        self._build = build
        self._scorer: CreditScorer | None = None
        self._lock = threading.Lock()

    def score(self, features: Mapping[str, object], allowed_sources: Iterable[str]) -> Any:
        scorer = self._scorer
        if scorer is None:
            with self._lock:
                if self._scorer is None:
                    self._scorer = self._build()
                scorer = self._scorer
        return scorer.score(features, allowed_sources)


def build_lending(
    ledger: Ledger,
    rulebook: Rulebook,
    *,
    consent: ConsentLookup | None = None,
    scorer: CreditScorer | None = None,
    profile: Callable[[str], Mapping[str, object]] | None = None,
    sme_scorer: CreditScorer | None = None,
    acquiring: AcquiringData | None = None,
    partner_banks: Mapping[str, PartnerBankFigures] | None = None,
    card_rails: CardRails | None = None,
) -> LendingService:
    """The lending service; without a scorer, applications answer `lending_unavailable` (SME
    applications without the SME scorer and the merchant's acquiring likewise).
    `partner_banks` are the co-lending banks' registered figures for the L3 concentration
    report. `card_rails` (the payments service) pays a loan on to the borrower's own card."""
    return LendingService(
        ledger,
        rules=RulesService(ledger, rulebook),
        scorer=scorer,
        consent=consent,
        profile=profile,
        sme_scorer=sme_scorer,
        acquiring=acquiring,
        partner_banks=partner_banks,
        card_rails=card_rails,
    )
