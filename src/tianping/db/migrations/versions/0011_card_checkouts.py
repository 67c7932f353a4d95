"""Checkouts paid from a bound bank card.

* `card_checkouts`: one row per merchant payment the payer chose to fund from their own bound
  card (P4): the payment it becomes, the rail request that pulls the money through the clearing
  house (P7), and its state (`pending` until the clearing house answers, then `paid` or
  `failed`).

Revision ID: 0011_card_checkouts
Revises: 0010_loan_instalments
Create Date: 2026-11-27
"""

from __future__ import annotations

from tianping.db.schema import run_script

revision = "0011_card_checkouts"
down_revision = "0010_loan_instalments"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE card_checkouts (
    payment_id   TEXT PRIMARY KEY CHECK (length(payment_id) BETWEEN 1 AND 64),
    request_id   TEXT NOT NULL UNIQUE CHECK (length(request_id) BETWEEN 1 AND 70),
    payer_id     TEXT NOT NULL CHECK (length(payer_id) = 30),
    merchant_id  TEXT NOT NULL CHECK (length(merchant_id) = 30),
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL CHECK (length(currency) = 3),
    state        TEXT NOT NULL CHECK (state IN ('pending', 'paid', 'failed')),
    digest       {blob} NOT NULL CHECK (length(digest) = 32),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
){without_rowid}
"""


def upgrade() -> None:
    run_script(_TABLES)


def downgrade() -> None:
    raise RuntimeError("payment tables cannot be downgraded; restore from a backup")
