"""The `cn` rulebook: every transaction-time rule of section 11a of regulation.md.

The rules are registered by area in sibling modules; importing them here fills the rule set.
"""

from __future__ import annotations

from tianping.rules.rulebooks.cn import (  # noqa: F401 - imported for their registrations
    lending,
    payments,
)
from tianping.rules.rulebooks.cn.ruleset import rules

__all__ = ["rules"]
