"""Consents, the personal-data vault (encrypted fields, wrapped data keys), the data-access log and data-subject requests.

Revision ID: 0005_identity_privacy
Revises: 0004_identity_auth
Create Date: 2026-11-27
"""

from __future__ import annotations

revision = "0005_identity_privacy"
down_revision = "0004_identity_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the identity work in progress; a no-op until then."""


def downgrade() -> None:
    raise RuntimeError("identity tables cannot be downgraded; restore from a backup")
