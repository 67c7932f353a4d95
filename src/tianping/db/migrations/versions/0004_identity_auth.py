"""Credentials, second factors, devices, sessions, tokens and lockouts.

Revision ID: 0004_identity_auth
Revises: 0003_identity_parties
Create Date: 2026-11-27
"""

from __future__ import annotations

revision = "0004_identity_auth"
down_revision = "0003_identity_parties"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the identity work in progress; a no-op until then."""


def downgrade() -> None:
    raise RuntimeError("identity tables cannot be downgraded; restore from a backup")
