"""The payments chart of accounts on the ledger: which accounts exist, their codes and flags.

Pure: ids are derived from stable keys (`tianping.ledger.ids.derive_id`), so every process
computes the same ledger account for "the wallet of party P in CNY" without a lookup, and an
account created twice is the same account (`exists`).

The platform's books, from its own point of view:

* customer wallet (1001, one per person and currency): a liability, stored value owed to the
  customer;
* merchant payable (1002, one per merchant and currency): a liability, takings owed to the
  merchant until settlement;
* reserve (2001, one per currency): an asset, client money held at the central bank (P6);
* clearing (2002, one per partner bank and currency): money in flight through the clearing
  house (P7);
* operating cash (2003, one per currency): the platform's own bank account, where fees go when
  they leave the reserve;
* fee income (3001, one per currency): merchant discount earned.

Client money is safeguarded when the reserve equals every wallet plus every merchant payable
(`safeguarding`): fees and the platform's own money never stay in the reserve. Customer wallets
and merchant payables may not go negative (`debits_must_not_exceed_credits`) and keep balance
history, so a customer's statement and balance at any time come from the ledger itself.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from tianping.ledger.ids import derive_id
from tianping.ledger.model import AccountFlags, NewAccount

__all__ = [
    "SETTLEMENT_CLEARING_ID",
    "AccountCode",
    "TransferCode",
    "clearing_account",
    "fee_income_account",
    "merchant_account",
    "new_account",
    "operating_account",
    "reserve_account",
    "transfer_id",
    "wallet_account",
]

_NAMESPACE: Final = "tianping.payments"
# The clearing side of merchant settlement (T+1 net payouts): the pseudonymous "bank" whose
# clearing account the net passes through on its way to the merchants' banks. AML names it as
# a settlement payout's counterparty.
SETTLEMENT_CLEARING_ID: Final = "merchant-payout"


class AccountCode(IntEnum):
    CUSTOMER_WALLET = 1001
    MERCHANT_PAYABLE = 1002
    RESERVE = 2001
    CLEARING = 2002
    OPERATING_CASH = 2003
    FEE_INCOME = 3001


class TransferCode(IntEnum):
    """What a payments transfer is, as the ledger records it (`Transfer.code`)."""

    P2P = 101
    MERCHANT_PAYMENT = 102
    REFUND = 103
    TOP_UP = 111
    TOP_UP_SETTLED = 112
    WITHDRAWAL = 121
    WITHDRAWAL_SETTLED = 122
    MERCHANT_SETTLEMENT = 131
    MERCHANT_FEE = 132
    FEE_SWEEP = 133
    # A merchant's free balance paid out to its own bank account: the hold on its payable, and
    # the cash leaving the reserve through the clearing house once the bank confirms.
    MERCHANT_PAYOUT = 141
    MERCHANT_PAYOUT_SETTLED = 142


# Liabilities to customers and merchants may never be overdrawn; every one keeps its history.
_LIABILITY_FLAGS: Final = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.HISTORY
_FLAGS: Final = {
    AccountCode.CUSTOMER_WALLET: _LIABILITY_FLAGS,
    AccountCode.MERCHANT_PAYABLE: _LIABILITY_FLAGS,
    AccountCode.RESERVE: AccountFlags.HISTORY,
    AccountCode.CLEARING: AccountFlags.HISTORY,
    AccountCode.OPERATING_CASH: 0,
    AccountCode.FEE_INCOME: 0,
}


def _account_id(kind: AccountCode, *key: str) -> int:
    return derive_id(_NAMESPACE, "/".join((kind.name.lower(), *key)))


def wallet_account(party_id: str, currency: str) -> int:
    return _account_id(AccountCode.CUSTOMER_WALLET, party_id, currency)


def merchant_account(merchant_id: str, currency: str) -> int:
    return _account_id(AccountCode.MERCHANT_PAYABLE, merchant_id, currency)


def reserve_account(currency: str) -> int:
    return _account_id(AccountCode.RESERVE, currency)


def clearing_account(bank_id: str, currency: str) -> int:
    return _account_id(AccountCode.CLEARING, bank_id, currency)


def fee_income_account(currency: str) -> int:
    return _account_id(AccountCode.FEE_INCOME, currency)


def operating_account(currency: str) -> int:
    return _account_id(AccountCode.OPERATING_CASH, currency)


def new_account(kind: AccountCode, account_id: int, currency: str, owner: str = "") -> NewAccount:
    """The ledger account of `kind`; `owner` is the customer's or merchant's party id."""
    return NewAccount(account_id, currency, int(kind), flags=_FLAGS[kind], owner=owner)


def transfer_id(purpose: str, key: str) -> int:
    """The ledger id of the transfer doing `purpose` for the payments record `key`.

    Derived, so a retried command replays the same ledger event instead of moving money twice.
    """
    return derive_id(_NAMESPACE, f"transfer/{purpose}/{key}")
