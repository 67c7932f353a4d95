"""Rules are Python functions registered with their id, title, area, enforcement point and
citation, and the parameters and facts they read.

A rulebook's `rules.py` makes one `RuleSet` and decorates each rule with it:

    rules = RuleSet()

    @rules.rule(id="cn.payments.qr_daily_cap", title="QR-code daily caps", area="payments",
                point="payment.authorize", citation="PBoC Yinfa [2017] No. 296",
                parameters=("payments.qr_daily_cap_static",), facts=("amount", "qr_grade"))
    def qr_daily_cap(ctx: RuleContext) -> Finding | None:
        ...

A rule reads only the parameters in force on the event's date (`ctx.param`) and the facts the
caller supplies (`ctx.fact`), and returns a finding (`ctx.deny(...)`, `ctx.step_up(...)`,
`ctx.confirm(...)`, `ctx.report(...)`) or None when it has nothing to say. Declaring the
parameters lets the loader refuse a rule that names an unknown one, and lets `ctx.param`
refuse a rule that reads one it did not declare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from tianping.rules.errors import MissingFact, RulebookError
from tianping.rules.model import Finding, Outcome
from tianping.rules.parameters import REPEALED

ENFORCEMENT_POINTS = frozenset(
    {
        "account.open",
        "card.bind",
        "payment.authorize",
        "loan.originate",
        "loan.price",
        "mmf.redeem",
        "fund.sell",
        "policy.sell",
        "data.use",
        "aml.daily",
    }
)

_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._")


class NotInForce(Exception):
    """Raised by `RuleContext.param` when a parameter is not in force on the event's date;
    the engine catches it and the rule stays silent on that date."""


class RuleContext:
    """What one rule sees: the date, the parameters in force, the caller's facts."""

    __slots__ = ("_declared", "_facts", "_values", "on", "rule_id", "used")

    def __init__(
        self,
        rule_id: str,
        on: date,
        values: Mapping[str, Any],
        declared: frozenset[str],
        facts: Mapping[str, Any],
    ) -> None:
        self.rule_id = rule_id
        self.on = on
        self._values = values
        self._declared = declared
        self._facts = facts
        self.used: dict[str, Any] = {}

    def param(self, name: str) -> Any:
        """The value of a declared parameter on the event's date (None means "no limit")."""
        if name not in self._declared:
            raise RulebookError(self.rule_id, name, "read by the rule but not declared by it")
        value = self._values[name]
        if value is REPEALED:
            raise NotInForce(name)
        self.used[name] = value
        return value

    def fact(self, name: str) -> Any:
        """A fact the caller supplied (an amount, a counter, an account class)."""
        try:
            return self._facts[name]
        except KeyError:
            raise MissingFact(f"rule {self.rule_id} needs the fact {name!r}") from None

    def has_fact(self, name: str) -> bool:
        return name in self._facts

    def fact_or(self, name: str, default: Any) -> Any:
        return self._facts.get(name, default)

    def _finding(self, outcome: Outcome, message_en: str, message_zh: str) -> Finding:
        return Finding(self.rule_id, outcome, message_en, message_zh, dict(self.used))

    def deny(self, message_en: str, message_zh: str) -> Finding:
        return self._finding(Outcome.deny, message_en, message_zh)

    def step_up(self, message_en: str, message_zh: str) -> Finding:
        return self._finding(Outcome.step_up, message_en, message_zh)

    def confirm(self, message_en: str, message_zh: str) -> Finding:
        return self._finding(Outcome.confirm, message_en, message_zh)

    def report(self, message_en: str, message_zh: str) -> Finding:
        return self._finding(Outcome.report, message_en, message_zh)


RuleFunction = Callable[[RuleContext], Finding | None]


@dataclass(slots=True, frozen=True)
class RuleSpec:
    """A registered rule."""

    id: str
    title: str
    area: str
    point: str
    citation: str
    parameters: frozenset[str]
    facts: tuple[str, ...]
    function: RuleFunction
    description: str


class RuleSet:
    """The rules of one rulebook, in registration order."""

    def __init__(self) -> None:
        self.rules: list[RuleSpec] = []

    def rule(
        self,
        *,
        id: str,
        title: str,
        area: str,
        point: str,
        citation: str,
        parameters: tuple[str, ...] = (),
        facts: tuple[str, ...] = (),
    ) -> Callable[[RuleFunction], RuleFunction]:
        source = f"rule {id}"
        if not id or not _ID_CHARACTERS.issuperset(id) or len(id) > 80:
            raise RulebookError(source, "id", "lower-case letters, digits, dots, underscores")
        if any(spec.id == id for spec in self.rules):
            raise RulebookError(source, "id", "registered twice")
        if point not in ENFORCEMENT_POINTS:
            raise RulebookError(source, "point", f"unknown enforcement point {point!r}")
        if not citation.strip():
            raise RulebookError(source, "citation", "is required")
        if not title.strip() or not area.strip():
            raise RulebookError(source, "title", "title and area are required")

        def register(function: RuleFunction) -> RuleFunction:
            self.rules.append(
                RuleSpec(
                    id=id,
                    title=title,
                    area=area,
                    point=point,
                    citation=citation,
                    parameters=frozenset(parameters),
                    facts=tuple(facts),
                    function=function,
                    description=(function.__doc__ or "").strip(),
                )
            )
            return function

        return register
