"""Merchant payouts to the merchant's own bank account, and the daily sweep of takings into an
SME loan's repayment.

* `rail_requests.direction` also takes `merchant_payout`: a merchant's free balance (loan
  proceeds, takings a sweep released) paid out to its registered bank account through the
  clearing house, held on the ledger until the callback posts or voids it, as a withdrawal is.
  SQLite cannot change a CHECK constraint in place, so there the table is rebuilt with its rows
  and indexes (nothing references it); PostgreSQL swaps the constraint.
* `merchant_bank_accounts` (append-only): the one bank account a merchant's payouts go to, as
  a keyed fingerprint and its last four digits, bound only when the bank reports the account's
  holder as the registered business itself (its unified social credit code): the same-name rule
  P4 applied to a business. One account per merchant, and an account belongs to one merchant.
* `merchant_takings_releases`: the part of a day's takings a sweep took for a loan repayment
  before that day's settlement (`released`), or gave back when the repayment did not happen
  (`restored`). Settlement pays out the day's takings less the released part; the free balance
  counts it as free from the moment it is released.
* `loans.sweep_bps`: the share of each day's takings (basis points, at most half) that repays an
  SME loan before settlement, agreed when the offer is taken up; 0 for no sweep.

Revision ID: 0014_merchant_payouts
Revises: 0013_line_servicing
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from tianping.db.schema import make_append_only, run_script

revision = "0014_merchant_payouts"
down_revision = "0013_line_servicing"
branch_labels = None
depends_on = None

# The table of 0006 with the wider direction constraint; SQLite copies its rows into it.
_SQLITE_RAIL_REBUILD = """
CREATE TABLE rail_requests_0015 (
    request_id          TEXT PRIMARY KEY CHECK (length(request_id) BETWEEN 1 AND 64),
    direction           TEXT NOT NULL CHECK (direction IN
                            ('top_up', 'withdrawal', 'merchant_payout')),
    party_id            TEXT NOT NULL CHECK (length(party_id) = 30),
    bank_id             TEXT NOT NULL CHECK (length(bank_id) BETWEEN 1 AND 64),
    card_token          TEXT NOT NULL CHECK (length(card_token) BETWEEN 1 AND 64),
    amount              BIGINT NOT NULL CHECK (amount > 0),
    currency            TEXT NOT NULL CHECK (length(currency) = 3),
    state               TEXT NOT NULL CHECK (state IN
                            ('submitted', 'succeeded', 'declined', 'failed', 'refused',
                             'timed_out')),
    clearing_reference  TEXT CHECK (clearing_reference IS NULL OR length(clearing_reference) <= 64),
    hold_transfer_id    {blob} NOT NULL CHECK (length(hold_transfer_id) = 16),
    timeout_at          BIGINT NOT NULL,
    outcome_code        TEXT CHECK (outcome_code IS NULL OR length(outcome_code) <= 64),
    business_date       TEXT NOT NULL CHECK (length(business_date) = 10),
    digest              {blob} NOT NULL CHECK (length(digest) = 32),
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
){without_rowid};
INSERT INTO rail_requests_0015 SELECT request_id, direction, party_id, bank_id, card_token,
    amount, currency, state, clearing_reference, hold_transfer_id, timeout_at, outcome_code,
    business_date, digest, created_at, updated_at FROM rail_requests;
DROP TABLE rail_requests;
ALTER TABLE rail_requests_0015 RENAME TO rail_requests;
CREATE INDEX rail_requests_by_state ON rail_requests (state, timeout_at);
CREATE INDEX rail_requests_by_date ON rail_requests (business_date, state)
"""

# PostgreSQL names a column's CHECK constraint `<table>_<column>_check`.
_POSTGRES_RAIL_CONSTRAINT = """
ALTER TABLE rail_requests DROP CONSTRAINT rail_requests_direction_check;
ALTER TABLE rail_requests ADD CONSTRAINT rail_requests_direction_check
    CHECK (direction IN ('top_up', 'withdrawal', 'merchant_payout'))
"""

_TABLES = """
CREATE TABLE merchant_bank_accounts (
    merchant_id    TEXT PRIMARY KEY CHECK (length(merchant_id) = 30),
    fingerprint    TEXT NOT NULL UNIQUE CHECK (length(fingerprint) = 64),
    last_four      TEXT NOT NULL CHECK (length(last_four) = 4),
    bank_id        TEXT NOT NULL CHECK (length(bank_id) BETWEEN 1 AND 64),
    registered_at  BIGINT NOT NULL
){without_rowid};
CREATE TABLE merchant_takings_releases (
    release_id     TEXT PRIMARY KEY CHECK (length(release_id) BETWEEN 1 AND 96),
    merchant_id    TEXT NOT NULL CHECK (length(merchant_id) = 30),
    business_date  TEXT NOT NULL CHECK (length(business_date) = 10),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    amount         BIGINT NOT NULL CHECK (amount > 0),
    state          TEXT NOT NULL CHECK (state IN ('released', 'restored')),
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
){without_rowid};
CREATE INDEX merchant_takings_releases_by_day
    ON merchant_takings_releases (merchant_id, currency, business_date, state);
ALTER TABLE loans ADD COLUMN sweep_bps INTEGER NOT NULL DEFAULT 0
    CHECK (sweep_bps BETWEEN 0 AND 5000);
CREATE INDEX loans_with_sweep ON loans (loan_id) WHERE sweep_bps > 0
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        run_script(_SQLITE_RAIL_REBUILD)
    else:
        run_script(_POSTGRES_RAIL_CONSTRAINT)
    run_script(_TABLES)
    make_append_only(("merchant_bank_accounts",))


def downgrade() -> None:
    raise RuntimeError("payment tables cannot be downgraded; restore from a backup")
