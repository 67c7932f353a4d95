"""Servicing of revolving credit lines: refunds to the line, delinquency, write-off, notices.

* `credit_lines` gains the line's days past due, five-tier class and expected-loss stage (kept
  by the classification run), why a frozen line is frozen (`operator`, `consent_withdrawn`,
  `past_due`: only the reason that froze it may thaw it) and the status `written_off`.
* `credit_line_transactions` takes two more kinds: `refund` (a merchant refund credited to the
  line) and `write_off`; a second index reads a line's transactions page by page in the
  order they were written.
* `credit_line_notices` (append-only): adverse-change notices about a line (a worse class, a
  write-off) with the holder, read with the loans' notices in one list.

SQLite cannot change a CHECK constraint in place, so there the two tables are rebuilt (rows
copied, old table dropped with its triggers and indexes, new one renamed; the append-only
triggers are created again); PostgreSQL replaces the named constraints and adds the columns.

Revision ID: 0013_line_servicing
Revises: 0012_credit_lines
Create Date: 2026-11-27
"""

from __future__ import annotations

# ruff: noqa: S608  (fixed DDL text built from constants, no input)
from alembic import op

from tianping.db.schema import make_append_only, run_script

revision = "0013_line_servicing"
down_revision = "0012_credit_lines"
branch_labels = None
depends_on = None

_KINDS = (
    "'draw', 'repayment', 'interest', 'fee', 'instalment_conversion', 'instalment_billed', "
    "'refund', 'write_off'"
)
_STATUSES = "'active', 'frozen', 'closed', 'written_off'"
_TIERS = "'normal', 'special_mention', 'substandard', 'doubtful', 'loss'"
_FROZEN_REASONS = "'operator', 'consent_withdrawn', 'past_due'"

_LINE_COLUMNS_NEW = f"""
    days_past_due         INTEGER NOT NULL DEFAULT 0 CHECK (days_past_due >= 0),
    tier                  TEXT NOT NULL DEFAULT 'normal' CHECK (tier IN ({_TIERS})),
    stage                 INTEGER NOT NULL DEFAULT 1 CHECK (stage BETWEEN 1 AND 3),
    frozen_reason         TEXT CHECK (frozen_reason IS NULL OR frozen_reason IN ({_FROZEN_REASONS}))
"""

_SQLITE_LINES = f"""
CREATE TABLE credit_lines_new (
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
    status                TEXT NOT NULL CHECK (status IN ({_STATUSES})),
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
    updated_at            BIGINT NOT NULL,
{_LINE_COLUMNS_NEW}
) WITHOUT ROWID;
INSERT INTO credit_lines_new (line_id, application_id, party_id, currency, partner_bank_id,
    bank_share_bps, credit_limit, rate_bps, statement_day, due_day_offset, min_payment_bps,
    min_payment_floor, status, fees, interest, principal, instalment_principal, bank_fees,
    bank_interest, bank_principal, bank_instalment_principal, opened_on, next_statement_on,
    created_at, updated_at)
SELECT line_id, application_id, party_id, currency, partner_bank_id,
    bank_share_bps, credit_limit, rate_bps, statement_day, due_day_offset, min_payment_bps,
    min_payment_floor, status, fees, interest, principal, instalment_principal, bank_fees,
    bank_interest, bank_principal, bank_instalment_principal, opened_on, next_statement_on,
    created_at, updated_at FROM credit_lines;
DROP TABLE credit_lines;
ALTER TABLE credit_lines_new RENAME TO credit_lines;
CREATE INDEX credit_lines_by_party ON credit_lines (party_id, currency, status);
CREATE INDEX credit_lines_due ON credit_lines (next_statement_on, status);
CREATE INDEX credit_lines_by_funder ON credit_lines (partner_bank_id);
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
CREATE INDEX credit_line_transactions_by_date ON credit_line_transactions (line_id, on_date)
"""

_POSTGRES = f"""
ALTER TABLE credit_lines DROP CONSTRAINT credit_lines_status_check;
ALTER TABLE credit_lines ADD CONSTRAINT credit_lines_status_check CHECK (status IN ({_STATUSES}));
ALTER TABLE credit_lines
    ADD COLUMN days_past_due INTEGER NOT NULL DEFAULT 0 CHECK (days_past_due >= 0),
    ADD COLUMN tier TEXT NOT NULL DEFAULT 'normal' CHECK (tier IN ({_TIERS})),
    ADD COLUMN stage INTEGER NOT NULL DEFAULT 1 CHECK (stage BETWEEN 1 AND 3),
    ADD COLUMN frozen_reason TEXT
        CHECK (frozen_reason IS NULL OR frozen_reason IN ({_FROZEN_REASONS}));
ALTER TABLE credit_line_transactions DROP CONSTRAINT credit_line_transactions_kind_check;
ALTER TABLE credit_line_transactions
    ADD CONSTRAINT credit_line_transactions_kind_check CHECK (kind IN ({_KINDS}))
"""

_BOTH = """
CREATE INDEX credit_line_transactions_by_time ON credit_line_transactions (line_id, at, txn_id);
CREATE INDEX credit_lines_servicing ON credit_lines (status, line_id);
CREATE TABLE credit_line_notices (
    line_id    TEXT NOT NULL CHECK (length(line_id) BETWEEN 1 AND 64),
    notice_id  TEXT NOT NULL CHECK (length(notice_id) BETWEEN 1 AND 96),
    party_id   TEXT NOT NULL CHECK (length(party_id) = 30),
    at         BIGINT NOT NULL,
    notice     TEXT NOT NULL CHECK (length(notice) <= 4096),
    PRIMARY KEY (line_id, notice_id)
){without_rowid};
CREATE INDEX credit_line_notices_by_party ON credit_line_notices (party_id, at)
"""


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        run_script(_SQLITE_LINES)
        make_append_only(("credit_line_transactions",))
    else:
        run_script(_POSTGRES)
    run_script(_BOTH)
    make_append_only(("credit_line_notices",))


def downgrade() -> None:
    raise RuntimeError("credit-line servicing cannot be downgraded; restore from a backup")
