"""SQL for merchant payouts and takings releases (migration 0015), on both backends.

The merchants' registered bank accounts, the parts of a day's takings a sweep released for a loan
repayment, and the sums over the payments table that settlement and the free balance need with
those releases taken into account. Like `tianping.payments.store`, every value is a bound
parameter and the only text formatted into SQL is placeholders, which is why S608 is silenced.
"""

# ruff: noqa: S608
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tianping.db.statements import Statements

__all__ = ["MerchantBankAccount", "PayoutStore", "TakingsRelease"]

_RELEASE_COLUMNS = (
    "release_id, merchant_id, business_date, currency, amount, state, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class MerchantBankAccount:
    """A merchant's bank account for payouts: a keyed fingerprint and the last four digits."""

    merchant_id: str
    fingerprint: str
    last_four: str
    bank_id: str
    registered_at: int


@dataclass(frozen=True, slots=True)
class TakingsRelease:
    """A part of a merchant's takings of one business date released from that day's settlement
    for a loan repayment (`released`), or given back to it (`restored`)."""

    release_id: str
    merchant_id: str
    business_date: str
    currency: str
    amount: int
    state: str
    created_at: int
    updated_at: int


class PayoutStore(Statements):
    """Statements over one open connection (sqlite3 or psycopg) of the given backend."""

    # -- bank accounts ------------------------------------------------------------------------

    def bank_account(self, merchant_id: str) -> MerchantBankAccount | None:
        row = self._execute(
            "SELECT merchant_id, fingerprint, last_four, bank_id, registered_at "
            f"FROM merchant_bank_accounts WHERE merchant_id = {self.p}",
            (merchant_id,),
        ).fetchone()
        return None if row is None else MerchantBankAccount(*row)

    def merchant_of_bank_account(self, fingerprint: str) -> str | None:
        row = self._execute(
            f"SELECT merchant_id FROM merchant_bank_accounts WHERE fingerprint = {self.p}",
            (fingerprint,),
        ).fetchone()
        return None if row is None else str(row[0])

    def insert_bank_account(self, account: MerchantBankAccount) -> None:
        self._execute(
            "INSERT INTO merchant_bank_accounts (merchant_id, fingerprint, last_four, bank_id, "
            f"registered_at) VALUES ({self._values(5)})",
            (
                account.merchant_id,
                account.fingerprint,
                account.last_four,
                account.bank_id,
                account.registered_at,
            ),
        )

    # -- takings released by sweeps -------------------------------------------------------------

    def release(self, release_id: str) -> TakingsRelease | None:
        row = self._execute(
            f"SELECT {_RELEASE_COLUMNS} FROM merchant_takings_releases WHERE release_id = {self.p}",
            (release_id,),
        ).fetchone()
        return None if row is None else TakingsRelease(*row)

    def insert_release(self, release: TakingsRelease) -> None:
        self._execute(
            f"INSERT INTO merchant_takings_releases ({_RELEASE_COLUMNS}) "
            f"VALUES ({self._values(8)})",
            (
                release.release_id,
                release.merchant_id,
                release.business_date,
                release.currency,
                release.amount,
                release.state,
                release.created_at,
                release.updated_at,
            ),
        )

    def set_release_state(self, release_id: str, state: str, at: int) -> None:
        self._execute(
            f"UPDATE merchant_takings_releases SET state = {self.p}, updated_at = {self.p} "
            f"WHERE release_id = {self.p}",
            (state, at, release_id),
        )

    def released(self, merchant_id: str, currency: str, business_date: str) -> int:
        """What sweeps hold released of the merchant's takings of one business date."""
        row = self._execute(
            "SELECT COALESCE(SUM(amount), 0) FROM merchant_takings_releases "
            f"WHERE merchant_id = {self.p} AND currency = {self.p} AND business_date = {self.p} "
            "AND state = 'released'",
            (merchant_id, currency, business_date),
        ).fetchone()
        return int(row[0])

    # -- takings, with the releases taken into account -------------------------------------------

    def day_takings(
        self, merchant_ids: Sequence[str], currency: str, business_date: str
    ) -> dict[str, int]:
        """Each merchant's takings of one business date that no settlement has paid out yet
        (completed payments less their refunds); merchants without any are left out. One
        statement over the payee index for the whole list."""
        if not merchant_ids:
            return {}
        rows = self._execute(
            "SELECT payee_id, COALESCE(SUM(amount - refunded), 0) FROM payments "
            f"WHERE payee_id IN ({self._values(len(merchant_ids))}) AND business_date = {self.p} "
            f"AND currency = {self.p} AND kind = 'merchant' AND status = 'completed' "
            "AND settlement_id IS NULL GROUP BY payee_id",
            (*merchant_ids, business_date, currency),
        ).fetchall()
        return {str(row[0]): int(row[1]) for row in rows if int(row[1]) > 0}

    def settlement_due(self, merchant_id: str, currency: str) -> int:
        """What the merchant's coming settlements will take from its payable: per unsettled
        business date, the takings less what sweeps released of them (never below zero, which
        is what `settle_merchants` debits)."""
        row = self._execute(
            "SELECT COALESCE(SUM(CASE WHEN t.kept > COALESCE(r.released, 0) "
            "THEN t.kept - COALESCE(r.released, 0) ELSE 0 END), 0) FROM "
            "(SELECT business_date, SUM(amount - refunded) AS kept FROM payments "
            f"WHERE payee_id = {self.p} AND kind = 'merchant' AND currency = {self.p} "
            "AND status = 'completed' AND settlement_id IS NULL GROUP BY business_date) t "
            "LEFT JOIN (SELECT business_date, SUM(amount) AS released "
            "FROM merchant_takings_releases "
            f"WHERE merchant_id = {self.p} AND currency = {self.p} AND state = 'released' "
            "GROUP BY business_date) r ON r.business_date = t.business_date",
            (merchant_id, currency, merchant_id, currency),
        ).fetchone()
        return int(row[0])
