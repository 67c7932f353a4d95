"""Customer-presented payment codes: one slot per enrolled person, its sealed secret, and the
last time step accepted from it (so every code is accepted once).

* `payment_code_slots`: the slot (the six digits inside every code of the person, so a scanned
  code finds its secret without a search), the party, the secret sealed with the identity
  context's secrets key (never in clear), the last accepted step, and when it was issued. A
  person re-enrolling gets a new slot; the old one is deleted with its secret.

Revision ID: 0007_payment_codes
Revises: 0006_payments
Create Date: 2026-11-27
"""

from __future__ import annotations

from tianping.db.schema import run_script

revision = "0007_payment_codes"
down_revision = "0006_payments"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE payment_code_slots (
    slot        INTEGER PRIMARY KEY CHECK (slot BETWEEN 0 AND 999999),
    party_id    TEXT NOT NULL UNIQUE CHECK (length(party_id) = 30),
    secret      {blob} NOT NULL CHECK (length(secret) BETWEEN 16 AND 256),
    last_step   BIGINT NOT NULL CHECK (last_step >= 0),
    issued_at   BIGINT NOT NULL
)
"""


def upgrade() -> None:
    run_script(_TABLES)


def downgrade() -> None:
    raise RuntimeError("payment tables cannot be downgraded; restore from a backup")
