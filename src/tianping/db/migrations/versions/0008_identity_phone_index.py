"""A keyed index from phone numbers to persons, so a payer can pay a phone number.

* `identity_phone_index`: the HMAC-SHA256 (under the card-fingerprint key, with its own label)
  of a person's normalised phone number, and the person's party id. The number itself stays
  only in the vault, encrypted under the person's data key; without the key the digest cannot
  be reversed by hashing every possible number. A person's row is replaced when the phone is
  corrected and deleted when the person is erased.

Revision ID: 0008_identity_phone_index
Revises: 0007_payment_codes
Create Date: 2026-11-27
"""

from __future__ import annotations

from tianping.db.schema import run_script

revision = "0008_identity_phone_index"
down_revision = "0007_payment_codes"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE identity_phone_index (
    digest    {blob} PRIMARY KEY CHECK (length(digest) = 32),
    party_id  TEXT NOT NULL UNIQUE CHECK (length(party_id) = 30)
){without_rowid}
"""


def upgrade() -> None:
    run_script(_TABLES)


def downgrade() -> None:
    raise RuntimeError("identity tables cannot be downgraded; restore from a backup")
