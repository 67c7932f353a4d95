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
from tianping.lending.chart import PLATFORM
from tianping.lending.colending import BASIS_POINTS
from tianping.lending.loan_book import ChargeOffGroup
from tianping.lending.model import Application, ApplicationOutcome

__all__ = [
    "ACCRUAL_DENOMINATOR",
    "AccrualGroup",
    "LendingStore",
    "LoanRow",
    "new_loan",
    "sum_when",
]

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


def sum_when(alias: str, kind: str, value: str) -> str:
    """SQL summing `value` over the rows of table `alias` of one kind (a fixed identifier, never
    input), zero over none; cast because PostgreSQL sums BIGINTs as NUMERIC."""
    summed = f"SUM(CASE WHEN {alias}.kind = '{kind}' THEN {value} ELSE 0 END)"
    return f"CAST(COALESCE({summed}, 0) AS BIGINT)"


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
    """One day's interest of every active loan sharing a currency and a funding split, and the
    penalty surcharge on the overdue principal among them; with the bank's part of each, the
    sum over the loans of the change in the bank's position (`colending.bank_position`) in the
    loan's accrued interest and penalty interest. The platform's part is the rest."""

    currency: str
    partner_bank_id: str
    bank_share_bps: int
    loans: int
    interest: int
    penalty: int = 0
    bank_interest: int = 0
    bank_penalty: int = 0


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
            "currency, partner_bank_id, repayment_method FROM loan_applications "
            f"WHERE application_id = {self.p}",
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
            repayment_method=row[17],
        )
        return outcome, bytes(row[12]), int(row[13]), int(row[14]), row[15], row[16]

    def insert_application(
        self, outcome: ApplicationOutcome, application: Application, digest: bytes, at: int
    ) -> None:
        self._execute(
            "INSERT INTO loan_applications (application_id, party_id, product, amount, "
            "currency, term_months, partner_bank_id, outcome, score, pd_ppm, reasons, "
            "model_version, decision_id, rate_bps, apr_bps, sources, rule_ids, digest, "
            f"decided_at, repayment_method) VALUES ({self._values(20)})",
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
                application.repayment_method,
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

    def instalments(self, loan_id: str) -> list[dict[str, Any]]:
        """The loan's schedule as stored at disbursement, with what has been paid of each."""
        rows = self._execute(
            "SELECT number, due_on, principal_due, interest_due, principal_paid, interest_paid "
            f"FROM loan_instalments WHERE loan_id = {self.p} ORDER BY number",
            (loan_id,),
        ).fetchall()
        return [
            {
                "number": int(row[0]),
                "due_on": row[1],
                "principal": int(row[2]),
                "interest": int(row[3]),
                "principal_paid": int(row[4]),
                "interest_paid": int(row[5]),
            }
            for row in rows
        ]

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
        self.refresh_days_past_due(day)
        return self.apply_classes(special_mention, substandard, doubtful, loss, sicr, impaired)

    def refresh_days_past_due(self, day: str) -> None:
        """Each active loan's oldest unpaid due date on `day` and its days past due (two
        statements for the whole book)."""
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

    def _tier_case(self) -> str:
        return (
            f"CASE WHEN days_past_due >= {self.p} THEN 'loss' "
            f"WHEN days_past_due >= {self.p} THEN 'doubtful' "
            f"WHEN days_past_due >= {self.p} THEN 'substandard' "
            f"WHEN days_past_due >= {self.p} THEN 'special_mention' ELSE 'normal' END"
        )

    def apply_classes(
        self,
        special_mention: int,
        substandard: int,
        doubtful: int,
        loss: int,
        sicr: int,
        impaired: int,
    ) -> int:
        """Each active loan's five-tier class and stage from its days past due (one statement);
        returns how many loans."""
        # Stage 2 from the first day past due: special mention is a significant increase in
        # credit risk (as `provisioning.stage_for` decides), whatever the 30-day backstop says.
        cursor = self._execute(
            f"UPDATE loans SET tier = {self._tier_case()}, "
            f"stage = CASE WHEN days_past_due > {self.p} THEN 3 "
            f"WHEN days_past_due > {self.p} OR days_past_due >= {self.p} THEN 2 ELSE 1 END "
            "WHERE status = 'active'",
            (loss, doubtful, substandard, special_mention, impaired, sicr, special_mention),
        )
        return int(cursor.rowcount)

    def worsening(
        self, special_mention: int, substandard: int, doubtful: int, loss: int
    ) -> list[tuple[str, str, str, str, int]]:
        """(loan, borrower, class now, class its days past due require, days past due) of every
        active loan whose class is about to worsen: read after `refresh_days_past_due` and
        before `apply_classes`, one statement over the book."""
        ranks = " ".join(
            f"WHEN '{tier}' THEN {rank}"
            for rank, tier in enumerate(
                ("normal", "special_mention", "substandard", "doubtful", "loss"), start=1
            )
        )
        rows = self._execute(
            f"SELECT loan_id, party_id, tier, new_tier, days_past_due FROM ("
            f"SELECT loan_id, party_id, tier, {self._tier_case()} AS new_tier, days_past_due "
            "FROM loans WHERE status = 'active' AND days_past_due > 0) changed "
            f"WHERE CASE new_tier {ranks} END > CASE tier {ranks} END ORDER BY loan_id",
            (loss, doubtful, substandard, special_mention),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

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

    def _penalty(
        self, surcharge: tuple[str, int, int] | None, bank_part: bool = False
    ) -> tuple[str, tuple[Any, ...]]:
        """The day's penalty surcharge of one loan, as SQL and its parameters: zero unless the
        loan's oldest unpaid instalment fell due before the covered day (`next_due_on` is kept
        at that instalment's date), so a current loan costs one comparison and no instalment
        lookup. With `bank_part`, the growth of the bank's position in the loan's penalty
        interest instead, behind the same comparison. `surcharge` is (covered day, numerator,
        denominator), or None for none."""
        if surcharge is None:
            return "0", ()
        covered, numerator, denominator = surcharge
        day_penalty = f"({self._overdue_principal()} * rate_bps * {self.p}) / {self.p}"
        value = self._bank_gain("penalty_due", day_penalty) if bank_part else day_penalty
        return (
            f"CASE WHEN next_due_on < {self.p} THEN {value} ELSE 0 END",
            (covered, covered, numerator, ACCRUAL_DENOMINATOR * denominator),
        )

    @staticmethod
    def _bank_gain(balance: str, added: str) -> str:
        """Per loan: how much the bank's position in `balance` grows when `added` is accrued to
        it, f(balance + added) - f(balance) with f the floor of the bank's share
        (`colending.bank_position`); integer division truncates alike on both backends, which
        for these non-negative values is the floor. Zero without computing for a loan the
        platform funds alone."""
        return (
            f"CASE WHEN bank_share_bps = 0 THEN 0 ELSE "
            f"(({balance} + {added}) * bank_share_bps) / {BASIS_POINTS} "
            f"- ({balance} * bank_share_bps) / {BASIS_POINTS} END"
        )

    def accrual_groups(
        self, day: str, surcharge: tuple[str, int, int] | None = None
    ) -> list[AccrualGroup]:
        """What accruing `day` adds (interest, and the penalty surcharge on overdue principal),
        per currency and funding split, before it is applied; with the bank's part of each,
        the sum of the changes of its position in each loan, in the same scan."""
        penalty, parameters = self._penalty(surcharge)
        bank_penalty, bank_parameters = self._penalty(surcharge, bank_part=True)
        interest = f"(outstanding_principal * rate_bps + accrual_remainder) / {ACCRUAL_DENOMINATOR}"
        rows = self._execute(
            "SELECT currency, partner_bank_id, bank_share_bps, COUNT(*), "
            f"CAST(COALESCE(SUM({interest}), 0) AS BIGINT), "
            f"CAST(COALESCE(SUM({penalty}), 0) AS BIGINT), "
            f"CAST(COALESCE(SUM({self._bank_gain('accrued_interest', interest)}), 0) AS BIGINT), "
            f"CAST(COALESCE(SUM({bank_penalty}), 0) AS BIGINT) "
            f"FROM loans WHERE status = 'active' AND last_accrual_on < {self.p} "
            "GROUP BY currency, partner_bank_id, bank_share_bps "
            "ORDER BY currency, partner_bank_id, bank_share_bps",
            (*parameters, *bank_parameters, day),
        ).fetchall()
        return [
            AccrualGroup(
                r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7])
            )
            for r in rows
        ]

    def apply_accrual(self, day: str, surcharge: tuple[str, int, int] | None = None) -> int:
        """Accrue one day (interest, and the penalty surcharge on overdue principal) on every
        active loan not yet accrued for `day`, in one UPDATE; returns how many loans."""
        penalty, parameters = self._penalty(surcharge)
        cursor = self._execute(
            "UPDATE loans SET "
            "accrued_interest = accrued_interest + "
            f"(outstanding_principal * rate_bps + accrual_remainder) / {ACCRUAL_DENOMINATOR}, "
            "accrual_remainder = "
            f"(outstanding_principal * rate_bps + accrual_remainder) {self._modulo} "
            f"{ACCRUAL_DENOMINATOR}, "
            f"penalty_due = penalty_due + {penalty}, "
            f"last_accrual_on = {self.p} "
            f"WHERE status = 'active' AND last_accrual_on < {self.p}",
            (*parameters, day, day),
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

    # -- penalty interest --------------------------------------------------------------------

    def _overdue_principal(self) -> str:
        """Per loan: the principal of its instalments due before the covered day and not yet
        repaid (one index range per loan). Cast because PostgreSQL sums BIGINTs as NUMERIC."""
        return (
            "CAST(COALESCE((SELECT SUM(i.principal_due - i.principal_paid) "
            "FROM loan_instalments i WHERE i.loan_id = loans.loan_id "
            f"AND i.due_on < {self.p} AND i.principal_paid < i.principal_due), 0) AS BIGINT)"
        )

    def unpaid_principal_by_due(self, loan_id: str) -> list[tuple[str, int]]:
        """(due date, principal not yet repaid) of a loan's instalments, oldest first."""
        rows = self._execute(
            "SELECT due_on, principal_due - principal_paid FROM loan_instalments "
            f"WHERE loan_id = {self.p} AND principal_paid < principal_due ORDER BY number",
            (loan_id,),
        ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    def next_unpaid_due(self, loan_id: str) -> str | None:
        """The due date of a loan's oldest instalment not yet fully paid."""
        row = self._execute(
            f"SELECT MIN(due_on) FROM loan_instalments WHERE loan_id = {self.p} "
            "AND principal_paid + interest_paid < principal_due + interest_due",
            (loan_id,),
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def accrue_loan(
        self, loan_id: str, interest: int, remainder: int, penalty: int, through: str
    ) -> None:
        """One loan's catch-up accrual up to `through` (a payoff between batches)."""
        self._execute(
            f"UPDATE loans SET accrued_interest = accrued_interest + {self.p}, "
            f"accrual_remainder = {self.p}, penalty_due = penalty_due + {self.p}, "
            f"last_accrual_on = {self.p} WHERE loan_id = {self.p}",
            (interest, remainder, penalty, through, loan_id),
        )

    # -- events and notices -----------------------------------------------------------------

    def insert_notices(self, rows: Sequence[tuple[str, str, int, dict[str, Any]]]) -> None:
        """(loan, event id, time, notice) rows as `notice` events; one already recorded under
        the same id is kept as it is (a classification run again on the same day)."""
        self._executemany(
            "INSERT INTO loan_events (loan_id, event_id, kind, at, amounts) "
            f"VALUES ({self._values(5)}) ON CONFLICT DO NOTHING",
            [
                (loan_id, event_id, "notice", at, json.dumps(notice, sort_keys=True))
                for loan_id, event_id, at, notice in rows
            ],
        )

    def notices_of(self, party_id: str, limit: int) -> list[tuple[str, str, int, dict[str, Any]]]:
        """(loan, event id, time, notice) of a borrower's notices, oldest first."""
        rows = self._execute(
            "SELECT e.loan_id, e.event_id, e.at, e.amounts FROM loan_events e "
            "JOIN loans l ON l.loan_id = e.loan_id "
            f"WHERE l.party_id = {self.p} AND e.kind = 'notice' "
            f"ORDER BY e.at, e.loan_id, e.event_id LIMIT {self.p}",
            (party_id, limit),
        ).fetchall()
        return [(r[0], r[1], int(r[2]), dict(json.loads(r[3]))) for r in rows]

    # -- provisioning and reconciliation ----------------------------------------------------

    def provision_groups(self, currency: str) -> list[tuple[int, str, int | None, int, int, int]]:
        """(stage, tier, decision PD in ppm, remaining instalments, loans, exposure) of the
        active book, grouped: one statement; the remaining instalments are counted only for
        loans in stages 1 and 2, whose PD horizon depends on them. Exposure is everything
        owed: principal, interest, penalty interest and fees."""
        rows = self._execute(
            "SELECT l.stage, l.tier, a.pd_ppm, "
            "CASE WHEN l.stage = 3 THEN 0 ELSE (SELECT COUNT(*) FROM loan_instalments i "
            "WHERE i.loan_id = l.loan_id AND i.principal_paid < i.principal_due) END AS remaining, "
            "COUNT(*), CAST(COALESCE(SUM(l.outstanding_principal + l.accrued_interest "
            "+ l.penalty_due + l.fees_due), 0) AS BIGINT) "
            "FROM loans l LEFT JOIN loan_applications a ON a.application_id = l.application_id "
            f"WHERE l.status = 'active' AND l.currency = {self.p} "
            "GROUP BY l.stage, l.tier, a.pd_ppm, remaining "
            "ORDER BY l.stage, l.tier, a.pd_ppm, remaining",
            (currency,),
        ).fetchall()
        return [
            (int(r[0]), r[1], None if r[2] is None else int(r[2]), int(r[3]), int(r[4]), int(r[5]))
            for r in rows
        ]

    def funders(self, currency: str) -> list[str]:
        """Every funder of a loan in `currency`, whatever the loan's status."""
        rows = self._execute(
            f"SELECT DISTINCT partner_bank_id FROM loans WHERE currency = {self.p} "
            "ORDER BY partner_bank_id",
            (currency,),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def owed_totals(self, currency: str) -> tuple[int, int]:
        """(principal, interest + penalty interest) the active book owes in `currency`."""
        row = self._execute(
            "SELECT CAST(COALESCE(SUM(outstanding_principal), 0) AS BIGINT), "
            "CAST(COALESCE(SUM(accrued_interest + penalty_due), 0) AS BIGINT) FROM loans "
            f"WHERE status = 'active' AND currency = {self.p}",
            (currency,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def positions_by_funder(self, currency: str) -> list[tuple[str, int, int, int, int]]:
        """(funder, principal, the bank's position in it, interest + penalty interest, the
        bank's position in those) of the active book in `currency`, per funding bank (the
        platform's own loans under the platform's id): the sub-ledger side of each funder's
        receivables. The bank's position is summed per balance of each loan, as the flows book
        it (`colending.bank_position`), so the comparison with the ledger is exact."""
        rows = self._execute(
            "SELECT partner_bank_id, CAST(COALESCE(SUM(outstanding_principal), 0) AS BIGINT), "
            f"CAST(COALESCE(SUM((outstanding_principal * bank_share_bps) / {BASIS_POINTS}), 0) "
            "AS BIGINT), CAST(COALESCE(SUM(accrued_interest + penalty_due), 0) AS BIGINT), "
            f"CAST(COALESCE(SUM((accrued_interest * bank_share_bps) / {BASIS_POINTS} "
            f"+ (penalty_due * bank_share_bps) / {BASIS_POINTS}), 0) AS BIGINT) FROM loans "
            f"WHERE status = 'active' AND currency = {self.p} GROUP BY partner_bank_id "
            "ORDER BY partner_bank_id",
            (currency,),
        ).fetchall()
        return [(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]

    # -- charge-offs ---------------------------------------------------------------------

    def charge_off_groups(
        self, currency: str, since: str | None = None, until: str | None = None
    ) -> list[ChargeOffGroup]:
        """The write-offs and recoveries of the loans in `currency` per funding bank, from their
        events (one statement): gross amounts, the platform's part of each (from the event's
        split by funder) and how many write-offs; with `since` / `until`, only those dated in
        that window (the event's `on`). Only a written-off loan has either, and it stays
        written off, so the statement reads those loans' events alone."""
        amounts = "e.amounts"
        total, total_path = self._json_field(amounts, ("total",), "BIGINT")
        principal, principal_path = self._json_field(
            amounts, ("by_funder", PLATFORM, "principal"), "BIGINT"
        )
        interest, interest_path = self._json_field(
            amounts, ("by_funder", PLATFORM, "interest"), "BIGINT"
        )
        recovered, recovered_path = self._json_field(amounts, ("recovered",), "BIGINT")
        own, own_path = self._json_field(amounts, ("by_funder", PLATFORM), "BIGINT")
        on, on_path = self._json_field(amounts, ("on",), "TEXT")
        window, window_parameters = self._date_window(on, since, until, (on_path,))
        rows = self._execute(
            "SELECT l.partner_bank_id, "
            f"{sum_when('e', 'write_off', total)}, "
            f"{sum_when('e', 'write_off', f'COALESCE({principal}, 0) + COALESCE({interest}, 0)')}, "
            f"{sum_when('e', 'recovery', recovered)}, "
            f"{sum_when('e', 'recovery', f'COALESCE({own}, 0)')}, "
            f"{sum_when('e', 'write_off', '1')} "
            "FROM loans l JOIN loan_events e ON e.loan_id = l.loan_id "
            f"WHERE l.status = 'written_off' AND l.currency = {self.p} "
            f"AND e.kind IN ('write_off', 'recovery'){window} "
            "GROUP BY l.partner_bank_id ORDER BY l.partner_bank_id",
            (
                total_path,
                principal_path,
                interest_path,
                recovered_path,
                own_path,
                currency,
                *window_parameters,
            ),
        ).fetchall()
        return [ChargeOffGroup(str(r[0]), *(int(value) for value in r[1:])) for r in rows]

    def application_decided_at(self, application_id: str) -> int | None:
        row = self._execute(
            f"SELECT decided_at FROM loan_applications WHERE application_id = {self.p}",
            (application_id,),
        ).fetchone()
        return None if row is None else int(row[0])
