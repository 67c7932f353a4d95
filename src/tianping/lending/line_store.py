"""SQL for the credit-line tables (migrations 0012, 0013, 0017), on both backends.

The only module that knows these tables; like `LendingStore` it runs on the connection of a
ledger unit of work or read, so a line's rows and its ledger transfers commit together. Every
value is a bound parameter; the only text formatted into SQL is placeholders and the fixed
column lists below, which is why S608 is silenced for the module.
"""

# ruff: noqa: S608
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any, Final

from tianping.db.statements import Statements
from tianping.lending.chart import PLATFORM
from tianping.lending.loan_book import ChargeOffGroup
from tianping.lending.store import sum_when

__all__ = [
    "BillStanding",
    "LineRow",
    "LineStore",
    "LineTransaction",
    "PlanRow",
    "StatementRow",
    "TransactionEntry",
]

_LINE_COLUMNS: Final = (
    "line_id, application_id, party_id, currency, partner_bank_id, bank_share_bps, "
    "credit_limit, rate_bps, statement_day, due_day_offset, min_payment_bps, min_payment_floor, "
    "status, fees, interest, principal, instalment_principal, bank_fees, bank_interest, "
    "bank_principal, bank_instalment_principal, opened_on, next_statement_on, created_at, "
    "updated_at, days_past_due, tier, stage, frozen_reason"
)
_STATEMENT_COLUMNS: Final = (
    "line_id, statement_date, cycle_start, due_date, previous_balance, purchases, payments, "
    "interest_charged, fees_charged, new_balance, minimum_payment, grace_kept, over_limit, "
    "issued_at"
)
_PLAN_COLUMNS: Final = (
    "plan_id, line_id, statement_date, amount, months, total_fee, apr_bps, decision_id, "
    "instalments, instalments_billed, digest, created_at"
)


@dataclass(frozen=True, slots=True)
class LineRow:
    """A credit line and what is owed on it. The partner bank's part of each bucket is kept;
    the platform's is the rest."""

    line_id: str
    application_id: str
    party_id: str
    currency: str
    partner_bank_id: str
    bank_share_bps: int
    credit_limit: int
    rate_bps: int
    statement_day: int
    due_day_offset: int
    min_payment_bps: int
    min_payment_floor: int
    status: str
    fees: int
    interest: int
    principal: int
    instalment_principal: int
    bank_fees: int
    bank_interest: int
    bank_principal: int
    bank_instalment_principal: int
    opened_on: str
    next_statement_on: str
    created_at: int
    updated_at: int
    # Kept by the classification run (migration 0014): days past due from the oldest unpaid
    # minimum payment, the five-tier class and the expected-loss stage.
    days_past_due: int = 0
    tier: str = "normal"
    stage: int = 1
    # Why a frozen line is frozen: `operator`, `consent_withdrawn` or `past_due`.
    frozen_reason: str | None = None

    @property
    def charges(self) -> int:
        """Interest and fees owed (all of them billed: charges arise only on statements)."""
        return self.fees + self.interest

    @property
    def owed(self) -> int:
        """Everything owed on the line, instalments not yet billed included."""
        return self.fees + self.interest + self.principal + self.instalment_principal

    @property
    def available(self) -> int:
        """What may still be drawn: the limit less everything owed (never below zero)."""
        return max(0, self.credit_limit - self.owed)


@dataclass(frozen=True, slots=True)
class LineTransaction:
    kind: str
    amount: int
    on_date: str
    reference: str | None
    details: dict[str, Any]
    digest: bytes


@dataclass(frozen=True, slots=True)
class StatementRow:
    line_id: str
    statement_date: str
    cycle_start: str
    due_date: str
    previous_balance: int
    purchases: int
    payments: int
    interest_charged: int
    fees_charged: int
    new_balance: int
    minimum_payment: int
    grace_kept: bool
    over_limit: bool
    issued_at: int


@dataclass(frozen=True, slots=True)
class PlanRow:
    plan_id: str
    line_id: str
    statement_date: str
    amount: int
    months: int
    total_fee: int
    apr_bps: int
    decision_id: int | None
    instalments: tuple[dict[str, Any], ...]
    instalments_billed: int
    digest: bytes
    created_at: int


@dataclass(frozen=True, slots=True)
class TransactionEntry:
    """One line transaction as its holder reads it, page by page."""

    txn_id: str
    kind: str
    amount: int
    on_date: str
    reference: str | None
    details: dict[str, Any]
    at: int


@dataclass(frozen=True, slots=True)
class BillStanding:
    """A statement whose due date has passed, with what was credited to the line after it."""

    line_id: str
    statement_date: str
    due_date: str
    minimum_payment: int
    credited_after: int


def _statement(row: Sequence[Any]) -> StatementRow:
    values = list(row)
    values[11], values[12] = bool(values[11]), bool(values[12])
    return StatementRow(*values)


def _plan(row: Sequence[Any]) -> PlanRow:
    return PlanRow(
        plan_id=row[0],
        line_id=row[1],
        statement_date=row[2],
        amount=int(row[3]),
        months=int(row[4]),
        total_fee=int(row[5]),
        apr_bps=int(row[6]),
        decision_id=None if row[7] is None else int.from_bytes(bytes(row[7]), "big"),
        instalments=tuple(json.loads(row[8])),
        instalments_billed=int(row[9]),
        digest=bytes(row[10]),
        created_at=int(row[11]),
    )


class LineStore(Statements):
    """Statements over one open connection (sqlite3 or psycopg) of the given backend."""

    # -- lines ------------------------------------------------------------------------------

    def line(self, line_id: str) -> LineRow | None:
        row = self._execute(
            f"SELECT {_LINE_COLUMNS} FROM credit_lines WHERE line_id = {self.p}", (line_id,)
        ).fetchone()
        return None if row is None else LineRow(*row)

    def line_for_application(self, application_id: str) -> LineRow | None:
        row = self._execute(
            f"SELECT {_LINE_COLUMNS} FROM credit_lines WHERE application_id = {self.p}",
            (application_id,),
        ).fetchone()
        return None if row is None else LineRow(*row)

    def open_line_of(self, party_id: str, currency: str) -> LineRow | None:
        """The person's line in `currency` that is not closed (there is at most one)."""
        row = self._execute(
            f"SELECT {_LINE_COLUMNS} FROM credit_lines WHERE party_id = {self.p} "
            f"AND currency = {self.p} AND status <> 'closed'",
            (party_id, currency),
        ).fetchone()
        return None if row is None else LineRow(*row)

    def insert_line(self, line: LineRow) -> None:
        self._execute(
            f"INSERT INTO credit_lines ({_LINE_COLUMNS}) VALUES ({self._values(29)})",
            astuple(line),
        )

    def update_line(self, line: LineRow) -> None:
        """Store the line's balances, status and next statement date."""
        self._execute(
            f"UPDATE credit_lines SET status = {self.p}, fees = {self.p}, interest = {self.p}, "
            f"principal = {self.p}, instalment_principal = {self.p}, bank_fees = {self.p}, "
            f"bank_interest = {self.p}, bank_principal = {self.p}, "
            f"bank_instalment_principal = {self.p}, next_statement_on = {self.p}, "
            f"updated_at = {self.p}, days_past_due = {self.p}, tier = {self.p}, "
            f"stage = {self.p}, frozen_reason = {self.p} WHERE line_id = {self.p}",
            (
                line.status,
                line.fees,
                line.interest,
                line.principal,
                line.instalment_principal,
                line.bank_fees,
                line.bank_interest,
                line.bank_principal,
                line.bank_instalment_principal,
                line.next_statement_on,
                line.updated_at,
                line.days_past_due,
                line.tier,
                line.stage,
                line.frozen_reason,
                line.line_id,
            ),
        )

    def due_lines(self, day: str, limit: int) -> list[LineRow]:
        """Lines (active or frozen: a closed line owes nothing, a written-off line is no longer
        billed) whose next statement is due on or before `day`, oldest first."""
        rows = self._execute(
            f"SELECT {_LINE_COLUMNS} FROM credit_lines WHERE next_statement_on <= {self.p} "
            "AND status IN ('active', 'frozen') ORDER BY next_statement_on, line_id "
            f"LIMIT {self.p}",
            (day, limit),
        ).fetchall()
        return [LineRow(*row) for row in rows]

    # -- transactions -----------------------------------------------------------------------

    def transaction(self, line_id: str, txn_id: str) -> LineTransaction | None:
        row = self._execute(
            "SELECT kind, amount, on_date, reference, details, digest "
            f"FROM credit_line_transactions WHERE line_id = {self.p} AND txn_id = {self.p}",
            (line_id, txn_id),
        ).fetchone()
        if row is None:
            return None
        return LineTransaction(
            row[0], int(row[1]), row[2], row[3], dict(json.loads(row[4])), bytes(row[5])
        )

    def insert_transaction(
        self,
        line_id: str,
        txn_id: str,
        kind: str,
        amount: int,
        on_date: str,
        at: int,
        *,
        digest: bytes,
        reference: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self._execute(
            "INSERT INTO credit_line_transactions (line_id, txn_id, kind, amount, on_date, "
            f"reference, details, digest, at) VALUES ({self._values(9)})",
            (
                line_id,
                txn_id,
                kind,
                amount,
                on_date,
                reference,
                json.dumps(details or {}, sort_keys=True),
                digest,
                at,
            ),
        )

    def entries_between(
        self, line_id: str, after: str, through: str, limit: int
    ) -> list[tuple[str, int, str]]:
        """(kind, amount, date) of the line's transactions dated in (after, through]."""
        rows = self._execute(
            "SELECT kind, amount, on_date FROM credit_line_transactions "
            f"WHERE line_id = {self.p} AND on_date > {self.p} AND on_date <= {self.p} "
            f"ORDER BY on_date, at LIMIT {self.p}",
            (line_id, after, through, limit),
        ).fetchall()
        return [(row[0], int(row[1]), row[2]) for row in rows]

    def paid_after(self, line_id: str, after: str) -> int:
        """Repayments, conversions into instalments and refunds dated after `after`."""
        row = self._execute(
            "SELECT COALESCE(SUM(amount), 0) FROM credit_line_transactions "
            f"WHERE line_id = {self.p} AND on_date > {self.p} "
            "AND kind IN ('repayment', 'instalment_conversion', 'refund')",
            (line_id, after),
        ).fetchone()
        return int(row[0])

    # -- statements -------------------------------------------------------------------------

    def statement(self, line_id: str, statement_date: str) -> StatementRow | None:
        row = self._execute(
            f"SELECT {_STATEMENT_COLUMNS} FROM credit_line_statements "
            f"WHERE line_id = {self.p} AND statement_date = {self.p}",
            (line_id, statement_date),
        ).fetchone()
        return None if row is None else _statement(row)

    def statements(self, line_id: str, limit: int) -> list[StatementRow]:
        """The line's statements, newest first."""
        rows = self._execute(
            f"SELECT {_STATEMENT_COLUMNS} FROM credit_line_statements WHERE line_id = {self.p} "
            f"ORDER BY statement_date DESC LIMIT {self.p}",
            (line_id, limit),
        ).fetchall()
        return [_statement(row) for row in rows]

    def insert_statement(self, statement: StatementRow) -> None:
        values = list(astuple(statement))
        values[11], values[12] = int(statement.grace_kept), int(statement.over_limit)
        self._execute(
            f"INSERT INTO credit_line_statements ({_STATEMENT_COLUMNS}) "
            f"VALUES ({self._values(14)})",
            values,
        )

    # -- instalment plans -------------------------------------------------------------------

    def plan(self, plan_id: str) -> PlanRow | None:
        row = self._execute(
            f"SELECT {_PLAN_COLUMNS} FROM credit_line_plans WHERE plan_id = {self.p}", (plan_id,)
        ).fetchone()
        return None if row is None else _plan(row)

    def plan_for_statement(self, line_id: str, statement_date: str) -> PlanRow | None:
        row = self._execute(
            f"SELECT {_PLAN_COLUMNS} FROM credit_line_plans "
            f"WHERE line_id = {self.p} AND statement_date = {self.p}",
            (line_id, statement_date),
        ).fetchone()
        return None if row is None else _plan(row)

    def plans_to_bill(self, line_id: str) -> list[PlanRow]:
        rows = self._execute(
            f"SELECT {_PLAN_COLUMNS} FROM credit_line_plans "
            f"WHERE line_id = {self.p} AND instalments_billed < months ORDER BY created_at",
            (line_id,),
        ).fetchall()
        return [_plan(row) for row in rows]

    def insert_plan(self, plan: PlanRow) -> None:
        self._execute(
            f"INSERT INTO credit_line_plans ({_PLAN_COLUMNS}) VALUES ({self._values(12)})",
            (
                plan.plan_id,
                plan.line_id,
                plan.statement_date,
                plan.amount,
                plan.months,
                plan.total_fee,
                plan.apr_bps,
                None if plan.decision_id is None else plan.decision_id.to_bytes(16, "big"),
                json.dumps(list(plan.instalments), sort_keys=True),
                plan.instalments_billed,
                plan.digest,
                plan.created_at,
            ),
        )

    def set_plan_billed(self, plan_id: str, billed: int) -> None:
        self._execute(
            f"UPDATE credit_line_plans SET instalments_billed = {self.p} WHERE plan_id = {self.p}",
            (billed, plan_id),
        )

    # -- servicing (migration 0014) -----------------------------------------------------------

    def lines_of_party(self, party_id: str, currency: str, limit: int) -> list[LineRow]:
        """Every line the person has held in `currency`, closed ones too (a refund may come
        after a line was closed)."""
        rows = self._execute(
            f"SELECT {_LINE_COLUMNS} FROM credit_lines WHERE party_id = {self.p} "
            f"AND currency = {self.p} ORDER BY created_at, line_id LIMIT {self.p}",
            (party_id, currency, limit),
        ).fetchall()
        return [LineRow(*row) for row in rows]

    def refunded_of(self, line_id: str, payment_id: str) -> int:
        """What refunds of one payment have credited so far, to the line and the wallet. A
        refund on a written-off line is a `recovery` transaction under the refund's id
        (`refund/...`), and counts too; the operator's recoveries (`recovery/...`) do not."""
        rows = self._execute(
            "SELECT details FROM credit_line_transactions "
            f"WHERE line_id = {self.p} AND kind IN ('refund', 'recovery') "
            f"AND txn_id LIKE {self.p} AND reference = {self.p}",
            (line_id, "refund/%", payment_id),
        ).fetchall()
        return sum(int(json.loads(row[0])["refunded"]) for row in rows)

    def transactions_page(
        self, line_id: str, after: tuple[int, str] | None, limit: int
    ) -> list[TransactionEntry]:
        """The line's transactions in the order they were written, after a (time, id) cursor."""
        where = f"line_id = {self.p}"
        parameters: list[Any] = [line_id]
        if after is not None:
            where += f" AND (at > {self.p} OR (at = {self.p} AND txn_id > {self.p}))"
            parameters += [after[0], after[0], after[1]]
        rows = self._execute(
            "SELECT txn_id, kind, amount, on_date, reference, details, at "
            f"FROM credit_line_transactions WHERE {where} ORDER BY at, txn_id LIMIT {self.p}",
            (*parameters, limit),
        ).fetchall()
        return [
            TransactionEntry(r[0], r[1], int(r[2]), r[3], r[4], dict(json.loads(r[5])), int(r[6]))
            for r in rows
        ]

    def lines_to_classify(self, after: str, limit: int) -> list[LineRow]:
        """Active and frozen lines after `after` in id order (a keyset page)."""
        rows = self._execute(
            f"SELECT {_LINE_COLUMNS} FROM credit_lines WHERE status IN ('active', 'frozen') "
            f"AND line_id > {self.p} ORDER BY line_id LIMIT {self.p}",
            (after, limit),
        ).fetchall()
        return [LineRow(*row) for row in rows]

    def bills_past_due_date(
        self, first: str, last: str, day: str, per_line: int
    ) -> list[BillStanding]:
        """For the lines with ids in [first, last] (one page), their latest `per_line`
        statements whose due date is before `day`, each with everything credited to the line
        (repayments, refunds, conversions) dated after its statement date: one statement for
        the page, the credits summed by a correlated subquery on the (line, date) index."""
        rows = self._execute(
            "SELECT line_id, statement_date, due_date, minimum_payment, credited FROM ("
            "SELECT s.line_id, s.statement_date, s.due_date, s.minimum_payment, "
            "(SELECT COALESCE(SUM(t.amount), 0) FROM credit_line_transactions t "
            "WHERE t.line_id = s.line_id AND t.on_date > s.statement_date "
            "AND t.kind IN ('repayment', 'refund', 'instalment_conversion')) AS credited, "
            "ROW_NUMBER() OVER (PARTITION BY s.line_id ORDER BY s.statement_date DESC) AS n "
            "FROM credit_line_statements s "
            f"WHERE s.line_id >= {self.p} AND s.line_id <= {self.p} AND s.due_date < {self.p}"
            f") ranked WHERE n <= {self.p} ORDER BY line_id, statement_date",
            (first, last, day, per_line),
        ).fetchall()
        return [BillStanding(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]

    def insert_notices(self, rows: Sequence[tuple[str, str, str, int, dict[str, Any]]]) -> None:
        """(line, notice id, holder, time, notice); one already recorded under the same id is
        kept as it is (a classification run again on the same day)."""
        self._executemany(
            "INSERT INTO credit_line_notices (line_id, notice_id, party_id, at, notice) "
            f"VALUES ({self._values(5)}) ON CONFLICT DO NOTHING",
            [
                (line_id, notice_id, party_id, at, json.dumps(notice, sort_keys=True))
                for line_id, notice_id, party_id, at, notice in rows
            ],
        )

    def notices_of(self, party_id: str, limit: int) -> list[tuple[str, str, int, dict[str, Any]]]:
        """(line, notice id, time, notice) of a holder's notices, oldest first."""
        rows = self._execute(
            "SELECT line_id, notice_id, at, notice FROM credit_line_notices "
            f"WHERE party_id = {self.p} ORDER BY at, line_id, notice_id LIMIT {self.p}",
            (party_id, limit),
        ).fetchall()
        return [(r[0], r[1], int(r[2]), dict(json.loads(r[3]))) for r in rows]

    def provision_groups(self, currency: str) -> list[tuple[int, str, int | None, int, int, int]]:
        """(stage, tier, decision PD in ppm, lines, exposure, undrawn) of the lines still
        carried on the books (active and frozen), grouped in one statement; exposure is
        everything owed, undrawn what active lines may still draw (a frozen line may draw
        nothing)."""
        owed = "l.fees + l.interest + l.principal + l.instalment_principal"
        rows = self._execute(
            f"SELECT l.stage, l.tier, a.pd_ppm, COUNT(*), CAST(COALESCE(SUM({owed}), 0) AS "
            "BIGINT), CAST(COALESCE(SUM(CASE WHEN l.status = 'active' AND l.credit_limit > "
            f"{owed} THEN l.credit_limit - ({owed}) ELSE 0 END), 0) AS BIGINT) "
            "FROM credit_lines l "
            "LEFT JOIN loan_applications a ON a.application_id = l.application_id "
            f"WHERE l.status IN ('active', 'frozen') AND l.currency = {self.p} "
            "GROUP BY l.stage, l.tier, a.pd_ppm ORDER BY l.stage, l.tier, a.pd_ppm",
            (currency,),
        ).fetchall()
        return [
            (
                int(r[0]),
                r[1],
                None if r[2] is None else int(r[2]),
                int(r[3]),
                int(r[4]),
                int(r[5]),
            )
            for r in rows
        ]

    def owed_totals(self, currency: str) -> tuple[int, int]:
        """(principal including unbilled instalments, charges) owed on lines not written off:
        what the line receivables should hold."""
        row = self._execute(
            "SELECT CAST(COALESCE(SUM(principal + instalment_principal), 0) AS BIGINT), "
            "CAST(COALESCE(SUM(fees + interest), 0) AS BIGINT) FROM credit_lines "
            f"WHERE status <> 'written_off' AND currency = {self.p}",
            (currency,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def charge_off_groups(
        self, currency: str, since: str | None = None, until: str | None = None
    ) -> list[ChargeOffGroup]:
        """The write-offs and recoveries (the operator's and refunds on written-off lines) of
        the lines in `currency` per funding bank, from their transactions (one statement):
        gross amounts, the platform's part of each (from the transaction's split by funder)
        and how many write-offs; with `since` / `until`, only those dated in that window (the
        transaction's date). Only a written-off line has either, and it stays written off, so
        the statement reads those lines' transactions alone."""
        details = "t.details"
        principal, principal_path = self._json_field(
            details, ("by_funder", PLATFORM, "principal"), "BIGINT"
        )
        charges, charges_path = self._json_field(
            details, ("by_funder", PLATFORM, "charges"), "BIGINT"
        )
        own, own_path = self._json_field(details, ("by_funder", PLATFORM), "BIGINT")
        window, window_parameters = self._date_window("t.on_date", since, until)
        rows = self._execute(
            "SELECT l.partner_bank_id, "
            f"{sum_when('t', 'write_off', 't.amount')}, "
            f"{sum_when('t', 'write_off', f'COALESCE({principal}, 0) + COALESCE({charges}, 0)')}, "
            f"{sum_when('t', 'recovery', 't.amount')}, "
            f"{sum_when('t', 'recovery', f'COALESCE({own}, 0)')}, "
            f"{sum_when('t', 'write_off', '1')} "
            "FROM credit_lines l JOIN credit_line_transactions t ON t.line_id = l.line_id "
            f"WHERE l.status = 'written_off' AND l.currency = {self.p} "
            f"AND t.kind IN ('write_off', 'recovery'){window} "
            "GROUP BY l.partner_bank_id ORDER BY l.partner_bank_id",
            (principal_path, charges_path, own_path, currency, *window_parameters),
        ).fetchall()
        return [ChargeOffGroup(str(r[0]), *(int(value) for value in r[1:])) for r in rows]
