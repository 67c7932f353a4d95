"""What the rules engine decides: outcomes, the finding of one rule, and the decision.

A decision is one of five outcomes, ordered by how strongly they stop a command:

    deny     the command must not happen
    step_up  it may happen once the person authenticates more strongly
    confirm  it may happen once the person accepts a warning (suitability mismatches)
    report   it happens, and a report must be filed (a large-value transaction report)
    allow    it happens

The outcome of a decision is the strongest outcome any rule gave. `report` findings are kept
whatever the outcome, so an allowed payment still carries its reporting duty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum
from typing import Any


class Outcome(IntEnum):
    """The outcomes, numbered by strength: a larger number overrides a smaller one."""

    allow = 0
    report = 1
    confirm = 2
    step_up = 3
    deny = 4


@dataclass(slots=True, frozen=True)
class Finding:
    """What one rule said about one command, with the parameter values it read."""

    rule_id: str
    outcome: Outcome
    message_en: str
    message_zh: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Decision:
    """The engine's answer at one enforcement point, with everything needed to prove it.

    `findings` lists every rule that said something other than a silent allow; `evaluated`
    lists every rule that was asked, so a supervisor can see which rules allowed by silence.
    """

    point: str
    on: date
    outcome: Outcome
    findings: tuple[Finding, ...]
    evaluated: tuple[str, ...]
    rulebook: str
    rulebook_hash: str

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(finding.rule_id for finding in self.findings)

    @property
    def allowed(self) -> bool:
        """Whether the command may go ahead as it stands (allow or report)."""
        return self.outcome <= Outcome.report

    @property
    def parameters_used(self) -> dict[str, Any]:
        used: dict[str, Any] = {}
        for finding in self.findings:
            used.update(finding.parameters)
        return used

    def messages(self, language: str = "en") -> list[str]:
        return [f.message_zh if language == "zh" else f.message_en for f in self.findings]
