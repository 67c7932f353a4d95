"""The lending accounts on the ledger, per currency and per funder.

A funder is the platform itself (`platform`) or a partner bank that co-lends (L1, L3). Each
funder's position is kept in its own accounts, so the ledger shows at any moment what each
owns of the loan book:

* loan receivable (4001): principal lent and not yet repaid (an asset of the funder);
* interest receivable (4002): interest accrued and not yet paid;
* interest income (4101): interest earned (income of the funder);
* credit losses (4201): principal and interest written off (an expense of the funder);
* credit-line receivable (4003): what a revolving credit line has paid merchants for its
  holder and not yet been repaid, including principal converted into instalments;
* credit-line charges receivable (4004): a line's interest and instalment fees charged on its
  statements and not yet paid;
* fee income (4102): instalment fees earned on credit lines (interest earned on a line goes to
  interest income, 4101, like a loan's);
* recoveries (4202): cash recovered on loans and credit lines already written off (income of
  the funder, shown against its credit losses, as IFRS 9 credits recoveries to the impairment
  line).

A line's receivables are kept apart from the loans' so that each product's sub-ledger
(`loans`, `credit_lines`) reconciles with accounts of its own.

Penalty interest accrues into the same interest receivable and income accounts as ordinary
interest (it is interest, at the overdue rate), under its own transfer code.

The loan sub-ledger (`loans`, one row per loan) holds the same amounts per loan; the daily
accrual posts one transfer per currency and funder for the whole book, which is what makes it
set-based (see `LendingService.accrue`). Ids are derived, like the payments chart's.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from tianping.ledger.ids import derive_id
from tianping.ledger.model import AccountFlags, NewAccount

__all__ = ["PLATFORM", "LendingAccount", "LendingCode", "account_id", "new_account", "transfer_id"]

PLATFORM: Final = "platform"
_NAMESPACE: Final = "tianping.lending"


class LendingAccount(IntEnum):
    LOAN_RECEIVABLE = 4001
    INTEREST_RECEIVABLE = 4002
    LINE_RECEIVABLE = 4003
    LINE_CHARGES_RECEIVABLE = 4004
    INTEREST_INCOME = 4101
    FEE_INCOME = 4102
    CREDIT_LOSSES = 4201
    RECOVERIES = 4202


class LendingCode(IntEnum):
    """What a lending transfer is (`Transfer.code`)."""

    DISBURSEMENT = 401
    DISBURSEMENT_FUNDING = 402
    ACCRUAL = 411
    PENALTY_ACCRUAL = 412
    REPAYMENT_PRINCIPAL = 421
    REPAYMENT_INTEREST = 422
    REPAYMENT_FUNDING = 423
    REPAYMENT_PENALTY = 424
    WRITE_OFF = 431
    RECOVERY = 432
    RECOVERY_FUNDING = 433
    LINE_DRAW = 441
    LINE_DRAW_FUNDING = 442
    LINE_INTEREST = 443
    LINE_FEE = 444
    LINE_REPAYMENT_PRINCIPAL = 445
    LINE_REPAYMENT_CHARGES = 446
    LINE_REPAYMENT_FUNDING = 447
    LINE_REFUND = 448
    LINE_REFUND_FUNDING = 449
    LINE_REFUND_TO_WALLET = 450
    LINE_WRITE_OFF = 451
    LINE_RECOVERY = 452
    LINE_RECOVERY_FUNDING = 453


def account_id(kind: LendingAccount, funder: str, currency: str) -> int:
    return derive_id(_NAMESPACE, f"{kind.name.lower()}/{funder}/{currency}")


def new_account(kind: LendingAccount, funder: str, currency: str) -> NewAccount:
    # Receivables may never go negative: a repayment above what is owed is a bug, not a credit.
    flags = (
        AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
        if kind
        in (
            LendingAccount.LOAN_RECEIVABLE,
            LendingAccount.INTEREST_RECEIVABLE,
            LendingAccount.LINE_RECEIVABLE,
            LendingAccount.LINE_CHARGES_RECEIVABLE,
        )
        else 0
    )
    return NewAccount(account_id(kind, funder, currency), currency, int(kind), flags=flags)


def transfer_id(purpose: str, key: str) -> int:
    return derive_id(_NAMESPACE, f"transfer/{purpose}/{key}")
