"""The lending service wired to its collaborators: the rulebook, the identity context's
consents, the platform's credit scorecards, and the payments context's data (a person's
payments, a merchant's acquiring)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tianping.ledger.service import Ledger
from tianping.lending.service import ConsentLookup, CreditScorer, LendingService
from tianping.lending.sme import AcquiringData
from tianping.rules.rulebook import Rulebook
from tianping.rules.service import RulesService

__all__ = ["build_lending"]


def build_lending(
    ledger: Ledger,
    rulebook: Rulebook,
    *,
    consent: ConsentLookup | None = None,
    scorer: CreditScorer | None = None,
    profile: Callable[[str], Mapping[str, object]] | None = None,
    sme_scorer: CreditScorer | None = None,
    acquiring: AcquiringData | None = None,
) -> LendingService:
    """The lending service; without a scorer, applications answer `lending_unavailable` (SME
    applications without the SME scorer and the merchant's acquiring likewise)."""
    return LendingService(
        ledger,
        rules=RulesService(ledger, rulebook),
        scorer=scorer,
        consent=consent,
        profile=profile,
        sme_scorer=sme_scorer,
        acquiring=acquiring,
    )
