"""Recoveries on written-off credit lines.

* `credit_line_transactions` takes one more kind, `recovery`: cash recovered on a written-off
  line, booked by the operator from the holder's wallet (`recovery/<id>`) or a merchant's
  refund of a purchase on the line once it is written off (`refund/<id>`). The line's own
  balances (and the bank's part of each) already hold what remains written off, so no column
  is needed.

SQLite cannot change a CHECK constraint in place, so there the table is rebuilt as 0013 did
(rows copied, the old table dropped with its triggers and indexes, the new one renamed; its two
indexes and the append-only triggers are created again); PostgreSQL replaces the named
constraint.

Revision ID: 0017_line_recoveries
Revises: 0016_payments_rowid
Create Date: 2026-11-28
"""

from __future__ import annotations

# ruff: noqa: S608  (fixed DDL text built from constants, no input)
from alembic import op

from tianping.db.schema import make_append_only, run_script

revision = "0017_line_recoveries"
down_revision = "0016_payments_rowid"
branch_labels = None
depends_on = None

_KINDS = (
    "'draw', 'repayment', 'interest', 'fee', 'instalment_conversion', 'instalment_billed', "
    "'refund', 'write_off', 'recovery'"
)

_SQLITE = f"""
CREATE TABLE credit_line_transactions_new (
    line_id    TEXT NOT NULL CHECK (length(line_id) BETWEEN 1 AND 64),
    txn_id     TEXT NOT NULL CHECK (length(txn_id) BETWEEN 1 AND 96),
    kind       TEXT NOT NULL CHECK (kind IN ({_KINDS})),
    amount     BIGINT NOT NULL CHECK (amount >= 0),
    on_date    TEXT NOT NULL CHECK (length(on_date) = 10),
    reference  TEXT CHECK (reference IS NULL OR length(reference) <= 96),
    details    TEXT NOT NULL CHECK (length(details) <= 2048),
    digest     BLOB NOT NULL CHECK (length(digest) = 32),
    at         BIGINT NOT NULL,
    PRIMARY KEY (line_id, txn_id)
) WITHOUT ROWID;
INSERT INTO credit_line_transactions_new
SELECT line_id, txn_id, kind, amount, on_date, reference, details, digest, at
FROM credit_line_transactions;
DROP TABLE credit_line_transactions;
ALTER TABLE credit_line_transactions_new RENAME TO credit_line_transactions;
CREATE INDEX credit_line_transactions_by_date ON credit_line_transactions (line_id, on_date);
CREATE INDEX credit_line_transactions_by_time ON credit_line_transactions (line_id, at, txn_id)
"""

_POSTGRES = f"""
ALTER TABLE credit_line_transactions DROP CONSTRAINT credit_line_transactions_kind_check;
ALTER TABLE credit_line_transactions
    ADD CONSTRAINT credit_line_transactions_kind_check CHECK (kind IN ({_KINDS}))
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        run_script(_SQLITE)
        make_append_only(("credit_line_transactions",))
    else:
        run_script(_POSTGRES)


def downgrade() -> None:
    raise RuntimeError("credit-line recoveries cannot be downgraded; restore from a backup")
