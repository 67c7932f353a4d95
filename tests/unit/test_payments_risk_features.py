"""Online risk features: sliding windows, flags, amount statistics, bounds and purity."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import replace

import pytest

from tianping.payments.risk.errors import CurrencyNotTracked, InvalidPaymentContext
from tianping.payments.risk.features import (
    FEATURE_NAMES,
    RECENCY_CAP_HOURS,
    AmountStats,
    FeatureState,
    FeatureStateLimits,
    PaymentContext,
)

T0 = 1_750_000_000 - (1_750_000_000 % 86_400)  # a UTC midnight


def payment(
    at: int = T0,
    *,
    payer: str = "payer-1",
    payee: str = "payee-1",
    device: str = "device-1",
    amount: int = 10_000,
    kind: str = "p2p",
    opened_at: int = T0 - 400 * 86_400,
    password_at: int | None = None,
    device_change_at: int | None = None,
) -> PaymentContext:
    return PaymentContext(
        payer_id=payer,
        payee_id=payee,
        device_id=device,
        amount_minor=amount,
        currency="CNY",
        at=at,
        payer_account_opened_at=opened_at,
        last_password_change_at=password_at,
        last_device_change_at=device_change_at,
        payment_kind=kind,
    )


def test_feature_names_are_unique_and_match_the_vector() -> None:
    vector = FeatureState("CNY").features(payment())
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == len(vector.values)
    assert all(isinstance(value, float) for value in vector.values)
    assert vector.amount_minor == 10_000
    assert isinstance(vector.amount_minor, int)


def test_velocity_windows_slide_with_injected_times() -> None:
    state = FeatureState("CNY")
    for offset, amount in ((0, 100), (30, 200), (100, 400)):
        state.observe(payment(T0 + offset, amount=amount))

    at_120 = state.features(payment(T0 + 120))
    # (now - 60, now] holds only the payment at +100; the one at +60 would be on the boundary.
    assert at_120["payer_count_1m"] == 1.0
    assert at_120["payer_count_1h"] == 3.0
    assert at_120["payer_amount_log_1h"] == pytest.approx(math.log1p(700))
    assert at_120["payee_count_1h"] == 3.0
    assert at_120["device_count_1m"] == 1.0

    later = state.features(payment(T0 + 3_600 + 30))
    assert later["payer_count_1m"] == 0.0
    assert later["payer_count_1h"] == 1.0  # +30 sits exactly on the boundary: excluded
    assert later["payer_count_24h"] == 3.0

    next_day = state.features(payment(T0 + 86_400 + 50))
    assert next_day["payer_count_24h"] == 1.0
    assert next_day["payer_amount_log_24h"] == pytest.approx(math.log1p(400))
    assert next_day["hours_since_last_payment"] == pytest.approx((86_400 - 50) / 3_600)


def test_late_arrivals_are_placed_in_time_order() -> None:
    state = FeatureState("CNY")
    state.observe(payment(T0 + 100))
    state.observe(payment(T0 + 10))  # arrives late
    assert state.features(payment(T0 + 65))["payer_count_1m"] == 1.0  # only +10 is in (5, 65]
    assert state.features(payment(T0 + 50))["hours_since_last_payment"] == pytest.approx(40 / 3_600)


def test_new_payee_and_new_device_flags() -> None:
    state = FeatureState("CNY")
    first = state.features(payment())
    assert (first["new_payee"], first["new_device"]) == (1.0, 1.0)
    state.observe(payment())
    same = state.features(payment(T0 + 10))
    assert (same["new_payee"], same["new_device"]) == (0.0, 0.0)
    other_payee = state.features(payment(T0 + 10, payee="payee-2"))
    assert (other_payee["new_payee"], other_payee["new_device"]) == (1.0, 0.0)
    other_device = state.features(payment(T0 + 10, device="device-2"))
    assert (other_device["new_payee"], other_device["new_device"]) == (0.0, 1.0)


def test_amount_stats_match_the_statistics_module_exactly() -> None:
    rng = random.Random(7)
    amounts = [rng.randint(1, 10**12) for _ in range(500)]
    stats = AmountStats()
    for amount in amounts:
        stats.add(amount)
    assert stats.count == 500
    assert stats.mean == pytest.approx(statistics.fmean(amounts), rel=1e-12)
    assert stats.variance == pytest.approx(statistics.pvariance(amounts), rel=1e-9)
    assert AmountStats().mean == AmountStats().variance == 0.0


def test_amount_is_compared_with_the_payers_history() -> None:
    state = FeatureState("CNY")
    for index in range(3):
        state.observe(payment(T0 + index, amount=10_000))
    vector = state.features(payment(T0 + 10, amount=13_000))
    # Equal history amounts have zero spread, floored at 10% of the mean (1,000).
    assert vector["amount_zscore"] == pytest.approx(3.0)
    assert vector["amount_to_mean_log_ratio"] == pytest.approx(math.log(13_001 / 10_001))
    assert vector["payer_history_count"] == 3.0


def test_context_features_time_age_changes_and_kind() -> None:
    state = FeatureState("CNY", utc_offset_seconds=8 * 3_600)
    vector = state.features(
        payment(
            T0 + 19 * 3_600,  # 19:00 UTC is 03:00 the next day at UTC+8
            opened_at=T0 + 7 * 3_600,
            password_at=T0 + 18 * 3_600,
            device_change_at=None,
            kind="withdrawal",
        )
    )
    assert vector["local_hour"] == 3.0
    assert vector["is_night"] == 1.0
    assert vector["account_age_hours"] == pytest.approx(12.0)
    assert vector["new_account"] == 1.0
    assert vector["hours_since_password_change"] == pytest.approx(1.0)
    assert vector["password_changed_24h"] == 1.0
    assert vector["hours_since_device_change"] == RECENCY_CAP_HOURS
    assert vector["device_changed_24h"] == 0.0
    kinds = [
        vector[name] for name in ("kind_p2p", "kind_merchant", "kind_withdrawal", "kind_top_up")
    ]
    assert kinds == [0.0, 0.0, 1.0, 0.0]


def test_features_do_not_mutate_the_state_or_its_lru_order() -> None:
    state = FeatureState("CNY", limits=FeatureStateLimits(keys_per_kind=2))
    state.observe(payment(T0, payer="a", payee="pa", device="da"))
    state.observe(payment(T0 + 1, payer="b", payee="pb", device="db"))
    probe = payment(T0 + 5, payer="a", payee="pa", device="da")
    before = state.features(probe)
    for _ in range(3):
        assert state.features(probe) == before
        state.features(payment(T0 + 5, payer="new", payee="new", device="new"))
    assert state.tracked_counts() == (2, 2, 2)
    # Scoring "a" did not refresh it: observing a third payer evicts "a", the oldest observed.
    state.observe(payment(T0 + 6, payer="c", payee="pc", device="dc"))
    assert state.features(probe)["payer_history_count"] == 0.0
    assert state.features(payment(T0 + 7, payer="b"))["payer_history_count"] == 1.0


def test_keys_are_bounded_with_least_recently_observed_eviction() -> None:
    state = FeatureState("CNY", limits=FeatureStateLimits(keys_per_kind=2))
    for at, payer in enumerate(("a", "b", "a", "c")):
        state.observe(payment(T0 + at, payer=payer, payee=f"p-{payer}", device=f"d-{payer}"))
    assert state.tracked_counts() == (2, 2, 2)
    assert state.features(payment(T0 + 9, payer="a"))["payer_history_count"] == 2.0
    assert state.features(payment(T0 + 9, payer="b"))["payer_history_count"] == 0.0


def test_per_key_events_and_known_sets_are_bounded() -> None:
    limits = FeatureStateLimits(events_per_key=3, payees_per_payer=2, payers_per_device=2)
    state = FeatureState("CNY", limits=limits)
    for index in range(5):
        state.observe(payment(T0 + index, payee=f"payee-{index}", payer=f"payer-{index % 3}"))
    probe = state.features(payment(T0 + 10, payer="payer-0", payee="payee-0"))
    assert probe["device_count_1m"] == 3.0  # five payments, saturated at the cap of three
    assert probe["device_payer_count"] == 2.0
    # payer-0 paid payee-0 then payee-3; both remembered. A third payee evicts the oldest.
    assert probe["new_payee"] == 0.0
    state.observe(payment(T0 + 11, payer="payer-0", payee="payee-9"))
    assert state.features(payment(T0 + 12, payer="payer-0", payee="payee-0"))["new_payee"] == 1.0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"payment_kind": "crypto"}, "payment_context_invalid"),
        ({"amount_minor": 0}, "payment_context_invalid"),
        ({"amount_minor": True}, "payment_context_invalid"),
        ({"currency": "cny"}, "payment_context_invalid"),
        ({"payer_id": ""}, "payment_context_invalid"),
        ({"payee_id": "x" * 129}, "payment_context_invalid"),
        ({"at": 1.5}, "payment_context_invalid"),
    ],
)
def test_malformed_contexts_are_refused(change: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidPaymentContext) as caught:
        replace(payment(), **change)  # type: ignore[arg-type]
    assert caught.value.code == code


def test_a_state_refuses_another_currency() -> None:
    with pytest.raises(CurrencyNotTracked) as caught:
        FeatureState("USD").features(payment())
    assert caught.value.code == "currency_not_tracked"
