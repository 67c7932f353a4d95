"""Every scenario of every shipped rulebook, and the rule that every rule has a scenario.

One parametrised test runs each scenario of `src/tianping/rules/rulebooks/*/scenarios/*.yaml`:
its facts are converted by the shared conventions (`tianping.rules.scenarios`), its overlays are
applied to the rulebook it belongs to, and the decision must have exactly the expected outcome
and exactly the expected set of rules with findings. Then a rule that no scenario expects to
speak has no evidence that it works, so one more test fails while any rule lacks a scenario.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tianping.rules.errors import RulebookError
from tianping.rules.rulebook import RULEBOOKS_DIR, Rulebook, load_rulebook
from tianping.rules.scenarios import Scenario, load_scenarios, shipped_rulebooks

SCENARIO_FILES = sorted(RULEBOOKS_DIR.glob("*/scenarios/*.yaml"))


@dataclass(frozen=True)
class Case:
    """One scenario to run, or the error that kept its file from loading."""

    rulebook: str
    path: Path
    scenario: Scenario | None = None
    load_error: str = ""


def _cases() -> list[Case]:
    cases: list[Case] = []
    for path in SCENARIO_FILES:
        rulebook = path.parent.parent.name
        try:
            scenarios = load_scenarios(path)
        except RulebookError as error:
            # A broken file becomes one failing case, so the rest of the suite still runs.
            cases.append(Case(rulebook, path, load_error=str(error)))
            continue
        cases.extend(Case(rulebook, path, scenario) for scenario in scenarios)
    return cases


CASES = _cases()


def _case_id(case: Case) -> str:
    name = case.scenario.name if case.scenario else "(file does not load)"
    return f"{case.rulebook}/{case.path.stem}/{name}"


@cache
def _rulebook(name: str, overlays: tuple[str, ...]) -> Rulebook:
    """A shipped rulebook with overlays applied in order, loaded once per combination."""
    rulebook = load_rulebook(name)
    for overlay in overlays:
        rulebook = rulebook.with_overlay(rulebook.overlay_named(overlay))
    return rulebook


def test_scenarios_were_found() -> None:
    """The glob finds the shipped scenario files, so the parametrised test is not vacuous."""
    assert any(path.parent.parent.name == "eu" for path in SCENARIO_FILES)
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_scenario(case: Case) -> None:
    """The scenario's decision has exactly its expected outcome and rules with findings."""
    if case.load_error:
        pytest.fail(f"scenario file does not load: {case.load_error}")
    assert case.scenario is not None
    scenario = case.scenario
    rulebook = _rulebook(case.rulebook, scenario.overlays)
    decision = rulebook.evaluate(scenario.point, scenario.facts, scenario.on)
    found = {finding.rule_id for finding in decision.findings}
    assert (decision.outcome.name, found) == (
        scenario.expected_outcome.name,
        set(scenario.expected_rules),
    ), [finding.message_en for finding in decision.findings]
    assert decision.on == scenario.on
    assert decision.rulebook == "+".join((case.rulebook, *scenario.overlays))


def _expected_rules_by_rulebook() -> dict[str, set[str]]:
    named: dict[str, set[str]] = {}
    for case in CASES:
        if case.scenario is not None:
            named.setdefault(case.rulebook, set()).update(case.scenario.expected_rules)
    return named


def test_every_rule_of_every_shipped_rulebook_has_a_scenario() -> None:
    """Each rule id of each shipped rulebook is among some scenario's expected rules."""
    named = _expected_rules_by_rulebook()
    uncovered = {}
    for name in shipped_rulebooks():
        rule_ids = {spec.id for spec in load_rulebook(name).rules}
        missing = sorted(rule_ids - named.get(name, set()))
        if missing:
            uncovered[name] = missing
    assert uncovered == {}, f"rules that no scenario expects to speak: {uncovered}"


def test_every_rule_a_scenario_names_exists() -> None:
    """No scenario expects a finding from a rule its rulebook does not have (a typo would
    otherwise pass as 'expected but never found' only where the scenario fails)."""
    named = _expected_rules_by_rulebook()
    unknown = {}
    for name, rule_ids in named.items():
        known = {spec.id for spec in load_rulebook(name).rules}
        if rule_ids - known:
            unknown[name] = sorted(rule_ids - known)
    assert unknown == {}
