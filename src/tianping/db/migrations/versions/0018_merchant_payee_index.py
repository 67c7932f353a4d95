"""The payee index covers merchant payments only.

`payments_by_payee_date` (payee, business date, status) serves merchant settlement, the
merchant's statements and the acquiring figures lending reads; every query that uses it asks
for `kind = 'merchant'`. A person-to-person payment never needs it (a person's receipts are
the ledger's history of their wallet), yet each one was written into it at a place chosen by
its payee, so on a grown database almost every P2P payment of a batch dirtied a page of its
own there: 319 of the 1,845 pages a batch of 500 P2P payments changed, measured after 25,000
payments. As a partial index on merchant payments it keeps every answer and every plan of
those queries (both SQLite and PostgreSQL use a partial index when the query's own condition
implies the index's), and P2P payments skip it.

Revision ID: 0018_merchant_payee_index
Revises: 0017_line_recoveries
Create Date: 2026-11-28
"""

from __future__ import annotations

from tianping.db.schema import run_script

revision = "0018_merchant_payee_index"
down_revision = "0017_line_recoveries"
branch_labels = None
depends_on = None

_UPGRADE = """
DROP INDEX payments_by_payee_date;
CREATE INDEX merchant_payments_by_payee_date ON payments (payee_id, business_date, status)
    WHERE kind = 'merchant'
"""

_DOWNGRADE = """
DROP INDEX merchant_payments_by_payee_date;
CREATE INDEX payments_by_payee_date ON payments (payee_id, business_date, status)
"""


def upgrade() -> None:
    run_script(_UPGRADE)


def downgrade() -> None:
    run_script(_DOWNGRADE)
