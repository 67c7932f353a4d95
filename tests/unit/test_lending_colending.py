"""Co-lending splits and the bank's concentration limits (L1, L3)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tianping.lending.colending import (
    CoLendingInputInvalid,
    CoLendingShareBelowMinimum,
    CoLendingTerms,
    ConcentrationLimits,
    Split,
    basis_points_of,
    concentration,
    split,
    split_drift_bound,
    split_flows,
)

TERMS = CoLendingTerms(bank_share_bps=7000, platform_share_bps=3000)


def test_a_split_is_exact_when_the_shares_divide_the_amount() -> None:
    assert split(1_000_000, TERMS) == Split(bank=700_000, platform=300_000)


def test_the_leftover_unit_goes_to_the_nearer_share() -> None:
    # 1 fen: the bank's exact share is 0.7, the platform's 0.3.
    assert split(1, TERMS) == Split(bank=1, platform=0)
    # 5 fen: 3.5 and 1.5; the platform, listed first, takes the exact half.
    assert split(5, TERMS) == Split(bank=3, platform=2)


def test_a_reversal_splits_as_the_negation_of_the_flow() -> None:
    assert split(-5, TERMS) == Split(bank=-3, platform=-2)
    assert split(-12_345, TERMS).total == -12_345


@pytest.mark.parametrize(
    ("bank", "platform"), [(7000, 3000), (5000, 5000), (1, 9999), (6999, 3001)]
)
def test_valid_terms_are_accepted(bank: int, platform: int) -> None:
    terms = CoLendingTerms(bank, platform)
    assert terms.bank_share_max_bps == 7000


def test_the_platform_must_fund_at_least_the_minimum() -> None:
    with pytest.raises(CoLendingShareBelowMinimum) as raised:
        CoLendingTerms(bank_share_bps=7001, platform_share_bps=2999)
    assert raised.value.code == "co_lending_share_below_minimum"


def test_the_minimum_is_a_parameter_the_rules_engine_passes() -> None:
    minimum = basis_points_of(Decimal("0.35"))
    assert minimum == 3500
    with pytest.raises(CoLendingShareBelowMinimum):
        CoLendingTerms(7000, 3000, platform_share_min_bps=minimum)
    assert CoLendingTerms(6500, 3500, platform_share_min_bps=minimum).bank_share_max_bps == 6500


@pytest.mark.parametrize(
    ("bank", "platform"), [(7000, 2000), (0, 10000), (7000, 3001), (True, 3000), (7000.0, 3000)]
)
def test_malformed_terms_are_refused(bank: object, platform: object) -> None:
    with pytest.raises(CoLendingInputInvalid):
        CoLendingTerms(bank, platform)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ratio", [Decimal("0.30001"), Decimal("1.5"), Decimal("-0.1"), Decimal("NaN")]
)
def test_ratios_that_are_not_whole_basis_points_are_refused(ratio: Decimal) -> None:
    with pytest.raises(CoLendingInputInvalid):
        basis_points_of(ratio)


def test_a_period_of_flows_is_split_flow_by_flow() -> None:
    period = split_flows(
        TERMS,
        currency="CNY",
        disbursement=1_000_000,
        interest=8_333,
        fees=1_001,
        repayments=83_334,
        losses=10_000,
    )
    assert period.disbursement == Split(700_000, 300_000)
    assert period.interest == Split(5_833, 2_500)
    assert period.fees == Split(701, 300)
    assert period.repayments == Split(58_334, 25_000)
    assert period.losses == Split(7_000, 3_000)
    assert period.bank_net_cash_minor == 5_833 + 701 + 58_334 - 700_000
    assert period.bank_net_cash_minor + period.platform_net_cash_minor == (
        8_333 + 1_001 + 83_334 - 1_000_000
    )


def test_a_period_needs_a_real_currency() -> None:
    with pytest.raises(CoLendingInputInvalid):
        split_flows(TERMS, currency="XYZ", interest=1)


def test_the_drift_bound_is_reached() -> None:
    # Two 1-fen flows at a 50.01% bank share: 0.5001 rounds up each time, 1.0002 once.
    terms = CoLendingTerms(5001, 4999)
    per_flow = split(1, terms).bank + split(1, terms).bank
    assert per_flow - split(2, terms).bank == split_drift_bound(2) == 1


# --------------------------------------------------------------------------- concentration


def test_balances_within_the_limits_are_compliant() -> None:
    report = concentration(
        {"platform_a": 250, "platform_b": 100},
        bank_tier1_capital=1_000,
        bank_total_loans=700,
        currency="CNY",
    )
    assert report.compliant
    assert report.breaches == ()
    assert report.single_partner_limit_minor == 250
    assert report.all_partners_limit_minor == 350
    assert report.total_balance_minor == 350


def test_one_partner_above_a_quarter_of_tier1_capital_breaches() -> None:
    report = concentration(
        {"platform_b": 100, "platform_a": 251},
        bank_tier1_capital=1_000,
        bank_total_loans=10_000,
        currency="CNY",
    )
    assert not report.compliant
    [breach] = report.breaches
    assert (breach.kind, breach.partner_id, breach.excess_minor) == (
        "single_partner",
        "platform_a",
        1,
    )


def test_all_partners_above_half_of_total_loans_breach() -> None:
    report = concentration(
        {"platform_a": 200, "platform_b": 151},
        bank_tier1_capital=1_000_000,
        bank_total_loans=700,
        currency="CNY",
    )
    [breach] = report.breaches
    assert (breach.kind, breach.partner_id, breach.balance_minor, breach.limit_minor) == (
        "all_partners",
        None,
        351,
        350,
    )


def test_breaches_are_listed_by_partner_then_total() -> None:
    report = concentration(
        {"z": 300, "a": 300, "m": 10},
        bank_tier1_capital=1_000,
        bank_total_loans=1_000,
        currency="CNY",
    )
    assert [(b.kind, b.partner_id) for b in report.breaches] == [
        ("single_partner", "a"),
        ("single_partner", "z"),
        ("all_partners", None),
    ]


def test_a_fraction_of_a_unit_over_the_limit_is_a_breach() -> None:
    # 25% of 1001 is 250.25: a balance of 251 exceeds it, although the rounded limit is 250.
    report = concentration(
        {"p": 251}, bank_tier1_capital=1_001, bank_total_loans=10_000, currency="CNY"
    )
    assert [b.kind for b in report.breaches] == ["single_partner"]
    assert concentration(
        {"p": 250}, bank_tier1_capital=1_001, bank_total_loans=10_000, currency="CNY"
    ).compliant


def test_limits_are_parameters() -> None:
    limits = ConcentrationLimits(
        single_partner_tier1_max_bps=1000, all_partners_total_loans_max_bps=5000
    )
    report = concentration(
        {"p": 101}, bank_tier1_capital=1_000, bank_total_loans=1_000, currency="CNY", limits=limits
    )
    assert [b.kind for b in report.breaches] == ["single_partner"]


def test_a_bank_without_capital_breaches_with_any_balance() -> None:
    report = concentration({"p": 1}, bank_tier1_capital=0, bank_total_loans=10, currency="CNY")
    assert [b.kind for b in report.breaches] == ["single_partner"]


def test_total_loans_below_the_co_lending_balances_are_inconsistent() -> None:
    with pytest.raises(CoLendingInputInvalid) as raised:
        concentration({"p": 11}, bank_tier1_capital=100, bank_total_loans=10, currency="CNY")
    assert raised.value.field == "bank_total_loans"


def test_negative_balances_are_refused() -> None:
    with pytest.raises(CoLendingInputInvalid):
        concentration({"p": -1}, bank_tier1_capital=100, bank_total_loans=10, currency="CNY")
