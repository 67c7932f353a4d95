"""SME working-capital loans: the product's constants, the cap by receipts and what lending
needs of the payments context, as pure code (the use cases are on `LendingService`).

A merchant (a party of kind `merchant`) applies for itself. The decision reads the merchant's
own acquiring cash flows only with its live credit-assessment consent (the identity context's
service `sme_working_capital`); without it the application is refused with
`sme_consent_required` before anything is read or scored, because the amount cannot be capped by
receipts nobody may look at, and a fallback card on the application alone would lend blind.
The amount is capped at `SME_RECEIPTS_MULTIPLE` times the mean monthly receipts of the last
`SME_WINDOW_MONTHS` whole months (`amount_above_receipts_cap`), and then by the rules in force
(`loan.originate` for an entity's business loan: the 2020 draft's 1,000,000 CNY per
organisation, the 2024 draft's business cap). The loan is paid into, and repaid from, the
merchant's settlement account on the ledger (its merchant payable), never a person's wallet;
a repayment may take only what that account holds beyond the takings its next settlement pays
out, so a repayment can never make a settlement fail. A loan taken up with a sweep
(`tianping.lending.sweep`) is also repaid each day from a share of the day's takings, which
payments releases from that day's settlement first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Final, Protocol

from tianping.payments.cash_flow import MerchantCashFlowProfile

if TYPE_CHECKING:
    from tianping.ledger.service import LedgerWrite
    from tianping.payments.payout_store import TakingsRelease

__all__ = [
    "SME_PRODUCT",
    "SME_RECEIPTS_MULTIPLE",
    "SME_SERVICE",
    "SME_SOURCES",
    "SME_TERM_MONTHS_MAX",
    "SME_WINDOW_MONTHS",
    "AcquiringData",
    "receipts_cap",
    "sme_features",
]

SME_PRODUCT: Final = "sme"
# The identity context's service whose consents an SME decision needs (credit assessment).
SME_SERVICE: Final = "sme_working_capital"
# Sources an SME card may read once the merchant has consented.
SME_SOURCES: Final = frozenset({"application", "acquiring_cash_flows"})
# The months of acquiring a decision reads: half a year shows a trend and a season's swing.
SME_WINDOW_MONTHS: Final = 6
# Working capital is short: at most two years.
SME_TERM_MONTHS_MAX: Final = 24
# An SME loan is at most three months of the merchant's mean receipts: what it can turn over
# within a short term.
SME_RECEIPTS_MULTIPLE: Final = 3


class AcquiringData(Protocol):
    """What lending reads of the payments context for SME loans (`PaymentsService` is one)."""

    def merchant_cash_flow_profile(
        self, merchant_id: str, as_of: date, months: int, currency: str = "CNY"
    ) -> MerchantCashFlowProfile: ...

    def merchant_free_balance(
        self, merchant_id: str, currency: str = "CNY", uow: LedgerWrite | None = None
    ) -> int: ...

    # The sweep (`sweep_service.py`): a day's takings per merchant, and the share of them a
    # repayment takes, released from that day's settlement first (and given back if the
    # repayment does not happen).
    def merchant_day_takings(
        self, business_date: str, merchant_ids: Sequence[str], currency: str = "CNY"
    ) -> dict[str, int]: ...

    def takings_release(self, release_id: str) -> TakingsRelease | None: ...

    def release_takings(
        self,
        release_id: str,
        merchant_id: str,
        business_date: str,
        amount: int,
        currency: str = "CNY",
    ) -> TakingsRelease: ...

    def restore_takings(self, release_id: str) -> TakingsRelease: ...


def receipts_cap(profile: MerchantCashFlowProfile) -> int:
    """The largest amount the merchant's receipts support (0 without receipts)."""
    return SME_RECEIPTS_MULTIPLE * profile.mean_monthly_receipts


def sme_features(
    profile: MerchantCashFlowProfile, amount: int, term_months: int, stated_turnover: int
) -> dict[str, object]:
    """The SME card's inputs: the application's and the acquiring profile's."""
    return {
        "requested_amount": amount,
        "term_months": term_months,
        "stated_annual_turnover": stated_turnover,
        **profile.features(),
    }
