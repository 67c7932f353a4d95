"""Payments' commands, outcomes and errors: pure data, checked on construction.

Money is integer minor units with an ISO 4217 currency. Every command carries a client-chosen
id (`payment_id`, `refund_id`, `request_id`) that makes it idempotent: the same id with the same
content replays the stored outcome, the same id with other content is `request_conflict`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

from tianping.ledger.currencies import ACTIVE_CURRENCIES

__all__ = [
    "AMOUNT_MAX",
    "CHANNELS",
    "COMMANDS_PER_BATCH_MAX",
    "FUNDING_SOURCES",
    "Channel",
    "PaymentCommand",
    "PaymentError",
    "PaymentOutcome",
    "PaymentStatus",
    "RefundOutcome",
    "check_id",
    "local_date",
    "local_day_start",
    "settlement_split",
]

# One payment moves at most 10^12 minor units (ten billion yuan): far beyond any retail payment,
# and it keeps every sum of a day's counters inside a signed 64-bit column.
AMOUNT_MAX: Final = 10**12
COMMANDS_PER_BATCH_MAX: Final = 1_000
ID_LENGTH_MAX: Final = 64
DEVICE_ID_LENGTH_MAX: Final = 64
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
# China Standard Time: the "natural day" the payment caps count in (P1, P2, P5).
CHINA_OFFSET: Final = timedelta(hours=8)

Channel = Literal["balance", "qr_static", "qr_dynamic", "payment_code"]
CHANNELS: Final = ("balance", "qr_static", "qr_dynamic", "payment_code")
FUNDING_SOURCES: Final = ("balance", "bank_card", "credit_line")
PaymentStatus = Literal["completed", "declined", "step_up_required"]


class PaymentError(Exception):
    """A payments refusal with a stable `code`; messages never carry personal data."""

    code = "payment_error"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_id(name: str, value: object) -> str:
    if not isinstance(value, str) or _ID_PATTERN.fullmatch(value) is None:
        raise PaymentError(
            "payment_input_invalid",
            f"{name} is 1 to {ID_LENGTH_MAX} letters, digits and . _ : / - "
            "(starting with a letter or digit)",
        )
    return value


def check_amount(amount: object, currency: object) -> tuple[int, str]:
    if type(amount) is not int or not 0 < amount <= AMOUNT_MAX:
        raise PaymentError("amount_invalid", f"an amount is 1 to {AMOUNT_MAX} minor units")
    if not isinstance(currency, str) or currency not in ACTIVE_CURRENCIES:
        raise PaymentError("currency_invalid", "the currency is not an ISO 4217 code")
    return amount, currency


def settlement_split(kept: int, discount_bps: int, swept: int = 0) -> tuple[int, int]:
    """(fee, net) of settling a day's takings `kept` (payments less refunds) of which a loan
    sweep took `swept` already.

    The discount is charged on all the takings, rounded half up to the fen in integers
    ((kept * bps + 5000) // 10000); the net is the rest less what was swept. Together they never
    take more from the merchant's payable than the takings less the swept part: should a refund
    after the sweep leave too little for the whole fee, the fee gives way (the platform forgoes
    it) rather than the payable being overdrawn."""
    fee = (kept * discount_bps + 5_000) // 10_000
    fee = min(fee, max(0, kept - swept))
    return fee, max(0, kept - fee - swept)


def local_date(at_ns: int) -> date:
    """The calendar day in China Standard Time of a ledger time (ns since the epoch)."""
    return (datetime.fromtimestamp(at_ns // 1_000_000_000, tz=UTC) + CHINA_OFFSET).date()


def local_day_start(day: date) -> int:
    """The ledger time (ns since the epoch) of 00:00 China Standard Time on `day`: the first
    instant whose `local_date` is `day`."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - CHINA_OFFSET
    return int(midnight.timestamp()) * 1_000_000_000


@dataclass(frozen=True, slots=True)
class PaymentCommand:
    """Pay `amount` from the payer's wallet to a person's wallet (p2p) or a merchant.

    `auth_factors` and `has_certificate` are the payer session's authentication strength (the
    daily caps of P2 depend on it); `device_id` feeds the risk features. For QR payments the
    merchant and amount come from the QR payload (and, for a dynamic code, its stored order),
    never from the client alone.
    """

    payment_id: str
    payer_id: str
    payee_id: str
    amount: int
    currency: str
    kind: Literal["p2p", "merchant"] = "p2p"
    channel: Channel = "balance"
    order_reference: str | None = None
    auth_factors: int = 1
    has_certificate: bool = False
    device_id: str = "unknown-device"
    step_up: bool = False
    # Where the money comes from: the wallet, (a card checkout) the payer's own bound card,
    # pulled into the wallet through the clearing house just before this payment, or the
    # payer's credit line (merchant payments only). A credit product is never a default
    # source (L6): the default is the balance, and credit is used only when the payer's request
    # names it.
    funding_source: Literal["balance", "bank_card", "credit_line"] = "balance"
    # Whether the checkout pre-selected this funding source rather than the payer choosing it.
    # The HTTP API never sets it (its requests cannot carry it); it is here so the rules engine
    # judges what a caller claims, and refuses a pre-selected credit source (L6).
    preselected: bool = False
    # The payee's name as the payer typed it to confirm a P2P payee (checked against the vault,
    # never stored): a confirmation of who is paid, not part of what is asked.
    payee_name: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_id("payment_id", self.payment_id)
        check_amount(self.amount, self.currency)
        if self.kind not in ("p2p", "merchant"):
            raise PaymentError("payment_input_invalid", "kind is p2p or merchant")
        if self.channel not in CHANNELS:
            raise PaymentError("payment_input_invalid", f"channel is one of {CHANNELS}")
        if self.kind == "p2p" and self.channel != "balance":
            raise PaymentError("payment_input_invalid", "a p2p payment is paid from the balance")
        if self.payer_id == self.payee_id:
            raise PaymentError("payment_to_self", "the payer and the payee are the same party")
        if type(self.auth_factors) is not int or not 0 <= self.auth_factors <= 5:
            raise PaymentError("payment_input_invalid", "auth_factors is 0 to 5")
        if not isinstance(self.device_id, str) or not 0 < len(self.device_id) <= 64:
            raise PaymentError("payment_input_invalid", "device_id is 1 to 64 characters")
        if self.order_reference is not None:
            check_id("order_reference", self.order_reference)
        if self.funding_source not in FUNDING_SOURCES:
            raise PaymentError(
                "payment_input_invalid", f"funding_source is one of {FUNDING_SOURCES}"
            )
        if self.funding_source == "credit_line" and self.kind != "merchant":
            raise PaymentError(
                "payment_input_invalid", "a credit line pays merchants only, never a person"
            )
        if type(self.preselected) is not bool:
            raise PaymentError("payment_input_invalid", "preselected is true or false")
        if self.payee_name is not None and (
            not isinstance(self.payee_name, str) or not 0 < len(self.payee_name) <= 128
        ):
            raise PaymentError("payment_input_invalid", "payee_name is 1 to 128 characters")

    @property
    def qr_grade(self) -> str | None:
        """The P5 risk-prevention grade of a QR payment: D for a static code; for a dynamic
        code or a payment code A with a certificate, B with two factors, C otherwise."""
        if self.channel == "balance":
            return None
        if self.channel == "qr_static":
            return "D"
        if self.has_certificate and self.auth_factors >= 2:
            return "A"
        return "B" if self.auth_factors >= 2 else "C"


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What became of a payment: `completed`, `declined` with a code, or `step_up_required`
    (nothing moved; the payer proves a second factor and resumes it)."""

    payment_id: str
    status: PaymentStatus
    decline_code: str | None
    reasons: tuple[str, ...]
    amount: int
    currency: str
    payer_id: str
    payee_id: str
    kind: str
    channel: str
    decision_id: int | None
    risk_action: str | None
    risk_score_ppm: int | None
    model_version: str | None
    transfer_id: int | None
    business_date: str
    created_at: int
    refunded: int = 0
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    refund_id: str
    payment_id: str
    amount: int
    currency: str
    refunded_total: int
    transfer_id: int
    created_at: int
    replayed: bool = False
