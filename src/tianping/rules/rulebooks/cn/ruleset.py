"""The `cn` rulebook's rule set, shared by the modules that register rules on it."""

from __future__ import annotations

from tianping.rules.registry import RuleSet

rules = RuleSet()
