"""The `cn` rulebook's lending, wealth, data and insurance rules: boundaries, dates, messages.

Each rule is tested just below, at and above its thresholds and on the day before and the day
of each effective date, here with its messages and the parameter values it records, and in the
scenario files `cn/scenarios/{lending,wealth,data,insurance}.yaml`, which a small local runner
below replays (the shared scenario test replays them too). Further tests pin what the scenario
format cannot express: the draft-regime switch, type checks on facts, the overlay.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tianping.ledger.money import Money
from tianping.rules.errors import MissingFact, RulebookError
from tianping.rules.model import Decision, Outcome
from tianping.rules.rulebook import Overlay, Rulebook, diff, load_rulebook, read_yaml
from tianping.rules.rulebooks.cn import data, insurance, lending, wealth

CN_DIRECTORY = Path(lending.__file__).resolve().parent
SCENARIO_FILES = ("lending", "wealth", "data", "insurance")
OWN_MODULES = frozenset(module.__name__ for module in (lending, wealth, data, insurance))
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def cn() -> Rulebook:
    return load_rulebook("cn")


def own_rules(rulebook: Rulebook) -> list[Any]:
    return [spec for spec in rulebook.rules if spec.function.__module__ in OWN_MODULES]


def yuan(text: str) -> int:
    return Money.parse(text, "CNY").amount_minor


def assert_messages(decision: Decision, *fragments: str) -> None:
    """Every finding has an English and a Chinese message, and each fragment is in both."""
    assert decision.findings
    for finding in decision.findings:
        assert finding.message_en.strip() and finding.message_en.isascii()
        assert CJK.search(finding.message_zh), finding.message_zh
    for fragment in fragments:
        assert any(fragment in f.message_en for f in decision.findings), fragment
        assert any(fragment in f.message_zh for f in decision.findings), fragment


# -------------------------------------------------------------------------- scenario files


def convert(value: Any) -> Any:
    """A scenario fact as the brief writes it, converted to what the rules read."""
    if isinstance(value, dict):
        ((tag, raw),) = value.items()
        if tag == "ratio":
            return Decimal(raw)
        if tag == "text":
            return raw
        return Money.parse(raw, tag).amount_minor
    if value in ("true", "false"):
        return value == "true"
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return value


def scenarios() -> Iterator[Any]:
    for name in SCENARIO_FILES:
        for index, scenario in enumerate(read_yaml(CN_DIRECTORY / "scenarios" / f"{name}.yaml")):
            yield pytest.param(scenario, id=f"{name}[{index}] {scenario['name']}")


def run(rulebook: Rulebook, scenario: Mapping[str, Any]) -> Decision:
    for overlay in scenario.get("overlays") or ():
        rulebook = rulebook.with_overlay(rulebook.overlay_named(overlay))
    facts = {name: convert(value) for name, value in scenario["facts"].items()}
    return rulebook.evaluate(scenario["point"], facts, date.fromisoformat(scenario["date"]))


@pytest.mark.parametrize("scenario", list(scenarios()))
def test_scenario(cn: Rulebook, scenario: Mapping[str, Any]) -> None:
    """Each scenario gets its expected outcome and exactly its expected rules, with messages."""
    decision = run(cn, scenario)
    assert decision.outcome.name == scenario["expect"]["outcome"], decision.messages()
    assert set(decision.rule_ids) == set(scenario["expect"]["rules"]), decision.messages()
    if decision.findings:
        assert_messages(decision)


def all_scenarios() -> list[Mapping[str, Any]]:
    return [param.values[0] for param in scenarios()]


def test_every_rule_has_a_scenario_that_fires_it(cn: Rulebook) -> None:
    """Every rule of these modules is expected to fire in at least one scenario."""
    fired = {rule for s in all_scenarios() for rule in s["expect"]["rules"]}
    missing = {spec.id for spec in own_rules(cn)} - fired
    assert not missing


def test_every_effective_date_has_scenarios_on_the_day_before_and_the_day(cn: Rulebook) -> None:
    """For each date a rule's parameters change, scenarios at its point run on that day and the
    day before."""
    dated = {(s["point"], date.fromisoformat(s["date"])) for s in all_scenarios()}
    checked = set()
    missing = []
    for spec in own_rules(cn):
        for name in spec.parameters:
            for start in cn.parameters[name].starts:
                for day in (start - timedelta(days=1), start):
                    checked.add((spec.point, day))
                    if (spec.point, day) not in dated:
                        missing.append((spec.id, name, day.isoformat()))
    assert not missing
    # Guards against a vacuous pass: the LPR series alone has nine dates.
    assert len(checked) > 50


# -------------------------------------------------------------------------- loan.originate


def originate(cn: Rulebook, on: date, **facts: Any) -> Decision:
    base: dict[str, Any] = {
        "lender_type": "microlender",
        "is_student": False,
        "has_income": True,
        "loan_purpose": "consumer",
        "amount": yuan("10000.00"),
        "outstanding_balance": 0,
        "household_outstanding_balance": 0,
        "annual_income_3y_avg": yuan("1200000.00"),
    }
    return cn.evaluate("loan.originate", {**base, **facts}, on)


DRAFT_2020_DAY = date(2022, 6, 1)
DRAFT_2024_DAY = date(2025, 3, 1)


@pytest.mark.parametrize(
    ("amount", "outcome"),
    [("99999.99", Outcome.allow), ("100000.00", Outcome.allow), ("100000.01", Outcome.deny)],
)
def test_2020_draft_fixed_cap(cn: Rulebook, amount: str, outcome: Outcome) -> None:
    """Under the 2020 draft, 200,000 outstanding plus this loan may reach 300,000 and no more."""
    decision = originate(
        cn, DRAFT_2020_DAY, amount=yuan(amount), outstanding_balance=yuan("200000.00")
    )
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.lending.microloan_borrower_cap_2020_draft",)
        assert_messages(decision, "300000.01 CNY", "300000.00 CNY", "1200000.00 CNY")
        assert decision.parameters_used["lending.microloan_cap_regime"] == "draft_2020"


@pytest.mark.parametrize(
    ("amount", "outcome"),
    [("33333.33", Outcome.allow), ("33333.34", Outcome.deny)],
)
def test_2020_draft_income_third_is_exact_in_fen(
    cn: Rulebook, amount: str, outcome: Outcome
) -> None:
    """A third of 100,000.01 CNY income admits 33,333.33 but not 33,333.34, with no rounding."""
    decision = originate(
        cn, DRAFT_2020_DAY, amount=yuan(amount), annual_income_3y_avg=yuan("100000.01")
    )
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert_messages(decision, "33333.34 CNY", "33333.33 CNY", "100000.01 CNY")


@pytest.mark.parametrize(
    ("amount", "outcome"),
    [("999999.99", Outcome.allow), ("1000000.00", Outcome.allow), ("1000000.01", Outcome.deny)],
)
def test_2020_draft_organisation_cap(cn: Rulebook, amount: str, outcome: Outcome) -> None:
    """Under the 2020 draft an organisation may borrow up to 1,000,000 CNY from a microlender."""
    decision = originate(cn, DRAFT_2020_DAY, party_type="entity", amount=yuan(amount))
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert_messages(decision, "1000000.01 CNY", "1000000.00 CNY")


@pytest.mark.parametrize(
    ("on", "rule"),
    [
        (date(2020, 11, 1), None),
        (date(2020, 11, 2), "cn.lending.microloan_borrower_cap_2020_draft"),
        (date(2024, 8, 22), "cn.lending.microloan_borrower_cap_2020_draft"),
        (date(2024, 8, 23), "cn.lending.microloan_household_cap_2024_draft"),
    ],
)
def test_regime_dates_choose_the_draft(cn: Rulebook, on: date, rule: str | None) -> None:
    """A 300,000.01 consumer microloan meets no cap before 2020-11-02, the 2020 draft's until
    2024-08-22, and the 2024 draft's from 2024-08-23."""
    decision = originate(cn, on, amount=yuan("300000.01"))
    assert decision.rule_ids == ((rule,) if rule else ())


@pytest.mark.parametrize(
    ("purpose", "balance", "amount", "outcome", "cap_text"),
    [
        ("consumer", "150000.00", "49999.99", Outcome.allow, "200000.00 CNY"),
        ("consumer", "150000.00", "50000.00", Outcome.allow, "200000.00 CNY"),
        ("consumer", "150000.00", "50000.01", Outcome.deny, "200000.00 CNY"),
        ("business", "9000000.00", "999999.99", Outcome.allow, "10000000.00 CNY"),
        ("business", "9000000.00", "1000000.00", Outcome.allow, "10000000.00 CNY"),
        ("business", "9000000.00", "1000000.01", Outcome.deny, "10000000.00 CNY"),
    ],
)
def test_2024_draft_household_caps(
    cn: Rulebook, purpose: str, balance: str, amount: str, outcome: Outcome, cap_text: str
) -> None:
    """Under the 2024 draft a household may owe a microlender 200,000 CNY of consumer loans and
    10,000,000 CNY of business loans."""
    decision = originate(
        cn,
        DRAFT_2024_DAY,
        loan_purpose=purpose,
        amount=yuan(amount),
        household_outstanding_balance=yuan(balance),
    )
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.lending.microloan_household_cap_2024_draft",)
        assert_messages(decision, cap_text)


def test_overlay_can_switch_back_to_the_2020_draft(cn: Rulebook) -> None:
    """An overlay naming draft_2020 from 2025 applies the 300,000 cap instead of 200,000."""
    overlay = Overlay(
        "regime-2020", "", {"lending.microloan_cap_regime": {"2025-01-01": "draft_2020"}}
    )
    switched = cn.with_overlay(overlay)
    facts = {"amount": yuan("250000.00"), "annual_income_3y_avg": yuan("3000000.00")}
    assert originate(cn, DRAFT_2024_DAY, **facts).outcome is Outcome.deny
    assert originate(switched, DRAFT_2024_DAY, **facts).outcome is Outcome.allow
    over = originate(switched, DRAFT_2024_DAY, amount=yuan("300000.01"))
    assert over.rule_ids == ("cn.lending.microloan_borrower_cap_2020_draft",)


def test_overlay_can_turn_the_microloan_caps_off(cn: Rulebook) -> None:
    """The regime `off` applies neither draft."""
    off = cn.with_overlay(
        Overlay("no-drafts", "", {"lending.microloan_cap_regime": {"2025-01-01": "off"}})
    )
    assert originate(off, DRAFT_2024_DAY, amount=yuan("9000000.00")).outcome is Outcome.allow


def test_unknown_regime_is_refused_loudly(cn: Rulebook) -> None:
    """A regime name with a typo raises instead of silently applying no cap."""
    typo = cn.with_overlay(
        Overlay("typo", "", {"lending.microloan_cap_regime": {"2025-01-01": "draft2024"}})
    )
    with pytest.raises(RulebookError, match="unknown regime 'draft2024'"):
        originate(typo, DRAFT_2024_DAY)


def test_microloan_caps_refuse_amounts_not_in_cny(cn: Rulebook) -> None:
    """A loan in another currency is refused instead of compared with a CNY cap."""
    decision = originate(cn, DRAFT_2024_DAY, currency="USD")
    assert decision.outcome is Outcome.deny
    assert_messages(decision, "USD")


@pytest.mark.parametrize(
    ("on", "amount", "outcome"),
    [
        (date(2024, 4, 17), "200000.01", Outcome.allow),
        (date(2024, 4, 18), "200000.01", Outcome.deny),
        (DRAFT_2024_DAY, "199999.99", Outcome.allow),
        (DRAFT_2024_DAY, "200000.00", Outcome.allow),
        (DRAFT_2024_DAY, "200000.01", Outcome.deny),
    ],
)
def test_consumer_finance_single_borrower_cap(
    cn: Rulebook, on: date, amount: str, outcome: Outcome
) -> None:
    """From 2024-04-18 a consumer finance company lends one borrower at most 200,000 CNY."""
    decision = originate(cn, on, lender_type="consumer_finance", amount=yuan(amount))
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.lending.consumer_finance_borrower_cap",)
        assert_messages(decision, "200000.01 CNY", "200000.00 CNY")


@pytest.mark.parametrize(
    ("on", "share", "outcome"),
    [
        (date(2021, 12, 31), "0.10", Outcome.allow),
        (date(2022, 1, 1), "0.10", Outcome.deny),
        (DRAFT_2020_DAY, "0.2999", Outcome.deny),
        (DRAFT_2020_DAY, "0.30", Outcome.allow),
        (DRAFT_2020_DAY, "0.3001", Outcome.allow),
    ],
)
def test_co_lending_partner_share(cn: Rulebook, on: date, share: str, outcome: Outcome) -> None:
    """From 2022-01-01 the platform partner funds at least 30% of a co-lending loan."""
    decision = originate(cn, on, lender_type="bank", co_lending=True, partner_share=Decimal(share))
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.lending.co_lending_partner_share",)
        assert_messages(decision, f"{Decimal(share) * 100:f}".rstrip("0").rstrip(".") + "%", "30%")


def test_co_lending_share_must_be_a_decimal(cn: Rulebook) -> None:
    """A share given as text is a caller bug, not a silent pass."""
    with pytest.raises(MissingFact, match="partner_share"):
        originate(cn, DRAFT_2020_DAY, lender_type="bank", co_lending=True, partner_share="0.3")


@pytest.mark.parametrize(
    ("on", "lender", "confirmed", "rules"),
    [
        (date(2021, 3, 16), "microlender", False, ()),
        (date(2021, 3, 17), "microlender", False, ("cn.lending.student_microloan_ban",)),
        (date(2021, 3, 17), "microlender", True, ("cn.lending.student_microloan_ban",)),
        (date(2021, 3, 16), "bank", False, ()),
        (date(2021, 3, 17), "bank", False, ("cn.lending.student_loan_second_repayment_source",)),
        (date(2021, 3, 17), "bank", True, ()),
        (
            DRAFT_2024_DAY,
            "consumer_finance",
            False,
            ("cn.lending.student_loan_second_repayment_source",),
        ),
    ],
)
def test_student_loans(
    cn: Rulebook, on: date, lender: str, confirmed: bool, rules: tuple[str, ...]
) -> None:
    """From 2021-03-17 microlenders make no consumer loans to students, and banks and consumer
    finance companies need a confirmed second repayment source."""
    decision = originate(
        cn,
        on,
        lender_type=lender,
        is_student=True,
        second_repayment_source_confirmed=confirmed,
    )
    assert decision.rule_ids == rules
    if rules:
        assert_messages(decision)


@pytest.mark.parametrize(
    ("on", "outcome"), [(date(2017, 11, 30), Outcome.allow), (date(2017, 12, 1), Outcome.deny)]
)
def test_no_loans_without_income(cn: Rulebook, on: date, outcome: Outcome) -> None:
    """From 2017-12-01 no loan goes to a natural person without income."""
    decision = originate(cn, on, lender_type="bank", has_income=False)
    assert decision.outcome is outcome


def test_boolean_facts_are_type_checked(cn: Rulebook) -> None:
    """The text "false" where a boolean belongs is a caller bug, not a truthy value."""
    with pytest.raises(MissingFact, match="has_income"):
        originate(cn, DRAFT_2020_DAY, lender_type="bank", has_income="false")


def test_unknown_lender_type_is_a_caller_bug(cn: Rulebook) -> None:
    """A lender type outside the four known ones raises instead of escaping every cap."""
    with pytest.raises(MissingFact, match="lender_type"):
        originate(cn, DRAFT_2020_DAY, lender_type="micro_lender")


# -------------------------------------------------------------------------- loan.price


def price(cn: Rulebook, on: date, lender: str, apr: str, **facts: Any) -> Decision:
    base: dict[str, Any] = {
        "lender_type": lender,
        "apr": Decimal(apr),
        "apr_disclosed": True,
        "apr_most_prominent": True,
        "upfront_deduction": False,
    }
    return cn.evaluate("loan.price", {**base, **facts}, on)


@pytest.mark.parametrize(
    ("on", "apr", "outcome", "cap", "lpr"),
    [
        (date(2020, 8, 20), "0.1539", Outcome.allow, "", ""),
        (date(2020, 8, 20), "0.1540", Outcome.allow, "", ""),
        (date(2020, 8, 20), "0.1541", Outcome.deny, "15.4%", "3.85%"),
        (date(2025, 5, 19), "0.1201", Outcome.allow, "", ""),
        (date(2025, 5, 20), "0.1199", Outcome.allow, "", ""),
        (date(2025, 5, 20), "0.12", Outcome.allow, "", ""),
        (date(2025, 5, 20), "0.1201", Outcome.deny, "12%", "3%"),
    ],
)
def test_private_lending_cap_is_four_times_the_lpr(
    cn: Rulebook, on: date, apr: str, outcome: Outcome, cap: str, lpr: str
) -> None:
    """An unlicensed lender may charge at most 4 x the one-year LPR in force on the contract
    date: 15.4% at 3.85%, 12% at 3.00% from 2025-05-20."""
    decision = price(cn, on, "unlicensed", apr)
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.lending.private_lending_rate_cap_lpr",)
        assert_messages(decision, cap, lpr)
        assert decision.parameters_used["lending.private_lending_lpr_multiple"] == 4


@pytest.mark.parametrize(
    ("on", "apr", "outcome", "rules"),
    [
        (date(2015, 8, 31), "0.40", Outcome.allow, ()),
        (date(2015, 9, 1), "0.40", Outcome.deny, ("cn.lending.private_lending_rate_cap_2015",)),
        (date(2019, 1, 1), "0.24", Outcome.allow, ()),
        (
            date(2019, 1, 1),
            "0.2401",
            Outcome.report,
            ("cn.lending.private_lending_rate_cap_2015",),
        ),
        (date(2019, 1, 1), "0.36", Outcome.report, ("cn.lending.private_lending_rate_cap_2015",)),
        (date(2019, 1, 1), "0.3601", Outcome.deny, ("cn.lending.private_lending_rate_cap_2015",)),
        (
            date(2020, 8, 19),
            "0.30",
            Outcome.report,
            ("cn.lending.private_lending_rate_cap_2015",),
        ),
        (date(2020, 8, 20), "0.30", Outcome.deny, ("cn.lending.private_lending_rate_cap_lpr",)),
    ],
)
def test_two_lines_three_zones_before_2020_08_20(
    cn: Rulebook, on: date, apr: str, outcome: Outcome, rules: tuple[str, ...]
) -> None:
    """From 2015-09-01 to 2020-08-19 an unlicensed lender's rate above 24% is flagged and above
    36% refused; from 2020-08-20 the 4 x LPR cap replaces both lines."""
    decision = price(cn, on, "unlicensed", apr)
    assert decision.outcome is outcome
    assert decision.rule_ids == rules
    if rules:
        assert_messages(decision, f"{Decimal(apr) * 100:f}".rstrip("0").rstrip(".") + "%")


@pytest.mark.parametrize(
    ("on", "lender", "apr", "outcome"),
    [
        (date(2017, 11, 30), "bank", "0.40", Outcome.allow),
        (date(2017, 12, 1), "bank", "0.40", Outcome.deny),
        (date(2020, 12, 31), "microlender", "0.30", Outcome.allow),
        (date(2021, 1, 1), "microlender", "0.30", Outcome.deny),
        (DRAFT_2024_DAY, "consumer_finance", "0.2399", Outcome.allow),
        (DRAFT_2024_DAY, "consumer_finance", "0.24", Outcome.allow),
        (DRAFT_2024_DAY, "consumer_finance", "0.2401", Outcome.deny),
    ],
)
def test_licensed_lender_ceiling(
    cn: Rulebook, on: date, lender: str, apr: str, outcome: Outcome
) -> None:
    """Licensed lenders are held to 36% from 2017-12-01 and 24% from 2021-01-01, and are never
    held to the private-lending cap."""
    decision = price(cn, on, lender, apr)
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.lending.licensed_lender_rate_ceiling",)
        assert_messages(decision)


def test_licensed_ceiling_has_confidence_u(cn: Rulebook) -> None:
    """The 24% ceiling is window guidance, not statute, and is marked unverified; so is the
    consumer-finance 200,000 CNY cap."""
    assert cn.parameters["lending.licensed_lender_apr_ceiling"].confidence == "U"
    assert cn.parameters["lending.consumer_finance_borrower_cap"].confidence == "U"


@pytest.mark.parametrize(
    ("on", "apr", "outcome"),
    [
        (date(2026, 12, 31), "0.20", Outcome.allow),
        (date(2027, 1, 1), "0.20", Outcome.deny),
        (date(2027, 1, 1), "0.1539", Outcome.allow),
        (date(2027, 1, 1), "0.154", Outcome.allow),
        (date(2027, 1, 1), "0.1541", Outcome.deny),
    ],
)
def test_interest_cap_overlay(cn: Rulebook, on: date, apr: str, outcome: Outcome) -> None:
    """The overlay lowers the licensed-lender ceiling to 15.4% from 2027-01-01."""
    reformed = load_rulebook("cn", overlays=("interest-cap-15-4",))
    decision = price(reformed, on, "microlender", apr)
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert_messages(decision, "15.4%")
        assert decision.parameters_used["lending.licensed_lender_apr_ceiling"] == Decimal("0.154")
    assert price(cn, on, "microlender", apr).outcome is Outcome.allow


def test_interest_cap_overlay_changes_one_value(cn: Rulebook) -> None:
    """The overlay's diff is exactly one parameter value from 2027-01-01, and the base keeps
    its hash."""
    reformed = cn.with_overlay(cn.overlay_named("interest-cap-15-4"))
    changes = diff(cn, reformed)
    assert [(c.name, c.start, c.before, c.after) for c in changes] == [
        (
            "lending.licensed_lender_apr_ceiling",
            date(2027, 1, 1),
            Decimal("0.24"),
            Decimal("0.154"),
        )
    ]
    assert reformed.content_hash != cn.content_hash
    assert cn.parameters["lending.licensed_lender_apr_ceiling"].value_on(date(2027, 1, 1)) == (
        Decimal("0.24")
    )


@pytest.mark.parametrize(
    ("on", "disclosed", "prominent", "outcome"),
    [
        (date(2021, 3, 30), False, False, Outcome.allow),
        (date(2021, 3, 31), False, True, Outcome.deny),
        (date(2021, 3, 31), True, False, Outcome.deny),
        (date(2021, 3, 31), True, True, Outcome.allow),
    ],
)
def test_apr_disclosure(
    cn: Rulebook, on: date, disclosed: bool, prominent: bool, outcome: Outcome
) -> None:
    """From 2021-03-31 the annualised rate is shown, more prominently than daily or monthly."""
    decision = price(cn, on, "bank", "0.10", apr_disclosed=disclosed, apr_most_prominent=prominent)
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.lending.apr_disclosure",)
        assert_messages(decision)


def test_apr_must_be_a_decimal_not_a_float(cn: Rulebook) -> None:
    """A binary float rate is refused as a caller bug."""
    facts = {"apr_disclosed": True, "apr_most_prominent": True, "upfront_deduction": False}
    with pytest.raises(MissingFact, match="apr"):
        cn.evaluate(
            "loan.price",
            {"lender_type": "bank", "apr": 1 / 10, **facts},
            DRAFT_2024_DAY,
        )


@pytest.mark.parametrize(
    ("on", "outcome"), [(date(2017, 11, 30), Outcome.allow), (date(2017, 12, 1), Outcome.deny)]
)
def test_no_upfront_deduction(cn: Rulebook, on: date, outcome: Outcome) -> None:
    """From 2017-12-01 interest may not be deducted from the principal up front."""
    decision = price(cn, on, "bank", "0.10", upfront_deduction=True)
    assert decision.outcome is outcome
    assert price(cn, on, "bank", "0.10").outcome is Outcome.allow


@pytest.mark.parametrize(
    ("on", "included", "outcome"),
    [
        (date(2025, 9, 30), False, Outcome.allow),
        (date(2025, 10, 1), False, Outcome.deny),
        (date(2025, 10, 1), True, Outcome.allow),
    ],
)
def test_credit_enhancement_fees_in_apr(
    cn: Rulebook, on: date, included: bool, outcome: Outcome
) -> None:
    """From 2025-10-01 guarantee fees are part of the annualised rate."""
    decision = price(
        cn,
        on,
        "bank",
        "0.10",
        credit_enhancement_fees=True,
        apr_includes_credit_enhancement_fees=included,
    )
    assert decision.outcome is outcome


# -------------------------------------------------------------------------- payment.authorize


@pytest.mark.parametrize(
    ("on", "source", "preselected", "outcome"),
    [
        (date(2021, 4, 11), "credit_line", True, Outcome.allow),
        (date(2021, 4, 12), "credit_line", True, Outcome.deny),
        (date(2021, 4, 12), "credit_line", False, Outcome.allow),
        (date(2021, 4, 12), "bank_card", True, Outcome.allow),
    ],
)
def test_credit_line_is_never_preselected(
    cn: Rulebook, on: date, source: str, preselected: bool, outcome: Outcome
) -> None:
    """From 2021-04-12 a checkout may not pre-select a credit line as the funding source."""
    facts = {
        "amount": yuan("120.00"),
        "account_class": "II",
        "channel": "balance",
        "daily_total_same_direction": 0,
        "funding_source": source,
        "preselected": preselected,
    }
    decision = cn.evaluate("payment.authorize", facts, on)
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.lending.credit_not_preselected",)
        assert_messages(decision)


# -------------------------------------------------------------------------- fund.sell


def sell(cn: Rulebook, on: date, investor: str, risk: str, **facts: Any) -> Decision:
    base = {"investor_class": investor, "product_risk": risk, "funding_source": "bank_card"}
    return cn.evaluate("fund.sell", {**base, **facts}, on)


SALE_DAY = date(2024, 5, 1)


@pytest.mark.parametrize(
    ("investor", "highest"),
    [("C1", 1), ("C2", 2), ("C3", 3), ("C4", 4), ("C5", 5), ("professional", 5)],
)
def test_suitability_matrix(cn: Rulebook, investor: str, highest: int) -> None:
    """Each class buys up to its level freely and above it only after a written warning."""
    for level in range(1, 6):
        decision = sell(cn, SALE_DAY, investor, f"R{level}")
        expected = Outcome.allow if level <= highest else Outcome.confirm
        assert decision.outcome is expected, (investor, level)
        if expected is Outcome.confirm:
            assert_messages(decision, f"R{level}", f"R{highest}")


def test_c1_lowest_never_buys_above_r1(cn: Rulebook) -> None:
    """A C1-lowest investor buys R1 and is refused R2 outright, with no warning to accept."""
    assert sell(cn, SALE_DAY, "C1_lowest", "R1").outcome is Outcome.allow
    decision = sell(cn, SALE_DAY, "C1_lowest", "R2")
    assert decision.outcome is Outcome.deny
    assert_messages(decision, "R2", "C1_lowest")


def test_firm_may_not_recommend_above_class(cn: Rulebook) -> None:
    """A firm-initiated sale above the investor's class is refused, not merely warned."""
    decision = sell(cn, SALE_DAY, "C2", "R4", proactive_recommendation=True)
    assert decision.outcome is Outcome.deny


@pytest.mark.parametrize(
    ("on", "outcome"), [(date(2017, 6, 30), Outcome.allow), (date(2017, 7, 1), Outcome.confirm)]
)
def test_suitability_effective_date(cn: Rulebook, on: date, outcome: Outcome) -> None:
    """Suitability matching applies from 2017-07-01."""
    assert sell(cn, on, "C1", "R5").outcome is outcome


def test_unknown_product_risk_is_a_caller_bug(cn: Rulebook) -> None:
    """A product risk outside R1..R5 raises rather than passing unchecked."""
    with pytest.raises(MissingFact, match="product_risk"):
        sell(cn, SALE_DAY, "C3", "R6")


def test_bad_suitability_table_is_a_rulebook_error(cn: Rulebook) -> None:
    """A table overlay naming a level outside R1..R5 raises, naming the parameter and class."""
    bad = cn.with_overlay(
        Overlay(
            "bad-table",
            "",
            {"wealth.suitability_max_product_risk": {"2024-01-01": {"C3": "R9"}}},
        )
    )
    with pytest.raises(RulebookError, match=r"suitability_max_product_risk\.C3"):
        sell(bad, SALE_DAY, "C3", "R4")


def private_sale(cn: Rulebook, on: date, **facts: Any) -> Decision:
    base: dict[str, Any] = {
        "private_product": True,
        "product_category": "equity",
        "amount": yuan("1000000.00"),
        "investment_experience_years": 2,
        "household_net_financial_assets": yuan("3000000.00"),
    }
    return sell(cn, on, "C5", "R3", **{**base, **facts})


@pytest.mark.parametrize(
    ("facts", "outcome"),
    [
        ({"household_net_financial_assets": yuan("2999999.99")}, Outcome.deny),
        ({"household_net_financial_assets": yuan("3000000.00")}, Outcome.allow),
        (
            {"household_net_financial_assets": 0, "household_financial_assets": yuan("5000000")},
            Outcome.allow,
        ),
        (
            {"household_net_financial_assets": 0, "household_financial_assets": yuan("4999999.99")},
            Outcome.deny,
        ),
        (
            {"household_net_financial_assets": 0, "annual_income_3y_avg": yuan("400000")},
            Outcome.allow,
        ),
        (
            {"household_net_financial_assets": 0, "annual_income_3y_avg": yuan("399999.99")},
            Outcome.deny,
        ),
        ({"investment_experience_years": 1}, Outcome.deny),
        ({"party_type": "entity", "net_assets": yuan("9999999.99")}, Outcome.deny),
        ({"party_type": "entity", "net_assets": yuan("10000000.00")}, Outcome.allow),
    ],
)
def test_private_product_qualified_investor(
    cn: Rulebook, facts: dict[str, Any], outcome: Outcome
) -> None:
    """Private products need two years' experience and 3m net / 5m gross financial assets or
    400k income, or an entity with 10m net assets."""
    decision = private_sale(cn, SALE_DAY, **facts)
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.wealth.private_product_qualified_investor",)
        assert_messages(decision)


@pytest.mark.parametrize(
    ("category", "amount", "outcome", "minimum"),
    [
        ("fixed_income", "299999.99", Outcome.deny, "300000.00 CNY"),
        ("fixed_income", "300000.00", Outcome.allow, ""),
        ("mixed", "399999.99", Outcome.deny, "400000.00 CNY"),
        ("mixed", "400000.00", Outcome.allow, ""),
        ("derivatives", "999999.99", Outcome.deny, "1000000.00 CNY"),
        ("derivatives", "1000000.00", Outcome.allow, ""),
    ],
)
def test_private_product_minimum_ticket(
    cn: Rulebook, category: str, amount: str, outcome: Outcome, minimum: str
) -> None:
    """A private product's minimum ticket is 300k fixed income, 400k mixed, 1m otherwise."""
    decision = private_sale(cn, SALE_DAY, product_category=category, amount=yuan(amount))
    assert decision.outcome is outcome
    if outcome is Outcome.deny:
        assert decision.rule_ids == ("cn.wealth.private_product_minimum_ticket",)
        assert_messages(decision, minimum, f"{amount} CNY")


@pytest.mark.parametrize(
    ("on", "outcome"), [(date(2018, 4, 26), Outcome.allow), (date(2018, 4, 27), Outcome.deny)]
)
def test_no_guaranteed_return(cn: Rulebook, on: date, outcome: Outcome) -> None:
    """From 2018-04-27 no sale may promise guaranteed principal or return."""
    assert sell(cn, on, "C5", "R3", promises_guaranteed_return=True).outcome is outcome


# -------------------------------------------------------------------------- data.use


def use(cn: Rulebook, on: date, **facts: Any) -> Decision:
    base: dict[str, Any] = {"person_age": 30, "data_fields": ("name",), "purpose": "loan"}
    return cn.evaluate("data.use", {**base, **facts}, on)


PIPL_DAY = date(2021, 11, 1)


@pytest.mark.parametrize(
    ("on", "age", "consents", "outcome"),
    [
        (date(2021, 10, 31), 13, (), Outcome.allow),
        (PIPL_DAY, 13, (), Outcome.deny),
        (PIPL_DAY, 14, (), Outcome.allow),
        (PIPL_DAY, 15, (), Outcome.allow),
        (PIPL_DAY, 13, ("guardian",), Outcome.allow),
    ],
)
def test_minor_guardian_consent(
    cn: Rulebook, on: date, age: int, consents: tuple[str, ...], outcome: Outcome
) -> None:
    """From 2021-11-01 a child under 14's data needs guardian consent, at data use and at
    account opening."""
    decision = use(cn, on, person_age=age, consents=consents)
    assert decision.outcome is outcome
    opening = cn.evaluate(
        "account.open", {"account_class": "II", "person_age": age, "consents": consents}, on
    )
    assert opening.outcome is outcome
    if outcome is Outcome.deny:
        assert_messages(decision, "14")
        assert_messages(opening, "14")


def test_minor_rule_asks_nothing_before_the_pipl(cn: Rulebook) -> None:
    """Before 2021-11-01 the minors rule is not in force, so a use without an age passes."""
    decision = cn.evaluate("data.use", {"data_fields": "name"}, date(2021, 10, 31))
    assert decision.outcome is Outcome.allow
    with pytest.raises(MissingFact, match="person_age"):
        cn.evaluate("data.use", {"data_fields": "name"}, PIPL_DAY)


def test_separate_consent_lists_every_missing_trigger(cn: Rulebook) -> None:
    """Sensitive data shared abroad with another handler needs three separate consents; the
    message names each missing one."""
    decision = use(
        cn,
        PIPL_DAY,
        data_fields="name,financial_account",
        shares_with_third_party=True,
        cross_border_transfer=True,
        consents="third_party",
    )
    assert decision.rule_ids == ("cn.data.separate_consent",)
    assert_messages(decision, "financial_account")
    assert "abroad" in decision.findings[0].message_en
    assert "another handler" not in decision.findings[0].message_en


@pytest.mark.parametrize(
    ("on", "recipient", "outcome"),
    [
        (date(2021, 12, 31), "lender", Outcome.allow),
        (date(2022, 1, 1), "lender", Outcome.report),
        (date(2023, 6, 29), "lender", Outcome.report),
        (date(2023, 6, 30), "lender", Outcome.deny),
        (date(2023, 6, 30), "licensed_bureau", Outcome.allow),
    ],
)
def test_credit_data_goes_through_a_licensed_bureau(
    cn: Rulebook, on: date, recipient: str, outcome: Outcome
) -> None:
    """Platform credit data sent straight to a lender is flagged from 2022-01-01 and refused
    from the 2023-06-30 deadline."""
    decision = use(cn, on, credit_data=True, recipient=recipient)
    assert decision.outcome is outcome
    if outcome is not Outcome.allow:
        assert_messages(decision)


def test_prohibited_credit_fields_are_named(cn: Rulebook) -> None:
    """Credit data carrying genes or blood type is refused, naming the fields."""
    decision = use(
        cn, PIPL_DAY, credit_data=True, recipient="licensed_bureau", data_fields="genes,income"
    )
    assert decision.rule_ids == ("cn.data.prohibited_credit_fields",)
    assert_messages(decision, "genes")


@pytest.mark.parametrize(
    ("consents", "agreed", "outcome"),
    [
        ((), "", Outcome.deny),
        (("credit_query",), "loan", Outcome.allow),
        (("credit_query",), "marketing", Outcome.deny),
    ],
)
def test_credit_query_consent_matches_purpose(
    cn: Rulebook, consents: tuple[str, ...], agreed: str, outcome: Outcome
) -> None:
    """A bureau query needs written consent given for the same purpose."""
    decision = use(cn, PIPL_DAY, bureau_query=True, consents=consents, query_consent_purpose=agreed)
    assert decision.outcome is outcome


@pytest.mark.parametrize(
    ("facts", "rule"),
    [
        (
            {"service_refused_for_declined_consent": True, "declined_consent_necessary": False},
            "cn.data.no_refusal_for_unneeded_consent",
        ),
        (
            {"automated_decision": True, "significant_impact": True, "human_review_offered": False},
            "cn.data.automated_decision_human_review",
        ),
        (
            {"personalised": True, "non_personalised_option": False},
            "cn.data.personalisation_opt_out",
        ),
    ],
)
def test_pipl_flags_start_on_2021_11_01(cn: Rulebook, facts: dict[str, Any], rule: str) -> None:
    """The PIPL consent and automated-decision flags refuse from 2021-11-01, not the day before."""
    assert use(cn, date(2021, 10, 31), **facts).outcome is Outcome.allow
    decision = use(cn, PIPL_DAY, **facts)
    assert decision.rule_ids == (rule,)
    assert_messages(decision)


# -------------------------------------------------------------------------- policy.sell


def sell_policy(cn: Rulebook, on: date, **facts: Any) -> Decision:
    base: dict[str, Any] = {
        "seller_licensed": True,
        "product_line": "health",
        "policy_term_months": 60,
        "sales_channel": "internet",
        "free_look_days": 15,
    }
    return cn.evaluate("policy.sell", {**base, **facts}, on)


@pytest.mark.parametrize(
    ("on", "outcome"), [(date(2021, 1, 31), Outcome.allow), (date(2021, 2, 1), Outcome.deny)]
)
def test_only_licensed_sellers(cn: Rulebook, on: date, outcome: Outcome) -> None:
    """From 2021-02-01 only licensed institutions sell insurance online."""
    decision = sell_policy(cn, on, seller_licensed=False)
    assert decision.outcome is outcome


@pytest.mark.parametrize(
    ("on", "line", "channel", "months", "days", "rules"),
    [
        (SALE_DAY, "health", "internet", 60, 14, ("cn.insurance.free_look_long_term_health",)),
        (SALE_DAY, "health", "internet", 60, 15, ()),
        (SALE_DAY, "health", "internet", 60, 16, ()),
        (SALE_DAY, "health", "internet", 12, 0, ()),
        (SALE_DAY, "health", "internet", 13, 0, ("cn.insurance.free_look_long_term_health",)),
        (date(2019, 11, 30), "health", "internet", 60, 10, ()),
        (
            date(2019, 12, 1),
            "health",
            "internet",
            60,
            10,
            ("cn.insurance.free_look_long_term_health",),
        ),
        (date(2006, 8, 31), "health", "internet", 60, 0, ()),
        (
            date(2006, 9, 1),
            "health",
            "internet",
            60,
            0,
            ("cn.insurance.free_look_long_term_health",),
        ),
        (SALE_DAY, "life", "bank", 60, 14, ("cn.insurance.free_look_bancassurance",)),
        (SALE_DAY, "life", "bank", 60, 15, ()),
        (date(2014, 3, 31), "life", "bank", 60, 10, ()),
        (date(2014, 4, 1), "life", "bank", 60, 10, ("cn.insurance.free_look_bancassurance",)),
        (SALE_DAY, "property", "bank", 60, 0, ()),
    ],
)
def test_free_look_periods(
    cn: Rulebook,
    on: date,
    line: str,
    channel: str,
    months: int,
    days: int,
    rules: tuple[str, ...],
) -> None:
    """Long-term health policies disclose 10 free-look days from 2006-09-01 and 15 from
    2019-12-01; bank-channel personal policies over a year disclose 15 from 2014-04-01."""
    decision = sell_policy(
        cn,
        on,
        product_line=line,
        sales_channel=channel,
        policy_term_months=months,
        free_look_days=days,
    )
    assert decision.rule_ids == rules
    if rules:
        assert_messages(decision, str(days) if days else "")


# -------------------------------------------------------------------------- documentation


def test_every_rule_cites_and_restates_its_window(cn: Rulebook) -> None:
    """Each rule has a citation and a docstring naming the date its window opens."""
    for spec in own_rules(cn):
        assert spec.citation.strip(), spec.id
        assert re.search(r"\d{4}-\d{2}-\d{2}", spec.description), spec.id


def test_every_fact_read_is_in_the_glossary(cn: Rulebook) -> None:
    """Every fact a rule declares is documented in the rulebook README's facts glossary."""
    glossary = (CN_DIRECTORY / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", glossary, flags=re.MULTILINE))
    declared = {fact for spec in own_rules(cn) for fact in spec.facts}
    assert declared <= documented, declared - documented
