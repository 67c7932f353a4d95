"""The port through which a checkout is funded from the payer's credit line (L6).

Payments does not know how credit works; it knows only that some other context can pay a
merchant for the payer on credit, inside the payment's own ledger unit of work, so that the
draw on the line and the merchant payment commit together or not at all. The lending context
implements `CreditLineFunding` (`LendingService.fund_payment`); payments calls it only for a
command whose payer chose `funding_source="credit_line"` explicitly, after the rules engine
(which refuses a pre-selected credit source) and the risk engine have let it through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tianping.ledger.service import LedgerWrite

__all__ = ["CreditDraw", "CreditFundingRefused", "CreditLineFunding", "CreditRefund"]


class CreditFundingRefused(Exception):
    """The credit line cannot fund this payment; `code` is stable (`credit_line_not_found`,
    `credit_line_not_active`, `credit_limit_exceeded`, ...) and becomes the payment's decline
    code. Raised before anything is written, so the unit of work stays usable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CreditDraw:
    """Pay `amount` to the merchant's ledger account on the payer's credit line."""

    payment_id: str
    payer_id: str
    merchant_account: int
    amount: int
    currency: str
    on: date
    at: int


@dataclass(frozen=True, slots=True)
class CreditRefund:
    """Return `amount` of a payment drawn on the payer's credit line, taken from the merchant's
    ledger account (`merchant_account`, the account the draw credited)."""

    refund_id: str
    payment_id: str
    payer_id: str
    merchant_account: int
    amount: int
    currency: str
    on: date
    at: int


class CreditLineFunding(Protocol):
    """Funds a merchant payment from the payer's credit line, in the caller's unit of work."""

    def fund_payment(self, uow: LedgerWrite, draw: CreditDraw) -> int:
        """Draw on the line and pay the merchant; returns the id of the ledger transfer that
        credits the merchant (the payment's transfer). Raises `CreditFundingRefused`."""
        ...

    def refund_payment(self, uow: LedgerWrite, refund: CreditRefund) -> int:
        """Reverse (part of) a draw for a merchant refund, in the refund's unit of work: the
        merchant's account is debited and the line credited (any excess over what is owed on
        the line goes to the payer's wallet); returns the id of the refund's first transfer.
        Raises `CreditFundingRefused` (`credit_line_not_found` when the payment was not drawn
        on a line, `merchant_funds_insufficient`, ...) before the unit of work is unusable."""
        ...
