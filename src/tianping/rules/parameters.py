"""Dated, cited parameters: the numbers the law sets, keyed by the date they take effect.

Following OpenFisca, each parameter has a series of values by start date, a unit, a description
and a reference to its legal source, plus the confidence the research table gives it
(`../shared/reference/regulation.md`). A parameter without a reference does not load.

Values are parsed by unit, never through float:

    money units (CNY, USD, EUR, ...)  a decimal string in the currency's major unit, stored as
                                      integer minor units ("1000.00" CNY -> 100000)
    ratio                             a decimal string, stored as `Decimal` ("0.30")
    count, days, years, months        a whole number
    boolean                           true or false
    text                              a string
    table                             a mapping of names to strings (a grid such as suitability)

Two literals are accepted in any series: `none` (in force, but sets no limit: "by contract")
and `repealed` (no longer in force from that date). Before its first date, and from a
`repealed` date on, a parameter is not in force, and the rules that read it stay silent.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tianping.ledger.currencies import ACTIVE_CURRENCIES
from tianping.ledger.money import Money, MoneyError
from tianping.rules.errors import RulebookError

WHOLE_NUMBER_UNITS = frozenset({"count", "days", "years", "months"})
OTHER_UNITS = frozenset({"ratio", "boolean", "text", "table"})
CONFIDENCES = frozenset({"H", "M", "L", "U"})

NO_LIMIT = None


class _Repealed:
    """The marker stored for a `repealed` entry of a series."""

    def __repr__(self) -> str:
        return "repealed"


REPEALED: Any = _Repealed()


def is_unit(unit: str) -> bool:
    return unit in WHOLE_NUMBER_UNITS or unit in OTHER_UNITS or unit in ACTIVE_CURRENCIES


@dataclass(slots=True, frozen=True)
class Reference:
    """The legal source of a parameter."""

    instrument: str
    article: str = ""
    url: str = ""


@dataclass(slots=True, frozen=True)
class Parameter:
    """One parameter and its dated series of values (sorted by start date)."""

    name: str
    description: str
    unit: str
    reference: Reference
    confidence: str
    starts: tuple[date, ...]
    values: tuple[Any, ...]

    def value_on(self, on: date) -> Any:
        """The value in force on `on`, or REPEALED if none is (before the first date too)."""
        index = bisect.bisect_right(self.starts, on) - 1
        if index < 0:
            return REPEALED
        return self.values[index]

    def with_values_from(self, starts: tuple[date, ...], values: tuple[Any, ...]) -> Parameter:
        """This parameter with its series replaced from the first of `starts` on."""
        cut = starts[0]
        kept = [(s, v) for s, v in zip(self.starts, self.values, strict=True) if s < cut]
        merged = kept + list(zip(starts, values, strict=True))
        return Parameter(
            self.name,
            self.description,
            self.unit,
            self.reference,
            self.confidence,
            tuple(s for s, _ in merged),
            tuple(v for _, v in merged),
        )


def parse_value(unit: str, raw: Any, source: str, key: str) -> Any:
    """Read one value of a series written in YAML (every scalar arrives as a string)."""
    if raw == "repealed":
        return REPEALED
    if raw == "none":
        if unit in ACTIVE_CURRENCIES or unit in WHOLE_NUMBER_UNITS or unit == "ratio":
            return NO_LIMIT
        raise RulebookError(source, key, f"`none` (no limit) does not apply to unit {unit!r}")
    if unit == "table":
        if not isinstance(raw, dict) or not raw:
            raise RulebookError(source, key, "a table value is a non-empty mapping")
        return {str(name): str(cell) for name, cell in raw.items()}
    if not isinstance(raw, str):
        raise RulebookError(source, key, f"expected a single value for unit {unit!r}")
    if unit in ACTIVE_CURRENCIES:
        try:
            return Money.parse(raw, unit).amount_minor
        except MoneyError as error:
            raise RulebookError(source, key, f"not an amount in {unit}: {error}") from None
    if unit == "ratio":
        try:
            number = Decimal(raw)
        except InvalidOperation:
            raise RulebookError(source, key, f"not a decimal ratio: {raw!r}") from None
        if not number.is_finite() or number < 0:
            raise RulebookError(source, key, f"a ratio is a finite non-negative number: {raw!r}")
        return number
    if unit in WHOLE_NUMBER_UNITS:
        if not raw.isdigit():
            raise RulebookError(source, key, f"not a whole number of {unit}: {raw!r}")
        return int(raw)
    if unit == "boolean":
        if raw not in ("true", "false"):
            raise RulebookError(source, key, f"a boolean is true or false, not {raw!r}")
        return raw == "true"
    if unit == "text":
        return raw
    raise RulebookError(source, key, f"unknown unit {unit!r}")


def parse_series(
    unit: str, raw: Any, source: str, key: str
) -> tuple[tuple[date, ...], tuple[Any, ...]]:
    """Read a `values:` mapping of ISO dates to values, refusing duplicate or bad dates."""
    if not isinstance(raw, dict) or not raw:
        raise RulebookError(source, f"{key}.values", "a non-empty mapping of dates to values")
    entries: list[tuple[date, Any]] = []
    for text, value in raw.items():
        try:
            start = date.fromisoformat(str(text))
        except ValueError:
            raise RulebookError(source, f"{key}.values", f"not an ISO date: {text!r}") from None
        entries.append((start, parse_value(unit, value, source, f"{key}.values.{text}")))
    entries.sort(key=lambda entry: entry[0])
    starts = tuple(start for start, _ in entries)
    if len(set(starts)) != len(starts):
        raise RulebookError(source, f"{key}.values", "two values start on the same date")
    return starts, tuple(value for _, value in entries)


def parse_parameter(name: str, raw: Any, source: str) -> Parameter:
    """Read one parameter's YAML mapping, refusing it unless it is complete and cited."""
    if not isinstance(raw, dict):
        raise RulebookError(source, name, "a parameter is a mapping")
    allowed = {"description", "unit", "reference", "confidence", "values"}
    unknown = set(raw) - allowed
    if unknown:
        raise RulebookError(source, name, f"unknown key(s): {', '.join(sorted(unknown))}")
    for required in ("description", "unit", "reference", "confidence", "values"):
        if required not in raw:
            raise RulebookError(source, f"{name}.{required}", "is required")
    unit = raw["unit"]
    if not isinstance(unit, str) or not is_unit(unit):
        raise RulebookError(source, f"{name}.unit", f"unknown unit {unit!r}")
    reference = raw["reference"]
    if not isinstance(reference, dict) or not reference.get("instrument"):
        raise RulebookError(source, f"{name}.reference", "names the instrument (the legal source)")
    unknown_reference = set(reference) - {"instrument", "article", "url"}
    if unknown_reference:
        raise RulebookError(
            source, f"{name}.reference", f"unknown key(s): {', '.join(sorted(unknown_reference))}"
        )
    if not reference.get("article") and not reference.get("url"):
        raise RulebookError(source, f"{name}.reference", "gives an article or a URL")
    confidence = raw["confidence"]
    if confidence not in CONFIDENCES:
        raise RulebookError(
            source,
            f"{name}.confidence",
            f"one of {', '.join(sorted(CONFIDENCES))}, not {confidence!r}",
        )
    starts, values = parse_series(unit, raw["values"], source, name)
    return Parameter(
        name=name,
        description=str(raw["description"]),
        unit=unit,
        reference=Reference(
            str(reference["instrument"]),
            str(reference.get("article", "")),
            str(reference.get("url", "")),
        ),
        confidence=confidence,
        starts=starts,
        values=values,
    )
