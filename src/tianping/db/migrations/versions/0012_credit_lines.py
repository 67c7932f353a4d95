"""Revolving consumer credit lines (Huabei-like): lines, their transactions, statements and
bill instalment plans.

* `credit_lines`: one row per line, opened from one approved `credit_line` application: holder,
  currency, the funding split (partner bank and its share in basis points, the platform the
  rest, at least 30 %), limit, nominal annual rate (the daily rate is it over 365), statement
  day, days from statement to due date, minimum payment (ratio in basis points and floor),
  status (active, frozen, closed), what is owed now by bucket (fees, interest, principal,
  and principal converted into instalments and not billed yet), each with the partner bank's
  part (the platform's is the rest), and the next statement date.
* `credit_line_transactions` (append-only): draws at checkout, repayments with their
  allocation, interest and fees charged on statements, conversions into instalments and the
  billing of each instalment; keyed by the line and a transaction id derived from the client's
  id, which makes every write idempotent.
* `credit_line_statements` (append-only): one per line per statement date, immutable once
  issued: the cycle, previous and new balance, purchases, payments, interest, fees, minimum
  payment, due date, whether the grace was kept.
* `credit_line_plans`: bills turned into instalments, one per statement at most: amount,
  months, fee, APR, the rule decision that checked the price, the instalments (JSON) and how
  many of them have been billed.

Revision ID: 0012_credit_lines
Revises: 0011_card_checkouts
Create Date: 2026-11-27
"""

from __future__ import annotations

from tianping.db.schema import make_append_only, run_script

revision = "0012_credit_lines"
down_revision = "0011_card_checkouts"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE credit_lines (
    line_id               TEXT PRIMARY KEY CHECK (length(line_id) BETWEEN 1 AND 64),
    application_id        TEXT NOT NULL UNIQUE CHECK (length(application_id) BETWEEN 1 AND 64),
    party_id              TEXT NOT NULL CHECK (length(party_id) = 30),
    currency              TEXT NOT NULL CHECK (length(currency) = 3),
    partner_bank_id       TEXT NOT NULL CHECK (length(partner_bank_id) BETWEEN 1 AND 64),
    bank_share_bps        INTEGER NOT NULL CHECK (bank_share_bps BETWEEN 0 AND 7000),
    credit_limit          BIGINT NOT NULL CHECK (credit_limit > 0),
    rate_bps              INTEGER NOT NULL CHECK (rate_bps BETWEEN 0 AND 100000),
    statement_day         INTEGER NOT NULL CHECK (statement_day BETWEEN 1 AND 28),
    due_day_offset        INTEGER NOT NULL CHECK (due_day_offset BETWEEN 1 AND 31),
    min_payment_bps       INTEGER NOT NULL CHECK (min_payment_bps BETWEEN 0 AND 10000),
    min_payment_floor     BIGINT NOT NULL CHECK (min_payment_floor >= 0),
    status                TEXT NOT NULL CHECK (status IN ('active', 'frozen', 'closed')),
    fees                  BIGINT NOT NULL DEFAULT 0 CHECK (fees >= 0),
    interest              BIGINT NOT NULL DEFAULT 0 CHECK (interest >= 0),
    principal             BIGINT NOT NULL DEFAULT 0 CHECK (principal >= 0),
    instalment_principal  BIGINT NOT NULL DEFAULT 0 CHECK (instalment_principal >= 0),
    bank_fees             BIGINT NOT NULL DEFAULT 0 CHECK (bank_fees BETWEEN 0 AND fees),
    bank_interest         BIGINT NOT NULL DEFAULT 0 CHECK (bank_interest BETWEEN 0 AND interest),
    bank_principal        BIGINT NOT NULL DEFAULT 0 CHECK (bank_principal BETWEEN 0 AND principal),
    bank_instalment_principal BIGINT NOT NULL DEFAULT 0
                              CHECK (bank_instalment_principal BETWEEN 0 AND instalment_principal),
    opened_on             TEXT NOT NULL CHECK (length(opened_on) = 10),
    next_statement_on     TEXT NOT NULL CHECK (length(next_statement_on) = 10),
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
){without_rowid};
CREATE INDEX credit_lines_by_party ON credit_lines (party_id, currency, status);
CREATE INDEX credit_lines_due ON credit_lines (next_statement_on, status);
CREATE INDEX credit_lines_by_funder ON credit_lines (partner_bank_id);
CREATE TABLE credit_line_transactions (
    line_id    TEXT NOT NULL CHECK (length(line_id) BETWEEN 1 AND 64),
    txn_id     TEXT NOT NULL CHECK (length(txn_id) BETWEEN 1 AND 96),
    kind       TEXT NOT NULL CHECK (kind IN ('draw', 'repayment', 'interest', 'fee',
                   'instalment_conversion', 'instalment_billed')),
    amount     BIGINT NOT NULL CHECK (amount >= 0),
    on_date    TEXT NOT NULL CHECK (length(on_date) = 10),
    reference  TEXT CHECK (reference IS NULL OR length(reference) <= 96),
    details    TEXT NOT NULL CHECK (length(details) <= 2048),
    digest     {blob} NOT NULL CHECK (length(digest) = 32),
    at         BIGINT NOT NULL,
    PRIMARY KEY (line_id, txn_id)
){without_rowid};
CREATE INDEX credit_line_transactions_by_date ON credit_line_transactions (line_id, on_date);
CREATE TABLE credit_line_statements (
    line_id          TEXT NOT NULL CHECK (length(line_id) BETWEEN 1 AND 64),
    statement_date   TEXT NOT NULL CHECK (length(statement_date) = 10),
    cycle_start      TEXT NOT NULL CHECK (length(cycle_start) = 10),
    due_date         TEXT NOT NULL CHECK (length(due_date) = 10),
    previous_balance BIGINT NOT NULL,
    purchases        BIGINT NOT NULL CHECK (purchases >= 0),
    payments         BIGINT NOT NULL CHECK (payments >= 0),
    interest_charged BIGINT NOT NULL CHECK (interest_charged >= 0),
    fees_charged     BIGINT NOT NULL CHECK (fees_charged >= 0),
    new_balance      BIGINT NOT NULL,
    minimum_payment  BIGINT NOT NULL CHECK (minimum_payment >= 0),
    grace_kept       INTEGER NOT NULL CHECK (grace_kept IN (0, 1)),
    over_limit       INTEGER NOT NULL CHECK (over_limit IN (0, 1)),
    issued_at        BIGINT NOT NULL,
    PRIMARY KEY (line_id, statement_date)
){without_rowid};
CREATE TABLE credit_line_plans (
    plan_id            TEXT PRIMARY KEY CHECK (length(plan_id) BETWEEN 1 AND 64),
    line_id            TEXT NOT NULL CHECK (length(line_id) BETWEEN 1 AND 64),
    statement_date     TEXT NOT NULL CHECK (length(statement_date) = 10),
    amount             BIGINT NOT NULL CHECK (amount > 0),
    months             INTEGER NOT NULL CHECK (months BETWEEN 1 AND 36),
    total_fee          BIGINT NOT NULL CHECK (total_fee >= 0),
    apr_bps            INTEGER NOT NULL CHECK (apr_bps BETWEEN 0 AND 100000),
    decision_id        {blob} CHECK (decision_id IS NULL OR length(decision_id) = 16),
    instalments        TEXT NOT NULL CHECK (length(instalments) <= 8192),
    instalments_billed INTEGER NOT NULL DEFAULT 0 CHECK (instalments_billed BETWEEN 0 AND months),
    digest             {blob} NOT NULL CHECK (length(digest) = 32),
    created_at         BIGINT NOT NULL,
    UNIQUE (line_id, statement_date)
){without_rowid}
"""


def upgrade() -> None:
    run_script(_TABLES)
    make_append_only(("credit_line_transactions", "credit_line_statements"))


def downgrade() -> None:
    raise RuntimeError("credit-line tables cannot be downgraded; restore from a backup")
