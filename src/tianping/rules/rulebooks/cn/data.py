# The Chinese messages use full-width punctuation, as written Chinese requires; RUF001 would
# have it replaced by ASCII look-alikes.
# ruff: noqa: RUF001
"""The `cn` rulebook's personal-information and credit-data rules at `data.use` (and the minors
rule at `account.open`): items 8, 10 and 11 of section 11a of regulation.md.

Consents are tokens the caller passes in the fact `consents` (a list, or a comma-separated
string in scenario files): `guardian`, `sensitive_pi`, `third_party`, `cross_border`,
`publication` and `credit_query`. Data fields are category names in `data_fields`, matched
against the lists in the parameters `data.sensitive_pi_categories` and
`data.credit_prohibited_fields`.
"""

from __future__ import annotations

from tianping.rules.model import Finding
from tianping.rules.registry import RuleContext
from tianping.rules.rulebooks.cn.lending_common import (
    bool_fact,
    choice_fact,
    count_fact,
    names,
    names_fact,
)
from tianping.rules.rulebooks.cn.ruleset import rules

MINOR_AGE = "data.minor_age_threshold"
SENSITIVE_CATEGORIES = "data.sensitive_pi_categories"
UNNEEDED_CONSENT_REFUSAL_BAN = "data.unneeded_consent_refusal_banned"
AUTOMATED_DECISION_RIGHTS = "data.automated_decision_rights"
PERSONALISATION_OPT_OUT = "data.personalisation_opt_out_required"
DIRECT_LINK_STATUS = "data.credit_direct_link_status"
PROHIBITED_CREDIT_FIELDS = "data.credit_prohibited_fields"
CREDIT_QUERY_CONSENT = "data.credit_query_consent_required"

RECIPIENTS = frozenset({"internal", "licensed_bureau", "lender", "other"})

# Each trigger of separate consent (PIPL Arts. 23, 25, 29, 39) and the token that satisfies it.
_SEPARATE_CONSENT_TRIGGERS = (
    ("shares_with_third_party", "third_party", "giving it to another handler", "向他人提供"),
    ("publishes", "publication", "publishing it", "公开"),
    ("cross_border_transfer", "cross_border", "sending it abroad", "向境外提供"),
)


def _minor_without_guardian(ctx: RuleContext) -> Finding | None:
    # The parameter is read first, so that before the PIPL is in force nothing is asked of the
    # caller.
    threshold: int = ctx.param(MINOR_AGE)
    age = count_fact(ctx, "person_age")
    if age >= threshold or "guardian" in names_fact(ctx, "consents", required=False):
        return None
    return ctx.deny(
        f"The person is {age}, under {threshold}: their personal information is sensitive and "
        "needs a parent's or guardian's consent.",
        f"该个人未满{threshold}周岁（{age}岁），其个人信息属于敏感个人信息，"
        "须取得其父母或其他监护人的同意。",
    )


@rules.rule(
    id="cn.data.minor_guardian_consent",
    title="Children under 14: guardian consent before their data is used",
    area="data",
    point="data.use",
    citation="PIPL Arts. 28 and 31 (from 2021-11-01)",
    parameters=(MINOR_AGE,),
    facts=("person_age", "consents"),
)
def minor_guardian_consent(ctx: RuleContext) -> Finding | None:
    """From 2021-11-01 all personal information of a child under 14 is sensitive, and it may be
    processed only with the consent of the child's parent or other guardian.
    """
    return _minor_without_guardian(ctx)


@rules.rule(
    id="cn.data.minor_account_guardian_consent",
    title="Children under 14: guardian consent before an account is opened",
    area="data",
    point="account.open",
    citation="PIPL Arts. 28 and 31 (from 2021-11-01)",
    parameters=(MINOR_AGE,),
    facts=("person_age", "consents"),
)
def minor_account_guardian_consent(ctx: RuleContext) -> Finding | None:
    """From 2021-11-01 opening an account for a child under 14, which processes the child's
    personal information, needs the consent of the child's parent or other guardian.

    The age is optional here because other rules share this point and their callers may not
    know it; a caller opening an account for a person always knows the age from the identity
    document and must pass it.
    """
    if not ctx.has_fact("person_age"):
        return None
    return _minor_without_guardian(ctx)


@rules.rule(
    id="cn.data.separate_consent",
    title="Separate consent for sensitive data, sharing, publication and export",
    area="data",
    point="data.use",
    citation="PIPL Arts. 23, 25, 28, 29 and 39 (from 2021-11-01)",
    parameters=(SENSITIVE_CATEGORIES,),
    facts=(
        "data_fields",
        "consents",
        "shares_with_third_party",
        "publishes",
        "cross_border_transfer",
    ),
)
def separate_consent(ctx: RuleContext) -> Finding | None:
    """From 2021-11-01 a separate consent of the person, distinct from any general consent, is
    needed before processing sensitive personal information (which includes financial accounts,
    biometrics, whereabouts and medical data), giving personal information to another handler,
    publishing it, or transferring it abroad.
    """
    sensitive = names(ctx.param(SENSITIVE_CATEGORIES)) & names_fact(ctx, "data_fields")
    consents = names_fact(ctx, "consents", required=False)
    missing_en: list[str] = []
    missing_zh: list[str] = []
    if sensitive and "sensitive_pi" not in consents:
        fields = ", ".join(sorted(sensitive))
        missing_en.append(f"processing sensitive information ({fields})")
        missing_zh.append(f"处理敏感个人信息（{fields}）")
    for fact, token, what_en, what_zh in _SEPARATE_CONSENT_TRIGGERS:
        if bool_fact(ctx, fact, default=False) and token not in consents:
            missing_en.append(what_en)
            missing_zh.append(what_zh)
    if not missing_en:
        return None
    return ctx.deny(
        f"Separate consent is missing for {'; '.join(missing_en)}.",
        f"以下处理须取得个人的单独同意：{'；'.join(missing_zh)}。",
    )


@rules.rule(
    id="cn.data.no_refusal_for_unneeded_consent",
    title="Declining unnecessary processing never blocks the service",
    area="data",
    point="data.use",
    citation="PIPL Art. 16 (from 2021-11-01)",
    parameters=(UNNEEDED_CONSENT_REFUSAL_BAN,),
    facts=("service_refused_for_declined_consent", "declined_consent_necessary"),
)
def no_refusal_for_unneeded_consent(ctx: RuleContext) -> Finding | None:
    """From 2021-11-01 a handler may not refuse a product or service because the person
    declined, or withdrew, consent to processing that is not necessary to provide it. A deny
    here refuses the refusal: the service must go on without that processing.
    """
    if not ctx.param(UNNEEDED_CONSENT_REFUSAL_BAN):
        return None
    if not bool_fact(ctx, "service_refused_for_declined_consent", default=False):
        return None
    if bool_fact(ctx, "declined_consent_necessary"):
        return None
    return ctx.deny(
        "The service may not be refused because the person declined processing it does not "
        "need; provide the service without that processing.",
        "不得以个人不同意处理非必要个人信息为由拒绝提供产品或服务。",
    )


@rules.rule(
    id="cn.data.automated_decision_human_review",
    title="Significant automated decisions: a right to refuse and to human review",
    area="data",
    point="data.use",
    citation="PIPL Art. 24 (from 2021-11-01)",
    parameters=(AUTOMATED_DECISION_RIGHTS,),
    facts=(
        "automated_decision",
        "significant_impact",
        "automated_decision_refused",
        "human_review_offered",
    ),
)
def automated_decision_human_review(ctx: RuleContext) -> Finding | None:
    """From 2021-11-01 a person may demand an explanation of a decision made solely by
    automated means that significantly affects their rights and interests (such as a credit
    denial), and may refuse to have it made solely by automated means. Such a decision is
    refused when the person has refused automated decisions, or when no route to human review
    and explanation is offered.
    """
    if not ctx.param(AUTOMATED_DECISION_RIGHTS):
        return None
    if not bool_fact(ctx, "automated_decision", default=False):
        return None
    if not bool_fact(ctx, "significant_impact"):
        return None
    if bool_fact(ctx, "automated_decision_refused", default=False):
        return ctx.deny(
            "The person refused decisions made solely by automated means; a person must take "
            "part in this decision.",
            "个人已拒绝仅通过自动化决策方式作出决定，本决定须有人工参与。",
        )
    if bool_fact(ctx, "human_review_offered"):
        return None
    return ctx.deny(
        "A significant decision made solely by automated means must offer a route to human "
        "review and an explanation.",
        "仅通过自动化决策方式作出对个人权益有重大影响的决定，须提供人工复核和说明的途径。",
    )


@rules.rule(
    id="cn.data.personalisation_opt_out",
    title="Personalised marketing offers a non-personalised option",
    area="data",
    point="data.use",
    citation=(
        "PIPL Art. 24 (from 2021-11-01); Algorithmic Recommendation Provisions Arts. 17, 21 "
        "(from 2022-03-01)"
    ),
    parameters=(PERSONALISATION_OPT_OUT,),
    facts=("personalised", "non_personalised_option"),
)
def personalisation_opt_out(ctx: RuleContext) -> Finding | None:
    """From 2021-11-01 information pushes and commercial marketing made by automated
    decision-making must also offer an option not based on the person's characteristics, or an
    easy way to refuse them.
    """
    if not ctx.param(PERSONALISATION_OPT_OUT):
        return None
    if not bool_fact(ctx, "personalised", default=False):
        return None
    if bool_fact(ctx, "non_personalised_option"):
        return None
    return ctx.deny(
        "Personalised recommendations or marketing must come with a non-personalised option or "
        "an easy way to refuse them.",
        "个性化推送或营销须同时提供不针对个人特征的选项或便捷的拒绝方式。",
    )


@rules.rule(
    id="cn.data.credit_data_via_licensed_bureau",
    title="Platform credit data reaches lenders only through a licensed bureau",
    area="data",
    point="data.use",
    citation=(
        "PBoC Order [2021] No. 4, Measures for the Administration of Credit Reporting Business "
        "(from 2022-01-01; transition to 2023-06-30); PBoC guidance on breaking the direct link"
    ),
    parameters=(DIRECT_LINK_STATUS,),
    facts=("credit_data", "recipient"),
)
def credit_data_via_licensed_bureau(ctx: RuleContext) -> Finding | None:
    """From 2022-01-01 information used to identify or assess creditworthiness, including a
    platform's user data and scores, may reach a lender only through a licensed credit bureau or
    the PBoC Credit Reference Center. Platforms already sending it directly had until
    2023-06-30 to break the direct link: during the transition a direct flow is flagged, and
    from 2023-06-30 it is refused.
    """
    status = str(ctx.param(DIRECT_LINK_STATUS))
    if not bool_fact(ctx, "credit_data", default=False):
        return None
    if choice_fact(ctx, "recipient", RECIPIENTS) != "lender":
        return None
    if status == "enforced":
        return ctx.deny(
            "Credit data may reach a lender only through a licensed credit bureau, not "
            "directly from the platform.",
            "平台信用信息只能通过持牌征信机构提供给金融机构，不得直接提供（断直连）。",
        )
    return ctx.report(
        "Credit data goes directly to a lender; the direct link must be broken by 2023-06-30 "
        "by routing it through a licensed credit bureau.",
        "平台信用信息直接提供给金融机构，须在2023年6月30日前改为通过持牌征信机构提供。",
    )


@rules.rule(
    id="cn.data.prohibited_credit_fields",
    title="Credit data may not include prohibited fields",
    area="data",
    point="data.use",
    citation=(
        "State Council Order No. 631, Regulation on the Administration of the Credit Reporting "
        "Industry, Art. 14 (from 2013-03-15)"
    ),
    parameters=(PROHIBITED_CREDIT_FIELDS,),
    facts=("credit_data", "data_fields"),
)
def prohibited_credit_fields(ctx: RuleContext) -> Finding | None:
    """From 2013-03-15 no one may collect, for credit reporting or credit assessment, a
    person's religion, genes, fingerprints, blood type, diseases or medical history, or other
    information whose collection laws and administrative regulations forbid.
    """
    prohibited = names(ctx.param(PROHIBITED_CREDIT_FIELDS))
    if not bool_fact(ctx, "credit_data", default=False):
        return None
    found = prohibited & names_fact(ctx, "data_fields")
    if not found:
        return None
    fields = ", ".join(sorted(found))
    return ctx.deny(
        f"Credit data may not include these prohibited fields: {fields}.",
        f"征信业务禁止采集以下信息：{fields}。",
    )


@rules.rule(
    id="cn.data.credit_query_consent",
    title="Credit-bureau queries need the person's written consent for the stated purpose",
    area="data",
    point="data.use",
    citation="State Council Order No. 631, Art. 18 (from 2013-03-15)",
    parameters=(CREDIT_QUERY_CONSENT,),
    facts=("bureau_query", "consents", "query_consent_purpose", "purpose"),
)
def credit_query_consent(ctx: RuleContext) -> Finding | None:
    """From 2013-03-15 a query of a person's credit information needs the person's written
    consent, and the information may be used only for the purpose agreed in that consent.
    """
    if not ctx.param(CREDIT_QUERY_CONSENT):
        return None
    if not bool_fact(ctx, "bureau_query", default=False):
        return None
    purpose = str(ctx.fact("purpose"))
    if "credit_query" not in names_fact(ctx, "consents", required=False):
        return ctx.deny(
            f"A credit-bureau query for {purpose!r} needs the person's written consent.",
            f"查询个人信用信息（用途：{purpose}）须取得本人书面同意。",
        )
    agreed = str(ctx.fact_or("query_consent_purpose", ""))
    if agreed == purpose:
        return None
    return ctx.deny(
        f"The credit-query consent was given for {agreed!r}, not for {purpose!r}.",
        f"征信查询授权的用途为{agreed}，与本次查询用途{purpose}不符。",
    )
