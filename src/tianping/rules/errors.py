"""Errors of the rules context.

RulesError                 root; carries a stable `code`
├── RulebookError          a rulebook or overlay file is invalid (names the file and key)
├── UnknownRule            no rule has that id
├── UnknownPoint           no enforcement point has that name
└── MissingFact            a rule needs a fact the caller did not supply
"""

from __future__ import annotations


class RulesError(Exception):
    code = "rules_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RulebookError(RulesError):
    """Raised at load time: a rulebook, parameter or overlay file is wrong. The message names
    the file and the key, so the author can fix it without reading the engine."""

    code = "rulebook_invalid"

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


class UnknownRule(RulesError):
    code = "rule_not_found"


class UnknownPoint(RulesError):
    code = "enforcement_point_not_found"


class MissingFact(RulesError):
    """Raised when a rule reads a fact (an amount, a counter) the caller did not supply: the
    caller's context is incomplete, which is a programming error at the enforcement point."""

    code = "fact_missing"
