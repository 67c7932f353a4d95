"""Time indexes for the AML large-value reports over every movement the platform executes.

The reports (regulation.md A1, A2) cover a local business day's bank top-ups, withdrawals and
merchant payouts once posted, its refunds and its merchant settlements, not only its payments.
The payments already have `payments_by_date`; these three rows had no index by the time they
were executed, so a day's worth of them meant reading the whole table, and the tables are kept
for at least ten years (A4, A5).

* `rail_requests_posted` (partial, succeeded requests only): a rail request's `updated_at` is
  the moment the clearing house's callback posted it, and a succeeded request is final, so its
  entry is written once, when it succeeds, at the right edge of the index. Submitted, declined,
  failed, refused and timed-out requests never enter it, and the other rail statements keep
  their own indexes. Both SQLite and PostgreSQL use a partial index when the query's own
  condition (`state = 'succeeded'`) implies the index's. The index leads with `state`, constant
  in it, so that SQLite's planner, which weighs indexes by the query terms they serve, prefers
  it to `rail_requests_by_state` (state, timeout_at): on `state` alone that one would walk every
  succeeded request ever made.
* `payment_refunds_by_time` and `merchant_settlements_by_time`: both tables are append-only and
  their `created_at` grows with the ledger's clock, so each new row appends to the index.

Revision ID: 0019_aml_movement_indexes
Revises: 0018_merchant_payee_index
Create Date: 2026-11-28
"""

from __future__ import annotations

from tianping.db.schema import run_script

revision = "0019_aml_movement_indexes"
down_revision = "0018_merchant_payee_index"
branch_labels = None
depends_on = None

_UPGRADE = """
CREATE INDEX rail_requests_posted ON rail_requests (state, updated_at)
    WHERE state = 'succeeded';
CREATE INDEX payment_refunds_by_time ON payment_refunds (created_at);
CREATE INDEX merchant_settlements_by_time ON merchant_settlements (created_at)
"""

_DOWNGRADE = """
DROP INDEX rail_requests_posted;
DROP INDEX payment_refunds_by_time;
DROP INDEX merchant_settlements_by_time
"""


def upgrade() -> None:
    run_script(_UPGRADE)


def downgrade() -> None:
    run_script(_DOWNGRADE)
