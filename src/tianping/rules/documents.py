"""Plain-data views of rules, parameters, decisions and diffs, for JSON, the CLI and the API.

One module renders them so that `tianping rules ... --json`, the HTTP API and the stored
decisions agree on every value's form:

    Decimal          a string ("0.0013"), never a float
    int, bool, str   themselves
    date             ISO 8601 ("2019-09-14")
    None             null (a parameter's `none`: no limit, by contract)
    REPEALED         the string "repealed"
    Outcome          its name ("step_up")

Anything else, a float above all, is refused: a value that cannot be written exactly cannot be
part of the evidence of a decision.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from tianping.ledger.currencies import ACTIVE_CURRENCIES
from tianping.ledger.money import Currency, Money
from tianping.rules.model import Decision, Finding, Outcome
from tianping.rules.parameters import REPEALED, Parameter
from tianping.rules.registry import RuleSpec
from tianping.rules.rulebook import ParameterChange, Rulebook, rule_source

ABSENT = "(not in this rulebook)"


class UnencodableValue(TypeError):
    """Raised for a value that has no exact JSON form (a float, an arbitrary object)."""


def json_value(value: Any) -> Any:
    """`value` as JSON-ready plain data, following the table in the module docstring."""
    # bool before int: True is an int to Python, but stays a JSON boolean.
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Outcome):
        return value.name
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise UnencodableValue(f"a decimal value must be finite, not {value}")
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if value is REPEALED:
        return "repealed"
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = [json_value(item) for item in value]
        return sorted(items, key=repr) if isinstance(value, frozenset | set) else items
    raise UnencodableValue(
        f"a {type(value).__name__} has no exact JSON form (use int minor units or Decimal)"
    )


def canonical_json(value: Any) -> str:
    """The one canonical text of a value: sorted keys, no spaces, UTF-8 characters kept."""
    return json.dumps(json_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def display_value(unit: str, value: Any) -> str:
    """A parameter value as a person reads it: "50.00 EUR", "0.0013", "no limit"."""
    if value is REPEALED:
        return "repealed"
    if value is None:
        return "no limit (by contract)"
    if unit in ACTIVE_CURRENCIES and isinstance(value, int):
        return f"{Money(value, Currency.of(unit)).format()} {unit}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {item}" for key, item in value.items())
    return str(value)


def parameter_document(parameter: Parameter) -> dict[str, Any]:
    """A parameter with its reference, confidence and full dated history."""
    return {
        "name": parameter.name,
        "description": parameter.description,
        "unit": parameter.unit,
        "reference": {
            "instrument": parameter.reference.instrument,
            "article": parameter.reference.article,
            "url": parameter.reference.url,
        },
        "confidence": parameter.confidence,
        "history": [
            {
                "from": start.isoformat(),
                "value": json_value(value),
                "display": display_value(parameter.unit, value),
            }
            for start, value in zip(parameter.starts, parameter.values, strict=True)
        ],
    }


def rule_prose(spec: RuleSpec) -> str:
    """The rule's docstring (its legal prose) with the source indentation removed."""
    return inspect.cleandoc(spec.description)


def rule_summary(spec: RuleSpec) -> dict[str, Any]:
    """What `rules list` shows of one rule."""
    return {
        "id": spec.id,
        "title": spec.title,
        "area": spec.area,
        "point": spec.point,
        "citation": spec.citation,
        "parameters": sorted(spec.parameters),
        "facts": list(spec.facts),
    }


def rule_document(rulebook: Rulebook, spec: RuleSpec) -> dict[str, Any]:
    """What `rules show` shows: the summary, the rule's prose, parameters and source."""
    document = rule_summary(spec)
    document["description"] = rule_prose(spec)
    document["parameters"] = [
        parameter_document(rulebook.parameters[name]) for name in sorted(spec.parameters)
    ]
    document["source"] = rule_source(spec)
    document["rulebook"] = rulebook.label
    document["rulebook_hash"] = rulebook.content_hash
    return document


def finding_document(finding: Finding) -> dict[str, Any]:
    return {
        "rule_id": finding.rule_id,
        "outcome": finding.outcome.name,
        "message_en": finding.message_en,
        "message_zh": finding.message_zh,
        "parameters": json_value(finding.parameters),
    }


def decision_document(decision: Decision) -> dict[str, Any]:
    """An evaluated (not stored) decision, as `POST /v1/rules/check` answers it."""
    return {
        "point": decision.point,
        "date": decision.on.isoformat(),
        "outcome": decision.outcome.name,
        "allowed": decision.allowed,
        "rule_ids": list(decision.rule_ids),
        "findings": [finding_document(finding) for finding in decision.findings],
        "evaluated": list(decision.evaluated),
        "parameters": json_value(decision.parameters_used),
        "rulebook": decision.rulebook,
        "rulebook_hash": decision.rulebook_hash,
    }


def change_document(
    change: ParameterChange, unit: str, before_exists: bool = True, after_exists: bool = True
) -> dict[str, Any]:
    """One line of `rules diff`; a side where the parameter does not exist shows null and says
    so, since a null value otherwise means "no limit"."""
    return {
        "parameter": change.name,
        "date": change.start.isoformat(),
        "before": json_value(change.before),
        "after": json_value(change.after),
        "before_display": display_value(unit, change.before) if before_exists else ABSENT,
        "after_display": display_value(unit, change.after) if after_exists else ABSENT,
    }


def diff_document(
    base: Rulebook, other: Rulebook, changes: list[ParameterChange]
) -> dict[str, Any]:
    """Every change between two rulebooks, with both labels and content hashes."""
    documents = []
    for change in changes:
        before = base.parameters.get(change.name)
        after = other.parameters.get(change.name)
        known = after if after is not None else before
        unit = known.unit if known is not None else "text"
        documents.append(change_document(change, unit, before is not None, after is not None))
    return {
        "base": base.label,
        "base_hash": base.content_hash,
        "other": other.label,
        "other_hash": other.content_hash,
        "changes": documents,
    }
