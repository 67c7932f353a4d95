"""SQL for the lending tables (migration 0009), on both backends.

The only module that knows these tables; it runs on the connection of a ledger unit of work or
read, so a loan's rows and its ledger transfers commit together. Every value is a bound
parameter; the only text formatted into SQL is placeholders and the fixed column lists below,
which is why S608 is silenced for the module.

The daily accrual is two set-based statements over the whole book (an aggregate, then one
UPDATE), never a Python loop per loan: that is what lets a million loans accrue in seconds.
"""

# ruff: noqa: S608
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from tianping.db.statements import Statements
from tianping.lending.model import Application, ApplicationOutcome

__all__ = ["ACCRUAL_DENOMINATOR", "AccrualGroup", "LendingStore", "LoanRow", "new_loan"]

# Interest for one day on `outstanding` at `rate_bps` basis points a year (ACT/365) is
# outstanding x rate_bps / (10,000 x 365) fen; the remainder of that division is carried in
# `accrual_remainder`, so interest is exact over any number of days.
ACCRUAL_DENOMINATOR: Final = 10_000 * 365

_LOAN_COLUMNS = (
    "loan_id, application_id, party_id, product, currency, partner_bank_id, bank_share_bps, "
    "rate_bps, principal, outstanding_principal, accrued_interest, accrual_remainder, "
    "fees_due, penalty_due, disbursed_on, last_accrual_on, next_due_on, oldest_unpaid_due_on, "
    "days_past_due, tier, stage, status, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class LoanRow:
    loan_id: str
    application_id: str
    party_id: str
    product: str
    currency: str
    partner_bank_id: str
    bank_share_bps: int
    rate_bps: int
    principal: int
    outstanding_principal: int
    accrued_interest: int
    accrual_remainder: int
    fees_due: int
    penalty_due: int
    disbursed_on: str
    last_accrual_on: str
    next_due_on: str | None
    oldest_unpaid_due_on: str | None
    days_past_due: int
    tier: str
    stage: int
    status: str
    created_at: int
    updated_at: int


def new_loan(
    *,
    loan_id: str,
    application_id: str,
    party_id: str,
    currency: str,
    partner_bank_id: str,
    bank_share_bps: int,
    rate_bps: int,
    principal: int,
    disbursed_on: str,
    at: int,
    next_due_on: str | None = None,
    product: str = "instalment",
) -> LoanRow:
    """A loan as disbursement leaves it: all principal outstanding, nothing accrued or overdue,
    normal and in stage 1."""
    return LoanRow(
        loan_id=loan_id,
        application_id=application_id,
        party_id=party_id,
        product=product,
        currency=currency,
        partner_bank_id=partner_bank_id,
        bank_share_bps=bank_share_bps,
        rate_bps=rate_bps,
        principal=principal,
        outstanding_principal=principal,
        accrued_interest=0,
        accrual_remainder=0,
        fees_due=0,
        penalty_due=0,
        disbursed_on=disbursed_on,
        last_accrual_on=disbursed_on,
        next_due_on=next_due_on,
        oldest_unpaid_due_on=None,
        days_past_due=0,
        tier="normal",
        stage=1,
        status="active",
        created_at=at,
        updated_at=at,
    )


@dataclass(frozen=True, slots=True)
class AccrualGroup:
    """One day's interest of every active loan sharing a currency and a funding split."""

    currency: str
    partner_bank_id: str
    bank_share_bps: int
    loans: int
    interest: int


class LendingStore(Statements):
    """Statements over one open connection (sqlite3 or psycopg) of the given backend."""

    def __init__(self, connection: Any, backend: str) -> None:
        super().__init__(connection, backend)
        # psycopg reads a bare % as the start of a placeholder.
        self._modulo = "%" if backend == "sqlite" else "%%"

    # -- loans ------------------------------------------------------------------------------

    def loan(self, loan_id: str) -> LoanRow | None:
        row = self._execute(
            f"SELECT {_LOAN_COLUMNS} FROM loans WHERE loan_id = {self.p}", (loan_id,)
        ).fetchone()
        return None if row is None else LoanRow(*row)

    def loans_of(self, party_id: str, limit: int) -> list[LoanRow]:
        rows = self._execute(
            f"SELECT {_LOAN_COLUMNS} FROM loans WHERE party_id = {self.p} "
            f"ORDER BY created_at LIMIT {self.p}",
            (party_id, limit),
        ).fetchall()
        return [LoanRow(*row) for row in rows]

    def insert_loans(self, loans: Sequence[LoanRow]) -> None:
        rows = [
            tuple(getattr(loan, name.strip()) for name in _LOAN_COLUMNS.split(","))
            for loan in loans
        ]
        self._executemany(f"INSERT INTO loans ({_LOAN_COLUMNS}) VALUES ({self._values(24)})", rows)

    def update_balances(self, loan: LoanRow, at: int) -> None:
        self._execute(
            f"UPDATE loans SET outstanding_principal = {self.p}, accrued_interest = {self.p}, "
            f"fees_due = {self.p}, penalty_due = {self.p}, next_due_on = {self.p}, "
            f"oldest_unpaid_due_on = {self.p}, days_past_due = {self.p}, tier = {self.p}, "
            f"stage = {self.p}, status = {self.p}, updated_at = {self.p} "
            f"WHERE loan_id = {self.p}",
            (
                loan.outstanding_principal,
                loan.accrued_interest,
                loan.fees_due,
                loan.penalty_due,
                loan.next_due_on,
                loan.oldest_unpaid_due_on,
                loan.days_past_due,
                loan.tier,
                loan.stage,
                loan.status,
                at,
                loan.loan_id,
            ),
        )

    def insert_event(
        self, loan_id: str, event_id: str, kind: str, at: int, amounts: dict[str, Any]
    ) -> None:
        self._execute(
            "INSERT INTO loan_events (loan_id, event_id, kind, at, amounts) "
            f"VALUES ({self._values(5)})",
            (loan_id, event_id, kind, at, json.dumps(amounts, sort_keys=True)),
        )

    def event(self, loan_id: str, event_id: str) -> dict[str, Any] | None:
        row = self._execute(
            f"SELECT amounts FROM loan_events WHERE loan_id = {self.p} AND event_id = {self.p}",
            (loan_id, event_id),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    # -- applications -----------------------------------------------------------------------

    def application(
        self, application_id: str
    ) -> tuple[ApplicationOutcome, bytes, int, int, str, str | None] | None:
        """(outcome, digest, amount, term months, currency, partner bank) of an application."""

        row = self._execute(
            "SELECT application_id, party_id, outcome, score, pd_ppm, reasons, model_version, "
            "decision_id, rate_bps, apr_bps, sources, rule_ids, digest, amount, term_months, "
            f"currency, partner_bank_id FROM loan_applications WHERE application_id = {self.p}",
            (application_id,),
        ).fetchone()
        if row is None:
            return None
        declined = row[2] != "approved"
        outcome = ApplicationOutcome(
            application_id=row[0],
            party_id=row[1],
            outcome=row[2],
            score=row[3],
            pd_ppm=row[4],
            reasons=tuple(json.loads(row[5])),
            model_version=row[6],
            rule_ids=tuple(json.loads(row[11])),
            decision_id=None if row[7] is None else int.from_bytes(bytes(row[7]), "big"),
            rate_bps=row[8],
            apr_bps=row[9],
            sources=tuple(json.loads(row[10])),
            review_path=(f"/v1/identity/parties/{row[1]}/review-requests" if declined else None),
        )
        return outcome, bytes(row[12]), int(row[13]), int(row[14]), row[15], row[16]

    def insert_application(
        self, outcome: ApplicationOutcome, application: Application, digest: bytes, at: int
    ) -> None:
        self._execute(
            "INSERT INTO loan_applications (application_id, party_id, product, amount, "
            "currency, term_months, partner_bank_id, outcome, score, pd_ppm, reasons, "
            "model_version, decision_id, rate_bps, apr_bps, sources, rule_ids, digest, "
            f"decided_at) VALUES ({self._values(19)})",
            (
                outcome.application_id,
                outcome.party_id,
                application.product,
                application.amount,
                application.currency,
                application.term_months,
                application.partner_bank_id,
                outcome.outcome,
                outcome.score,
                outcome.pd_ppm,
                json.dumps(list(outcome.reasons), sort_keys=True, ensure_ascii=False),
                outcome.model_version,
                None if outcome.decision_id is None else outcome.decision_id.to_bytes(16, "big"),
                outcome.rate_bps,
                outcome.apr_bps,
                json.dumps(list(outcome.sources)),
                json.dumps(list(outcome.rule_ids)),
                digest,
                at,
            ),
        )

    def application_product(self, application_id: str) -> str:
        row = self._execute(
            f"SELECT product FROM loan_applications WHERE application_id = {self.p}",
            (application_id,),
        ).fetchone()
        return "instalment" if row is None else str(row[0])

    def outstanding_of(self, party_id: str, currency: str) -> int:
        row = self._execute(
            "SELECT COALESCE(SUM(outstanding_principal), 0) FROM loans "
            f"WHERE party_id = {self.p} AND currency = {self.p} AND status = 'active'",
            (party_id, currency),
        ).fetchone()
        return int(row[0])

    def loan_for_application(self, application_id: str) -> str | None:
        row = self._execute(
            f"SELECT loan_id FROM loans WHERE application_id = {self.p}", (application_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    # -- instalments and classification -----------------------------------------------------

    def insert_instalments(self, loan_id: str, rows: Sequence[tuple[int, str, int, int]]) -> None:
        """(number, due date, principal due, interest due) of each instalment of a loan."""
        sql = (
            "INSERT INTO loan_instalments (loan_id, number, due_on, principal_due, interest_due) "
            f"VALUES ({self._values(5)})"
        )
        self._executemany(sql, [(loan_id, *row) for row in rows])

    def record_instalment_payments(self, loan_id: str, principal: int, interest: int) -> None:
        """Credit paid principal and interest to the loan's instalments, oldest first."""
        rows = self._execute(
            "SELECT number, principal_due - principal_paid, interest_due - interest_paid "
            f"FROM loan_instalments WHERE loan_id = {self.p} ORDER BY number",
            (loan_id,),
        ).fetchall()
        for number, principal_open, interest_open in rows:
            pay_principal = min(principal, int(principal_open))
            pay_interest = min(interest, int(interest_open))
            if pay_principal or pay_interest:
                self._execute(
                    f"UPDATE loan_instalments SET principal_paid = principal_paid + {self.p}, "
                    f"interest_paid = interest_paid + {self.p} "
                    f"WHERE loan_id = {self.p} AND number = {self.p}",
                    (pay_principal, pay_interest, loan_id, number),
                )
            principal -= pay_principal
            interest -= pay_interest
            if not principal and not interest:
                return

    def classify_book(
        self,
        day: str,
        special_mention: int,
        substandard: int,
        doubtful: int,
        loss: int,
        sicr: int,
        impaired: int,
    ) -> int:
        """Set-based: each active loan's oldest unpaid due date on `day`, its days past due, its
        five-tier class (thresholds in days, special mention from the first day) and its
        expected-loss stage. Three statements for the whole book."""
        self._execute(
            "UPDATE loans SET oldest_unpaid_due_on = ("
            "SELECT MIN(i.due_on) FROM loan_instalments i WHERE i.loan_id = loans.loan_id "
            f"AND i.due_on <= {self.p} AND "
            "i.principal_paid + i.interest_paid < i.principal_due + i.interest_due"
            ") WHERE status = 'active'",
            (day,),
        )
        # Whole days between two ISO dates: the backends spell date arithmetic differently.
        days = (
            f"CAST(julianday({self.p}) - julianday(oldest_unpaid_due_on) AS INTEGER)"
            if self.p == "?"
            else f"(CAST({self.p} AS DATE) - CAST(oldest_unpaid_due_on AS DATE))"
        )
        self._execute(
            "UPDATE loans SET days_past_due = CASE WHEN oldest_unpaid_due_on IS NULL THEN 0 "
            f"ELSE {days} END WHERE status = 'active'",
            (day,),
        )
        # Stage 2 from the first day past due: special mention is a significant increase in
        # credit risk (as `provisioning.stage_for` decides), whatever the 30-day backstop says.
        cursor = self._execute(
            "UPDATE loans SET "
            f"tier = CASE WHEN days_past_due >= {self.p} THEN 'loss' "
            f"WHEN days_past_due >= {self.p} THEN 'doubtful' "
            f"WHEN days_past_due >= {self.p} THEN 'substandard' "
            f"WHEN days_past_due >= {self.p} THEN 'special_mention' ELSE 'normal' END, "
            f"stage = CASE WHEN days_past_due > {self.p} THEN 3 "
            f"WHEN days_past_due > {self.p} OR days_past_due >= {self.p} THEN 2 ELSE 1 END "
            "WHERE status = 'active'",
            (loss, doubtful, substandard, special_mention, impaired, sicr, special_mention),
        )
        return int(cursor.rowcount)

    def book_by_class(self, currency: str) -> list[tuple[str, int, int, int]]:
        """(tier, stage, loans, outstanding principal + accrued interest) of the active book."""
        rows = self._execute(
            "SELECT tier, stage, COUNT(*), "
            "COALESCE(SUM(outstanding_principal + accrued_interest), 0) FROM loans "
            f"WHERE status = 'active' AND currency = {self.p} GROUP BY tier, stage "
            "ORDER BY stage, tier",
            (currency,),
        ).fetchall()
        return [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]

    # -- the daily accrual, set-based -------------------------------------------------------

    def accrual_groups(self, day: str) -> list[AccrualGroup]:
        """What accruing `day` adds, per currency and funding split, before it is applied."""
        rows = self._execute(
            "SELECT currency, partner_bank_id, bank_share_bps, COUNT(*), "
            f"COALESCE(SUM((outstanding_principal * rate_bps + accrual_remainder) "
            f"/ {ACCRUAL_DENOMINATOR}), 0) "
            f"FROM loans WHERE status = 'active' AND last_accrual_on < {self.p} "
            "GROUP BY currency, partner_bank_id, bank_share_bps "
            "ORDER BY currency, partner_bank_id, bank_share_bps",
            (day,),
        ).fetchall()
        return [AccrualGroup(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]

    def apply_accrual(self, day: str) -> int:
        """Accrue one day on every active loan not yet accrued for `day`; returns how many."""
        cursor = self._execute(
            "UPDATE loans SET "
            "accrued_interest = accrued_interest + "
            f"(outstanding_principal * rate_bps + accrual_remainder) / {ACCRUAL_DENOMINATOR}, "
            "accrual_remainder = "
            f"(outstanding_principal * rate_bps + accrual_remainder) {self._modulo} "
            f"{ACCRUAL_DENOMINATOR}, "
            f"last_accrual_on = {self.p} "
            f"WHERE status = 'active' AND last_accrual_on < {self.p}",
            (day, day),
        )
        return int(cursor.rowcount)

    def accrual_run(self, day: str) -> tuple[int, int] | None:
        row = self._execute(
            f"SELECT loans, interest FROM lending_accrual_runs WHERE run_date = {self.p}", (day,)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def insert_accrual_run(self, day: str, loans: int, interest: int, at: int) -> None:
        self._execute(
            "INSERT INTO lending_accrual_runs (run_date, loans, interest, at) "
            f"VALUES ({self._values(4)})",
            (day, loans, interest, at),
        )

    def book_totals(self, currency: str) -> tuple[int, int, int]:
        """(active loans, outstanding principal, accrued interest) of the book in a currency."""
        row = self._execute(
            "SELECT COUNT(*), COALESCE(SUM(outstanding_principal), 0), "
            "COALESCE(SUM(accrued_interest), 0) FROM loans "
            f"WHERE status = 'active' AND currency = {self.p}",
            (currency,),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])
