"""Unit tests of accrual, the repayment waterfall, delinquency and write-off amounts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tianping.lending.schedules import DayCount, InvalidLendingInput
from tianping.lending.servicing import (
    CREDIT_CARD_THRESHOLDS,
    FINANCIAL_ASSETS_2023_THRESHOLDS,
    Bucket,
    DpdBucket,
    LoanBalances,
    RiskTier,
    accrue,
    apply_payment,
    classify,
    days_past_due,
    dpd_bucket,
    penalty_interest,
    penalty_rate,
    recover,
    write_off,
)

BALANCES = LoanBalances(fees=100, penalty_interest=200, interest=300, principal=1_000)


def test_accrue_uses_actual_days_and_the_convention() -> None:
    start, end = dt.date(2025, 1, 1), dt.date(2025, 2, 1)
    assert accrue(1_000_000, Decimal("0.12"), start, end) == 10_192  # 10,191.78
    assert accrue(1_000_000, Decimal("0.12"), start, end, DayCount.ACT_360) == 10_333


def test_accrue_rounds_half_up_not_to_even() -> None:
    # 1,825 * 10 % / 365 = exactly 0.5 fen: half up gives 1 (banker's rounding would give 0).
    one_day = (dt.date(2025, 1, 1), dt.date(2025, 1, 2))
    assert accrue(1_825, Decimal("0.1"), *one_day) == 1


def test_accrue_refuses_reversed_dates() -> None:
    with pytest.raises(InvalidLendingInput):
        accrue(1, Decimal("0.1"), dt.date(2025, 1, 2), dt.date(2025, 1, 1))


def test_penalty_interest_starts_the_day_after_the_due_date() -> None:
    rate = penalty_rate(Decimal("0.12"))
    assert rate == Decimal("0.18")
    due = dt.date(2025, 3, 10)
    assert penalty_interest(1_000_000, rate, due, dt.date(2025, 3, 11)) == 0
    # One day (11 March): 1,000,000 * 0.18 / 365 = 493.15.
    assert penalty_interest(1_000_000, rate, due, dt.date(2025, 3, 12)) == 493


def test_default_waterfall_pays_fees_then_penalty_then_interest_then_principal() -> None:
    new_balances, allocation, overpayment = apply_payment(BALANCES, 450)
    assert allocation == {
        Bucket.FEES: 100,
        Bucket.PENALTY_INTEREST: 200,
        Bucket.INTEREST: 150,
        Bucket.PRINCIPAL: 0,
    }
    assert new_balances == LoanBalances(fees=0, penalty_interest=0, interest=150, principal=1_000)
    assert overpayment == 0


def test_configured_waterfall_can_pay_principal_first() -> None:
    order = (Bucket.PRINCIPAL, Bucket.INTEREST, Bucket.PENALTY_INTEREST, Bucket.FEES)
    new_balances, allocation, _ = apply_payment(BALANCES, 1_050, order)
    assert allocation[Bucket.PRINCIPAL] == 1_000
    assert allocation[Bucket.INTEREST] == 50
    assert allocation[Bucket.FEES] == 0
    assert new_balances.fees == 100


def test_overpayment_is_returned_and_nothing_is_lost() -> None:
    new_balances, allocation, overpayment = apply_payment(BALANCES, 2_000)
    assert new_balances.total == 0
    assert overpayment == 400
    assert sum(allocation.values()) + overpayment == 2_000


def test_waterfall_must_name_every_bucket_once() -> None:
    with pytest.raises(InvalidLendingInput) as raised:
        apply_payment(BALANCES, 1, (Bucket.FEES, Bucket.FEES, Bucket.INTEREST, Bucket.PRINCIPAL))
    assert raised.value.field == "waterfall"


def test_days_past_due_counts_from_the_oldest_unpaid_due_date() -> None:
    due_dates = [dt.date(2025, 4, 10), dt.date(2025, 3, 10)]
    assert days_past_due([], dt.date(2025, 5, 1)) == 0
    assert days_past_due([dt.date(2025, 3, 10)], dt.date(2025, 3, 10)) == 0
    assert days_past_due([dt.date(2025, 3, 10)], dt.date(2025, 3, 11)) == 1
    assert days_past_due(due_dates, dt.date(2025, 4, 11)) == 32
    assert days_past_due([dt.date(2025, 6, 1)], dt.date(2025, 5, 1)) == 0


@pytest.mark.parametrize(
    ("dpd", "bucket"),
    [
        (0, DpdBucket.CURRENT),
        (1, DpdBucket.DPD_1_30),
        (30, DpdBucket.DPD_1_30),
        (31, DpdBucket.DPD_31_60),
        (60, DpdBucket.DPD_31_60),
        (61, DpdBucket.DPD_61_90),
        (90, DpdBucket.DPD_61_90),
        (91, DpdBucket.DPD_91_180),
        (180, DpdBucket.DPD_91_180),
        (181, DpdBucket.DPD_OVER_180),
    ],
)
def test_dpd_bucket_boundaries(dpd: int, bucket: DpdBucket) -> None:
    assert dpd_bucket(dpd) is bucket


@pytest.mark.parametrize(
    ("dpd", "tier"),
    [
        (0, RiskTier.NORMAL),
        (1, RiskTier.SPECIAL_MENTION),
        (90, RiskTier.SPECIAL_MENTION),
        (91, RiskTier.SUBSTANDARD),
        (180, RiskTier.SUBSTANDARD),
        (181, RiskTier.DOUBTFUL),
        (360, RiskTier.DOUBTFUL),
        (361, RiskTier.LOSS),
    ],
)
def test_five_tier_boundaries_retail_default(dpd: int, tier: RiskTier) -> None:
    assert classify(dpd) is tier


def test_other_threshold_presets() -> None:
    assert classify(120, CREDIT_CARD_THRESHOLDS) is RiskTier.SUBSTANDARD
    assert classify(121, CREDIT_CARD_THRESHOLDS) is RiskTier.DOUBTFUL
    assert classify(181, CREDIT_CARD_THRESHOLDS) is RiskTier.LOSS
    assert classify(270, FINANCIAL_ASSETS_2023_THRESHOLDS) is RiskTier.SUBSTANDARD
    assert classify(271, FINANCIAL_ASSETS_2023_THRESHOLDS) is RiskTier.DOUBTFUL
    assert RiskTier.SUBSTANDARD.is_non_performing
    assert not RiskTier.SPECIAL_MENTION.is_non_performing


def test_negative_dpd_is_refused() -> None:
    with pytest.raises(InvalidLendingInput):
        classify(-1)


def test_write_off_uses_the_allowance_then_books_the_shortfall() -> None:
    short = write_off(BALANCES, 1_000)
    assert short.total_written_off == 1_600
    assert short.allowance_used == 1_000
    assert short.additional_loss_expense == 600
    assert short.allowance_released == 0
    generous = write_off(BALANCES, 2_000)
    assert generous.additional_loss_expense == 0
    assert generous.allowance_released == 400


def test_recovery_after_write_off_is_income_up_to_what_was_written_off() -> None:
    partial = recover(BALANCES, 500)
    assert partial.recovery_income == 500
    assert partial.allocation[Bucket.INTEREST] == 200
    assert partial.remaining_written_off.total == 1_100
    full = recover(partial.remaining_written_off, 1_500)
    assert full.recovery_income == 1_100
    assert full.overpayment == 400
