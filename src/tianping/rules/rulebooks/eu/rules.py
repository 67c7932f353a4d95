"""The `eu` rulebook: PSD2 strong customer authentication with its exemptions (G1 to G4), GDPR
Art. 22 automated decisions (G5) and CCD2 Art. 18 (G6), from section 10 of regulation.md.

It exists to show that the engine is jurisdiction-neutral: the same registry, parameter format,
overlays and scenarios carry a rulebook whose logic runs the other way round from `cn`'s. China
caps amounts by authentication strength; PSD2 demands strong authentication by default and
lists the payments that may go without it.

How the exemptions fit independent rules: the caller says which exemption it asks for (the fact
`sca_exemption`, as an acquirer flags an exemption request). `eu.payments.sca_required` steps
up any payment authenticated with too few factors that asks for no exemption this rulebook
models; each exemption rule steps up a payment that asks for its exemption but does not qualify.
A payment that qualifies for the exemption it asks for draws no finding at all.

Amounts are integer euro cents; the exemption thresholds are euro amounts, so a payment in
another currency (the fact `currency`, EUR when absent) never qualifies for an amount-based
exemption here: converting it would need an exchange rate the engine does not have, and the
caller that has one converts before asking.
"""

# Chinese messages use full-width punctuation, as Chinese text is written; ruff's
# RUF001 would have them replaced by ASCII look-alikes.
# ruff: noqa: RUF001

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tianping.ledger.money import Currency, Money
from tianping.rules.model import Finding
from tianping.rules.registry import RuleContext, RuleSet

rules = RuleSet()

_EUR = Currency.of("EUR")
# The exemptions this rulebook models; the RTS has others (Arts. 12 to 15 and 17) that a caller
# may not claim here, so `sca_required` steps those up rather than trusting them blindly.
MODELLED_EXEMPTIONS = ("contactless", "low_value", "tra")


def _eur(amount_minor: int) -> str:
    return f"EUR {Money(amount_minor, _EUR).format()}"


def _percent(ratio: Decimal) -> str:
    return f"{format((ratio * 100).normalize(), 'f')}%"


def _exemption(ctx: RuleContext) -> str:
    return str(ctx.fact_or("sca_exemption", "none"))


def _strongly_authenticated(ctx: RuleContext) -> bool:
    """Whether the payment already carries strong customer authentication."""
    factors: int = ctx.fact("auth_factors")
    required: int = ctx.param("payments.sca_min_factors")
    return factors >= required


def _in_euro(ctx: RuleContext) -> bool:
    return bool(ctx.fact_or("currency", "EUR") == "EUR")


# -- G1: strong customer authentication by default ------------------------------------------


@rules.rule(
    id="eu.payments.sca_required",
    title="Strong customer authentication unless an exemption applies",
    area="payments",
    point="payment.authorize",
    citation="PSD2 (EU) 2015/2366 Art. 97(1); RTS (EU) 2018/389 Arts. 4 and 38(2)",
    parameters=("payments.sca_min_factors",),
    facts=("auth_factors", "sca_exemption"),
)
def sca_required(ctx: RuleContext) -> Finding | None:
    """A payment service provider shall apply strong customer authentication, at least two
    independent elements of knowledge, possession and inherence, when the payer initiates an
    electronic payment (PSD2 Art. 97(1)), unless one of the exemptions of the RTS applies.
    In force from 2019-09-14, the date the RTS applied.

    A payment authenticated with fewer factors that claims no exemption, or claims one this
    rulebook does not model, must step up to strong authentication. A payment that claims a
    modelled exemption is judged by that exemption's own rule.
    """
    if _strongly_authenticated(ctx):
        return None
    required = ctx.param("payments.sca_min_factors")
    factors = ctx.fact("auth_factors")
    exemption = _exemption(ctx)
    if exemption in MODELLED_EXEMPTIONS:
        return None
    if exemption == "none":
        return ctx.step_up(
            f"Strong customer authentication needs at least {required} factors; this payment "
            f"has {factors} and claims no exemption (PSD2 Art. 97).",
            f"强客户认证至少需要 {required} 个要素；本笔支付仅有 {factors} 个，且未申请任何豁免"
            f"（PSD2 第97条）。",
        )
    return ctx.step_up(
        f"Strong customer authentication needs at least {required} factors; this payment has "
        f"{factors}, and the exemption {exemption!r} is not one this rulebook can check.",
        f"强客户认证至少需要 {required} 个要素；本笔支付仅有 {factors} 个，"
        f"且所申请的豁免 {exemption!r} 不在本规则集可核验的范围内。",
    )


@rules.rule(
    id="eu.payments.failed_attempts_block",
    title="Block after five consecutive failed authentication attempts",
    area="payments",
    point="payment.authorize",
    citation="RTS (EU) 2018/389 Art. 4(3)(d)",
    parameters=("payments.sca_failed_attempts_max",),
    facts=("failed_attempts",),
)
def failed_attempts_block(ctx: RuleContext) -> Finding | None:
    """The number of failed authentication attempts that can take place consecutively shall
    not exceed five; when it is reached, the actions of the payment instrument are blocked
    (RTS Art. 4(3)(d)). In force from 2019-09-14.

    `failed_attempts` counts the consecutive failures before this attempt, so a fifth
    failure already recorded blocks the sixth attempt.
    """
    limit: int = ctx.param("payments.sca_failed_attempts_max")
    failed: int = ctx.fact("failed_attempts")
    if failed < limit:
        return None
    return ctx.deny(
        f"Blocked: {failed} consecutive failed authentication attempts reach the limit of "
        f"{limit} (RTS Art. 4(3)(d)).",
        f"已冻结：连续 {failed} 次认证失败，达到 {limit} 次上限（RTS 第4条第3款(d)项）。",
    )


@dataclass(frozen=True, slots=True)
class _CountedExemption:
    """One of the two exemptions that cap a single payment and count the payments since the
    last strong authentication (RTS Arts. 11 and 16). They differ only in their channel,
    their parameters and their wording, so one check serves both.

    The `over_single` messages take `amount` and `limit`; the `over_series` ones take `total`
    and `count`. Each message pair is (English, Chinese).
    """

    exemption: str
    channel: str
    parameter_prefix: str
    wrong_channel: tuple[str, str]
    not_euro: tuple[str, str]
    over_single: tuple[str, str]
    over_series: tuple[str, str]


def _check_counted_exemption(ctx: RuleContext, spec: _CountedExemption) -> Finding | None:
    """Step up unless the requested exemption applies.

    The counters are those before this payment, and this payment is counted in: the
    exemption holds while the total with it stays within the cumulative cap, or while it is
    at most the last allowed in a row. The issuer tracks one counter or the other, and the
    article is satisfied by either, so the exemption holds when any counter the caller
    supplies is within its limit.
    """
    if _exemption(ctx) != spec.exemption or _strongly_authenticated(ctx):
        return None
    single_max: int = ctx.param(f"{spec.parameter_prefix}_single_max")
    cumulative_max: int = ctx.param(f"{spec.parameter_prefix}_cumulative_max")
    consecutive_max: int = ctx.param(f"{spec.parameter_prefix}_consecutive_max")
    if ctx.fact("channel") != spec.channel:
        return ctx.step_up(*spec.wrong_channel)
    if not _in_euro(ctx):
        return ctx.step_up(*spec.not_euro)
    amount: int = ctx.fact("amount")
    if amount > single_max:
        english, chinese = spec.over_single
        return ctx.step_up(
            english.format(amount=_eur(amount), limit=_eur(single_max)),
            chinese.format(amount=_eur(amount), limit=_eur(single_max)),
        )
    if ctx.has_fact("sca_cumulative_since_last"):
        total = ctx.fact("sca_cumulative_since_last") + amount
        if total <= cumulative_max:
            return None
    if ctx.has_fact("sca_consecutive_since_last"):
        position = ctx.fact("sca_consecutive_since_last") + 1
        if position <= consecutive_max:
            return None
    english, chinese = spec.over_series
    return ctx.step_up(
        english.format(total=_eur(cumulative_max), count=consecutive_max),
        chinese.format(total=_eur(cumulative_max), count=consecutive_max),
    )


_SCA_REQUIRED_EN = "strong customer authentication is required."
_SCA_REQUIRED_ZH = "须进行强客户认证。"

_CONTACTLESS = _CountedExemption(
    exemption="contactless",
    channel="contactless",
    parameter_prefix="payments.contactless",
    wrong_channel=(
        "The contactless exemption applies only to contactless payments at a point of sale; "
        + _SCA_REQUIRED_EN,
        "非接触豁免仅适用于销售点的非接触支付；" + _SCA_REQUIRED_ZH,
    ),
    not_euro=(
        "The contactless exemption limits are in euro and this payment is not; " + _SCA_REQUIRED_EN,
        "非接触豁免限额以欧元计，本笔支付并非欧元；" + _SCA_REQUIRED_ZH,
    ),
    over_single=(
        "Contactless payment of {amount} is over the {limit} exemption limit; " + _SCA_REQUIRED_EN,
        "非接触支付金额 {amount} 超过 {limit} 的豁免限额；" + _SCA_REQUIRED_ZH,
    ),
    over_series=(
        "Contactless payments since the last strong authentication would exceed {total} in "
        "total or {count} in a row; " + _SCA_REQUIRED_EN,
        "自上次强认证以来的非接触支付将超过累计 {total} 或连续 {count} 笔；" + _SCA_REQUIRED_ZH,
    ),
)

_LOW_VALUE = _CountedExemption(
    exemption="low_value",
    channel="remote",
    parameter_prefix="payments.remote_low_value",
    wrong_channel=(
        "The low-value exemption applies only to remote payments; " + _SCA_REQUIRED_EN,
        "小额豁免仅适用于远程支付；" + _SCA_REQUIRED_ZH,
    ),
    not_euro=(
        "The low-value exemption limits are in euro and this payment is not; " + _SCA_REQUIRED_EN,
        "小额豁免限额以欧元计，本笔支付并非欧元；" + _SCA_REQUIRED_ZH,
    ),
    over_single=(
        "Remote payment of {amount} is over the {limit} low-value limit; " + _SCA_REQUIRED_EN,
        "远程支付金额 {amount} 超过 {limit} 的小额豁免限额；" + _SCA_REQUIRED_ZH,
    ),
    over_series=(
        "Low-value remote payments since the last strong authentication would exceed {total} "
        "in total or {count} in a row; " + _SCA_REQUIRED_EN,
        "自上次强认证以来的小额远程支付将超过累计 {total} 或连续 {count} 笔；" + _SCA_REQUIRED_ZH,
    ),
)


# -- G2: contactless payments at a point of sale ----------------------------------------------


@rules.rule(
    id="eu.payments.contactless_exemption",
    title="Contactless payment exemption (EUR 50 single, EUR 150 or 5 in a row)",
    area="payments",
    point="payment.authorize",
    citation="RTS (EU) 2018/389 Art. 11",
    parameters=(
        "payments.sca_min_factors",
        "payments.contactless_single_max",
        "payments.contactless_cumulative_max",
        "payments.contactless_consecutive_max",
    ),
    facts=(
        "sca_exemption",
        "auth_factors",
        "channel",
        "currency",
        "amount",
        "sca_cumulative_since_last",
        "sca_consecutive_since_last",
    ),
)
def contactless_exemption(ctx: RuleContext) -> Finding | None:
    """A provider may skip strong customer authentication for a contactless payment at a point
    of sale when the payment is at most EUR 50 and either the cumulative amount of contactless
    payments since the last strong authentication does not exceed EUR 150 or there have been
    at most five such payments in a row (RTS Art. 11). In force from 2019-09-14.

    The counters are those before this payment, and this payment is counted in: the exemption
    holds while the total with it stays within EUR 150, or while it is at most the fifth in a
    row. The issuer tracks one counter or the other, and the article is satisfied by either,
    so the exemption holds when any counter the caller supplies is within its limit.
    """
    return _check_counted_exemption(ctx, _CONTACTLESS)


# -- G3: low-value remote payments ------------------------------------------------------------


@rules.rule(
    id="eu.payments.remote_low_value_exemption",
    title="Low-value remote payment exemption (EUR 30 single, EUR 100 or 5 in a row)",
    area="payments",
    point="payment.authorize",
    citation="RTS (EU) 2018/389 Art. 16",
    parameters=(
        "payments.sca_min_factors",
        "payments.remote_low_value_single_max",
        "payments.remote_low_value_cumulative_max",
        "payments.remote_low_value_consecutive_max",
    ),
    facts=(
        "sca_exemption",
        "auth_factors",
        "channel",
        "currency",
        "amount",
        "sca_cumulative_since_last",
        "sca_consecutive_since_last",
    ),
)
def remote_low_value_exemption(ctx: RuleContext) -> Finding | None:
    """A provider may skip strong customer authentication for a remote electronic payment of
    at most EUR 30 when either the cumulative amount of such payments since the last strong
    authentication does not exceed EUR 100 or there have been at most five such payments in
    a row (RTS Art. 16). In force from 2019-09-14.

    Counters are counted as for the contactless exemption: this payment is included, and any
    supplied counter within its limit satisfies the article.
    """
    return _check_counted_exemption(ctx, _LOW_VALUE)


# -- G4: transaction-risk analysis ------------------------------------------------------------

_TRA_RATES = {
    "card": (
        "payments.tra_card_fraud_rate_band_1",
        "payments.tra_card_fraud_rate_band_2",
        "payments.tra_card_fraud_rate_band_3",
    ),
    "credit_transfer": (
        "payments.tra_credit_transfer_fraud_rate_band_1",
        "payments.tra_credit_transfer_fraud_rate_band_2",
        "payments.tra_credit_transfer_fraud_rate_band_3",
    ),
}
_TRA_BANDS = ("payments.tra_band_1_max", "payments.tra_band_2_max", "payments.tra_band_3_max")


@rules.rule(
    id="eu.payments.tra_exemption",
    title="Transaction-risk-analysis exemption by the provider's fraud rate",
    area="payments",
    point="payment.authorize",
    citation="RTS (EU) 2018/389 Art. 18 and Annex",
    parameters=(
        "payments.sca_min_factors",
        *_TRA_BANDS,
        *_TRA_RATES["card"],
        *_TRA_RATES["credit_transfer"],
    ),
    facts=(
        "sca_exemption",
        "auth_factors",
        "channel",
        "currency",
        "amount",
        "payment_type",
        "fraud_rate",
        "tra_low_risk",
    ),
)
def tra_exemption(ctx: RuleContext) -> Finding | None:
    """A provider may skip strong customer authentication for a remote payment that its
    real-time transaction-risk analysis finds low-risk, when the amount is within the
    exemption threshold value its fraud rate qualifies for (RTS Art. 18 and Annex): remote
    card payments up to EUR 100 at a fraud rate of at most 0.13 %, EUR 250 at 0.06 % and
    EUR 500 at 0.01 %; credit transfers up to EUR 100 at 0.015 %, EUR 250 at 0.01 % and
    EUR 500 at 0.005 %. In force from 2019-09-14.

    `fraud_rate` is the provider's fraud rate for the payment type over the reference period
    (Art. 19), as a ratio; `tra_low_risk` is the analysis's verdict on this payment (no
    abnormal spending, unusual location or other risk factor of Art. 18(2)(c)).
    """
    if _exemption(ctx) != "tra" or _strongly_authenticated(ctx):
        return None
    payment_type = ctx.fact("payment_type")
    if payment_type not in _TRA_RATES:
        return ctx.step_up(
            f"Transaction-risk analysis has reference fraud rates for card payments and "
            f"credit transfers only, not {payment_type!r}; strong customer authentication "
            "is required.",
            f"交易风险分析仅对银行卡支付和贷记转账设有参考欺诈率，不适用于 {payment_type!r}；"
            "须进行强客户认证。",
        )
    bands: list[int] = [ctx.param(name) for name in _TRA_BANDS]
    reference_rates: list[Decimal] = [ctx.param(name) for name in _TRA_RATES[payment_type]]
    if ctx.fact("channel") != "remote":
        return ctx.step_up(
            "The transaction-risk-analysis exemption applies only to remote payments; strong "
            "customer authentication is required.",
            "交易风险分析豁免仅适用于远程支付；须进行强客户认证。",
        )
    if not _in_euro(ctx):
        return ctx.step_up(
            "The transaction-risk-analysis thresholds are in euro and this payment is not; "
            "strong customer authentication is required.",
            "交易风险分析豁免门槛以欧元计，本笔支付并非欧元；须进行强客户认证。",
        )
    if not ctx.fact("tra_low_risk"):
        return ctx.step_up(
            "Real-time transaction-risk analysis flagged this payment; strong customer "
            "authentication is required.",
            "实时交易风险分析标记了本笔支付；须进行强客户认证。",
        )
    fraud_rate: Decimal = ctx.fact("fraud_rate")
    threshold = None
    for band_max, reference_rate in zip(bands, reference_rates, strict=True):
        if fraud_rate <= reference_rate:
            threshold = band_max
    if threshold is None:
        return ctx.step_up(
            f"A fraud rate of {_percent(fraud_rate)} is above the {_percent(reference_rates[0])} "
            "reference rate of the lowest band; strong customer authentication is required.",
            f"欺诈率 {_percent(fraud_rate)} 高于最低档的参考欺诈率 {_percent(reference_rates[0])}；"
            "须进行强客户认证。",
        )
    amount: int = ctx.fact("amount")
    if amount > threshold:
        return ctx.step_up(
            f"Payment of {_eur(amount)} is over the {_eur(threshold)} threshold that a fraud "
            f"rate of {_percent(fraud_rate)} allows; strong customer authentication is required.",
            f"支付金额 {_eur(amount)} 超过欺诈率 {_percent(fraud_rate)} 所允许的 {_eur(threshold)} "
            "门槛；须进行强客户认证。",
        )
    return None


# -- G5: GDPR Art. 22, solely automated decisions ---------------------------------------------


def _names(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


@rules.rule(
    id="eu.data.automated_decision_basis",
    title="Solely automated credit decisions need a basis and carry the right to human review",
    area="data",
    point="loan.originate",
    citation="GDPR (EU) 2016/679 Art. 22(1)-(3); CJEU C-634/21 SCHUFA (2023-12-07)",
    parameters=("data.automated_decision_bases",),
    facts=("solely_automated", "significant_effect", "legal_basis"),
)
def automated_decision_basis(ctx: RuleContext) -> Finding | None:
    """The data subject has the right not to be subject to a decision based solely on
    automated processing that produces legal effects or similarly significantly affects them
    (GDPR Art. 22(1)); such a decision is allowed only when necessary for a contract,
    authorised by law, or based on explicit consent (Art. 22(2)), and then the data subject
    keeps the right to obtain human intervention, to express their point of view and to
    contest the decision (Art. 22(3)). A credit score that plays a determining role in a loan
    decision is such a decision (CJEU C-634/21 SCHUFA). In force from 2018-05-25.

    Without a basis the loan decision is refused. With one, the applicant must be told of the
    right to human intervention before the decision stands, which is why the finding is a
    confirmation rather than a silent allow. `significant_effect` defaults to true because
    a decision on a loan application has such an effect (recital 71).
    """
    bases = _names(ctx.param("data.automated_decision_bases"))
    if not ctx.fact("solely_automated") or not ctx.fact_or("significant_effect", True):
        return None
    basis = str(ctx.fact_or("legal_basis", "none"))
    if basis not in bases:
        return ctx.deny(
            f"A solely automated credit decision needs a basis under GDPR Art. 22(2) "
            f"({', '.join(sorted(bases))}); {basis!r} is none of them.",
            f"完全自动化的信贷决定须具备 GDPR 第22条第2款规定的依据（{', '.join(sorted(bases))}）；"
            f"{basis!r} 不属其中。",
        )
    return ctx.confirm(
        f"Solely automated credit decision on the basis {basis!r}: the applicant has the right "
        "to obtain human intervention, to express their point of view and to contest the "
        "decision (GDPR Art. 22(3)).",
        f"基于 {basis!r} 的完全自动化信贷决定：申请人有权要求人工干预、表达意见并对决定提出异议"
        "（GDPR 第22条第3款）。",
    )


@rules.rule(
    id="eu.data.automated_decision_special_categories",
    title="No solely automated decision on special-category data without explicit consent",
    area="data",
    point="loan.originate",
    citation="GDPR (EU) 2016/679 Art. 22(4) with Art. 9(2)(a) and (g)",
    parameters=("data.special_category_automated_bases",),
    facts=("solely_automated", "special_category_data", "special_category_basis"),
)
def automated_decision_special_categories(ctx: RuleContext) -> Finding | None:
    """A solely automated decision shall not be based on special categories of personal data
    (health, ethnic origin, religion, biometrics and the others of Art. 9(1)) unless the data
    subject gave explicit consent or the processing is necessary for reasons of substantial
    public interest, with suitable safeguards (GDPR Art. 22(4)). In force from 2018-05-25.
    """
    bases = _names(ctx.param("data.special_category_automated_bases"))
    if not ctx.fact("solely_automated") or not ctx.fact("special_category_data"):
        return None
    basis = str(ctx.fact_or("special_category_basis", "none"))
    if basis in bases:
        return None
    return ctx.deny(
        f"A solely automated decision may use special-category data only on the basis of "
        f"{', '.join(sorted(bases))} (GDPR Art. 22(4)); {basis!r} is none of them.",
        f"完全自动化决定仅在 {', '.join(sorted(bases))} 的依据下方可使用特殊类别个人数据"
        f"（GDPR 第22条第4款）；{basis!r} 不属其中。",
    )


# -- G6: CCD2, human review of automated creditworthiness assessments -------------------------


@rules.rule(
    id="eu.lending.automated_assessment_review",
    title="Human review and explanation of automated creditworthiness assessments",
    area="lending",
    point="loan.originate",
    citation="Consumer Credit Directive (EU) 2023/2225 Art. 18",
    parameters=("lending.automated_assessment_review_right",),
    facts=("automated_assessment", "human_review_offered", "explanation_offered"),
)
def automated_assessment_review(ctx: RuleContext) -> Finding | None:
    """Where the assessment of creditworthiness involves automated processing of personal
    data, the consumer has the right to request and obtain human intervention from the
    creditor, including a review of the decision, and to obtain a clear and comprehensible
    explanation of the assessment (CCD2 Art. 18). Member states apply it from 2026-11-20.

    A creditor whose process offers either right is missing is refused the origination; an
    absent `human_review_offered` or `explanation_offered` counts as not offered, so a caller
    that forgets to say is refused rather than waved through.
    """
    if not ctx.param("lending.automated_assessment_review_right"):
        return None
    if not ctx.fact("automated_assessment"):
        return None
    missing_en: list[str] = []
    missing_zh: list[str] = []
    if not ctx.fact_or("human_review_offered", False):
        missing_en.append("human intervention and review")
        missing_zh.append("人工干预与复核")
    if not ctx.fact_or("explanation_offered", False):
        missing_en.append("an explanation of the assessment")
        missing_zh.append("评估说明")
    if not missing_en:
        return None
    return ctx.deny(
        f"An automated creditworthiness assessment must offer the consumer "
        f"{' and '.join(missing_en)} (CCD2 Art. 18).",
        f"自动化信用评估须向消费者提供{'及'.join(missing_zh)}（CCD2 第18条）。",
    )
