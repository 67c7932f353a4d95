"""Scenario files and the conversion of facts written as text into the values rules read.

A rulebook's `scenarios/*.yaml` files are lists of scenarios:

    - name: class I account one fen over its cumulative cap
      date: 2026-03-01
      point: payment.authorize
      overlays: []                      # optional: overlay names applied before evaluating
      facts:
        amount: {CNY: "600.01"}
        own_name_bank_transfer: "false"
      expect:
        outcome: deny
        rules: [cn.payments.class_i_cumulative_cap]

Facts are converted by `convert_fact`, the one place that knows the conventions (YAML gives
every scalar as a string, JSON gives numbers and booleans too):

    {CURRENCY: "decimal"}   integer minor units of that currency ({EUR: "50.00"} -> 5000)
    {ratio: "0.95"}         Decimal("0.95")
    {text: "123"}           the string "123", for text that looks like a number
    "true" / "false"        bool
    "-?digits"              int
    a list                  a tuple of converted items
    anything else           the string itself

Error messages name the fact and what is wrong with it, never its value, because facts may be
personal data and the API's problem documents never repeat what a client sent.

JSON numbers are accepted when they are integers; a JSON float is refused, since facts are never
binary floating point. The same conversion serves `tianping rules check`, `POST
/v1/rules/check` and the parametrised scenario test, so a scenario means the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tianping.ledger.currencies import ACTIVE_CURRENCIES
from tianping.ledger.money import Money, MoneyError
from tianping.rules.errors import RulebookError, RulesError
from tianping.rules.model import Decision, Outcome
from tianping.rules.registry import ENFORCEMENT_POINTS
from tianping.rules.rulebook import RULEBOOKS_DIR, Rulebook, read_yaml

_INTEGER = re.compile(r"-?[0-9]{1,30}")
FACTS_MAX = 200
FACT_NAME_LENGTH_MAX = 64
_SCENARIO_KEYS = frozenset({"name", "date", "point", "overlays", "facts", "expect"})
_EXPECT_KEYS = frozenset({"outcome", "rules"})


class FactError(RulesError):
    """A fact is written in a form the conventions do not allow (a float, an unknown tag)."""

    code = "fact_invalid"


def convert_fact(value: Any, where: str) -> Any:
    """One fact written as text (YAML) or JSON, as the value a rule reads (see module doc)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value in ("true", "false"):
            return value == "true"
        if _INTEGER.fullmatch(value):
            return int(value)
        return value
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise FactError(f"{where}: a tagged fact has exactly one key, such as {{EUR: '1.00'}}")
        ((tag, raw),) = value.items()
        if not isinstance(raw, str):
            raise FactError(f"{where}: the value of a tagged fact is written as a string")
        if tag == "text":
            return raw
        if tag == "ratio":
            try:
                number = Decimal(raw)
            except InvalidOperation:
                raise FactError(f"{where}: not a decimal ratio") from None
            if not number.is_finite():
                raise FactError(f"{where}: a ratio is a finite decimal")
            return number
        if tag in ACTIVE_CURRENCIES:
            try:
                return Money.parse(raw, tag).amount_minor
            except MoneyError:
                raise FactError(
                    f"{where}: not an amount in {tag} (a decimal such as '12.30' with at most "
                    "the currency's number of fraction digits)"
                ) from None
        raise FactError(f"{where}: unknown tag (use a currency code such as EUR, ratio or text)")
    if isinstance(value, list | tuple):
        return tuple(convert_fact(item, f"{where}[{index}]") for index, item in enumerate(value))
    if isinstance(value, float):
        raise FactError(f"{where}: a fact is never a float; write a ratio as {{ratio: '0.95'}}")
    raise FactError(f"{where}: a fact is a string, integer, boolean, tagged value or list")


def convert_facts(raw: Any, where: str = "facts") -> dict[str, Any]:
    """A mapping of fact names to written values, converted (see `convert_fact`)."""
    if not isinstance(raw, Mapping):
        raise FactError(f"{where}: facts are a mapping of names to values")
    if len(raw) > FACTS_MAX:
        raise FactError(f"{where}: at most {FACTS_MAX} facts, not {len(raw)}")
    facts: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not 0 < len(name) <= FACT_NAME_LENGTH_MAX:
            raise FactError(f"{where}: a fact name is 1 to {FACT_NAME_LENGTH_MAX} characters")
        facts[name] = convert_fact(value, f"{where}.{name}")
    return facts


# -- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    """One scenario of a scenario file, its facts already converted."""

    name: str
    on: date
    point: str
    overlays: tuple[str, ...]
    facts: Mapping[str, Any]
    expected_outcome: Outcome
    expected_rules: frozenset[str]
    source: str  # "FILE[index]", for messages


def _text(raw: Any, source: str, key: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise RulebookError(source, key, "a non-empty string")
    return raw


def _names_list(raw: Any, source: str, key: str) -> tuple[str, ...]:
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
        raise RulebookError(source, key, "a list of names")
    return tuple(raw)


def parse_scenario(raw: Any, source: str, index: int) -> Scenario:
    """Read one scenario mapping; every fault names the file, the scenario and the key."""
    where = f"[{index}]"
    if not isinstance(raw, dict):
        raise RulebookError(source, where, "a scenario is a mapping")
    name = _text(raw.get("name"), source, f"{where}.name")
    where = f"[{index}] {name}"
    unknown = set(raw) - _SCENARIO_KEYS
    if unknown:
        raise RulebookError(source, where, f"unknown key(s): {', '.join(sorted(unknown))}")
    for required in ("date", "point", "facts", "expect"):
        if required not in raw:
            raise RulebookError(source, f"{where}.{required}", "is required")
    try:
        on = date.fromisoformat(_text(raw["date"], source, f"{where}.date"))
    except ValueError:
        raise RulebookError(source, f"{where}.date", f"not an ISO date: {raw['date']!r}") from None
    point = _text(raw["point"], source, f"{where}.point")
    if point not in ENFORCEMENT_POINTS:
        raise RulebookError(source, f"{where}.point", f"unknown enforcement point {point!r}")
    try:
        facts = convert_facts(raw["facts"] or {}, f"{where}.facts")
    except FactError as error:
        raise RulebookError(source, f"{where}.facts", error.message) from None
    expect = raw["expect"]
    if not isinstance(expect, dict) or "outcome" not in expect:
        raise RulebookError(source, f"{where}.expect", "a mapping with an outcome and rules")
    unknown = set(expect) - _EXPECT_KEYS
    if unknown:
        raise RulebookError(
            source, f"{where}.expect", f"unknown key(s): {', '.join(sorted(unknown))}"
        )
    outcome_name = expect["outcome"]
    if outcome_name not in Outcome.__members__:
        raise RulebookError(
            source,
            f"{where}.expect.outcome",
            f"one of {', '.join(Outcome.__members__)}, not {outcome_name!r}",
        )
    return Scenario(
        name=name,
        on=on,
        point=point,
        overlays=_names_list(raw.get("overlays"), source, f"{where}.overlays"),
        facts=facts,
        expected_outcome=Outcome[outcome_name],
        expected_rules=frozenset(_names_list(expect.get("rules"), source, f"{where}.expect.rules")),
        source=f"{source}{where}",
    )


def load_scenarios(path: Path) -> list[Scenario]:
    """Every scenario of one file, checked; a bad file fails naming the file and the key."""
    raw = read_yaml(path)
    if not isinstance(raw, list):
        raise RulebookError(str(path), "(file)", "a scenario file is a list of scenarios")
    scenarios = [parse_scenario(item, str(path), index) for index, item in enumerate(raw)]
    names = [scenario.name for scenario in scenarios]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RulebookError(str(path), duplicates[0], "two scenarios have this name")
    return scenarios


@dataclass(slots=True)
class ScenarioResult:
    """How one scenario went: the decision, or the error that stopped it, and what differed."""

    scenario: Scenario
    decision: Decision | None = None
    error: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.error and not self.problems


class ScenarioRunner:
    """Runs scenarios against a rulebook, applying each scenario's overlays (built once)."""

    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook
        self._variants: dict[tuple[str, ...], Rulebook] = {(): rulebook}

    def rulebook_for(self, overlays: tuple[str, ...]) -> Rulebook:
        variant = self._variants.get(overlays)
        if variant is None:
            variant = self.rulebook
            for name in overlays:
                variant = variant.with_overlay(variant.overlay_named(name))
            self._variants[overlays] = variant
        return variant

    def run(self, scenario: Scenario) -> ScenarioResult:
        """Evaluate one scenario. Rules errors (a missing fact, an unknown overlay) become the
        result's error; any other exception is a bug in a rule and propagates."""
        result = ScenarioResult(scenario)
        try:
            rulebook = self.rulebook_for(scenario.overlays)
            decision = rulebook.evaluate(scenario.point, scenario.facts, scenario.on)
        except RulesError as error:
            result.error = f"{type(error).__name__}: {error.message}"
            return result
        result.decision = decision
        if decision.outcome is not scenario.expected_outcome:
            result.problems.append(
                f"outcome {decision.outcome.name}, expected {scenario.expected_outcome.name}"
            )
        found = set(decision.rule_ids)
        missing = sorted(scenario.expected_rules - found)
        unexpected = sorted(found - scenario.expected_rules)
        if missing:
            result.problems.append(f"expected findings missing from {', '.join(missing)}")
        if unexpected:
            result.problems.append(f"unexpected findings from {', '.join(unexpected)}")
        return result


# -- where scenarios live ------------------------------------------------------------------------


def shipped_rulebooks() -> list[str]:
    """The names of the rulebooks shipped under `tianping/rules/rulebooks/`."""
    return sorted(path.name for path in RULEBOOKS_DIR.iterdir() if (path / "rules.py").is_file())


def scenario_files(rulebook_directory: Path) -> list[Path]:
    return sorted((rulebook_directory / "scenarios").glob("*.yaml"))


def rulebook_of_scenario_file(path: Path) -> Path | None:
    """The rulebook directory a scenario file belongs to (`<rulebook>/scenarios/x.yaml`)."""
    directory = path.resolve().parent.parent
    return directory if (directory / "rules.py").is_file() else None


def iter_shipped_scenarios() -> Iterator[tuple[str, Path]]:
    """(rulebook name, scenario file) for every shipped rulebook."""
    for name in shipped_rulebooks():
        for path in scenario_files(RULEBOOKS_DIR / name):
            yield name, path
