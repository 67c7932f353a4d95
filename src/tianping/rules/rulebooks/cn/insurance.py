# The Chinese messages use full-width punctuation, as written Chinese requires; RUF001 would
# have it replaced by ASCII look-alikes.
# ruff: noqa: RUF001
"""The `cn` rulebook's insurance rules at `policy.sell`: only licensed institutions sell,
quote or compare, and long-term health and bank-channel policies carry a free-look period
(item 13 of section 11a of regulation.md).
"""

from __future__ import annotations

from tianping.rules.model import Finding
from tianping.rules.registry import RuleContext
from tianping.rules.rulebooks.cn.lending_common import bool_fact, count_fact
from tianping.rules.rulebooks.cn.ruleset import rules

UNLICENSED_SALES_BAN = "insurance.unlicensed_sales_banned"
LONG_TERM_MONTHS = "insurance.long_term_policy_months"
FREE_LOOK_HEALTH = "insurance.free_look_days_long_term_health"
FREE_LOOK_BANCASSURANCE = "insurance.free_look_days_bancassurance"

# The lines of personal insurance (人身保险) to which the bank-channel free-look period applies.
PERSONAL_LINES = frozenset({"life", "health", "accident"})


@rules.rule(
    id="cn.insurance.licensed_seller_only",
    title="Only licensed insurance institutions sell, quote or compare online",
    area="insurance",
    point="policy.sell",
    citation=(
        "CBIRC Order [2020] No. 13, Measures for the Supervision of Internet Insurance Business "
        "(from 2021-02-01)"
    ),
    parameters=(UNLICENSED_SALES_BAN,),
    facts=("seller_licensed", "quote_by_unlicensed_party"),
)
def licensed_seller_only(ctx: RuleContext) -> Finding | None:
    """From 2021-02-01 only licensed insurance institutions (insurers and licensed
    intermediaries, within their licence scope) may sell insurance online. An unlicensed
    platform may give technical support only: no product consultation, quotes, price or
    coverage comparisons, plan design, applications, underwriting or claims.
    """
    if not ctx.param(UNLICENSED_SALES_BAN):
        return None
    if not bool_fact(ctx, "seller_licensed"):
        return ctx.deny(
            "Only a licensed insurer or licensed intermediary, within its licence scope, may "
            "sell insurance online.",
            "只有持牌保险机构可在其许可范围内开展互联网保险业务。",
        )
    if bool_fact(ctx, "quote_by_unlicensed_party", default=False):
        return ctx.deny(
            "The quote or comparison for this sale came from an unlicensed party; unlicensed "
            "platforms may give technical support only.",
            "本次销售的报价或比价由非持牌机构提供，非持牌机构只能提供技术支持。",
        )
    return None


def _missing_free_look(
    ctx: RuleContext, required: int, what_en: str, what_zh: str
) -> Finding | None:
    offered = count_fact(ctx, "free_look_days")
    if offered >= required:
        return None
    if offered == 0:
        shown_en, shown_zh = "the sale discloses none", "本次销售未披露犹豫期"
    else:
        shown_en, shown_zh = f"the sale discloses {offered}", f"本次销售仅披露{offered}天"
    return ctx.deny(
        f"{what_en} needs a free-look period of at least {required} days; {shown_en}.",
        f"{what_zh}的犹豫期不得少于{required}天，{shown_zh}。",
    )


@rules.rule(
    id="cn.insurance.free_look_long_term_health",
    title="Long-term health insurance: free-look period disclosed",
    area="insurance",
    point="policy.sell",
    citation=(
        "CIRC Health Insurance Measures 2006 (10 days, from 2006-09-01); CBIRC Order [2019] "
        "No. 3, Health Insurance Measures (15 days, from 2019-12-01)"
    ),
    parameters=(LONG_TERM_MONTHS, FREE_LOOK_HEALTH),
    facts=("product_line", "policy_term_months", "free_look_days"),
)
def free_look_long_term_health(ctx: RuleContext) -> Finding | None:
    """A health insurance policy longer than one year must give the policyholder a free-look
    period, during which the policy can be cancelled for a full refund of premium less at most
    a small cost charge: at least 10 days from 2006-09-01 and at least 15 days from 2019-12-01.
    A sale that does not disclose a period that long is refused.
    """
    if ctx.fact("product_line") != "health":
        return None
    long_term: int = ctx.param(LONG_TERM_MONTHS)
    if count_fact(ctx, "policy_term_months") <= long_term:
        return None
    required: int = ctx.param(FREE_LOOK_HEALTH)
    return _missing_free_look(ctx, required, "Long-term health insurance", "长期健康保险")


@rules.rule(
    id="cn.insurance.free_look_bancassurance",
    title="Bank-channel personal insurance: free-look period disclosed",
    area="insurance",
    point="policy.sell",
    citation=(
        "CIRC and CBRC Notice on Further Regulating Sales Conduct in Commercial Banks' Agency "
        "Insurance Business (2014; from 2014-04-01)"
    ),
    parameters=(LONG_TERM_MONTHS, FREE_LOOK_BANCASSURANCE),
    facts=("sales_channel", "product_line", "policy_term_months", "free_look_days"),
)
def free_look_bancassurance(ctx: RuleContext) -> Finding | None:
    """From 2014-04-01 personal insurance (life, health, accident) longer than one year sold
    through a commercial bank must give a free-look period of 15 days. A sale that does not
    disclose a period that long is refused.
    """
    if ctx.fact("sales_channel") != "bank" or ctx.fact("product_line") not in PERSONAL_LINES:
        return None
    long_term: int = ctx.param(LONG_TERM_MONTHS)
    if count_fact(ctx, "policy_term_months") <= long_term:
        return None
    required: int = ctx.param(FREE_LOOK_BANCASSURANCE)
    return _missing_free_look(ctx, required, "Bank-channel personal insurance", "银行代理人身保险")
