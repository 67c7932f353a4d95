"""Parties, identity verifications, payment-account classes, bound cards and the blocklist.

Revision ID: 0003_identity_parties
Revises: 0002_rules
Create Date: 2026-11-27
"""

from __future__ import annotations

revision = "0003_identity_parties"
down_revision = "0002_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the identity work in progress; a no-op until then."""


def downgrade() -> None:
    raise RuntimeError("identity tables cannot be downgraded; restore from a backup")
