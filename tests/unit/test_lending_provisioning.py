"""Unit tests of IFRS 9 staging and expected-credit-loss provisioning."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tianping.lending.provisioning import (
    Exposure,
    Stage,
    expected_credit_loss,
    pooled_ecl,
    portfolio_provision,
    stage_for,
)
from tianping.lending.schedules import InvalidLendingInput
from tianping.lending.servicing import RiskTier


def exposure(ref: str = "loan-1", dpd: int = 0, tier: RiskTier | None = None) -> Exposure:
    return Exposure(
        loan_ref=ref,
        ead=1_000_000,
        lgd=Decimal("0.45"),
        pd_12_month=Decimal("0.02"),
        pd_lifetime=Decimal("0.08"),
        dpd=dpd,
        tier=tier,
    )


@pytest.mark.parametrize(
    ("dpd", "tier", "stage"),
    [
        (0, None, Stage.PERFORMING),
        (30, None, Stage.PERFORMING),
        (31, None, Stage.UNDERPERFORMING),
        (90, None, Stage.UNDERPERFORMING),
        (91, None, Stage.CREDIT_IMPAIRED),
        (0, RiskTier.NORMAL, Stage.PERFORMING),
        (0, RiskTier.SPECIAL_MENTION, Stage.UNDERPERFORMING),
        (0, RiskTier.SUBSTANDARD, Stage.CREDIT_IMPAIRED),
        (45, RiskTier.LOSS, Stage.CREDIT_IMPAIRED),
    ],
)
def test_stage_rules(dpd: int, tier: RiskTier | None, stage: Stage) -> None:
    assert stage_for(dpd, tier) is stage


def test_ecl_uses_the_pd_horizon_of_the_stage() -> None:
    # 1,000,000 * 0.45 * 2 % = 9,000; * 8 % = 36,000; stage 3 uses PD 1: 450,000.
    assert expected_credit_loss(exposure()).ecl == 9_000
    assert expected_credit_loss(exposure(dpd=31)).ecl == 36_000
    impaired = expected_credit_loss(exposure(dpd=91))
    assert impaired.ecl == 450_000
    assert impaired.pd_applied == 1


def test_ecl_rounds_half_up_to_one_fen() -> None:
    tiny = Exposure("loan-2", 1, Decimal("0.5"), Decimal("1"), Decimal("1"))
    assert expected_credit_loss(tiny).ecl == 1  # 0.5 fen


def test_portfolio_totals_by_stage_equal_the_sum_of_loans() -> None:
    book = [exposure("a"), exposure("b", dpd=40), exposure("c", dpd=100), exposure("d")]
    result = portfolio_provision(book)
    assert result.by_stage[Stage.PERFORMING].loans == 2
    assert result.by_stage[Stage.PERFORMING].ecl == 18_000
    assert result.by_stage[Stage.UNDERPERFORMING].ecl == 36_000
    assert result.by_stage[Stage.CREDIT_IMPAIRED].ecl == 450_000
    assert result.total_ecl == 504_000 == sum(loan.ecl for loan in result.loans)
    assert result.total_ead == 4_000_000


def test_pooled_ecl_is_rounded_once_and_split_without_losing_a_fen() -> None:
    pool_total, parts = pooled_ecl([1, 1, 1], Decimal("1"), Decimal("0.5"))
    # Per-loan rounding would give 1 + 1 + 1 = 3 for an exact pool loss of 1.5 -> 2.
    assert pool_total == 2
    assert sum(parts) == 2
    assert sorted(parts) == [0, 1, 1]


def test_lifetime_pd_below_twelve_month_pd_is_refused() -> None:
    with pytest.raises(InvalidLendingInput) as raised:
        Exposure("x", 1, Decimal("0.5"), Decimal("0.2"), Decimal("0.1"))
    assert raised.value.field == "pd_lifetime"
