"""Lending: applications and their decisions, loans (the loan sub-ledger), loan events.

* `loan_applications`: one row per client application id: applicant, product, amount, term,
  the decision (approved / declined / referred), score, probability of default (parts per
  million), the top adverse reasons, the model version, the rule decision id, the offered rate
  and all-in APR (basis points), and the consent sources the score was allowed to use.
* `loans`: the loan sub-ledger, one row per loan: borrower, product, currency, the funding
  split (partner bank and its share in basis points; the platform holds the rest, at least 30%
  under L1/L3), principal, outstanding principal, accrued and unpaid interest, fees, penalty
  interest, the sub-fen accrual remainder (interest accrues exactly: each day adds
  outstanding x rate_bps to a remainder in units of 1/3,650,000 fen, so nothing is lost to
  rounding however many days pass), next due date, days past due, the five-tier class, the
  expected-loss stage, status. The general ledger holds the same money in aggregate accounts;
  the daily accrual posts one transfer per currency and funder, not one per loan.
* `loan_events` (append-only): disbursement, accrual runs, repayments with their allocation,
  classification changes, write-offs and recoveries, each with its amounts and time.

Revision ID: 0009_lending
Revises: 0008_identity_phone_index
Create Date: 2026-11-27
"""

from __future__ import annotations

from tianping.db.schema import make_append_only, run_script

revision = "0009_lending"
down_revision = "0008_identity_phone_index"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE loan_applications (
    application_id  TEXT PRIMARY KEY CHECK (length(application_id) BETWEEN 1 AND 64),
    party_id        TEXT NOT NULL CHECK (length(party_id) = 30),
    product         TEXT NOT NULL CHECK (product IN ('instalment', 'credit_line', 'sme')),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL CHECK (length(currency) = 3),
    term_months     INTEGER NOT NULL CHECK (term_months BETWEEN 0 AND 360),
    partner_bank_id TEXT CHECK (partner_bank_id IS NULL OR length(partner_bank_id) <= 64),
    outcome         TEXT NOT NULL CHECK (outcome IN ('approved', 'declined', 'referred')),
    score           INTEGER,
    pd_ppm          INTEGER CHECK (pd_ppm IS NULL OR pd_ppm BETWEEN 0 AND 1000000),
    reasons         TEXT NOT NULL CHECK (length(reasons) <= 4096),
    model_version   TEXT CHECK (model_version IS NULL OR length(model_version) <= 64),
    decision_id     {blob} CHECK (decision_id IS NULL OR length(decision_id) = 16),
    rate_bps        INTEGER CHECK (rate_bps IS NULL OR rate_bps BETWEEN 0 AND 100000),
    apr_bps         INTEGER CHECK (apr_bps IS NULL OR apr_bps BETWEEN 0 AND 100000),
    sources         TEXT NOT NULL CHECK (length(sources) <= 1024),
    rule_ids        TEXT NOT NULL CHECK (length(rule_ids) <= 4096),
    digest          {blob} NOT NULL CHECK (length(digest) = 32),
    decided_at      BIGINT NOT NULL
){without_rowid};
CREATE INDEX loan_applications_by_party ON loan_applications (party_id, decided_at);
CREATE TABLE loans (
    loan_id               TEXT PRIMARY KEY CHECK (length(loan_id) BETWEEN 1 AND 64),
    application_id        TEXT NOT NULL CHECK (length(application_id) BETWEEN 1 AND 64),
    party_id              TEXT NOT NULL CHECK (length(party_id) = 30),
    product               TEXT NOT NULL CHECK (product IN ('instalment', 'credit_line', 'sme')),
    currency              TEXT NOT NULL CHECK (length(currency) = 3),
    partner_bank_id       TEXT NOT NULL CHECK (length(partner_bank_id) BETWEEN 1 AND 64),
    bank_share_bps        INTEGER NOT NULL CHECK (bank_share_bps BETWEEN 0 AND 7000),
    rate_bps              INTEGER NOT NULL CHECK (rate_bps BETWEEN 0 AND 100000),
    principal             BIGINT NOT NULL CHECK (principal > 0),
    outstanding_principal BIGINT NOT NULL CHECK (outstanding_principal >= 0),
    accrued_interest      BIGINT NOT NULL DEFAULT 0 CHECK (accrued_interest >= 0),
    accrual_remainder     BIGINT NOT NULL DEFAULT 0
                              CHECK (accrual_remainder >= 0 AND accrual_remainder < 3650000),
    fees_due              BIGINT NOT NULL DEFAULT 0 CHECK (fees_due >= 0),
    penalty_due           BIGINT NOT NULL DEFAULT 0 CHECK (penalty_due >= 0),
    disbursed_on          TEXT NOT NULL CHECK (length(disbursed_on) = 10),
    last_accrual_on       TEXT NOT NULL CHECK (length(last_accrual_on) = 10),
    next_due_on           TEXT CHECK (next_due_on IS NULL OR length(next_due_on) = 10),
    oldest_unpaid_due_on  TEXT CHECK (oldest_unpaid_due_on IS NULL
                              OR length(oldest_unpaid_due_on) = 10),
    days_past_due         INTEGER NOT NULL DEFAULT 0 CHECK (days_past_due >= 0),
    tier                  TEXT NOT NULL DEFAULT 'normal' CHECK (tier IN
                              ('normal', 'special_mention', 'substandard', 'doubtful', 'loss')),
    stage                 INTEGER NOT NULL DEFAULT 1 CHECK (stage BETWEEN 1 AND 3),
    status                TEXT NOT NULL CHECK (status IN ('active', 'repaid', 'written_off')),
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
){without_rowid};
CREATE INDEX loans_by_party ON loans (party_id, status);
CREATE UNIQUE INDEX loans_by_application ON loans (application_id);
CREATE INDEX loans_active ON loans (status, last_accrual_on);
CREATE TABLE loan_events (
    loan_id    TEXT NOT NULL CHECK (length(loan_id) BETWEEN 1 AND 64),
    event_id   TEXT NOT NULL CHECK (length(event_id) BETWEEN 1 AND 96),
    kind       TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
    at         BIGINT NOT NULL,
    amounts    TEXT NOT NULL CHECK (length(amounts) <= 4096),
    PRIMARY KEY (loan_id, event_id)
){without_rowid};
CREATE TABLE lending_accrual_runs (
    run_date     TEXT PRIMARY KEY CHECK (length(run_date) = 10),
    loans        BIGINT NOT NULL,
    interest     BIGINT NOT NULL,
    at           BIGINT NOT NULL
){without_rowid}
"""


def upgrade() -> None:
    run_script(_TABLES)
    make_append_only(("loan_events", "lending_accrual_runs"))


def downgrade() -> None:
    raise RuntimeError("lending tables cannot be downgraded; restore from a backup")
