"""Lending use cases on the ledger: the daily accrual (and, as the issue proceeds, origination,
disbursement, repayment and classification).

Every use case runs in one ledger unit of work: the loan sub-ledger's rows and the general
ledger's transfers commit together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from tianping.ledger.model import NewTransfer, TransferFlags
from tianping.ledger.money import allocate
from tianping.ledger.results import CreateAccountResult, CreateTransferResult
from tianping.ledger.service import Ledger, LedgerWrite
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount, LendingCode
from tianping.lending.store import AccrualGroup, LendingStore

__all__ = ["ACCRUAL_DAYS_MAX", "AccrualReport", "LendingError", "LendingService"]

_log = logging.getLogger(__name__)

# A catch-up accrues at most this many missed days in one call (a year and a leap day).
ACCRUAL_DAYS_MAX: Final = 366


class LendingError(Exception):
    """A lending refusal with a stable `code`; messages never carry personal data."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class AccrualReport:
    day: str
    loans: int
    interest: int
    groups: tuple[AccrualGroup, ...]
    replayed: bool = False


class LendingService:
    """Lending over one ledger."""

    def __init__(self, ledger: Ledger, clock: Callable[[], int] | None = None) -> None:
        self.ledger = ledger
        self.clock: Callable[[], int] = clock if clock is not None else ledger.clock

    @contextmanager
    def _write(self) -> Iterator[tuple[LedgerWrite, LendingStore]]:
        with self.ledger.write() as uow:
            yield uow, LendingStore(uow.connection, uow.store.backend)

    def _now(self, uow: LedgerWrite) -> int:
        return max(self.clock(), uow.head.last_timestamp + 1)

    @staticmethod
    def ensure_accounts(uow: LedgerWrite, currency: str, funders: Sequence[str]) -> None:
        """Every lending account of each funder in `currency` (idempotent)."""
        accounts = [
            chart.new_account(kind, funder, currency)
            for funder in funders
            for kind in LendingAccount
        ]
        for account, result in zip(accounts, uow.create_accounts(accounts), strict=True):
            if result not in (CreateAccountResult.ok, CreateAccountResult.exists):
                raise LendingError(
                    "ledger_refused", f"account {account.id} could not be created: {result.name}"
                )

    # -- the daily accrual ------------------------------------------------------------------

    def accrue(self, day: date) -> AccrualReport:
        """Accrue one day's interest on every active loan not yet accrued for `day`.

        Set-based: one aggregate and one UPDATE over the whole book, then one ledger transfer
        per currency and funder (debit interest receivable, credit interest income), the
        group's interest split between the partner bank and the platform by the loans' funding
        shares, largest remainder, so the general ledger moves exactly what the sub-ledger
        accrued. Running the same day again accrues nothing more (each loan remembers the last
        day it accrued for).
        """
        label = day.isoformat()
        with self._write() as (uow, store):
            done = store.accrual_run(label)
            if done is not None:
                return AccrualReport(label, done[0], done[1], (), replayed=True)
            groups = store.accrual_groups(label)
            accrued = store.apply_accrual(label)
            loans = sum(group.loans for group in groups)
            if accrued != loans:  # pragma: no cover - both statements see one snapshot
                raise LendingError("accrual_inconsistent", "the book changed during the accrual")
            transfers = self._accrual_transfers(uow, label, groups)
            if transfers:
                for result in uow.create_transfers(transfers):
                    if result not in (CreateTransferResult.ok, CreateTransferResult.exists):
                        raise LendingError("ledger_refused", f"accrual refused: {result.name}")
            total = sum(group.interest for group in groups)
            store.insert_accrual_run(label, loans, total, self._now(uow))
        _log.info("accrued %s: %d loans, %d minor units", label, loans, total)
        return AccrualReport(label, loans, total, tuple(groups))

    def accrue_through(self, day: date, since: date) -> list[AccrualReport]:
        """Accrue every day after `since` up to `day`, in order (a missed batch catches up)."""
        days = (day - since).days
        if not 0 <= days <= ACCRUAL_DAYS_MAX:
            raise LendingError("accrual_range_invalid", f"catch up 0 to {ACCRUAL_DAYS_MAX} days")
        return [self.accrue(since + timedelta(days=offset)) for offset in range(1, days + 1)]

    def _accrual_transfers(
        self, uow: LedgerWrite, label: str, groups: Sequence[AccrualGroup]
    ) -> list[NewTransfer]:
        per_funder: dict[tuple[str, str], int] = {}
        for group in groups:
            bank_part, platform_part = allocate(
                group.interest, [group.bank_share_bps, 10_000 - group.bank_share_bps]
            )
            for funder, amount in ((group.partner_bank_id, bank_part), (PLATFORM, platform_part)):
                if amount:
                    key = (group.currency, funder)
                    per_funder[key] = per_funder.get(key, 0) + amount
        transfers = []
        for (currency, funder), amount in sorted(per_funder.items()):
            self.ensure_accounts(uow, currency, [funder])
            transfers.append(
                NewTransfer(
                    chart.transfer_id("accrual", f"{label}/{currency}/{funder}"),
                    chart.account_id(LendingAccount.INTEREST_RECEIVABLE, funder, currency),
                    chart.account_id(LendingAccount.INTEREST_INCOME, funder, currency),
                    amount,
                    currency,
                    int(LendingCode.ACCRUAL),
                    flags=TransferFlags.LINKED,
                )
            )
        if transfers:
            transfers[-1].flags &= ~TransferFlags.LINKED
        return transfers
