"""Payments: wallets, merchants, payments and refunds, spending counters, merchant orders (dynamic
QR codes), bank-rail requests through the clearing house, merchant settlements, safeguarding
checks and the AML case queue.

Tables (see `tianping.payments.store` for the statements over them):

* `payment_wallets`: a person's stored-value wallet per currency: its ledger account and the
  payment-account class it was opened under (P1).
* `payment_merchants`: a merchant's category code, discount rate (basis points) and ledger
  settlement account.
* `payments`: one row per client payment id: who paid whom, how, the outcome, the rule
  decision, the risk decision (action, score in parts per million, reasons, model version), the
  ledger transfer, refunded total, the merchant settlement that paid it out.
* `payment_refunds`: one row per refund id (append-only).
* `payment_counters`: what each customer has spent per counter and period (`spent_today`,
  `spent_this_year`, `spent_since_opening`, `qr_spent_today`, per-direction daily totals): the
  facts the payment rules read, updated in the same transaction as the payment, so they are
  exact under concurrent payments (writers are serialised by the ledger's write lock).
* `payment_orders`: merchant orders behind dynamic QR codes (amount, expiry, the payment that
  paid it): a QR payload is only a pointer, never trusted for the amount.
* `rail_requests` and `rail_callbacks`: top-ups and withdrawals through the clearing house, and
  every callback received (deduplicated by request id and sequence).
* `merchant_settlements` (append-only): T+1 payouts, gross, fee and net.
* `safeguarding_checks` (append-only): each comparison of client money with the reserve.
* `aml_cases` and `aml_case_events` (append-only): the operators' case queue and its history.

Revision ID: 0006_payments
Revises: 0005_identity_privacy
Create Date: 2026-11-27
"""

from __future__ import annotations

from tianping.db.schema import make_append_only, run_script

revision = "0006_payments"
down_revision = "0005_identity_privacy"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = (
    "payment_refunds",
    "rail_callbacks",
    "merchant_settlements",
    "safeguarding_checks",
    "aml_case_events",
)

_TABLES = """
CREATE TABLE payment_wallets (
    party_id           TEXT NOT NULL CHECK (length(party_id) = 30),
    currency           TEXT NOT NULL CHECK (length(currency) = 3),
    ledger_account_id  {blob} NOT NULL CHECK (length(ledger_account_id) = 16),
    account_class      TEXT NOT NULL CHECK (account_class IN ('I', 'II', 'III')),
    payment_account_id TEXT NOT NULL CHECK (length(payment_account_id) BETWEEN 1 AND 64),
    opened_at          BIGINT NOT NULL,
    PRIMARY KEY (party_id, currency)
){without_rowid};
CREATE TABLE payment_merchants (
    merchant_id        TEXT PRIMARY KEY CHECK (length(merchant_id) = 30),
    category_code      TEXT NOT NULL CHECK (length(category_code) = 4),
    discount_bps       INTEGER NOT NULL CHECK (discount_bps BETWEEN 0 AND 1000),
    currency           TEXT NOT NULL CHECK (length(currency) = 3),
    ledger_account_id  {blob} NOT NULL CHECK (length(ledger_account_id) = 16),
    registered_at      BIGINT NOT NULL
){without_rowid};
CREATE TABLE payments (
    payment_id      TEXT PRIMARY KEY CHECK (length(payment_id) BETWEEN 1 AND 64),
    kind            TEXT NOT NULL CHECK (kind IN ('p2p', 'merchant')),
    channel         TEXT NOT NULL CHECK (length(channel) BETWEEN 1 AND 32),
    payer_id        TEXT NOT NULL CHECK (length(payer_id) = 30),
    payee_id        TEXT NOT NULL CHECK (length(payee_id) = 30),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL CHECK (length(currency) = 3),
    status          TEXT NOT NULL CHECK (status IN
                        ('completed', 'declined', 'step_up_required')),
    decline_code    TEXT CHECK (decline_code IS NULL OR length(decline_code) <= 64),
    reasons         TEXT NOT NULL CHECK (length(reasons) <= 2048),
    digest          {blob} NOT NULL CHECK (length(digest) = 32),
    decision_id     {blob} CHECK (decision_id IS NULL OR length(decision_id) = 16),
    risk_action     TEXT CHECK (risk_action IS NULL OR risk_action IN
                        ('allow', 'challenge', 'deny')),
    risk_score_ppm  INTEGER CHECK (risk_score_ppm IS NULL OR risk_score_ppm BETWEEN 0 AND 1000000),
    model_version   TEXT CHECK (model_version IS NULL OR length(model_version) <= 64),
    transfer_id     {blob} CHECK (transfer_id IS NULL OR length(transfer_id) = 16),
    order_reference TEXT CHECK (order_reference IS NULL OR length(order_reference) <= 64),
    business_date   TEXT NOT NULL CHECK (length(business_date) = 10),
    refunded        BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    settlement_id   TEXT CHECK (settlement_id IS NULL OR length(settlement_id) <= 64),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
){without_rowid};
CREATE INDEX payments_by_payer ON payments (payer_id, created_at);
CREATE INDEX payments_by_payee_date ON payments (payee_id, business_date, status);
CREATE INDEX payments_by_date ON payments (business_date, status);
CREATE TABLE payment_refunds (
    refund_id    TEXT PRIMARY KEY CHECK (length(refund_id) BETWEEN 1 AND 64),
    payment_id   TEXT NOT NULL REFERENCES payments (payment_id),
    amount       BIGINT NOT NULL CHECK (amount > 0),
    transfer_id  {blob} NOT NULL CHECK (length(transfer_id) = 16),
    created_at   BIGINT NOT NULL
){without_rowid};
CREATE INDEX payment_refunds_by_payment ON payment_refunds (payment_id);
CREATE TABLE payment_counters (
    party_id  TEXT NOT NULL CHECK (length(party_id) = 30),
    counter   TEXT NOT NULL CHECK (length(counter) BETWEEN 1 AND 64),
    period    TEXT NOT NULL CHECK (length(period) BETWEEN 1 AND 16),
    amount    BIGINT NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (party_id, counter, period)
){without_rowid};
CREATE TABLE payment_orders (
    merchant_id     TEXT NOT NULL CHECK (length(merchant_id) = 30),
    reference       TEXT NOT NULL CHECK (length(reference) BETWEEN 1 AND 25),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL CHECK (length(currency) = 3),
    expires_at      BIGINT NOT NULL,
    payment_id      TEXT CHECK (payment_id IS NULL OR length(payment_id) <= 64),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, reference)
){without_rowid};
CREATE TABLE rail_requests (
    request_id          TEXT PRIMARY KEY CHECK (length(request_id) BETWEEN 1 AND 64),
    direction           TEXT NOT NULL CHECK (direction IN ('top_up', 'withdrawal')),
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
CREATE INDEX rail_requests_by_state ON rail_requests (state, timeout_at);
CREATE INDEX rail_requests_by_date ON rail_requests (business_date, state);
CREATE TABLE rail_callbacks (
    request_id   TEXT NOT NULL CHECK (length(request_id) BETWEEN 1 AND 64),
    sequence     INTEGER NOT NULL CHECK (sequence >= 0),
    callback_id  TEXT NOT NULL CHECK (length(callback_id) BETWEEN 1 AND 64),
    outcome      TEXT NOT NULL CHECK (length(outcome) BETWEEN 1 AND 32),
    disposition  TEXT NOT NULL CHECK (length(disposition) BETWEEN 1 AND 32),
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (request_id, sequence)
){without_rowid};
CREATE TABLE merchant_settlements (
    settlement_id  TEXT PRIMARY KEY CHECK (length(settlement_id) BETWEEN 1 AND 64),
    merchant_id    TEXT NOT NULL CHECK (length(merchant_id) = 30),
    business_date  TEXT NOT NULL CHECK (length(business_date) = 10),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    payments       INTEGER NOT NULL CHECK (payments >= 0),
    gross          BIGINT NOT NULL,
    refunds        BIGINT NOT NULL,
    fee            BIGINT NOT NULL,
    net            BIGINT NOT NULL,
    transfer_id    {blob} CHECK (transfer_id IS NULL OR length(transfer_id) = 16),
    created_at     BIGINT NOT NULL,
    UNIQUE (merchant_id, business_date, currency)
){without_rowid};
CREATE TABLE safeguarding_checks (
    check_id           TEXT PRIMARY KEY CHECK (length(check_id) BETWEEN 1 AND 64),
    at                 BIGINT NOT NULL,
    currency           TEXT NOT NULL CHECK (length(currency) = 3),
    reserve            BIGINT NOT NULL,
    client_liabilities BIGINT NOT NULL,
    difference         BIGINT NOT NULL,
    in_balance         BOOLEAN NOT NULL,
    chain_seq          BIGINT NOT NULL
){without_rowid};
CREATE INDEX safeguarding_checks_by_time ON safeguarding_checks (currency, at);
CREATE TABLE aml_cases (
    case_id      TEXT PRIMARY KEY CHECK (length(case_id) BETWEEN 1 AND 64),
    kind         TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
    status       TEXT NOT NULL CHECK (status IN ('open', 'assigned', 'closed')),
    assignee     TEXT CHECK (assignee IS NULL OR length(assignee) <= 64),
    disposition  TEXT CHECK (disposition IS NULL OR length(disposition) <= 32),
    alert        TEXT NOT NULL CHECK (length(alert) <= 65536),
    opened_at    BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
){without_rowid};
CREATE INDEX aml_cases_by_status ON aml_cases (status, opened_at);
CREATE TABLE aml_case_events (
    case_id   TEXT NOT NULL CHECK (length(case_id) BETWEEN 1 AND 64),
    seq       BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL CHECK (length(actor) BETWEEN 1 AND 64),
    action    TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 32),
    details   TEXT NOT NULL CHECK (length(details) <= 8192),
    PRIMARY KEY (case_id, seq)
){without_rowid}
"""


def upgrade() -> None:
    run_script(_TABLES)
    make_append_only(APPEND_ONLY_TABLES)


def downgrade() -> None:
    raise RuntimeError("payment tables cannot be downgraded; restore from a backup")
