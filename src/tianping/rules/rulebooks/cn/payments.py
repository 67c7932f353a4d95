"""The `cn` rulebook's payments-side rules: items 1 to 5 and 14 of section 11a of regulation.md.

    P1        payment-account class caps, and only Class III balances may buy investment products
    P2, P3    daily balance-payment caps by authentication strength, lifted by institution rating
    P5        QR-code (barcode) daily caps by risk-prevention grade
    P4        same-name bank accounts for card binding and bank <-> payment-account moves
    P12       the anti-fraud blocklist: payments suspended, no new accounts, one Class III account
    F1, F2    money-market fund T+0 redemption cap, no non-bank advances, no paying with shares
    A1, A5    large-value transaction reports and customer due diligence triggers

Every rule reads its numbers from the parameters in force on the event's date, so it is silent
before the first date of the parameters it reads. Amounts and counters are integer minor units
(fen); the facts each rule reads, their defaults and what a counter counts are listed in
README.md (the facts glossary).

The rules sit on the hot path of `payment.authorize` (the benchmark budget is 50 microseconds
for every rule of the point together), so the common case is a few dictionary lookups and
comparisons: the facts that decide whether a rule applies at all are read first, and messages
are only formatted when a rule has something to say.
"""

# The Chinese messages use Chinese (full-width) punctuation, as Chinese readers expect; RUF001
# would have them replaced by ASCII look-alikes.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import date
from typing import Any

from tianping.ledger.money import Currency, Money
from tianping.rules.errors import MissingFact
from tianping.rules.model import Finding
from tianping.rules.registry import RuleContext
from tianping.rules.rulebooks.cn.ruleset import rules

_CNY = Currency.of("CNY")
_USD = Currency.of("USD")

_ACCOUNT_CLASSES = frozenset({"I", "II", "III"})
_ACCOUNT_CLASS_RANK = {"I": 1, "II": 2, "III": 3}
_ACCOUNT_CLASS_ZH = {"I": "Ⅰ类", "II": "Ⅱ类", "III": "Ⅲ类"}

P1_CITATION = (
    "PBoC Announcement [2015] No. 43, Administrative Measures for Online Payment Business of "
    "Non-bank Payment Institutions, Art. 11 (effective 2016-07-01)"
)
P2_P3_CITATION = (
    "PBoC Announcement [2015] No. 43, Art. 24 (caps by authentication strength) and the "
    "classified-supervision article, about Art. 37 (uplift by institution rating); "
    "effective 2016-07-01"
)
P4_CITATION = (
    "PBoC Announcement [2015] No. 43, Arts. 8 and 12 (article numbers approximate): bank "
    "accounts linked to a payment account must be the customer's own (same-name) accounts"
)
P5_CITATION = (
    "PBoC Yinfa [2017] No. 296, Barcode Payment Business Specification (Trial), "
    "effective 2018-04-01"
)
P12_CITATION = (
    "PBoC Yinfa [2016] No. 261; PBoC Yinfa [2019] No. 85; Anti-Telecom and Online Fraud Law "
    "(2022), Art. 31"
)
F1_F2_CITATION = (
    "CSRC and PBoC, Guiding Opinions on Further Regulating Internet Sales and Redemption of "
    "Money-Market Funds, effective 2018-06-01"
)
A1_CITATION = (
    "PBoC Order [2016] No. 3, Measures for the Administration of Large-value and Suspicious "
    "Transaction Reports by Financial Institutions, effective 2017-07-01 (cash threshold "
    "200,000 CNY under PBoC Order [2006] No. 2 before then)"
)
A5_CITATION = (
    "PBoC, NFRA and CSRC, Measures for Customer Due Diligence and Record-Keeping by Financial "
    "Institutions, published 2025-11-28, effective 2026-01-01"
)


# -- shared helpers ---------------------------------------------------------------------------


def _yuan(amount_minor: int) -> str:
    """A CNY amount in minor units as canonical decimal text ("1000.00")."""
    return Money(amount_minor, _CNY).format()


def _money(amount_minor: int, currency: Currency) -> str:
    return Money(amount_minor, currency).format()


def _cny_amount(ctx: RuleContext) -> int:
    """The command's amount, which these caps only define in CNY.

    Payment accounts in China hold CNY, so a payment in any other currency reaching a CNY cap is
    a caller that forgot to convert; refusing to guess keeps a cap from being compared with
    dollars or euros.
    """
    currency = ctx.fact_or("currency", "CNY")
    if currency != "CNY":
        raise MissingFact(
            f"rule {ctx.rule_id} caps CNY amounts: pass the amount in CNY, not {currency!r}"
        )
    amount: int = ctx.fact("amount")
    return amount


def _paid_from_balance(ctx: RuleContext) -> bool:
    """Whether the money leaves the payment account's balance (the payments P1 and P2 cap).

    `funding_source` says it directly; without it the channel decides, and only a bank-card
    payment is taken not to touch the balance, so a caller that omits both is held to the caps.
    """
    source = ctx.fact_or("funding_source", None)
    if source is None:
        return bool(ctx.fact_or("channel", "balance") != "bank_card")
    return bool(source == "balance")


def _own_name_transfer_excluded(ctx: RuleContext) -> bool:
    """Whether this is a transfer to the customer's own same-name bank account, which Arts. 11
    and 24 leave out of the caps."""
    if not ctx.fact_or("own_name_bank_transfer", False):
        return False
    return bool(ctx.param("payments.own_name_bank_transfer_excluded"))


def _account_class(ctx: RuleContext) -> str:
    account_class: str = ctx.fact("account_class")
    if account_class not in _ACCOUNT_CLASSES:
        raise MissingFact(
            f"rule {ctx.rule_id} needs the fact 'account_class' as I, II or III, "
            f"not {account_class!r}"
        )
    return account_class


def _cap_text_en(cap: int | None) -> str:
    return "set by contract" if cap is None else f"{_yuan(cap)} CNY"


def _cap_text_zh(cap: int | None) -> str:
    return "按协议约定" if cap is None else f"{_yuan(cap)} 元"


def _admits(cap: int | None, total: int) -> bool:
    """Whether a cap (None: no limit) admits a running total that includes this command."""
    return cap is None or total <= cap


def _last_day_of_period(start: date, years: int) -> date:
    """The last day of a period of whole years counted from `start`.

    The Civil Code (Arts. 201 and 202) does not count the starting day and ends a period of
    years on the corresponding day of the final year, or on the month's last day when there is
    no corresponding day (a listing on 29 February).
    """
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return date(start.year + years, 2, 28)


def _listing_date(ctx: RuleContext, name: str) -> date | None:
    """A blocklisting date fact: a `date`, ISO text (as scenario files give it), or absent."""
    value: Any = ctx.fact_or(name, None)
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise MissingFact(
            f"rule {ctx.rule_id} needs the fact {name!r} as a date, not {value!r}"
        ) from None


# -- P1: payment-account class caps ----------------------------------------------------------


@rules.rule(
    id="cn.payments.class_i_cumulative_cap",
    title="Class I payment account: cumulative cap on balance payments since opening",
    area="payments",
    point="payment.authorize",
    citation=P1_CITATION,
    parameters=("payments.class_i_cumulative_cap", "payments.own_name_bank_transfer_excluded"),
    facts=(
        "account_class",
        "amount",
        "currency",
        "spent_since_opening",
        "own_name_bank_transfer",
        "funding_source",
        "channel",
    ),
)
def class_i_cumulative_cap(ctx: RuleContext) -> Finding | None:
    """From 2016-07-01, the balance of a Class I payment account (opened with one external
    verification channel) may be used for payments of at most 1,000 CNY in total since the
    account was opened. Transfers to the customer's own same-name bank account do not count.
    A payment that would take the cumulative total above the cap is refused."""
    if not _paid_from_balance(ctx) or _account_class(ctx) != "I":
        return None
    if _own_name_transfer_excluded(ctx):
        return None
    cap: int | None = ctx.param("payments.class_i_cumulative_cap")
    amount = _cny_amount(ctx)
    spent: int = ctx.fact("spent_since_opening")
    total = spent + amount
    if cap is None or total <= cap:
        return None
    return ctx.deny(
        f"A Class I payment account may pay at most {_yuan(cap)} CNY from its balance since "
        f"opening; {_yuan(spent)} CNY is already paid, so this payment of {_yuan(amount)} CNY "
        f"would bring the total to {_yuan(total)} CNY. Upgrade the account to Class II or III, "
        "or pay by bank card.",
        f"Ⅰ类支付账户自开户起累计余额付款不得超过 {_yuan(cap)} 元；已付款 {_yuan(spent)} 元，"
        f"本笔 {_yuan(amount)} 元将使累计达到 {_yuan(total)} 元。请升级为Ⅱ类或Ⅲ类账户，或使用"
        "银行卡支付。",
    )


def _annual_cap(ctx: RuleContext, account_class: str, parameter: str) -> Finding | None:
    """The Class II and Class III annual caps differ only in the class and the parameter."""
    if not _paid_from_balance(ctx) or _account_class(ctx) != account_class:
        return None
    if _own_name_transfer_excluded(ctx):
        return None
    cap: int | None = ctx.param(parameter)
    amount = _cny_amount(ctx)
    spent: int = ctx.fact("spent_this_year")
    total = spent + amount
    if cap is None or total <= cap:
        return None
    class_zh = _ACCOUNT_CLASS_ZH[account_class]
    return ctx.deny(
        f"A Class {account_class} payment account may pay at most {_yuan(cap)} CNY from its "
        f"balance per year; {_yuan(spent)} CNY is already paid this year, so this payment of "
        f"{_yuan(amount)} CNY would bring the year's total to {_yuan(total)} CNY.",
        f"{class_zh}支付账户余额付款年累计不得超过 {_yuan(cap)} 元；本年已付款 {_yuan(spent)} 元，"
        f"本笔 {_yuan(amount)} 元将使年累计达到 {_yuan(total)} 元。",
    )


@rules.rule(
    id="cn.payments.class_ii_annual_cap",
    title="Class II payment account: annual cap on balance payments",
    area="payments",
    point="payment.authorize",
    citation=P1_CITATION,
    parameters=("payments.class_ii_annual_cap", "payments.own_name_bank_transfer_excluded"),
    facts=(
        "account_class",
        "amount",
        "currency",
        "spent_this_year",
        "own_name_bank_transfer",
        "funding_source",
        "channel",
    ),
)
def class_ii_annual_cap(ctx: RuleContext) -> Finding | None:
    """From 2016-07-01, the balance of a Class II payment account (opened face to face or with
    three external verification channels) may be used for consumption and transfers of at most
    100,000 CNY per year. Transfers to the customer's own same-name bank account do not count.
    A payment that would take the year's total above the cap is refused."""
    return _annual_cap(ctx, "II", "payments.class_ii_annual_cap")


@rules.rule(
    id="cn.payments.class_iii_annual_cap",
    title="Class III payment account: annual cap on balance payments",
    area="payments",
    point="payment.authorize",
    citation=P1_CITATION,
    parameters=("payments.class_iii_annual_cap", "payments.own_name_bank_transfer_excluded"),
    facts=(
        "account_class",
        "amount",
        "currency",
        "spent_this_year",
        "own_name_bank_transfer",
        "funding_source",
        "channel",
    ),
)
def class_iii_annual_cap(ctx: RuleContext) -> Finding | None:
    """From 2016-07-01, the balance of a Class III payment account (opened face to face or with
    five external verification channels) may be used for consumption, transfers and investment
    products of at most 200,000 CNY per year. Transfers to the customer's own same-name bank
    account do not count. A payment that would take the year's total above the cap is
    refused."""
    return _annual_cap(ctx, "III", "payments.class_iii_annual_cap")


@rules.rule(
    id="cn.payments.investment_requires_class_iii",
    title="Only Class III payment-account balances may buy investment products",
    area="payments",
    point="fund.sell",
    citation=P1_CITATION,
    parameters=("payments.investment_purchase_min_account_class",),
    facts=("account_class", "funding_source"),
)
def investment_requires_class_iii(ctx: RuleContext) -> Finding | None:
    """From 2016-07-01, only the balance of a Class III payment account may be used to buy
    investment and wealth-management products; Class I and Class II balances serve consumption
    and transfers only. A purchase paid from a lower-class account's balance is refused; a
    purchase paid by bank card does not touch the payment account and is not concerned."""
    if ctx.fact_or("funding_source", "balance") != "balance":
        return None
    account_class = _account_class(ctx)
    minimum: str = ctx.param("payments.investment_purchase_min_account_class")
    if _ACCOUNT_CLASS_RANK[account_class] >= _ACCOUNT_CLASS_RANK[minimum]:
        return None
    class_zh = _ACCOUNT_CLASS_ZH[account_class]
    minimum_zh = _ACCOUNT_CLASS_ZH[minimum]
    return ctx.deny(
        f"Only a Class {minimum} payment account's balance may buy investment products; this "
        f"is a Class {account_class} account. Upgrade the account or pay by bank card.",
        f"仅{minimum_zh}支付账户余额可用于购买投资理财等金融类产品；该账户为{class_zh}账户。"
        "请升级账户或使用银行卡支付。",
    )


# -- P2, P3: daily caps by authentication strength --------------------------------------------


def _two_factor_cap(ctx: RuleContext) -> int | None:
    """The two-factor daily cap, lifted for well-rated institutions with high real-name ratios.

    Both uplifts need the ratio strictly above the floor (">95%", ">90%"). regulation.md names
    the 7,500 tier for B-rated institutions only, so an A-rated institution whose ratio is above
    90% but not above 95% is held to the base cap: the stricter reading, kept until the official
    text says whether the B tier is "B or better".
    """
    rating = ctx.fact_or("institution_rating", "")
    if rating == "A":
        ratio = ctx.fact_or("realname_ratio", None)
        if ratio is not None and ratio > ctx.param("payments.realname_ratio_floor_rating_a"):
            uplifted_a: int | None = ctx.param("payments.daily_cap_two_factor_rating_a")
            return uplifted_a
    elif rating == "B":
        ratio = ctx.fact_or("realname_ratio", None)
        if ratio is not None and ratio > ctx.param("payments.realname_ratio_floor_rating_b"):
            uplifted_b: int | None = ctx.param("payments.daily_cap_two_factor_rating_b")
            return uplifted_b
    base: int | None = ctx.param("payments.daily_cap_two_factor")
    return base


@rules.rule(
    id="cn.payments.daily_cap_by_authentication",
    title="Daily cap on balance payments by authentication strength and institution rating",
    area="payments",
    point="payment.authorize",
    citation=P2_P3_CITATION,
    parameters=(
        "payments.authentication_factors_min",
        "payments.daily_cap_certificate",
        "payments.daily_cap_two_factor",
        "payments.daily_cap_single_factor",
        "payments.daily_cap_two_factor_rating_a",
        "payments.realname_ratio_floor_rating_a",
        "payments.daily_cap_two_factor_rating_b",
        "payments.realname_ratio_floor_rating_b",
        "payments.own_name_bank_transfer_excluded",
    ),
    facts=(
        "amount",
        "currency",
        "spent_today",
        "auth_factors",
        "has_certificate",
        "institution_rating",
        "realname_ratio",
        "own_name_bank_transfer",
        "funding_source",
        "channel",
    ),
)
def daily_cap_by_authentication(ctx: RuleContext) -> Finding | None:
    """From 2016-07-01, a customer's balance payments across all its payment accounts at one
    institution are capped per day by how the payment was authenticated: with two or more
    factors including a digital certificate or electronic signature, the limit is agreed by
    contract; with two or more factors without one, at most 5,000 CNY a day (7,500 CNY for a
    B-rated institution whose Class II and III real-name ratio exceeds 90%, 10,000 CNY for an
    A-rated one above 95%); with fewer than two factors, at most 1,000 CNY a day, and the
    institution must undertake to compensate any loss in full. Transfers to the customer's own
    same-name bank account do not count.

    A payment over the cap at its authentication strength asks for stronger authentication when
    a stronger tier would admit it, and is refused when none would.
    """
    if not _paid_from_balance(ctx) or _own_name_transfer_excluded(ctx):
        return None
    amount = _cny_amount(ctx)
    spent: int = ctx.fact("spent_today")
    total = spent + amount
    factors_min: int = ctx.param("payments.authentication_factors_min")
    strong = ctx.fact_or("auth_factors", 0) >= factors_min
    certificate_cap: int | None = ctx.param("payments.daily_cap_certificate")
    if strong and ctx.fact_or("has_certificate", False):
        if _admits(certificate_cap, total):
            return None
        return _daily_cap_refused(ctx, certificate_cap, spent, amount, total)
    two_factor_cap = _two_factor_cap(ctx)
    if strong:
        if _admits(two_factor_cap, total):
            return None
        if _admits(certificate_cap, total):
            return _step_up_to_certificate(ctx, two_factor_cap, certificate_cap, total)
        return _daily_cap_refused(ctx, two_factor_cap, spent, amount, total)
    single_factor_cap: int | None = ctx.param("payments.daily_cap_single_factor")
    if _admits(single_factor_cap, total):
        return None
    if _admits(two_factor_cap, total):
        return ctx.step_up(
            f"Today's balance payments would reach {_yuan(total)} CNY, over the "
            f"{_cap_text_en(single_factor_cap)} daily limit for payments verified with fewer "
            f"than {factors_min} factors; verify with at least {factors_min} factors (daily "
            f"limit {_cap_text_en(two_factor_cap)}) to continue.",
            f"今日余额付款将累计达到 {_yuan(total)} 元，超过少于{factors_min}类要素验证的单日"
            f"限额 {_cap_text_zh(single_factor_cap)}；请使用至少{factors_min}类要素验证"
            f"（单日限额 {_cap_text_zh(two_factor_cap)}）后继续。",
        )
    if _admits(certificate_cap, total):
        return _step_up_to_certificate(ctx, single_factor_cap, certificate_cap, total)
    return _daily_cap_refused(ctx, single_factor_cap, spent, amount, total)


def _step_up_to_certificate(
    ctx: RuleContext, current_cap: int | None, certificate_cap: int | None, total: int
) -> Finding:
    return ctx.step_up(
        f"Today's balance payments would reach {_yuan(total)} CNY, over the "
        f"{_cap_text_en(current_cap)} daily limit at this authentication strength; verify with "
        "a digital certificate or electronic signature plus another factor (daily limit "
        f"{_cap_text_en(certificate_cap)}) to continue.",
        f"今日余额付款将累计达到 {_yuan(total)} 元，超过当前验证方式的单日限额 "
        f"{_cap_text_zh(current_cap)}；请使用数字证书或电子签名加另一类要素验证"
        f"（单日限额 {_cap_text_zh(certificate_cap)}）后继续。",
    )


def _daily_cap_refused(
    ctx: RuleContext, cap: int | None, spent: int, amount: int, total: int
) -> Finding:
    return ctx.deny(
        f"The daily limit on balance payments at this authentication strength is "
        f"{_cap_text_en(cap)}; {_yuan(spent)} CNY is already paid today, so this payment of "
        f"{_yuan(amount)} CNY would bring the total to {_yuan(total)} CNY, and no stronger "
        "authentication lifts the limit far enough.",
        f"当前验证方式下余额付款单日限额为 {_cap_text_zh(cap)}；今日已付款 {_yuan(spent)} 元，"
        f"本笔 {_yuan(amount)} 元将使累计达到 {_yuan(total)} 元，更强的验证方式也无法满足。",
    )


# -- P5: QR-code (barcode) daily caps -----------------------------------------------------------

_QR_GRADE_PARAMETERS = {
    "A": "payments.qr_daily_cap_grade_a",
    "B": "payments.qr_daily_cap_grade_b",
    "C": "payments.qr_daily_cap_grade_c",
    "D": "payments.qr_daily_cap_grade_d_static",
}
# A customer paying with a dynamic code can authenticate more strongly and move up a grade; a
# static code (grade D) stays capped whatever the verification, so it has nothing to step up to.
_QR_STRONGER_GRADES = {"A": (), "B": ("A",), "C": ("B", "A"), "D": ()}


@rules.rule(
    id="cn.payments.qr_daily_cap",
    title="QR-code payments: daily cap by risk-prevention grade",
    area="payments",
    point="payment.authorize",
    citation=P5_CITATION,
    parameters=tuple(_QR_GRADE_PARAMETERS.values()),
    facts=("channel", "qr_grade", "amount", "currency", "qr_spent_today"),
)
def qr_daily_cap(ctx: RuleContext) -> Finding | None:
    """From 2018-04-01, a customer's barcode payments are capped per day, per bank account or
    across all payment accounts, by the risk-prevention grade of the payment: grade A (two or
    more factors including a digital certificate or electronic signature) by contract; grade B
    (two or more factors without one) at most 5,000 CNY; grade C (fewer than two factors) at
    most 1,000 CNY, with the provider bearing any loss; grade D (a static code, whatever the
    verification) at most 500 CNY.

    A dynamic-code payment over its grade's cap asks for stronger authentication when a higher
    grade would admit it; a static-code payment over its cap is refused.
    """
    if ctx.fact_or("channel", "balance") != "qr":
        return None
    grade: str = ctx.fact("qr_grade")
    parameter = _QR_GRADE_PARAMETERS.get(grade)
    if parameter is None:
        raise MissingFact(f"rule {ctx.rule_id} needs the fact 'qr_grade' as A, B, C or D")
    cap: int | None = ctx.param(parameter)
    amount = _cny_amount(ctx)
    spent: int = ctx.fact("qr_spent_today")
    total = spent + amount
    if _admits(cap, total):
        return None
    for stronger in _QR_STRONGER_GRADES[grade]:
        stronger_cap: int | None = ctx.param(_QR_GRADE_PARAMETERS[stronger])
        if _admits(stronger_cap, total):
            return ctx.step_up(
                f"Today's grade {grade} QR-code payments would reach {_yuan(total)} CNY, over "
                f"the {_cap_text_en(cap)} daily limit; authenticate to grade {stronger} (daily "
                f"limit {_cap_text_en(stronger_cap)}) to continue.",
                f"今日{grade}级条码支付将累计达到 {_yuan(total)} 元，超过单日限额 "
                f"{_cap_text_zh(cap)}；请提升验证至{stronger}级（单日限额 "
                f"{_cap_text_zh(stronger_cap)}）后继续。",
            )
    static_en = " Pay with a dynamic code instead." if grade == "D" else ""
    static_zh = "请改用动态条码支付。" if grade == "D" else ""
    return ctx.deny(
        f"Grade {grade} QR-code payments are limited to {_cap_text_en(cap)} a day; "
        f"{_yuan(spent)} CNY is already paid today, so this payment of {_yuan(amount)} CNY would "
        f"bring the total to {_yuan(total)} CNY.{static_en}",
        f"{grade}级条码支付单日限额为 {_cap_text_zh(cap)}；今日已付款 {_yuan(spent)} 元，本笔 "
        f"{_yuan(amount)} 元将使累计达到 {_yuan(total)} 元。{static_zh}",
    )


# -- P4: same-name bank accounts -------------------------------------------------------------


@rules.rule(
    id="cn.payments.same_name_card_binding",
    title="Only the customer's own same-name bank card may be bound to a payment account",
    area="payments",
    point="card.bind",
    citation=P4_CITATION,
    parameters=("payments.same_name_bank_account_required",),
    facts=("bank_account_holder_matches",),
)
def same_name_card_binding(ctx: RuleContext) -> Finding | None:
    """From 2016-07-01, a bank account linked to a payment account for moving funds between
    them must be held in the payment-account holder's own name. Binding a bank card held by
    anyone else is refused."""
    if ctx.fact("bank_account_holder_matches"):
        return None
    if not ctx.param("payments.same_name_bank_account_required"):
        return None
    return ctx.deny(
        "Only a bank card held in the payment-account holder's own name may be bound; this "
        "card's holder is someone else.",
        "支付账户只能绑定客户本人同名银行卡；该银行卡持卡人与账户持有人不一致。",
    )


@rules.rule(
    id="cn.payments.same_name_bank_transfer",
    title="Bank <-> payment-account moves only with the customer's same-name bank account",
    area="payments",
    point="payment.authorize",
    citation=P4_CITATION,
    parameters=("payments.same_name_bank_account_required",),
    facts=("bank_account_holder_matches",),
)
def same_name_bank_transfer(ctx: RuleContext) -> Finding | None:
    """From 2016-07-01, money moves between a bank account and a payment account (top-ups and
    withdrawals) only through the payment-account holder's own same-name bank account. A move
    through anyone else's bank account is refused. The caller supplies
    `bank_account_holder_matches` only for such moves; other payments are not concerned."""
    if ctx.fact_or("bank_account_holder_matches", True):
        return None
    if not ctx.param("payments.same_name_bank_account_required"):
        return None
    return ctx.deny(
        "Money may move between a bank account and a payment account only through the "
        "customer's own same-name bank account; this bank account is held by someone else.",
        "银行账户与支付账户之间的资金划转仅限客户本人同名银行账户；该银行账户非本人所有。",
    )


# -- P12: the anti-fraud blocklist -----------------------------------------------------------


def _blocklisted_within(ctx: RuleContext, flag: str, listed_on_fact: str, years: int) -> bool:
    """Whether a party is listed and the listing's period of `years` has not ended.

    A listing without a date is taken as current: the caller's blocklist service keeps the
    dates, and a flag alone means it considers the party listed today.
    """
    if not ctx.fact_or(flag, False):
        return False
    listed_on = _listing_date(ctx, listed_on_fact)
    return listed_on is None or ctx.on <= _last_day_of_period(listed_on, years)


@rules.rule(
    id="cn.payments.blocklisted_account_suspended",
    title="Payment business suspended for account renters and sellers",
    area="payments",
    point="payment.authorize",
    citation=P12_CITATION,
    parameters=("payments.blocklist_payment_suspension_years",),
    facts=(
        "payer_blocklisted",
        "payer_blocklisted_on",
        "payee_blocklisted",
        "payee_blocklisted_on",
    ),
)
def blocklisted_account_suspended(ctx: RuleContext) -> Finding | None:
    """From 2017-01-01, for anyone a city-level public security organ has confirmed as renting,
    lending, selling or buying bank or payment accounts, all payment-account business is
    suspended for 5 years from the confirmation. A payment made or received by such a person
    within the period is refused."""
    if not ctx.fact_or("payer_blocklisted", False) and not ctx.fact_or("payee_blocklisted", False):
        return None
    years: int = ctx.param("payments.blocklist_payment_suspension_years")
    for side, side_zh in (("payer", "付款方"), ("payee", "收款方")):
        if _blocklisted_within(ctx, f"{side}_blocklisted", f"{side}_blocklisted_on", years):
            return ctx.deny(
                f"The {side} is on the account-abuse blocklist: all payment-account business is "
                f"suspended for {years} years from the police confirmation.",
                f"{side_zh}因买卖、出租、出借账户被列入惩戒名单：自公安机关认定之日起 {years} 年内"
                "暂停其支付账户所有业务。",
            )
    return None


@rules.rule(
    id="cn.payments.blocklisted_no_new_account",
    title="No new payment accounts for account renters and sellers",
    area="payments",
    point="account.open",
    citation=P12_CITATION,
    parameters=("payments.blocklist_new_account_ban_years",),
    facts=("applicant_blocklisted", "applicant_blocklisted_on"),
)
def blocklisted_no_new_account(ctx: RuleContext) -> Finding | None:
    """From 2017-01-01, no new account may be opened for anyone a city-level public security
    organ has confirmed as renting, lending, selling or buying bank or payment accounts, for
    3 years from the confirmation. Opening one within the period is refused."""
    if not ctx.fact_or("applicant_blocklisted", False):
        return None
    years: int = ctx.param("payments.blocklist_new_account_ban_years")
    if not _blocklisted_within(ctx, "applicant_blocklisted", "applicant_blocklisted_on", years):
        return None
    return ctx.deny(
        f"The applicant is on the account-abuse blocklist: no new account may be opened for "
        f"{years} years from the police confirmation.",
        f"申请人因买卖、出租、出借账户被列入惩戒名单：自公安机关认定之日起 {years} 年内不得为其"
        "新开立账户。",
    )


@rules.rule(
    id="cn.payments.one_class_iii_per_institution",
    title="At most one Class III payment account per person per institution",
    area="payments",
    point="account.open",
    citation=P12_CITATION,
    parameters=("payments.class_iii_accounts_per_institution_max",),
    facts=("account_class", "class_iii_accounts_held"),
)
def one_class_iii_per_institution(ctx: RuleContext) -> Finding | None:
    """From 2016-12-01, one person may hold only one Class III payment account at each payment
    institution. Opening another while one is held is refused."""
    if _account_class(ctx) != "III":
        return None
    most: int = ctx.param("payments.class_iii_accounts_per_institution_max")
    held: int = ctx.fact("class_iii_accounts_held")
    if held < most:
        return None
    return ctx.deny(
        f"A person may hold at most {most} Class III payment account(s) at one institution; "
        f"this person already holds {held}.",
        f"同一个人在同一家支付机构最多只能开立 {most} 个Ⅲ类支付账户；该客户已持有 {held} 个。",
    )


# -- F1, F2: money-market funds ----------------------------------------------------------------


@rules.rule(
    id="cn.mmf.t0_redemption_daily_cap",
    title="Money-market fund T+0 redemption daily cap",
    area="mmf",
    point="mmf.redeem",
    citation=F1_F2_CITATION,
    parameters=("mmf.t0_redemption_daily_cap", "mmf.t0_cap_counts_payment_redemptions"),
    facts=("amount", "currency", "t0_redemption", "for_payment", "t0_redeemed_today"),
)
def t0_redemption_daily_cap(ctx: RuleContext) -> Finding | None:
    """From 2018-06-01, instant (T+0) redemptions of a money-market fund are capped at 10,000 CNY
    per investor, per fund, per sales channel and per natural day; ordinary (T+1) redemptions are
    not capped. Whether redemptions that fund a payment count toward the cap is unclear, so a
    parameter says (true: they count). A T+0 redemption over the cap is refused."""
    if not ctx.fact_or("t0_redemption", True):
        return None
    if ctx.fact_or("for_payment", False) and not ctx.param("mmf.t0_cap_counts_payment_redemptions"):
        return None
    cap: int | None = ctx.param("mmf.t0_redemption_daily_cap")
    amount = _cny_amount(ctx)
    redeemed: int = ctx.fact("t0_redeemed_today")
    total = redeemed + amount
    if cap is None or total <= cap:
        return None
    remaining = max(cap - redeemed, 0)
    return ctx.deny(
        f"Instant (T+0) redemptions are limited to {_yuan(cap)} CNY a day per fund and channel; "
        f"{_yuan(redeemed)} CNY is already redeemed today, so at most {_yuan(remaining)} CNY more "
        f"can be redeemed instantly, not {_yuan(amount)} CNY. Redeem the rest ordinarily (T+1).",
        f"T+0 快速赎回每个投资者在同一基金、同一渠道单日限额为 {_yuan(cap)} 元；今日已赎回 "
        f"{_yuan(redeemed)} 元，最多还可快速赎回 {_yuan(remaining)} 元，不能赎回 "
        f"{_yuan(amount)} 元。其余部分请使用普通赎回（T+1）。",
    )


@rules.rule(
    id="cn.mmf.t0_advance_only_by_banks",
    title="Only commercial banks may advance funds for T+0 redemptions",
    area="mmf",
    point="mmf.redeem",
    citation=F1_F2_CITATION,
    parameters=("mmf.t0_advance_only_by_banks",),
    facts=("t0_redemption", "advance_provider"),
)
def t0_advance_only_by_banks(ctx: RuleContext) -> Finding | None:
    """From 2018-06-01, only a commercial bank may advance money (垫资) to pay out a T+0
    money-market fund redemption; a payment institution or anyone else may not. A T+0
    redemption advanced by anyone but a commercial bank is refused."""
    provider = ctx.fact_or("advance_provider", "none")
    if provider in ("none", "commercial_bank") or not ctx.fact_or("t0_redemption", True):
        return None
    if not ctx.param("mmf.t0_advance_only_by_banks"):
        return None
    return ctx.deny(
        f"Only a commercial bank may advance funds for an instant (T+0) redemption; the "
        f"advance here comes from {provider!r}.",
        f"仅商业银行可为 T+0 快速赎回垫资；本次垫资方为 {provider!r}。",
    )


@rules.rule(
    id="cn.mmf.no_direct_payment_from_shares",
    title="Money-market fund shares may not be spent directly",
    area="mmf",
    point="payment.authorize",
    citation=F1_F2_CITATION,
    parameters=("mmf.direct_payment_from_shares_banned",),
    facts=("funding_source",),
)
def no_direct_payment_from_shares(ctx: RuleContext) -> Finding | None:
    """From 2018-06-01, money-market fund shares may not be used directly to pay for anything:
    they must first be redeemed into money. A payment funded directly from fund shares is
    refused."""
    if ctx.fact_or("funding_source", "balance") != "mmf_shares":
        return None
    if not ctx.param("mmf.direct_payment_from_shares_banned"):
        return None
    return ctx.deny(
        "Money-market fund shares cannot pay directly; redeem them first, then pay from the "
        "proceeds.",
        "货币市场基金份额不得直接用于支付；请先赎回，再以赎回资金支付。",
    )


# -- A1, A5: anti-money-laundering -------------------------------------------------------------

_LVTR_CNY = {
    "cash": "aml.lvtr_cash_threshold",
    "entity": "aml.lvtr_entity_transfer_threshold",
    "person_domestic": "aml.lvtr_person_domestic_transfer_threshold",
    "person_cross_border": "aml.lvtr_person_cross_border_transfer_threshold",
}
_LVTR_USD = {kind: f"{name}_usd" for kind, name in _LVTR_CNY.items()}
_LVTR_KIND_TEXT = {
    "cash": ("cash transactions", "现金交易"),
    "entity": ("transfers by an entity", "非自然人客户款项划转"),
    "person_domestic": ("domestic transfers by a natural person", "自然人客户境内款项划转"),
    "person_cross_border": (
        "cross-border transfers by a natural person",
        "自然人客户跨境款项划转",
    ),
}


def _lvtr_kind(ctx: RuleContext) -> str:
    """Which of the four large-value thresholds a transaction is measured against."""
    if ctx.fact_or("cash", False):
        return "cash"
    party_type = ctx.fact_or("party_type", "person")
    if party_type == "entity":
        return "entity"
    if party_type != "person":
        raise MissingFact(f"rule {ctx.rule_id} needs 'party_type' as person or entity")
    return "person_cross_border" if ctx.fact_or("cross_border", False) else "person_domestic"


def _aml_currency(ctx: RuleContext) -> Currency:
    """CNY, or USD for foreign-currency transactions (the measures set USD equivalents)."""
    currency = ctx.fact_or("currency", "CNY")
    if currency == "CNY":
        return _CNY
    if currency == "USD":
        return _USD
    raise MissingFact(
        f"rule {ctx.rule_id} measures CNY or USD amounts: pass a {currency} transaction's "
        "amounts as their USD equivalent with currency USD"
    )


@rules.rule(
    id="cn.aml.large_value_transaction_report",
    title="Large-value transaction report (single or daily cumulative)",
    area="aml",
    point="payment.authorize",
    citation=A1_CITATION,
    parameters=(*_LVTR_CNY.values(), *_LVTR_USD.values()),
    facts=(
        "amount",
        "currency",
        "cash",
        "party_type",
        "cross_border",
        "daily_total_same_direction",
    ),
)
def large_value_transaction_report(ctx: RuleContext) -> Finding | None:
    """A transaction must be reported as large-value when it alone, or the customer's daily
    total in the same direction (inflows and outflows summed separately) including it, reaches
    the threshold for its kind: from 2017-07-01, cash 50,000 CNY or USD 10,000 (200,000 CNY
    before); transfers by an entity 2,000,000 CNY or USD 200,000; domestic transfers by a natural
    person 500,000 CNY or USD 100,000; cross-border transfers by a natural person 200,000 CNY or
    USD 10,000. The transaction goes ahead and the report is filed."""
    currency = _aml_currency(ctx)
    kind = _lvtr_kind(ctx)
    parameter = _LVTR_CNY[kind] if currency is _CNY else _LVTR_USD[kind]
    threshold: int | None = ctx.param(parameter)
    amount: int = ctx.fact("amount")
    earlier: int = ctx.fact("daily_total_same_direction")
    total = earlier + amount
    if threshold is None or total < threshold:
        return None
    code = currency.code
    kind_en, kind_zh = _LVTR_KIND_TEXT[kind]
    return ctx.report(
        f"Large-value transaction report due: {kind_en} reach the {_money(threshold, currency)} "
        f"{code} reporting threshold (this transaction {_money(amount, currency)} {code}, "
        f"today's same-direction total {_money(total, currency)} {code}).",
        f"须提交大额交易报告：{kind_zh}达到 {_money(threshold, currency)} {code} 的报告标准"
        f"（本笔 {_money(amount, currency)} {code}，"
        f"当日同向累计 {_money(total, currency)} {code}）。",
    )


@rules.rule(
    id="cn.aml.customer_due_diligence",
    title="Customer due diligence triggers: one-off cash, cross-border remittance, prepaid cards",
    area="aml",
    point="payment.authorize",
    citation=A5_CITATION,
    parameters=(
        "aml.cdd_cash_threshold",
        "aml.cdd_cash_threshold_usd",
        "aml.cdd_cross_border_remittance_threshold",
        "aml.cdd_cross_border_remittance_threshold_usd",
        "aml.cdd_prepaid_card_sale_threshold",
    ),
    facts=(
        "amount",
        "currency",
        "cdd_completed",
        "cash",
        "cross_border",
        "prepaid_card_sale",
    ),
)
def customer_due_diligence(ctx: RuleContext) -> Finding | None:
    """From 2026-01-01, the customer must be identified and verified (customer due diligence)
    before a one-off cash transaction of 50,000 CNY or USD 10,000 or more, before a cross-border
    remittance of 5,000 CNY or USD 1,000 or more (the remitter is verified), and, at a non-bank
    payment institution, before selling prepaid cards of 10,000 CNY or more. Until the customer
    has been identified, the transaction waits: the engine asks for the stronger identification
    (step-up), since due diligence must come before the transaction, not after it."""
    if ctx.fact_or("cdd_completed", False):
        return None
    cash = ctx.fact_or("cash", False)
    cross_border = ctx.fact_or("cross_border", False)
    prepaid = ctx.fact_or("prepaid_card_sale", False)
    if not (cash or cross_border or prepaid):
        return None
    currency = _aml_currency(ctx)
    in_usd = currency is _USD
    amount: int = ctx.fact("amount")
    triggers: list[tuple[str, str, int]] = []
    if cash:
        name = "aml.cdd_cash_threshold_usd" if in_usd else "aml.cdd_cash_threshold"
        threshold: int | None = ctx.param(name)
        if threshold is not None and amount >= threshold:
            triggers.append(("a one-off cash transaction", "一次性现金交易", threshold))
    if cross_border and not cash:
        name = (
            "aml.cdd_cross_border_remittance_threshold_usd"
            if in_usd
            else "aml.cdd_cross_border_remittance_threshold"
        )
        threshold = ctx.param(name)
        if threshold is not None and amount >= threshold:
            triggers.append(("a cross-border remittance", "跨境汇款", threshold))
    # Prepaid cards are sold in CNY; the measures give no USD equivalent for this trigger.
    if prepaid and not in_usd:
        threshold = ctx.param("aml.cdd_prepaid_card_sale_threshold")
        if threshold is not None and amount >= threshold:
            triggers.append(("a prepaid-card sale", "预付卡销售", threshold))
    if not triggers:
        return None
    code = currency.code
    what_en, what_zh, threshold = triggers[0]
    return ctx.step_up(
        f"Customer due diligence is required before {what_en} of "
        f"{_money(threshold, currency)} {code} or more (this one is "
        f"{_money(amount, currency)} {code}): identify and verify the customer first.",
        f"{what_zh}金额达到 {_money(threshold, currency)} {code} 及以上须先开展客户尽职调查"
        f"（本笔 {_money(amount, currency)} {code}）：请先识别并核实客户身份。",
    )
