"""Time indexes for the AML large-value reports over the money lending moves.

The reports (regulation.md A1, A2) cover the money lending moves into and out of customers'
wallets on a local business day: loans paid out, repaid, recovered and swept (the events of
`loan_events`), credit lines repaid and recovered (`credit_line_transactions`). Neither table
had an index by time (`loan_events` is keyed by loan, the lines' time index leads with the
line), so a day's worth meant reading all of them, and they are kept for at least ten years
(A4, A5).

Both indexes lead with the kind, which the report's statement fixes (three kinds of loan
event, two of line transaction), then the time: the statement reads one range per kind, and
the kinds it never reads (a line's draws, the most numerous; a loan's notices and catch-up
accruals) are never walked. Both tables are append-only and their `at` grows with the ledger's
clock, so each new row appends at the right edge of its kind's range.

Revision ID: 0020_lending_movement_indexes
Revises: 0019_aml_movement_indexes
Create Date: 2026-11-29
"""

from __future__ import annotations

from tianping.db.schema import run_script

revision = "0020_lending_movement_indexes"
down_revision = "0019_aml_movement_indexes"
branch_labels = None
depends_on = None

_UPGRADE = """
CREATE INDEX loan_events_by_kind_time ON loan_events (kind, at);
CREATE INDEX credit_line_transactions_by_kind_time ON credit_line_transactions (kind, at)
"""

_DOWNGRADE = """
DROP INDEX loan_events_by_kind_time;
DROP INDEX credit_line_transactions_by_kind_time
"""


def upgrade() -> None:
    run_script(_UPGRADE)


def downgrade() -> None:
    run_script(_DOWNGRADE)
