# The Chinese messages use full-width punctuation, as written Chinese requires; RUF001 would
# have it replaced by ASCII look-alikes.
# ruff: noqa: RUF001
"""The `cn` rulebook's lending rules: origination caps, co-lending, eligibility, pricing and
checkout design (items 6, 7, 8 and 12 of section 11a of regulation.md).

The wealth, data and insurance rules (items 8 to 13) live in sibling modules; `cn/rules.py`
imports only `lending` and `payments`, so this module imports them to register their rules.

Two drafts for online microlenders were published and neither was enacted: the 2020 CBIRC/PBoC
draft (L1: the lower of 300,000 CNY and a third of the borrower's three-year average income)
and the 2024 NFRA draft (L2: 200,000 CNY of consumer loans per household). Each is its own rule
with its own parameters, and the parameter `lending.microloan_cap_regime` says which one the
platform applies on a date, so an overlay can switch between them without editing any rule.
"""

from __future__ import annotations

from decimal import Decimal

from tianping.rules.errors import RulebookError
from tianping.rules.model import Finding
from tianping.rules.registry import RuleContext
from tianping.rules.rulebooks.cn import (  # noqa: F401 - imported for their registrations
    data,
    insurance,
    wealth,
)
from tianping.rules.rulebooks.cn.lending_common import (
    LICENSED_LENDER_TYPES,
    amount_fact,
    bool_fact,
    choice_fact,
    cny,
    lender_type,
    non_cny_denial,
    percent,
    ratio_fact,
)
from tianping.rules.rulebooks.cn.ruleset import rules

MICROLOAN_CAP_REGIME = "lending.microloan_cap_regime"
MICROLOAN_REGIMES = frozenset({"draft_2020", "draft_2024", "off"})
PERSON_CAP_2020 = "lending.microloan_person_cap_draft_2020"
INCOME_DIVISOR_2020 = "lending.microloan_income_divisor_draft_2020"
ENTITY_CAP_2020 = "lending.microloan_entity_cap_draft_2020"
CONSUMER_CAP_2024 = "lending.microloan_consumer_cap_draft_2024"
BUSINESS_CAP_2024 = "lending.microloan_business_cap_draft_2024"
CONSUMER_FINANCE_CAP = "lending.consumer_finance_borrower_cap"
CO_LENDING_MIN_SHARE = "lending.co_lending_min_partner_share"
STUDENT_MICROLOAN_BAN = "lending.student_microloan_ban"
STUDENT_SECOND_SOURCE = "lending.student_loan_second_source_required"
INCOME_REQUIRED = "lending.borrower_income_required"
APR_DISCLOSURE = "lending.apr_disclosure_required"
LPR_ONE_YEAR = "lending.lpr_one_year"
LPR_MULTIPLE = "lending.private_lending_lpr_multiple"
PROTECTED_RATE_2015 = "lending.private_lending_protected_rate"
VOID_RATE_2015 = "lending.private_lending_void_rate"
LICENSED_CEILING = "lending.licensed_lender_apr_ceiling"
UPFRONT_DEDUCTION_BAN = "lending.upfront_interest_deduction_banned"
CREDIT_ENHANCEMENT_IN_APR = "lending.credit_enhancement_fees_in_apr_required"
CREDIT_PRESELECTION_BAN = "lending.credit_preselection_banned"

PARTY_TYPES = frozenset({"person", "entity"})
LOAN_PURPOSES = frozenset({"consumer", "business"})


def _microloan_regime(ctx: RuleContext) -> str:
    """The draft the platform applies to online microlenders on the event's date."""
    regime = str(ctx.param(MICROLOAN_CAP_REGIME))
    if regime not in MICROLOAN_REGIMES:
        # Only an overlay with a typo can get here; refusing loudly beats applying no cap.
        raise RulebookError(
            f"rule {ctx.rule_id}",
            MICROLOAN_CAP_REGIME,
            f"unknown regime {regime!r} (known: {', '.join(sorted(MICROLOAN_REGIMES))})",
        )
    return regime


# --------------------------------------------------------------------------- loan.originate


@rules.rule(
    id="cn.lending.microloan_borrower_cap_2020_draft",
    title="Online microloan balance cap per borrower (2020 draft)",
    area="lending",
    point="loan.originate",
    citation=(
        "CBIRC and PBoC, Interim Measures for Online Microlending Business (Draft), "
        "2020-11-02 (never enacted; applied while lending.microloan_cap_regime is draft_2020)"
    ),
    parameters=(MICROLOAN_CAP_REGIME, PERSON_CAP_2020, INCOME_DIVISOR_2020, ENTITY_CAP_2020),
    facts=(
        "lender_type",
        "party_type",
        "amount",
        "outstanding_balance",
        "annual_income_3y_avg",
        "currency",
    ),
)
def microloan_borrower_cap_2020_draft(ctx: RuleContext) -> Finding | None:
    """While the platform applies the 2020 draft (from 2020-11-02 until the regime parameter
    names another draft), an online microlender's loan balance to one natural person, this loan
    included, may not exceed the lower of 300,000 CNY and one third of the borrower's average
    annual income over the last three years; to a legal person or other organisation it may not
    exceed 1,000,000 CNY.
    """
    if _microloan_regime(ctx) != "draft_2020" or lender_type(ctx) != "microlender":
        return None
    wrong_currency = non_cny_denial(ctx)
    if wrong_currency is not None:
        return wrong_currency
    balance = amount_fact(ctx, "outstanding_balance") + amount_fact(ctx, "amount")
    if choice_fact(ctx, "party_type", PARTY_TYPES, default="person") == "entity":
        entity_cap: int = ctx.param(ENTITY_CAP_2020)
        if balance <= entity_cap:
            return None
        return ctx.deny(
            f"An online microlender's balance to one organisation would reach {cny(balance)}, "
            f"above the 2020 draft cap of {cny(entity_cap)}.",
            f"网络小额贷款对单户法人或其他组织的贷款余额将达到{cny(balance)}，"
            f"超过2020年征求意见稿上限{cny(entity_cap)}。",
        )
    person_cap: int = ctx.param(PERSON_CAP_2020)
    divisor: int = ctx.param(INCOME_DIVISOR_2020)
    income = amount_fact(ctx, "annual_income_3y_avg")
    # Multiplying the balance, rather than dividing the income, keeps "a third of the income"
    # exact in whole fen; the division below only shows the limit in the message.
    if balance <= person_cap and balance * divisor <= income:
        return None
    limit = min(person_cap, income // divisor)
    return ctx.deny(
        f"An online microlender's balance to this borrower would reach {cny(balance)}, above the "
        f"2020 draft cap of {cny(limit)}: the lower of {cny(person_cap)} and 1/{divisor} of the "
        f"borrower's three-year average annual income of {cny(income)}.",
        f"网络小额贷款对该自然人的贷款余额将达到{cny(balance)}，超过2020年征求意见稿上限"
        f"{cny(limit)}（{cny(person_cap)}与借款人最近3年年均收入{cny(income)}的{divisor}分之一"
        "两者孰低）。",
    )


@rules.rule(
    id="cn.lending.microloan_household_cap_2024_draft",
    title="Online microloan balance cap per household (2024 draft)",
    area="lending",
    point="loan.originate",
    citation=(
        "NFRA, Interim Measures for Supervision of Microfinance Companies (Draft), 2024-08-23 "
        "(never enacted; applied while lending.microloan_cap_regime is draft_2024)"
    ),
    parameters=(MICROLOAN_CAP_REGIME, CONSUMER_CAP_2024, BUSINESS_CAP_2024),
    facts=("lender_type", "loan_purpose", "amount", "household_outstanding_balance", "currency"),
)
def microloan_household_cap_2024_draft(ctx: RuleContext) -> Finding | None:
    """While the platform applies the 2024 draft (from 2024-08-23 until the regime parameter
    names another draft), an online microlender's balance of consumer loans to one household,
    this loan included, may not exceed 200,000 CNY, and its balance of production and business
    loans to one household may not exceed 10,000,000 CNY.
    """
    if _microloan_regime(ctx) != "draft_2024" or lender_type(ctx) != "microlender":
        return None
    wrong_currency = non_cny_denial(ctx)
    if wrong_currency is not None:
        return wrong_currency
    purpose = choice_fact(ctx, "loan_purpose", LOAN_PURPOSES)
    cap: int = ctx.param(CONSUMER_CAP_2024 if purpose == "consumer" else BUSINESS_CAP_2024)
    balance = amount_fact(ctx, "household_outstanding_balance") + amount_fact(ctx, "amount")
    if balance <= cap:
        return None
    kind_en = "consumer" if purpose == "consumer" else "production and business"
    kind_zh = "消费贷款" if purpose == "consumer" else "经营贷款"
    return ctx.deny(
        f"An online microlender's {kind_en} loan balance to this household would reach "
        f"{cny(balance)}, above the 2024 draft cap of {cny(cap)}.",
        f"网络小额贷款对该户的{kind_zh}余额将达到{cny(balance)}，"
        f"超过2024年征求意见稿上限{cny(cap)}。",
    )


@rules.rule(
    id="cn.lending.consumer_finance_borrower_cap",
    title="Consumer finance company balance cap per borrower",
    area="lending",
    point="loan.originate",
    citation="NFRA Order [2024] No. 4, Measures for Consumer Finance Companies (from 2024-04-18)",
    parameters=(CONSUMER_FINANCE_CAP,),
    facts=("lender_type", "amount", "outstanding_balance", "currency"),
)
def consumer_finance_borrower_cap(ctx: RuleContext) -> Finding | None:
    """From 2024-04-18 a consumer finance company's credit balance to a single borrower, this
    loan included, may not exceed 200,000 CNY (confidence U: the figure was not found in the
    retrieved text of NFRA Order [2024] No. 4 and must be checked before use).
    """
    if lender_type(ctx) != "consumer_finance":
        return None
    cap: int = ctx.param(CONSUMER_FINANCE_CAP)
    wrong_currency = non_cny_denial(ctx)
    if wrong_currency is not None:
        return wrong_currency
    balance = amount_fact(ctx, "outstanding_balance") + amount_fact(ctx, "amount")
    if balance <= cap:
        return None
    return ctx.deny(
        f"A consumer finance company's balance to this borrower would reach {cny(balance)}, "
        f"above the single-borrower cap of {cny(cap)}.",
        f"消费金融公司对该借款人的授信余额将达到{cny(balance)}，超过单户上限{cny(cap)}。",
    )


@rules.rule(
    id="cn.lending.co_lending_partner_share",
    title="Co-lending: the platform partner funds at least 30% of each loan",
    area="lending",
    point="loan.originate",
    citation=(
        "CBIRC Notice YBJBF [2021] No. 24 (from 2022-01-01), under CBIRC Order [2020] No. 9; "
        "same 30% in the 2020 online microlending draft"
    ),
    parameters=(CO_LENDING_MIN_SHARE,),
    facts=("co_lending", "partner_share"),
)
def co_lending_partner_share(ctx: RuleContext) -> Finding | None:
    """From 2022-01-01, in a loan funded jointly by a bank and a platform partner (such as an
    online microlender), the partner must fund at least 30% of the loan.
    """
    if not bool_fact(ctx, "co_lending", default=False):
        return None
    minimum: Decimal = ctx.param(CO_LENDING_MIN_SHARE)
    share = ratio_fact(ctx, "partner_share")
    if share >= minimum:
        return None
    return ctx.deny(
        f"The platform partner funds {percent(share)} of this co-lending loan; it must fund at "
        f"least {percent(minimum)}.",
        f"合作方在本笔联合贷款中的出资比例为{percent(share)}，不得低于{percent(minimum)}。",
    )


@rules.rule(
    id="cn.lending.student_microloan_ban",
    title="No online consumer loans from microlenders to college students",
    area="lending",
    point="loan.originate",
    citation="CBIRC, CAC, MoE, MPS and PBoC notice on online consumer loans to college students",
    parameters=(STUDENT_MICROLOAN_BAN,),
    facts=("lender_type", "party_type", "is_student", "loan_purpose"),
)
def student_microloan_ban(ctx: RuleContext) -> Finding | None:
    """From 2021-03-17 an online microlender may not make a consumer loan to a college
    student. A loan whose purpose is not stated is treated as a consumer loan.
    """
    if not ctx.param(STUDENT_MICROLOAN_BAN) or lender_type(ctx) != "microlender":
        return None
    if choice_fact(ctx, "party_type", PARTY_TYPES, default="person") != "person":
        return None
    if not bool_fact(ctx, "is_student"):
        return None
    if choice_fact(ctx, "loan_purpose", LOAN_PURPOSES, default="consumer") != "consumer":
        return None
    return ctx.deny(
        "Online microlenders may not make consumer loans to college students.",
        "小额贷款公司不得向大学生发放互联网消费贷款。",
    )


@rules.rule(
    id="cn.lending.student_loan_second_repayment_source",
    title="Loans to college students need a confirmed second repayment source",
    area="lending",
    point="loan.originate",
    citation="CBIRC, CAC, MoE, MPS and PBoC notice on online consumer loans to college students",
    parameters=(STUDENT_SECOND_SOURCE,),
    facts=("lender_type", "party_type", "is_student", "second_repayment_source_confirmed"),
)
def student_loan_second_repayment_source(ctx: RuleContext) -> Finding | None:
    """From 2021-03-17 a bank or consumer finance company may lend to a college student only
    after confirming a second repayment source, such as the student's parents or guardian.
    """
    if not ctx.param(STUDENT_SECOND_SOURCE):
        return None
    if lender_type(ctx) not in {"bank", "consumer_finance"}:
        return None
    if choice_fact(ctx, "party_type", PARTY_TYPES, default="person") != "person":
        return None
    if not bool_fact(ctx, "is_student"):
        return None
    if bool_fact(ctx, "second_repayment_source_confirmed", default=False):
        return None
    return ctx.deny(
        "A loan to a college student needs a confirmed second repayment source (parents or "
        "guardian).",
        "向大学生发放贷款须落实第二还款来源（父母或其他监护人）。",
    )


@rules.rule(
    id="cn.lending.borrower_income_required",
    title="No loans to borrowers without income",
    area="lending",
    point="loan.originate",
    citation="Internet-finance rectification office, Notice [2017] No. 141 (cash loans)",
    parameters=(INCOME_REQUIRED,),
    facts=("party_type", "has_income"),
)
def borrower_income_required(ctx: RuleContext) -> Finding | None:
    """From 2017-12-01 no loan may be made to a natural person who has no source of income."""
    if not ctx.param(INCOME_REQUIRED):
        return None
    if choice_fact(ctx, "party_type", PARTY_TYPES, default="person") != "person":
        return None
    if bool_fact(ctx, "has_income"):
        return None
    return ctx.deny(
        "Loans may not be made to borrowers without income.",
        "不得向无收入来源的借款人发放贷款。",
    )


# --------------------------------------------------------------------------- loan.price


@rules.rule(
    id="cn.lending.apr_disclosure",
    title="Annualised rate shown, and more prominent than any daily or monthly rate",
    area="lending",
    point="loan.price",
    citation="PBoC Announcement [2021] No. 3 (2021-03-31)",
    parameters=(APR_DISCLOSURE,),
    facts=("apr_disclosed", "apr_most_prominent"),
)
def apr_disclosure(ctx: RuleContext) -> Finding | None:
    """From 2021-03-31 every lender, and every platform marketing loans, must show the
    annualised rate (all interest and directly related fees over the principal actually
    outstanding) in its marketing and its contract, more prominently than any daily or monthly
    rate.
    """
    if not ctx.param(APR_DISCLOSURE):
        return None
    disclosed = bool_fact(ctx, "apr_disclosed")
    prominent = bool_fact(ctx, "apr_most_prominent")
    if disclosed and prominent:
        return None
    if not disclosed:
        return ctx.deny(
            "The annualised rate of this loan is not shown; it must be shown in the offer and "
            "the contract.",
            "本笔贷款未展示年化利率，营销页面和合同中必须明示年化利率。",
        )
    return ctx.deny(
        "The annualised rate must be shown more prominently than any daily or monthly rate.",
        "年化利率的展示必须比日利率、月利率更加醒目。",
    )


@rules.rule(
    id="cn.lending.private_lending_rate_cap_lpr",
    title="Unlicensed lenders: rate at most 4 x the one-year LPR",
    area="lending",
    point="loan.price",
    citation=(
        "SPC Provisions on Private Lending Cases, as amended by Fa Shi [2020] No. 6 and "
        "No. 17, Art. 25 (from 2020-08-20)"
    ),
    parameters=(LPR_ONE_YEAR, LPR_MULTIPLE),
    facts=("lender_type", "apr"),
)
def private_lending_rate_cap_lpr(ctx: RuleContext) -> Finding | None:
    """For contracts made from 2020-08-20, a lender that is not a licensed financial
    institution may not charge an annualised rate above four times the one-year loan prime rate
    in force on the contract date; interest above it is not protected by the courts.
    """
    if lender_type(ctx) != "unlicensed":
        return None
    lpr: Decimal = ctx.param(LPR_ONE_YEAR)
    multiple: int = ctx.param(LPR_MULTIPLE)
    apr = ratio_fact(ctx, "apr")
    cap = lpr * multiple
    if apr <= cap:
        return None
    return ctx.deny(
        f"The annualised rate of {percent(apr)} is above the private-lending cap of "
        f"{percent(cap)} ({multiple} x the one-year LPR of {percent(lpr)}).",
        f"年化利率{percent(apr)}超过民间借贷利率上限{percent(cap)}"
        f"（一年期贷款市场报价利率{percent(lpr)}的{multiple}倍）。",
    )


@rules.rule(
    id="cn.lending.private_lending_rate_cap_2015",
    title="Unlicensed lenders before 2020-08-20: 24% protected, above 36% void",
    area="lending",
    point="loan.price",
    citation="SPC Provisions on Private Lending Cases, Fa Shi [2015] No. 18, Art. 26",
    parameters=(PROTECTED_RATE_2015, VOID_RATE_2015),
    facts=("lender_type", "apr"),
)
def private_lending_rate_cap_2015(ctx: RuleContext) -> Finding | None:
    """For contracts made from 2015-09-01 to 2020-08-19, a lender that is not a licensed
    financial institution is protected by the courts up to an annualised rate of 24%; interest
    above 36% is void and must be refunded; between the two lines, interest already paid need
    not be returned but cannot be enforced. Above 36% the contract is refused; between 24% and
    36% it is flagged.
    """
    if lender_type(ctx) != "unlicensed":
        return None
    protected: Decimal = ctx.param(PROTECTED_RATE_2015)
    void: Decimal = ctx.param(VOID_RATE_2015)
    apr = ratio_fact(ctx, "apr")
    if apr > void:
        return ctx.deny(
            f"The annualised rate of {percent(apr)} is above {percent(void)}: interest above "
            "that line is void.",
            f"年化利率{percent(apr)}超过{percent(void)}，超过部分的利息约定无效。",
        )
    if apr > protected:
        return ctx.report(
            f"The annualised rate of {percent(apr)} is above the protected {percent(protected)} "
            f"and at most {percent(void)}: the courts will not enforce the excess.",
            f"年化利率{percent(apr)}超过受保护的{percent(protected)}、未超过{percent(void)}，"
            "超出部分法院不予支持。",
        )
    return None


@rules.rule(
    id="cn.lending.licensed_lender_rate_ceiling",
    title="Licensed lenders: all-in annualised cost ceiling",
    area="lending",
    point="loan.price",
    citation=(
        "Notice [2017] No. 141 (36% from 2017-12-01); from 2021-01-01 the 24% window guidance "
        "(confidence U) read with SPC Reply Fa Shi [2020] No. 27 and NFRA Notice [2025] No. 9"
    ),
    parameters=(LICENSED_CEILING,),
    facts=("lender_type", "apr"),
)
def licensed_lender_rate_ceiling(ctx: RuleContext) -> Finding | None:
    """A licensed lender (a bank, online microlender or consumer finance company) may not
    price a loan above the configured all-in annualised ceiling: 36% from 2017-12-01, when the
    cash-loan rectification tied costs to the courts' ceiling, and 24% from 2021-01-01, the
    window guidance that followed the SPC's reply that licensed lenders are outside the
    private-lending cap (the 24% is not a published rule: confidence U).
    """
    if lender_type(ctx) not in LICENSED_LENDER_TYPES:
        return None
    ceiling: Decimal = ctx.param(LICENSED_CEILING)
    apr = ratio_fact(ctx, "apr")
    if apr <= ceiling:
        return None
    return ctx.deny(
        f"The all-in annualised rate of {percent(apr)} is above the licensed-lender ceiling of "
        f"{percent(ceiling)}.",
        f"综合年化成本{percent(apr)}超过持牌机构上限{percent(ceiling)}。",
    )


@rules.rule(
    id="cn.lending.no_upfront_interest_deduction",
    title="No deduction of interest or fees from the principal up front",
    area="lending",
    point="loan.price",
    citation="Civil Code Art. 670; Notice [2017] No. 141 (from 2017-12-01)",
    parameters=(UPFRONT_DEDUCTION_BAN,),
    facts=("upfront_deduction",),
)
def no_upfront_interest_deduction(ctx: RuleContext) -> Finding | None:
    """From 2017-12-01 (and under Civil Code Art. 670 from 2021-01-01) interest and fees may not
    be deducted from the principal when the loan is paid out; the borrower receives the full
    principal, and interest runs on what was actually lent.
    """
    if not ctx.param(UPFRONT_DEDUCTION_BAN):
        return None
    if not bool_fact(ctx, "upfront_deduction"):
        return None
    return ctx.deny(
        "Interest or fees may not be deducted from the principal up front.",
        "借款的利息和费用不得预先在本金中扣除。",
    )


@rules.rule(
    id="cn.lending.credit_enhancement_fees_in_apr",
    title="Guarantee and credit-enhancement fees count in the all-in cost",
    area="lending",
    point="loan.price",
    citation="NFRA Notice [2025] No. 9 on loan facilitation (from 2025-10-01)",
    parameters=(CREDIT_ENHANCEMENT_IN_APR,),
    facts=("credit_enhancement_fees", "apr_includes_credit_enhancement_fees"),
)
def credit_enhancement_fees_in_apr(ctx: RuleContext) -> Finding | None:
    """From 2025-10-01 fees charged by guarantors and other credit-enhancement providers are
    part of the loan's comprehensive financing cost, so the annualised rate shown and checked
    against the ceilings must include them.
    """
    if not ctx.param(CREDIT_ENHANCEMENT_IN_APR):
        return None
    if not bool_fact(ctx, "credit_enhancement_fees", default=False):
        return None
    if bool_fact(ctx, "apr_includes_credit_enhancement_fees"):
        return None
    return ctx.deny(
        "The annualised rate leaves out the guarantee or credit-enhancement fees; they must be "
        "included in the all-in cost.",
        "年化利率未计入担保或增信费用，相关费用必须纳入综合融资成本。",
    )


# --------------------------------------------------------------------------- payment.authorize


@rules.rule(
    id="cn.lending.credit_not_preselected",
    title="Checkout must not pre-select a credit product as the funding source",
    area="lending",
    point="payment.authorize",
    citation="PBoC rectification requirements for Ant Group, 2021-04-12",
    parameters=(CREDIT_PRESELECTION_BAN,),
    facts=("funding_source", "preselected"),
)
def credit_not_preselected(ctx: RuleContext) -> Finding | None:
    """From 2021-04-12 a checkout may not pre-select or default to a credit line (such as
    Huabei or Jiebei) as the funding source; paying on credit needs its own explicit choice.

    Both facts are optional because other payment rules share this point: a command that does
    not say where the money comes from is not a credit-funded one.
    """
    if not ctx.param(CREDIT_PRESELECTION_BAN):
        return None
    if ctx.fact_or("funding_source", None) != "credit_line":
        return None
    if not bool_fact(ctx, "preselected", default=False):
        return None
    return ctx.deny(
        "A credit line may not be pre-selected as the funding source; the customer must choose "
        "it explicitly.",
        "不得将信贷产品默认选为支付方式，须由用户单独主动选择。",
    )
