# The Chinese messages use full-width punctuation, as written Chinese requires; RUF001 would
# have it replaced by ASCII look-alikes.
# ruff: noqa: RUF001
"""Helpers shared by the `cn` lending, wealth, data and insurance rules.

They read facts with their type checked, so that a caller who passes the text "false" where a
boolean belongs, or a float where a Decimal belongs, is told so at once instead of having the
rule silently take the wrong branch; and they format amounts and rates for the bilingual
messages. Every helper is a few comparisons, so rules stay cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache

from tianping.ledger.money import Currency, Money
from tianping.rules.errors import MissingFact
from tianping.rules.model import Finding
from tianping.rules.registry import RuleContext

CNY = Currency.of("CNY")

# The lender types a caller may name. Licensed lenders are "financial institutions" outside the
# courts' private-lending interest cap (SPC Reply Fa Shi [2020] No. 27); only `unlicensed`
# lenders are bound by it.
LICENSED_LENDER_TYPES = frozenset({"bank", "microlender", "consumer_finance"})
LENDER_TYPES = LICENSED_LENDER_TYPES | {"unlicensed"}


def cny(amount_minor: int) -> str:
    """Format an amount of fen as text such as "300000.00 CNY"."""
    return f"{Money(amount_minor, CNY).format()} CNY"


def percent(ratio: Decimal) -> str:
    """Format a ratio as a percentage without trailing zeros: Decimal("0.1540") -> "15.4%"."""
    return f"{format((ratio * 100).normalize(), 'f')}%"


@lru_cache(maxsize=1024)
def _split_names(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def names(value: object) -> frozenset[str]:
    """Read a set of names given as a comma-separated string or as an iterable of strings."""
    if isinstance(value, str):
        return _split_names(value)
    if isinstance(value, Iterable):
        return frozenset(str(item) for item in value)
    raise TypeError(f"expected names as a comma-separated string or a list, got {value!r}")


def names_fact(ctx: RuleContext, name: str, *, required: bool = True) -> frozenset[str]:
    """A fact holding a set of names (consents, data fields); empty when optional and absent."""
    if not required and not ctx.has_fact(name):
        return frozenset()
    try:
        return names(ctx.fact(name))
    except TypeError:
        raise MissingFact(
            f"rule {ctx.rule_id} needs the fact {name!r} as a comma-separated string or a list"
        ) from None


def bool_fact(ctx: RuleContext, name: str, default: bool | None = None) -> bool:
    """A boolean fact; `default` applies when the fact is absent (None means it is required)."""
    value = ctx.fact(name) if default is None else ctx.fact_or(name, default)
    if type(value) is not bool:
        raise MissingFact(f"rule {ctx.rule_id} needs the fact {name!r} as a boolean")
    return value


def amount_fact(ctx: RuleContext, name: str, default: int | None = None) -> int:
    """A non-negative amount in minor units; `default` applies when the fact is absent."""
    value = ctx.fact(name) if default is None else ctx.fact_or(name, default)
    if type(value) is not int or value < 0:
        raise MissingFact(
            f"rule {ctx.rule_id} needs the fact {name!r} as a non-negative integer of minor units"
        )
    return value


def count_fact(ctx: RuleContext, name: str) -> int:
    """A non-negative whole number (an age, a number of days or months)."""
    value = ctx.fact(name)
    if type(value) is not int or value < 0:
        raise MissingFact(f"rule {ctx.rule_id} needs the fact {name!r} as a whole number")
    return value


def ratio_fact(ctx: RuleContext, name: str) -> Decimal:
    """A non-negative Decimal ratio such as an annualised rate; never a float."""
    value = ctx.fact(name)
    if isinstance(value, Decimal) and value.is_finite() and value >= 0:
        return value
    raise MissingFact(f"rule {ctx.rule_id} needs the fact {name!r} as a non-negative Decimal")


def choice_fact(
    ctx: RuleContext, name: str, choices: frozenset[str], default: str | None = None
) -> str:
    """A fact that must be one of `choices`; `default` applies when it is absent."""
    value = ctx.fact(name) if default is None else ctx.fact_or(name, default)
    if value not in choices:
        raise MissingFact(
            f"rule {ctx.rule_id} needs the fact {name!r} as one of {', '.join(sorted(choices))}"
        )
    return str(value)


def lender_type(ctx: RuleContext) -> str:
    return choice_fact(ctx, "lender_type", LENDER_TYPES)


def non_cny_denial(ctx: RuleContext) -> Finding | None:
    """Deny when the command's amounts are not in CNY, since the limits are set in CNY.

    Comparing amounts in another currency with a CNY limit would compare numbers of different
    units; the rule fails closed instead and asks the caller to convert first.
    """
    currency = ctx.fact_or("currency", "CNY")
    if currency == "CNY":
        return None
    return ctx.deny(
        f"The limit is set in CNY but the amounts are in {currency}; convert them before the "
        "check.",
        f"该限额以人民币计，但金额币种为{currency}，请先折算为人民币再校验。",
    )
