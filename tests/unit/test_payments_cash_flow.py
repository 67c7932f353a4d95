"""A merchant's cash-flow features from its monthly acquiring (pure): the window, the mean,
trend and volatility of receipts, the ratios, and the months since the first receipt, checked
against numbers worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from tianping.payments.cash_flow import (
    CASH_FLOW_MONTHS_MAX,
    MonthlyAcquiring,
    derive_profile,
    window_months,
)

AS_OF = date(2026, 5, 10)


def _month(
    month: str, gross: int, refunded: int, receipts: int, declined: int, days: int
) -> MonthlyAcquiring:
    return MonthlyAcquiring(month, gross, refunded, receipts, declined, days)


def test_the_window_is_the_whole_months_before_the_current_one() -> None:
    assert window_months(date(2026, 1, 5), 3) == ("2025-10", "2025-11", "2025-12")
    assert window_months(date(2026, 3, 31), 1) == ("2026-02",)
    for bad in (0, CASH_FLOW_MONTHS_MAX + 1):
        with pytest.raises(ValueError, match="1 to 24"):
            window_months(AS_OF, bad)


def test_features_of_four_months_worked_by_hand() -> None:
    """Receipts 1000, 0, 2000, 3000: mean 1500; slope 800 a month over the mean is 53.33%;
    sd/mean = sqrt(20e6)/6000 = 74.53%; refunds 300/6000 = 5%; declines 10 of 70 = 14.28%."""
    rows = [
        _month("2026-01", 1_000, 100, 10, 0, 5),
        _month("2026-03", 2_000, 0, 20, 5, 8),
        _month("2026-04", 3_000, 200, 30, 5, 10),
    ]
    profile = derive_profile("m", "CNY", AS_OF, 4, rows, 17, "2025-11")
    assert profile.window == ("2026-01", "2026-02", "2026-03", "2026-04")
    assert profile.monthly_receipts == (1_000, 0, 2_000, 3_000)
    assert profile.months_observed == 4
    assert profile.features() == {
        "mean_monthly_receipts": 1_500,
        "receipts_trend_bps": 5_333,
        "receipts_cv_bps": 7_453,
        "refund_ratio_bps": 500,
        "failed_ratio_bps": 1_428,
        "distinct_payers": 17,
        "active_days": 23,
        "months_since_first_receipt": 6,
    }


def test_a_merchant_new_inside_the_window_is_judged_on_its_months_of_trading() -> None:
    rows = [_month("2026-03", 2_000, 0, 2, 0, 1), _month("2026-04", 3_000, 0, 3, 0, 1)]
    profile = derive_profile("m", "CNY", AS_OF, 6, rows, 2, "2026-03")
    assert profile.months_observed == 2
    assert profile.mean_monthly_receipts == 2_500  # not 5000 / 6
    assert profile.receipts_trend_bps == 4_000  # +1000 a month over a mean of 2500
    assert profile.months_since_first_receipt == 2


def test_steady_receipts_have_no_trend_and_no_volatility() -> None:
    rows = [_month(m, 4_000, 0, 4, 0, 20) for m in window_months(AS_OF, 3)]
    profile = derive_profile("m", "CNY", AS_OF, 3, rows, 4, "2020-01")
    assert (profile.receipts_trend_bps, profile.receipts_cv_bps) == (0, 0)
    assert profile.months_since_first_receipt == 76


def test_a_merchant_without_receipts_has_missing_ratios_and_a_zero_mean() -> None:
    profile = derive_profile("m", "CNY", AS_OF, 6, [], 0, None)
    assert profile.mean_monthly_receipts == 0
    assert profile.months_observed == 0
    features = profile.features()
    for name in ("receipts_trend_bps", "receipts_cv_bps", "refund_ratio_bps", "failed_ratio_bps"):
        assert features[name] is None
    assert features["months_since_first_receipt"] is None


def test_a_row_outside_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the window"):
        derive_profile("m", "CNY", AS_OF, 2, [_month("2026-01", 1, 0, 1, 0, 1)], 1, "2026-01")
