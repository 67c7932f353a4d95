"""The lending service wired to its collaborators: the rulebook, the identity context's
consents, and the platform's credit scorecard."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tianping.ledger.service import Ledger
from tianping.lending.model import PartnerBankFigures
from tianping.lending.service import ConsentLookup, CreditScorer, LendingService
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
    partner_banks: Mapping[str, PartnerBankFigures] | None = None,
) -> LendingService:
    """The lending service; without a scorer, applications answer `lending_unavailable`.
    `partner_banks` are the co-lending banks' registered figures for the L3 concentration
    report."""
    return LendingService(
        ledger,
        rules=RulesService(ledger, rulebook),
        scorer=scorer,
        consent=consent,
        profile=profile,
        partner_banks=partner_banks,
    )
