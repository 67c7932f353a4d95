# The Chinese messages use full-width punctuation, as written Chinese requires; RUF001 would
# have it replaced by ASCII look-alikes.
# ruff: noqa: RUF001
"""The `cn` rulebook's wealth rules at `fund.sell`: suitability matching, private-product
qualified investors and minimum tickets, and the ban on promising principal or returns (item 9
of section 11a of regulation.md).
"""

from __future__ import annotations

from tianping.rules.errors import MissingFact, RulebookError
from tianping.rules.model import Finding
from tianping.rules.registry import RuleContext
from tianping.rules.rulebooks.cn.lending_common import (
    amount_fact,
    bool_fact,
    choice_fact,
    cny,
    count_fact,
    names,
    non_cny_denial,
)
from tianping.rules.rulebooks.cn.ruleset import rules

SUITABILITY_MAX_RISK = "wealth.suitability_max_product_risk"
SUITABILITY_NO_OVERRIDE = "wealth.suitability_no_override_classes"
QUALIFIED_EXPERIENCE = "wealth.qualified_min_experience_years"
QUALIFIED_NET_FINANCIAL_ASSETS = "wealth.qualified_household_net_financial_assets"
QUALIFIED_FINANCIAL_ASSETS = "wealth.qualified_household_financial_assets"
QUALIFIED_INCOME = "wealth.qualified_average_income_3y"
QUALIFIED_ENTITY_NET_ASSETS = "wealth.qualified_entity_net_assets"
TICKET_FIXED_INCOME = "wealth.private_min_ticket_fixed_income"
TICKET_MIXED = "wealth.private_min_ticket_mixed"
TICKET_EQUITY = "wealth.private_min_ticket_equity_commodity_derivatives"
GUARANTEE_PROMISE_BAN = "wealth.guaranteed_return_promise_banned"

PARTY_TYPES = frozenset({"person", "entity"})
PRODUCT_CATEGORIES = frozenset({"fixed_income", "mixed", "equity", "commodity", "derivatives"})
_TICKET_BY_CATEGORY = {
    "fixed_income": TICKET_FIXED_INCOME,
    "mixed": TICKET_MIXED,
    "equity": TICKET_EQUITY,
    "commodity": TICKET_EQUITY,
    "derivatives": TICKET_EQUITY,
}
_RISK_LEVELS = {f"R{level}": level for level in range(1, 6)}


def _product_risk(ctx: RuleContext) -> int:
    level = _RISK_LEVELS.get(str(ctx.fact("product_risk")))
    if level is None:
        raise MissingFact(f"rule {ctx.rule_id} needs the fact 'product_risk' as one of R1..R5")
    return level


def _highest_risk(ctx: RuleContext, investor_class: str, allowed: str) -> int:
    level = _RISK_LEVELS.get(allowed)
    if level is None:
        # Only an overlay with a typo in the table can get here.
        raise RulebookError(
            f"rule {ctx.rule_id}",
            f"{SUITABILITY_MAX_RISK}.{investor_class}",
            f"not a product risk level (R1..R5): {allowed!r}",
        )
    return level


@rules.rule(
    id="cn.wealth.suitability_match",
    title="Suitability: product risk level within the investor's class",
    area="wealth",
    point="fund.sell",
    citation=(
        "CSRC Order No. 130, Measures for Suitability Management of Securities and Futures "
        "Investors, Arts. 18-21 (from 2017-07-01)"
    ),
    parameters=(SUITABILITY_MAX_RISK, SUITABILITY_NO_OVERRIDE),
    facts=("investor_class", "product_risk", "proactive_recommendation"),
)
def suitability_match(ctx: RuleContext) -> Finding | None:
    """From 2017-07-01 a product may be sold to an investor when its risk level (R1 to R5) is
    at most the highest level the investor's class allows (C1-lowest and C1: R1; C2: R2; C3:
    R3; C4: R4; C5 and professional investors: R5). Above that level the firm may not recommend
    the product; an ordinary investor who asks for it anyway must receive a special written risk
    warning and confirm it before the sale, except a C1-lowest investor, to whom nothing above
    R1 may ever be sold.
    """
    table: dict[str, str] = ctx.param(SUITABILITY_MAX_RISK)
    investor_class = str(ctx.fact("investor_class"))
    level = _product_risk(ctx)
    allowed = table.get(investor_class)
    if allowed is None:
        return ctx.deny(
            f"The investor has no valid risk class ({investor_class!r}); assess the investor "
            "before any sale.",
            f"投资者无有效风险承受能力等级（{investor_class}），销售前须完成风险测评。",
        )
    maximum = _highest_risk(ctx, investor_class, allowed)
    if level <= maximum:
        return None
    product = f"R{level}"
    if investor_class in names(ctx.param(SUITABILITY_NO_OVERRIDE)):
        return ctx.deny(
            f"A {product} product may never be sold to a {investor_class} investor, who may "
            f"buy only up to {allowed}.",
            f"{product}级产品不得向{investor_class}类投资者销售，该类投资者仅可购买{allowed}级"
            "及以下产品。",
        )
    if bool_fact(ctx, "proactive_recommendation", default=False):
        return ctx.deny(
            f"The firm may not recommend a {product} product to a {investor_class} investor "
            f"(suitable up to {allowed}).",
            f"不得主动向{investor_class}类投资者推介{product}级产品（适当性上限{allowed}）。",
        )
    return ctx.confirm(
        f"The {product} product is above the {investor_class} investor's level of {allowed}: "
        "give the special written risk warning and obtain the investor's confirmation.",
        f"{product}级产品高于{investor_class}类投资者的适当性等级{allowed}，"
        "须出具专门的书面风险警示并经投资者确认。",
    )


@rules.rule(
    id="cn.wealth.private_product_qualified_investor",
    title="Private asset-management products only for qualified investors",
    area="wealth",
    point="fund.sell",
    citation="PBoC, CBIRC, CSRC, SAFE, Yinfa [2018] No. 106, Art. 5 (from 2018-04-27)",
    parameters=(
        QUALIFIED_EXPERIENCE,
        QUALIFIED_NET_FINANCIAL_ASSETS,
        QUALIFIED_FINANCIAL_ASSETS,
        QUALIFIED_INCOME,
        QUALIFIED_ENTITY_NET_ASSETS,
    ),
    facts=(
        "private_product",
        "party_type",
        "investment_experience_years",
        "household_net_financial_assets",
        "household_financial_assets",
        "annual_income_3y_avg",
        "net_assets",
        "currency",
    ),
)
def private_product_qualified_investor(ctx: RuleContext) -> Finding | None:
    """From 2018-04-27 a private asset-management product may be sold only to a qualified
    investor: a natural person with at least two years of investment experience and either
    household net financial assets of at least 3,000,000 CNY, household financial assets of at
    least 5,000,000 CNY, or an average annual income of at least 400,000 CNY over the last three
    years; or an entity with net assets of at least 10,000,000 CNY. A test the caller gives no
    figure for counts as not met.
    """
    if not bool_fact(ctx, "private_product", default=False):
        return None
    wrong_currency = non_cny_denial(ctx)
    if wrong_currency is not None:
        return wrong_currency
    if choice_fact(ctx, "party_type", PARTY_TYPES, default="person") == "entity":
        entity_minimum: int = ctx.param(QUALIFIED_ENTITY_NET_ASSETS)
        net_assets = amount_fact(ctx, "net_assets", default=0)
        if net_assets >= entity_minimum:
            return None
        return ctx.deny(
            f"Private products need an entity with net assets of at least {cny(entity_minimum)}; "
            f"this one has {cny(net_assets)}.",
            f"私募资产管理产品的机构投资者净资产不得低于{cny(entity_minimum)}，"
            f"该机构为{cny(net_assets)}。",
        )
    years_needed: int = ctx.param(QUALIFIED_EXPERIENCE)
    net_minimum: int = ctx.param(QUALIFIED_NET_FINANCIAL_ASSETS)
    assets_minimum: int = ctx.param(QUALIFIED_FINANCIAL_ASSETS)
    income_minimum: int = ctx.param(QUALIFIED_INCOME)
    years = count_fact(ctx, "investment_experience_years")
    net = amount_fact(ctx, "household_net_financial_assets", default=0)
    assets = amount_fact(ctx, "household_financial_assets", default=0)
    income = amount_fact(ctx, "annual_income_3y_avg", default=0)
    wealthy = net >= net_minimum or assets >= assets_minimum or income >= income_minimum
    if years >= years_needed and wealthy:
        return None
    return ctx.deny(
        f"Private products are for qualified investors only: at least {years_needed} years of "
        f"investment experience (this investor has {years}) and household net financial assets "
        f"of at least {cny(net_minimum)}, household financial assets of at least "
        f"{cny(assets_minimum)} or a three-year average income of at least {cny(income_minimum)} "
        f"(this investor: {cny(net)}, {cny(assets)}, {cny(income)}).",
        f"私募产品仅面向合格投资者：投资经历不少于{years_needed}年（该投资者{years}年），且家庭"
        f"金融净资产不低于{cny(net_minimum)}、家庭金融资产不低于{cny(assets_minimum)}或近3年"
        f"年均收入不低于{cny(income_minimum)}（该投资者分别为{cny(net)}、{cny(assets)}、"
        f"{cny(income)}）。",
    )


@rules.rule(
    id="cn.wealth.private_product_minimum_ticket",
    title="Private asset-management products: minimum investment per product",
    area="wealth",
    point="fund.sell",
    citation="PBoC, CBIRC, CSRC, SAFE, Yinfa [2018] No. 106, Art. 5 (from 2018-04-27)",
    parameters=(TICKET_FIXED_INCOME, TICKET_MIXED, TICKET_EQUITY),
    facts=("private_product", "product_category", "amount", "product_holding", "currency"),
)
def private_product_minimum_ticket(ctx: RuleContext) -> Finding | None:
    """From 2018-04-27 a qualified investor's investment in a single private product must be at
    least 300,000 CNY for a fixed-income product, 400,000 CNY for a mixed product and
    1,000,000 CNY for an equity, commodity or derivatives product. What the investor already
    holds in the product counts toward the minimum.
    """
    if not bool_fact(ctx, "private_product", default=False):
        return None
    category = choice_fact(ctx, "product_category", PRODUCT_CATEGORIES)
    minimum: int = ctx.param(_TICKET_BY_CATEGORY[category])
    wrong_currency = non_cny_denial(ctx)
    if wrong_currency is not None:
        return wrong_currency
    total = amount_fact(ctx, "amount") + amount_fact(ctx, "product_holding", default=0)
    if total >= minimum:
        return None
    return ctx.deny(
        f"An investment of {cny(total)} in this private {category} product is below the minimum "
        f"of {cny(minimum)}.",
        f"投资该私募产品（{category}类）的金额{cny(total)}低于最低投资额{cny(minimum)}。",
    )


@rules.rule(
    id="cn.wealth.no_guaranteed_return",
    title="No promise of guaranteed principal or return",
    area="wealth",
    point="fund.sell",
    citation="PBoC, CBIRC, CSRC, SAFE, Yinfa [2018] No. 106 (from 2018-04-27)",
    parameters=(GUARANTEE_PROMISE_BAN,),
    facts=("promises_guaranteed_return",),
)
def no_guaranteed_return(ctx: RuleContext) -> Finding | None:
    """From 2018-04-27 an asset-management product may not be sold with a promise, shown or
    implied, that its principal or return is guaranteed.
    """
    if not ctx.param(GUARANTEE_PROMISE_BAN):
        return None
    if not bool_fact(ctx, "promises_guaranteed_return", default=False):
        return None
    return ctx.deny(
        "The sale may not promise guaranteed principal or return.",
        "资产管理产品销售不得承诺保本保收益。",
    )
