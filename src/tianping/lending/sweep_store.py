"""SQL for the sweep term of SME loans (the `loans.sweep_bps` column of migration 0015).

Kept apart from `tianping.lending.store` so that the loan row (`LoanRow`) and its statements stay
as they are: the sweep is read and written only by the statements here. Every value is a bound
parameter; only placeholders are formatted into SQL, which is why S608 is silenced.
"""

# ruff: noqa: S608
from __future__ import annotations

from dataclasses import dataclass

from tianping.db.statements import Statements

__all__ = ["SweepStore", "SweepingLoan"]


@dataclass(frozen=True, slots=True)
class SweepingLoan:
    loan_id: str
    merchant_id: str
    currency: str
    sweep_bps: int


class SweepStore(Statements):
    """Statements over one open connection (sqlite3 or psycopg) of the given backend."""

    def set_sweep_bps(self, loan_id: str, sweep_bps: int) -> None:
        self._execute(
            f"UPDATE loans SET sweep_bps = {self.p} WHERE loan_id = {self.p}",
            (sweep_bps, loan_id),
        )

    def sweep_bps(self, loan_id: str) -> int | None:
        row = self._execute(
            f"SELECT sweep_bps FROM loans WHERE loan_id = {self.p}", (loan_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def sweeping_loans(self, after: str, business_date: str, limit: int) -> list[SweepingLoan]:
        """Active SME loans with a sweep, disbursed by `business_date`, after the loan id
        `after` in id order (a run pages through them by id over the partial index)."""
        rows = self._execute(
            "SELECT loan_id, party_id, currency, sweep_bps FROM loans "
            f"WHERE sweep_bps > 0 AND loan_id > {self.p} AND status = 'active' "
            f"AND product = 'sme' AND disbursed_on <= {self.p} ORDER BY loan_id LIMIT {self.p}",
            (after, business_date, limit),
        ).fetchall()
        return [SweepingLoan(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]
