"""The repayment method an instalment-loan applicant chose.

* `loan_applications.repayment_method`: `equal_instalment` (等额本息, the same total every
  month) or `equal_principal` (等额本金, the same principal every month, so the instalments
  fall as the interest does). The offer's schedule, its all-in APR and the loan's instalments
  are built with it; applications decided before this column existed were all equal
  instalments, which the default records.

Revision ID: 0015_repayment_method
Revises: 0014_merchant_payouts
Create Date: 2026-11-27
"""

from __future__ import annotations

from tianping.db.schema import run_script

revision = "0015_repayment_method"
down_revision = "0014_merchant_payouts"
branch_labels = None
depends_on = None

_COLUMN = """
ALTER TABLE loan_applications ADD COLUMN repayment_method TEXT NOT NULL
    DEFAULT 'equal_instalment'
    CHECK (repayment_method IN ('equal_instalment', 'equal_principal'))
"""


def upgrade() -> None:
    run_script(_COLUMN)


def downgrade() -> None:
    raise RuntimeError("lending tables cannot be downgraded; restore from a backup")
