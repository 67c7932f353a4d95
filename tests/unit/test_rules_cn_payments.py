"""Tests of the `cn` rulebook's payments-side rules: P1-P5, P12, F1, F2, A1 and A5.

The boundary tests read each limit from the parameters in force, so they check the comparison
(just below, at and just above, one minor unit apart) whatever the number; the scenario files
pin the numbers themselves. A small local runner executes this area's scenario files in the
brief's format, so they are known to pass before the generic runner exists. Everything runs
against the shipped `cn` rulebook, other areas' rules included, so a scenario that another
area's rule would disturb fails here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tianping.ledger.currencies import ACTIVE_CURRENCIES
from tianping.ledger.money import Currency, Money
from tianping.rules.errors import MissingFact
from tianping.rules.model import Decision, Finding, Outcome
from tianping.rules.rulebook import RULEBOOKS_DIR, Overlay, Rulebook, diff, load_rulebook, read_yaml

CN_DIR = RULEBOOKS_DIR / "cn"
PARAMETER_FILES = ("payments.yaml", "mmf.yaml", "aml.yaml")
SCENARIO_FILES = ("payments.yaml", "mmf.yaml", "aml.yaml")
OVERLAY = "class-ii-annual-cap-50k"
TODAY = date(2026, 3, 1)

PAYMENTS_RULES = frozenset(
    {
        "cn.payments.class_i_cumulative_cap",
        "cn.payments.class_ii_annual_cap",
        "cn.payments.class_iii_annual_cap",
        "cn.payments.investment_requires_class_iii",
        "cn.payments.daily_cap_by_authentication",
        "cn.payments.qr_daily_cap",
        "cn.payments.same_name_card_binding",
        "cn.payments.same_name_bank_transfer",
        "cn.payments.blocklisted_account_suspended",
        "cn.payments.blocklisted_no_new_account",
        "cn.payments.one_class_iii_per_institution",
        "cn.mmf.t0_redemption_daily_cap",
        "cn.mmf.t0_advance_only_by_banks",
        "cn.mmf.no_direct_payment_from_shares",
        "cn.aml.large_value_transaction_report",
        "cn.aml.customer_due_diligence",
    }
)


# -- the rulebook -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rulebook() -> Rulebook:
    return load_rulebook("cn")


@pytest.fixture(scope="module")
def overlaid(rulebook: Rulebook) -> Rulebook:
    return rulebook.with_overlay(rulebook.overlay_named(OVERLAY))


def payment(**overrides: Any) -> dict[str, Any]:
    """An ordinary CNY balance payment by a Class III holder with strong authentication."""
    facts: dict[str, Any] = {
        "amount": 10_000,
        "currency": "CNY",
        "account_class": "III",
        "spent_since_opening": 0,
        "spent_this_year": 0,
        "spent_today": 0,
        "own_name_bank_transfer": False,
        "auth_factors": 2,
        "has_certificate": True,
        "institution_rating": "C",
        "realname_ratio": Decimal("0.50"),
        "channel": "balance",
        "payer_blocklisted": False,
        "payee_blocklisted": False,
        "cash": False,
        "cross_border": False,
        "party_type": "person",
        "daily_total_same_direction": 0,
        "cdd_completed": True,
        "funding_source": "balance",
        "preselected": False,
    }
    facts.update(overrides)
    return facts


def redemption(**overrides: Any) -> dict[str, Any]:
    """An instant (T+0) money-market fund redemption, not for a payment, without an advance."""
    facts: dict[str, Any] = {
        "amount": 10_000,
        "currency": "CNY",
        "t0_redemption": True,
        "for_payment": False,
        "t0_redeemed_today": 0,
        "advance_provider": "none",
    }
    facts.update(overrides)
    return facts


def account_opening(**overrides: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "account_class": "II",
        "class_iii_accounts_held": 0,
        "applicant_blocklisted": False,
    }
    facts.update(overrides)
    return facts


def fund_sale(**overrides: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "account_class": "III",
        "funding_source": "balance",
        "amount": 100_000,
        "investor_class": "C5",
        "product_risk": "R1",
    }
    facts.update(overrides)
    return facts


def finding(decision: Decision, rule_id: str) -> Finding | None:
    for candidate in decision.findings:
        if candidate.rule_id == rule_id:
            return candidate
    return None


def formatted(amount_minor: int, code: str = "CNY") -> str:
    return Money(amount_minor, Currency.of(code)).format()


# -- boundaries: just below, at and just above each threshold ---------------------------------


@dataclass(frozen=True)
class Boundary:
    """A threshold and a way to build a command whose running total is a given amount.

    `fires_at_threshold` is False for caps ("at most": the cap itself is allowed) and True for
    reporting and due-diligence thresholds ("at or above").
    """

    label: str
    rule_id: str
    point: str
    parameter: str
    facts: Callable[[int], dict[str, Any]]
    outcome: Outcome
    fires_at_threshold: bool = False
    currency: str = "CNY"


def _split(total: int, counter: str, **overrides: Any) -> dict[str, Any]:
    """A payment of 100.00 on top of a counter holding the rest of `total`."""
    return payment(amount=10_000, **{counter: total - 10_000}, **overrides)


BOUNDARIES = (
    Boundary(
        "class I cumulative",
        "cn.payments.class_i_cumulative_cap",
        "payment.authorize",
        "payments.class_i_cumulative_cap",
        lambda total: _split(total, "spent_since_opening", account_class="I"),
        Outcome.deny,
    ),
    Boundary(
        "class II annual",
        "cn.payments.class_ii_annual_cap",
        "payment.authorize",
        "payments.class_ii_annual_cap",
        lambda total: _split(total, "spent_this_year", account_class="II"),
        Outcome.deny,
    ),
    Boundary(
        "class III annual",
        "cn.payments.class_iii_annual_cap",
        "payment.authorize",
        "payments.class_iii_annual_cap",
        lambda total: _split(total, "spent_this_year"),
        Outcome.deny,
    ),
    Boundary(
        "daily, fewer than two factors",
        "cn.payments.daily_cap_by_authentication",
        "payment.authorize",
        "payments.daily_cap_single_factor",
        lambda total: _split(total, "spent_today", auth_factors=1, has_certificate=False),
        Outcome.step_up,
    ),
    Boundary(
        "daily, two factors",
        "cn.payments.daily_cap_by_authentication",
        "payment.authorize",
        "payments.daily_cap_two_factor",
        lambda total: _split(total, "spent_today", has_certificate=False),
        Outcome.step_up,
    ),
    Boundary(
        "daily, two factors, A-rated",
        "cn.payments.daily_cap_by_authentication",
        "payment.authorize",
        "payments.daily_cap_two_factor_rating_a",
        lambda total: _split(
            total,
            "spent_today",
            has_certificate=False,
            institution_rating="A",
            realname_ratio=Decimal("0.99"),
        ),
        Outcome.step_up,
    ),
    Boundary(
        "daily, two factors, B-rated",
        "cn.payments.daily_cap_by_authentication",
        "payment.authorize",
        "payments.daily_cap_two_factor_rating_b",
        lambda total: _split(
            total,
            "spent_today",
            has_certificate=False,
            institution_rating="B",
            realname_ratio=Decimal("0.99"),
        ),
        Outcome.step_up,
    ),
    *(
        Boundary(
            f"QR grade {grade}",
            "cn.payments.qr_daily_cap",
            "payment.authorize",
            parameter,
            lambda total, grade=grade: _split(
                total, "qr_spent_today", channel="qr", qr_grade=grade, funding_source="bank_card"
            ),
            outcome,
        )
        for grade, parameter, outcome in (
            ("B", "payments.qr_daily_cap_grade_b", Outcome.step_up),
            ("C", "payments.qr_daily_cap_grade_c", Outcome.step_up),
            ("D", "payments.qr_daily_cap_grade_d_static", Outcome.deny),
        )
    ),
    Boundary(
        "MMF T+0 redemption",
        "cn.mmf.t0_redemption_daily_cap",
        "mmf.redeem",
        "mmf.t0_redemption_daily_cap",
        lambda total: redemption(amount=10_000, t0_redeemed_today=total - 10_000),
        Outcome.deny,
    ),
    *(
        Boundary(
            f"large-value {kind} {code}",
            "cn.aml.large_value_transaction_report",
            "payment.authorize",
            f"aml.lvtr_{kind}_threshold{'_usd' if code == 'USD' else ''}",
            lambda total, overrides=overrides, code=code: payment(
                amount=10_000,
                daily_total_same_direction=total - 10_000,
                currency=code,
                funding_source="bank_card",
                **overrides,
            ),
            Outcome.report,
            fires_at_threshold=True,
            currency=code,
        )
        for code in ("CNY", "USD")
        for kind, overrides in (
            ("cash", {"cash": True}),
            ("entity_transfer", {"party_type": "entity"}),
            ("person_domestic_transfer", {}),
            ("person_cross_border_transfer", {"cross_border": True}),
        )
    ),
    *(
        Boundary(
            f"due diligence {label} {code}",
            "cn.aml.customer_due_diligence",
            "payment.authorize",
            parameter,
            lambda total, overrides=overrides, code=code: payment(
                amount=total,
                currency=code,
                cdd_completed=False,
                funding_source="bank_card",
                **overrides,
            ),
            Outcome.step_up,
            fires_at_threshold=True,
            currency=code,
        )
        for label, parameter, overrides, code in (
            ("cash", "aml.cdd_cash_threshold", {"cash": True}, "CNY"),
            ("cash", "aml.cdd_cash_threshold_usd", {"cash": True}, "USD"),
            (
                "cross-border",
                "aml.cdd_cross_border_remittance_threshold",
                {"cross_border": True},
                "CNY",
            ),
            (
                "cross-border",
                "aml.cdd_cross_border_remittance_threshold_usd",
                {"cross_border": True},
                "USD",
            ),
            (
                "prepaid card",
                "aml.cdd_prepaid_card_sale_threshold",
                {"prepaid_card_sale": True},
                "CNY",
            ),
        )
    ),
)


@pytest.mark.parametrize("case", BOUNDARIES, ids=lambda case: case.label)
def test_threshold_boundaries(rulebook: Rulebook, case: Boundary) -> None:
    """One minor unit below a threshold the rule is silent, at it only "at or above" rules
    fire, and one unit above it every rule gives its outcome."""
    threshold = rulebook.values_on(TODAY)[case.parameter]
    assert isinstance(threshold, int)

    def outcome_at(total: int) -> Outcome | None:
        decision = rulebook.evaluate(case.point, case.facts(total), TODAY)
        found = finding(decision, case.rule_id)
        return None if found is None else found.outcome

    assert outcome_at(threshold - 1) is None
    assert outcome_at(threshold) == (case.outcome if case.fires_at_threshold else None)
    assert outcome_at(threshold + 1) == case.outcome


@pytest.mark.parametrize("case", BOUNDARIES, ids=lambda case: case.label)
def test_messages_name_the_limit_in_both_languages(rulebook: Rulebook, case: Boundary) -> None:
    """The English and the Chinese message of a firing rule both state the limit."""
    threshold = rulebook.values_on(TODAY)[case.parameter]
    decision = rulebook.evaluate(case.point, case.facts(threshold + 1), TODAY)
    found = finding(decision, case.rule_id)
    assert found is not None
    limit = formatted(threshold, case.currency)
    assert limit in found.message_en
    assert limit in found.message_zh
    assert re.search("[\u4e00-\u9fff]", found.message_zh)
    assert case.parameter in found.parameters


@pytest.mark.parametrize(
    ("rating", "floor_parameter", "uplifted_parameter"),
    [
        ("A", "payments.realname_ratio_floor_rating_a", "payments.daily_cap_two_factor_rating_a"),
        ("B", "payments.realname_ratio_floor_rating_b", "payments.daily_cap_two_factor_rating_b"),
    ],
)
def test_rating_uplift_needs_a_real_name_ratio_strictly_above_the_floor(
    rulebook: Rulebook, rating: str, floor_parameter: str, uplifted_parameter: str
) -> None:
    """A payment just over the base two-factor cap passes only when the ratio exceeds the floor."""
    values = rulebook.values_on(TODAY)
    floor = values[floor_parameter]
    base_cap = values["payments.daily_cap_two_factor"]
    assert base_cap < values[uplifted_parameter]
    step = Decimal("0.0001")

    def outcome_with(ratio: Decimal) -> Outcome:
        facts = _split(
            base_cap + 1,
            "spent_today",
            has_certificate=False,
            institution_rating=rating,
            realname_ratio=ratio,
        )
        return rulebook.evaluate("payment.authorize", facts, TODAY).outcome

    assert outcome_with(floor - step) == Outcome.step_up
    assert outcome_with(floor) == Outcome.step_up
    assert outcome_with(floor + step) == Outcome.allow


def test_one_class_iii_account_per_institution_boundary(rulebook: Rulebook) -> None:
    """Holding one fewer Class III account than the maximum allows another; holding the
    maximum refuses it, and the messages name the maximum."""
    most = rulebook.values_on(TODAY)["payments.class_iii_accounts_per_institution_max"]
    below = rulebook.evaluate(
        "account.open",
        account_opening(account_class="III", class_iii_accounts_held=most - 1),
        TODAY,
    )
    at = rulebook.evaluate(
        "account.open", account_opening(account_class="III", class_iii_accounts_held=most), TODAY
    )
    assert below.outcome == Outcome.allow
    assert at.rule_ids == ("cn.payments.one_class_iii_per_institution",)
    assert at.outcome == Outcome.deny
    assert f"{most} Class III" in at.findings[0].message_en
    assert f"{most} 个Ⅲ类" in at.findings[0].message_zh


@pytest.mark.parametrize(
    ("rule_id", "point", "facts_for", "years_parameter"),
    [
        (
            "cn.payments.blocklisted_account_suspended",
            "payment.authorize",
            lambda listed: payment(payer_blocklisted=True, payer_blocklisted_on=listed),
            "payments.blocklist_payment_suspension_years",
        ),
        (
            "cn.payments.blocklisted_account_suspended",
            "payment.authorize",
            lambda listed: payment(payee_blocklisted=True, payee_blocklisted_on=listed),
            "payments.blocklist_payment_suspension_years",
        ),
        (
            "cn.payments.blocklisted_no_new_account",
            "account.open",
            lambda listed: account_opening(
                applicant_blocklisted=True, applicant_blocklisted_on=listed
            ),
            "payments.blocklist_new_account_ban_years",
        ),
    ],
)
def test_blocklist_period_ends_after_its_anniversary(
    rulebook: Rulebook,
    rule_id: str,
    point: str,
    facts_for: Callable[[date], dict[str, Any]],
    years_parameter: str,
) -> None:
    """A listing bars the party through the anniversary that ends its period of years and no
    longer the day after; the messages name the number of years."""
    years = rulebook.values_on(TODAY)[years_parameter]
    listed = date(2020, 6, 15)
    anniversary = listed.replace(year=listed.year + years)
    for day, barred in (
        (anniversary - timedelta(days=1), True),
        (anniversary, True),
        (anniversary + timedelta(days=1), False),
    ):
        decision = rulebook.evaluate(point, facts_for(listed), day)
        assert (rule_id in decision.rule_ids) is barred, day
    decision = rulebook.evaluate(point, facts_for(listed), anniversary)
    found = finding(decision, rule_id)
    assert found is not None
    assert f"{years} years" in found.message_en
    assert f"{years} 年" in found.message_zh


def test_blocklist_listing_on_29_february_ends_on_28_february(rulebook: Rulebook) -> None:
    """A period counted from 29 February ends on the last day of February of the final year."""
    facts = payment(payer_blocklisted=True, payer_blocklisted_on="2020-02-29")
    last_day = rulebook.evaluate("payment.authorize", facts, date(2025, 2, 28))
    next_day = rulebook.evaluate("payment.authorize", facts, date(2025, 3, 1))
    assert last_day.outcome == Outcome.deny
    assert next_day.outcome == Outcome.allow


# -- effective dates: the day before and the day of ------------------------------------------


@dataclass(frozen=True)
class EffectiveDate:
    rule_id: str
    point: str
    facts: dict[str, Any]
    parameter: str
    effective: date


EFFECTIVE_DATES = (
    EffectiveDate(
        "cn.payments.class_i_cumulative_cap",
        "payment.authorize",
        payment(account_class="I", amount=100_001),
        "payments.class_i_cumulative_cap",
        date(2016, 7, 1),
    ),
    EffectiveDate(
        "cn.payments.class_ii_annual_cap",
        "payment.authorize",
        payment(account_class="II", spent_this_year=10_000_000, amount=1),
        "payments.class_ii_annual_cap",
        date(2016, 7, 1),
    ),
    EffectiveDate(
        "cn.payments.class_iii_annual_cap",
        "payment.authorize",
        payment(spent_this_year=20_000_000, amount=1),
        "payments.class_iii_annual_cap",
        date(2016, 7, 1),
    ),
    EffectiveDate(
        "cn.payments.investment_requires_class_iii",
        "fund.sell",
        fund_sale(account_class="II"),
        "payments.investment_purchase_min_account_class",
        date(2016, 7, 1),
    ),
    EffectiveDate(
        "cn.payments.daily_cap_by_authentication",
        "payment.authorize",
        payment(auth_factors=1, has_certificate=False, amount=100_001),
        "payments.daily_cap_single_factor",
        date(2016, 7, 1),
    ),
    EffectiveDate(
        "cn.payments.qr_daily_cap",
        "payment.authorize",
        payment(channel="qr", qr_grade="D", qr_spent_today=0, amount=50_001),
        "payments.qr_daily_cap_grade_d_static",
        date(2018, 4, 1),
    ),
    EffectiveDate(
        "cn.payments.same_name_card_binding",
        "card.bind",
        {"bank_account_holder_matches": False},
        "payments.same_name_bank_account_required",
        date(2016, 7, 1),
    ),
    EffectiveDate(
        "cn.payments.same_name_bank_transfer",
        "payment.authorize",
        payment(funding_source="bank_card", bank_account_holder_matches=False),
        "payments.same_name_bank_account_required",
        date(2016, 7, 1),
    ),
    EffectiveDate(
        "cn.payments.blocklisted_account_suspended",
        "payment.authorize",
        payment(payee_blocklisted=True),
        "payments.blocklist_payment_suspension_years",
        date(2017, 1, 1),
    ),
    EffectiveDate(
        "cn.payments.blocklisted_no_new_account",
        "account.open",
        account_opening(applicant_blocklisted=True),
        "payments.blocklist_new_account_ban_years",
        date(2017, 1, 1),
    ),
    EffectiveDate(
        "cn.payments.one_class_iii_per_institution",
        "account.open",
        account_opening(account_class="III", class_iii_accounts_held=1),
        "payments.class_iii_accounts_per_institution_max",
        date(2016, 12, 1),
    ),
    EffectiveDate(
        "cn.mmf.t0_redemption_daily_cap",
        "mmf.redeem",
        redemption(amount=1_000_001),
        "mmf.t0_redemption_daily_cap",
        date(2018, 6, 1),
    ),
    EffectiveDate(
        "cn.mmf.t0_advance_only_by_banks",
        "mmf.redeem",
        redemption(advance_provider="payment_institution"),
        "mmf.t0_advance_only_by_banks",
        date(2018, 6, 1),
    ),
    EffectiveDate(
        "cn.mmf.no_direct_payment_from_shares",
        "payment.authorize",
        payment(funding_source="mmf_shares"),
        "mmf.direct_payment_from_shares_banned",
        date(2018, 6, 1),
    ),
    EffectiveDate(
        "cn.aml.large_value_transaction_report",
        "payment.authorize",
        payment(funding_source="bank_card", amount=50_000_000),
        "aml.lvtr_person_domestic_transfer_threshold",
        date(2017, 7, 1),
    ),
    EffectiveDate(
        "cn.aml.customer_due_diligence",
        "payment.authorize",
        payment(funding_source="bank_card", cross_border=True, cdd_completed=False, amount=500_000),
        "aml.cdd_cross_border_remittance_threshold",
        date(2026, 1, 1),
    ),
)


@pytest.mark.parametrize("case", EFFECTIVE_DATES, ids=lambda case: case.rule_id)
def test_rule_is_silent_the_day_before_it_takes_effect(
    rulebook: Rulebook, case: EffectiveDate
) -> None:
    """A command the rule stops is untouched by it on the eve of its effective date and stopped
    on the day itself, which is the first date of the parameter it reads."""
    assert rulebook.parameters[case.parameter].starts[0] == case.effective
    before = rulebook.evaluate(case.point, case.facts, case.effective - timedelta(days=1))
    on_the_day = rulebook.evaluate(case.point, case.facts, case.effective)
    assert case.rule_id not in before.rule_ids
    assert case.rule_id in on_the_day.rule_ids


def test_cash_reporting_threshold_series_drops_to_50k_on_2017_07_01(rulebook: Rulebook) -> None:
    """60,000 CNY in cash is under the old 200,000 threshold on 2017-06-30 and reported from
    2017-07-01; 200,000 was already reported the day before."""
    parameter = rulebook.parameters["aml.lvtr_cash_threshold"]
    assert parameter.value_on(date(2017, 6, 30)) == 20_000_000
    assert parameter.value_on(date(2017, 7, 1)) == 5_000_000
    cash = payment(funding_source="bank_card", cash=True, amount=6_000_000)
    old_threshold = payment(funding_source="bank_card", cash=True, amount=20_000_000)
    report = "cn.aml.large_value_transaction_report"
    assert report not in rulebook.evaluate("payment.authorize", cash, date(2017, 6, 30)).rule_ids
    assert report in rulebook.evaluate("payment.authorize", cash, date(2017, 7, 1)).rule_ids
    eve = rulebook.evaluate("payment.authorize", old_threshold, date(2017, 6, 30))
    assert eve.rule_ids == (report,)
    assert eve.outcome == Outcome.report
    assert eve.allowed


# -- behaviour beyond the numbers -------------------------------------------------------------


def test_own_name_bank_transfers_are_outside_the_class_and_daily_caps(rulebook: Rulebook) -> None:
    """A transfer to one's own same-name bank account is not counted against P1 or P2."""
    over_everything = {
        "account_class": "I",
        "spent_since_opening": 100_000,
        "auth_factors": 1,
        "has_certificate": False,
        "spent_today": 100_000,
        "amount": 50_000,
    }
    counted = rulebook.evaluate("payment.authorize", payment(**over_everything), TODAY)
    excluded = rulebook.evaluate(
        "payment.authorize",
        payment(**over_everything, own_name_bank_transfer=True, bank_account_holder_matches=True),
        TODAY,
    )
    assert set(counted.rule_ids) == {
        "cn.payments.class_i_cumulative_cap",
        "cn.payments.daily_cap_by_authentication",
    }
    assert excluded.outcome == Outcome.allow
    assert excluded.findings == ()


def test_payments_off_the_balance_are_outside_the_balance_caps(rulebook: Rulebook) -> None:
    """Bank-card payments, and bank-card channel payments without a funding source, do not touch
    the payment-account balance, so the class and daily caps stay silent."""
    heavy = {"account_class": "I", "spent_since_opening": 100_000, "amount": 90_000}
    by_card = payment(**heavy, funding_source="bank_card")
    by_card_channel = payment(**heavy, channel="bank_card")
    del by_card_channel["funding_source"]
    no_source = payment(**heavy)
    del no_source["funding_source"]
    assert rulebook.evaluate("payment.authorize", by_card, TODAY).findings == ()
    assert rulebook.evaluate("payment.authorize", by_card_channel, TODAY).findings == ()
    assert rulebook.evaluate("payment.authorize", no_source, TODAY).rule_ids == (
        "cn.payments.class_i_cumulative_cap",
    )


def test_daily_cap_asks_for_the_weakest_authentication_that_suffices(rulebook: Rulebook) -> None:
    """Over the single-factor cap but within the two-factor one asks for two factors; over both
    asks for a certificate; a certificate-level contract cap set by an overlay is a refusal."""
    values = rulebook.values_on(TODAY)
    two_factor_cap = values["payments.daily_cap_two_factor"]
    weak = {"auth_factors": 1, "has_certificate": False}
    to_two = rulebook.evaluate("payment.authorize", payment(**weak, amount=two_factor_cap), TODAY)
    to_certificate = rulebook.evaluate(
        "payment.authorize", payment(**weak, amount=two_factor_cap + 1), TODAY
    )
    assert to_two.outcome == Outcome.step_up
    assert f"at least {values['payments.authentication_factors_min']} factors" in (
        to_two.findings[0].message_en
    )
    assert to_certificate.outcome == Outcome.step_up
    assert "digital certificate" in to_certificate.findings[0].message_en
    assert "数字证书" in to_certificate.findings[0].message_zh

    capped = rulebook.with_overlay(
        Overlay(
            "certificate-cap", "", {"payments.daily_cap_certificate": {"2026-01-01": "20000.00"}}
        )
    )
    refused = capped.evaluate("payment.authorize", payment(amount=2_000_001), TODAY)
    assert refused.outcome == Outcome.deny
    assert "20000.00" in refused.findings[0].message_en
    assert "20000.00" in refused.findings[0].message_zh


def test_static_qr_code_over_its_cap_cannot_step_up(rulebook: Rulebook) -> None:
    """A static code (grade D) has no stronger grade, so going over its cap is a refusal that
    points to a dynamic code."""
    facts = payment(channel="qr", qr_grade="D", qr_spent_today=50_000, amount=1)
    decision = rulebook.evaluate("payment.authorize", facts, TODAY)
    assert decision.outcome == Outcome.deny
    assert "dynamic code" in decision.findings[0].message_en
    assert "动态条码" in decision.findings[0].message_zh


def test_investment_purchase_needs_a_class_iii_balance(rulebook: Rulebook) -> None:
    """Class I and II balances cannot buy investment products, Class III can, and a bank-card
    purchase does not depend on the payment account's class."""
    rule = "cn.payments.investment_requires_class_iii"
    outcomes = {
        account_class: rulebook.evaluate("fund.sell", fund_sale(account_class=account_class), TODAY)
        for account_class in ("I", "II", "III")
    }
    assert rule in outcomes["I"].rule_ids
    assert rule in outcomes["II"].rule_ids
    assert rule not in outcomes["III"].rule_ids
    by_card = rulebook.evaluate(
        "fund.sell", fund_sale(account_class="I", funding_source="bank_card"), TODAY
    )
    assert rule not in by_card.rule_ids


def test_mmf_payment_redemptions_count_unless_an_overlay_says_otherwise(
    rulebook: Rulebook,
) -> None:
    """The unsettled question whether payment-funding T+0 redemptions count toward the cap is a
    parameter: counted in the base rulebook, not counted under an overlay that says so."""
    facts = redemption(for_payment=True, t0_redeemed_today=1_000_000, amount=1)
    assert rulebook.evaluate("mmf.redeem", facts, TODAY).outcome == Outcome.deny
    lenient = rulebook.with_overlay(
        Overlay(
            "payment-redemptions-uncounted",
            "",
            {"mmf.t0_cap_counts_payment_redemptions": {"2018-06-01": "false"}},
        )
    )
    assert lenient.evaluate("mmf.redeem", facts, TODAY).outcome == Outcome.allow
    ordinary = redemption(t0_redemption=False, t0_redeemed_today=1_000_000, amount=99_999_999)
    assert rulebook.evaluate("mmf.redeem", ordinary, TODAY).outcome == Outcome.allow


def test_class_ii_overlay_lowers_the_cap_from_2027_only(
    rulebook: Rulebook, overlaid: Rulebook
) -> None:
    """The overlay lowers the Class II annual cap to 50,000 CNY from 2027-01-01, leaves earlier
    dates and the base rulebook alone, and is all that `diff` reports."""
    facts = payment(account_class="II", spent_this_year=5_000_000, amount=1)
    eve, day = date(2026, 12, 31), date(2027, 1, 1)
    assert overlaid.evaluate("payment.authorize", facts, eve).outcome == Outcome.allow
    lowered = overlaid.evaluate("payment.authorize", facts, day)
    assert lowered.rule_ids == ("cn.payments.class_ii_annual_cap",)
    assert "50000.00" in lowered.findings[0].message_en
    assert "50000.00" in lowered.findings[0].message_zh
    assert rulebook.evaluate("payment.authorize", facts, day).outcome == Outcome.allow
    assert [(c.name, c.start, c.before, c.after) for c in diff(rulebook, overlaid)] == [
        ("payments.class_ii_annual_cap", day, 10_000_000, 5_000_000)
    ]
    assert overlaid.content_hash != rulebook.content_hash


def test_missing_counters_and_foreign_currencies_are_caller_errors(rulebook: Rulebook) -> None:
    """A cap never guesses: a missing counter or a non-CNY amount raises MissingFact, while the
    large-value rule accepts USD amounts against its USD thresholds."""
    without_counter = payment()
    del without_counter["spent_today"]
    with pytest.raises(MissingFact, match="spent_today"):
        rulebook.evaluate("payment.authorize", without_counter, TODAY)
    with pytest.raises(MissingFact, match="CNY"):
        rulebook.evaluate("payment.authorize", payment(currency="EUR"), TODAY)
    in_dollars = payment(currency="USD", funding_source="bank_card", cash=True, amount=1_000_000)
    assert rulebook.evaluate("payment.authorize", in_dollars, TODAY).rule_ids == (
        "cn.aml.large_value_transaction_report",
    )


def test_ordinary_payment_passes_every_payment_rule_silently(rulebook: Rulebook) -> None:
    """An ordinary small payment is allowed with no findings, every payments-side rule of the
    point having been asked."""
    decision = rulebook.evaluate("payment.authorize", payment(), TODAY)
    assert decision.outcome == Outcome.allow
    assert decision.findings == ()
    mine = {rule_id for rule_id in decision.evaluated if rule_id in PAYMENTS_RULES}
    assert mine == {
        spec.id
        for spec in rulebook.rules
        if spec.id in PAYMENTS_RULES and spec.point == "payment.authorize"
    }


# -- metadata -----------------------------------------------------------------------------------


def test_every_payments_rule_is_registered_cited_and_documented(rulebook: Rulebook) -> None:
    """Each payments-side rule exists, cites its source, restates the rule with a date, and
    declares the facts and parameters it reads."""
    specs = {spec.id: spec for spec in rulebook.rules if spec.id in PAYMENTS_RULES}
    assert set(specs) == PAYMENTS_RULES
    for spec in specs.values():
        assert spec.citation.strip(), spec.id
        assert re.search(r"\b(19|20)\d\d-\d\d-\d\d\b", spec.description), spec.id
        assert spec.facts, spec.id
        assert spec.parameters, spec.id


def test_every_payments_parameter_is_cited_and_used(rulebook: Rulebook) -> None:
    """Each parameter of this area's files has a reference and is read by at least one rule."""
    names = set()
    for file_name in PARAMETER_FILES:
        names |= set(read_yaml(CN_DIR / "parameters" / file_name))
    read_by_rules = set().union(*(spec.parameters for spec in rulebook.rules))
    for name in names:
        parameter = rulebook.parameters[name]
        assert parameter.reference.instrument, name
        assert parameter.reference.article or parameter.reference.url, name
        assert name in read_by_rules, name


# -- the scenario files, run by a local runner in the brief's format --------------------------


def _convert(value: Any) -> Any:
    """A scenario fact as the rules see it (the brief's conversions)."""
    if isinstance(value, dict):
        ((key, text),) = value.items()
        if key in ACTIVE_CURRENCIES:
            return Money.parse(text, key).amount_minor
        if key == "ratio":
            return Decimal(text)
        if key == "text":
            return str(text)
        raise AssertionError(f"unknown fact wrapper {key!r}")
    if value in ("true", "false"):
        return value == "true"
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return value


def _scenarios() -> Iterator[Any]:
    for file_name in SCENARIO_FILES:
        for index, scenario in enumerate(read_yaml(CN_DIR / "scenarios" / file_name)):
            yield pytest.param(scenario, id=f"{file_name}:{index}:{scenario['name']}")


@pytest.mark.parametrize("scenario", list(_scenarios()))
def test_scenario(rulebook: Rulebook, scenario: dict[str, Any]) -> None:
    """Each scenario of this area's files gets the outcome and exactly the rule ids it expects."""
    assert set(scenario) <= {"name", "date", "point", "overlays", "facts", "expect"}
    book = rulebook
    for name in scenario.get("overlays", []):
        book = book.with_overlay(book.overlay_named(name))
    facts = {key: _convert(value) for key, value in scenario["facts"].items()}
    decision = book.evaluate(scenario["point"], facts, date.fromisoformat(scenario["date"]))
    expected = scenario["expect"]
    assert decision.outcome.name == expected["outcome"]
    assert set(decision.rule_ids) == set(expected["rules"])


def test_every_payments_rule_appears_in_a_scenario() -> None:
    """Each payments-side rule id is expected by at least one scenario of this area's files."""
    expected: set[str] = set()
    for file_name in SCENARIO_FILES:
        for scenario in read_yaml(CN_DIR / "scenarios" / file_name):
            expected.update(scenario["expect"]["rules"])
    assert expected == PAYMENTS_RULES
