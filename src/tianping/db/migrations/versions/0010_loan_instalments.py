"""Loan instalments: what falls due when, and what of it has been paid.

* `loan_instalments`: one row per instalment of a loan's schedule: due date, principal and
  interest due, principal and interest paid so far. The daily classification run finds each
  loan's oldest unpaid due date here with one set-based statement, and from it the days past
  due, the five-tier class and the expected-loss stage.

Revision ID: 0010_loan_instalments
Revises: 0009_lending
Create Date: 2026-11-27
"""

from __future__ import annotations

from tianping.db.schema import run_script

revision = "0010_loan_instalments"
down_revision = "0009_lending"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE loan_instalments (
    loan_id         TEXT NOT NULL CHECK (length(loan_id) BETWEEN 1 AND 64),
    number          INTEGER NOT NULL CHECK (number >= 1),
    due_on          TEXT NOT NULL CHECK (length(due_on) = 10),
    principal_due   BIGINT NOT NULL CHECK (principal_due >= 0),
    interest_due    BIGINT NOT NULL CHECK (interest_due >= 0),
    principal_paid  BIGINT NOT NULL DEFAULT 0 CHECK (principal_paid >= 0),
    interest_paid   BIGINT NOT NULL DEFAULT 0 CHECK (interest_paid >= 0),
    PRIMARY KEY (loan_id, number)
){without_rowid};
CREATE INDEX loan_instalments_unpaid ON loan_instalments (loan_id, due_on)
"""


def upgrade() -> None:
    run_script(_TABLES)


def downgrade() -> None:
    raise RuntimeError("lending tables cannot be downgraded; restore from a backup")
