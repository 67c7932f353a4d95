"""Properties of the merchant cash-flow features (pure): the mean is the floored average of the
observed months, and the trend and volatility are ratios, so they do not change when every
month's receipts are multiplied by the same factor (a business twice the size with the same
shape is judged the same)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from tianping.payments.cash_flow import MonthlyAcquiring, derive_profile, window_months

AS_OF = date(2026, 7, 1)
MONTHS = 6


def _rows(values: list[int]) -> list[MonthlyAcquiring]:
    window = window_months(AS_OF, MONTHS)
    return [
        MonthlyAcquiring(month, value, 0, 1 if value else 0, 0, 1 if value else 0)
        for month, value in zip(window, values, strict=True)
        if value
    ]


receipts = st.lists(st.integers(0, 10**11), min_size=MONTHS, max_size=MONTHS)


@given(receipts, st.integers(1, 1_000))
def test_trend_and_volatility_do_not_depend_on_scale(values: list[int], factor: int) -> None:
    window = window_months(AS_OF, MONTHS)
    one = derive_profile("m", "CNY", AS_OF, MONTHS, _rows(values), 1, window[0])
    scaled = derive_profile(
        "m", "CNY", AS_OF, MONTHS, _rows([v * factor for v in values]), 1, window[0]
    )
    assert scaled.receipts_trend_bps == one.receipts_trend_bps
    assert scaled.receipts_cv_bps == one.receipts_cv_bps
    assert one.receipts_cv_bps is None or one.receipts_cv_bps >= 0


@given(receipts)
def test_the_mean_is_the_floored_average_of_the_observed_months(values: list[int]) -> None:
    window = window_months(AS_OF, MONTHS)
    profile = derive_profile("m", "CNY", AS_OF, MONTHS, _rows(values), 1, window[0])
    assert profile.monthly_receipts == tuple(values)
    assert profile.mean_monthly_receipts == sum(values) // MONTHS
