"""Fan-in for merchant (acquiring) accounts on hand-made graphs: a busy merchant's steady trade
raises nothing, a surge over its own normal or a burst of new payers paying just under a limit
does, and person accounts keep today's fan-in exactly."""

from __future__ import annotations

from typing import Any

import pytest

from tianping.payments.aml.errors import AmlError
from tianping.payments.aml.large_value import AmlTransaction
from tianping.payments.aml.patterns import (
    FAN_IN_DEFAULTS,
    MERCHANT_FAN_IN_DEFAULTS,
    DetectorSuite,
    MerchantFanInParameters,
    Transfer,
    TransferGraph,
    detect_fan_in,
)

HOUR = 3_600
DAY = 86_400
# Local (UTC+8) midnight, so day n of the tests is window n of the default one-day windows.
MIDNIGHT = (1_800_000_000 + 8 * HOUR) // DAY * DAY - 8 * HOUR
STEADY_DAYS = 14
REGULARS = 60
# Amounts of an ordinary shop: whatever the basket came to, far from the static-QR cap.
BASKETS = (1_250, 3_880, 990, 12_400, 6_500, 2_175, 30_000, 450)


def day_of_trade(
    day: int, payers: list[str], shop: str = "shop", amount: int | None = None
) -> list[Transfer]:
    """One payment from each payer to `shop` on local day `day`, five minutes apart from 09:00."""
    return [
        Transfer(
            MIDNIGHT + day * DAY + 9 * HOUR + index * 300,
            BASKETS[index % len(BASKETS)] if amount is None else amount,
            payer,
            shop,
            f"d{day}-{shop}-{payer}",
        )
        for index, payer in enumerate(payers)
    ]


def steady_trade(shop: str = "shop") -> list[Transfer]:
    """Two weeks of 25 to 31 distinct payers a day, drawn in turn from 60 regulars."""
    transfers: list[Transfer] = []
    for day in range(STEADY_DAYS):
        count = 25 + (day * 5) % 7
        payers = [f"c{(day * 11 + index) % REGULARS}" for index in range(count)]
        transfers.extend(day_of_trade(day, payers, shop))
    return transfers


def graph(transfers: list[Transfer], merchants: tuple[str, ...] = ("shop",)) -> TransferGraph:
    return TransferGraph.from_transfers(transfers, "CNY", merchants=merchants)


def test_a_busy_merchant_with_steady_trade_raises_no_fan_in() -> None:
    assert detect_fan_in(graph(steady_trade()), FAN_IN_DEFAULTS) == []
    assert DetectorSuite().run(graph(steady_trade()))["fan_in"] == []


def test_the_same_trade_on_a_person_account_alerts_as_before() -> None:
    transfers = steady_trade()
    before = detect_fan_in(TransferGraph.from_transfers(transfers, "CNY"), FAN_IN_DEFAULTS)
    assert [alert.subject_ids for alert in before] == [("shop",)]
    assert not before[0].reason.startswith("merchant")
    # Another account being a merchant changes nothing for this one.
    assert detect_fan_in(graph(transfers, ("elsewhere",)), FAN_IN_DEFAULTS) == before
    # Without merchant parameters, a merchant is judged like any account.
    assert detect_fan_in(graph(transfers), FAN_IN_DEFAULTS, None) == before
    assert DetectorSuite(merchant_fan_in=None).run(graph(transfers))["fan_in"] == before


def test_a_surge_over_the_merchants_own_normal_alerts() -> None:
    surge = day_of_trade(STEADY_DAYS, [f"s{index}" for index in range(100)])
    (alert,) = detect_fan_in(graph([*steady_trade(), *surge]), FAN_IN_DEFAULTS)
    assert (alert.kind, alert.subject_ids) == ("fan_in", ("shop",))
    assert alert.reason.startswith("merchant (acquiring) account: 100 distinct sources")
    assert "over 14 earlier windows" in alert.reason
    assert set(alert.transaction_ids) == {t.transaction_id for t in surge}
    # The median of days with 25 to 31 payers is 28: the bar is 3 x 28 = 84, so 100 payers
    # score 1000 * 100 / (2 * 84).
    assert "3571 per mille of its median of 28" in alert.reason
    assert alert.score == 1000 * 100 // 168


def test_a_day_under_the_surge_multiple_raises_nothing() -> None:
    # 80 payers: nearly three times the median of 28, not more.
    busy = day_of_trade(STEADY_DAYS, [f"s{index}" for index in range(80)])
    assert detect_fan_in(graph([*steady_trade(), *busy]), FAN_IN_DEFAULTS) == []


def test_a_burst_of_new_payers_just_under_the_static_qr_cap_alerts() -> None:
    # Eight accounts never seen before each pay 499.00 CNY on an ordinary trading day.
    burst = day_of_trade(STEADY_DAYS - 1, [f"n{index}" for index in range(8)], amount=49_900)
    moved = [t._replace(at=t.at + 6 * HOUR) for t in burst]
    (alert,) = detect_fan_in(graph([*steady_trade(), *moved]), FAN_IN_DEFAULTS)
    assert alert.subject_ids == ("shop",)
    assert alert.account_ids == ("shop", *sorted(f"n{index}" for index in range(8)))
    assert alert.reason == (
        "merchant (acquiring) account: 8 distinct sources first seen within 86400 s, each"
        " paying 950-999 per mille of a 50000 threshold, in 8 transfers within 86400 s"
    )
    assert alert.score == 1000 * 8 // 12


@pytest.mark.parametrize(
    ("payers", "amount"),
    [
        # The regulars paying the same near-cap amounts: not new accounts.
        ([f"c{index}" for index in range(8)], 49_900),
        # New accounts paying an ordinary amount.
        ([f"n{index}" for index in range(8)], 4_990),
        # New accounts at the cap itself (the cap lets it through; it is not skirted).
        ([f"n{index}" for index in range(8)], 50_000),
        # Five new accounts only.
        ([f"n{index}" for index in range(5)], 49_900),
    ],
)
def test_near_misses_of_the_burst_raise_nothing(payers: list[str], amount: int) -> None:
    burst = day_of_trade(STEADY_DAYS - 1, payers, amount=amount)
    moved = [t._replace(at=t.at + 6 * HOUR) for t in burst]
    assert detect_fan_in(graph([*steady_trade(), *moved]), FAN_IN_DEFAULTS) == []


def test_without_enough_history_only_the_burst_rule_judges() -> None:
    # One day of trade (the demo's case): no baseline, so 60 payers are no surge.
    first_day = day_of_trade(0, [f"c{index}" for index in range(REGULARS)])
    assert detect_fan_in(graph(first_day), FAN_IN_DEFAULTS) == []
    # Three quiet days in the graph, then a merchant's first day with 20 payers: its median is
    # 0, so the floor of 12 decides.
    quiet = [Transfer(MIDNIGHT + day * DAY, 100, "x", "y", f"q{day}") for day in range(3)]
    opening = day_of_trade(3, [f"c{index}" for index in range(20)])
    (alert,) = detect_fan_in(graph([*quiet, *opening]), FAN_IN_DEFAULTS)
    assert "its median being 0 over 3 earlier windows" in alert.reason
    assert alert.score == 1000 * 20 // 24
    assert detect_fan_in(graph([*quiet, *opening[:11]]), FAN_IN_DEFAULTS) == []


def test_the_stronger_finding_is_the_merchants_one_alert() -> None:
    surge = day_of_trade(STEADY_DAYS, [f"s{index}" for index in range(100)])
    burst = day_of_trade(STEADY_DAYS, [f"n{index}" for index in range(12)], amount=49_000)
    later = [t._replace(at=t.at + 8 * HOUR) for t in burst]
    (alert,) = detect_fan_in(graph([*steady_trade(), *surge, *later]), FAN_IN_DEFAULTS)
    # The burst scores 1000 (twice its 6); the surge of 112 over a bar of 84 scores 666.
    assert "first seen" in alert.reason and alert.score == 1000


def test_graph_from_transactions_carries_the_merchants() -> None:
    fields: dict[str, Any] = {
        "at": MIDNIGHT,
        "customer_kind": "person",
        "direction": "out",
        "amount_minor": 100,
        "currency": "CNY",
        "channel": "transfer",
        "cross_border": False,
    }
    built = TransferGraph.from_transactions(
        [AmlTransaction("x1", customer_id="a", counterparty_id="shop", **fields)],
        "CNY",
        merchants={"shop"},
    )
    assert built.merchants == frozenset({"shop"})
    assert TransferGraph.from_transactions([], "CNY").merchants == frozenset()


def test_the_defaults_are_the_documented_ones() -> None:
    assert MerchantFanInParameters() == MERCHANT_FAN_IN_DEFAULTS
    assert DetectorSuite().merchant_fan_in == MERCHANT_FAN_IN_DEFAULTS
    assert MERCHANT_FAN_IN_DEFAULTS.min_payers == 2 * FAN_IN_DEFAULTS.min_counterparties
    assert MERCHANT_FAN_IN_DEFAULTS.burst_min_payers == FAN_IN_DEFAULTS.min_counterparties


@pytest.mark.parametrize(
    "arguments",
    [
        {"window_seconds": 3_599},
        {"window_seconds": 91 * DAY},
        {"utc_offset_minutes": 15 * 60},
        {"surge_permille": 1_499},
        {"surge_permille": 100_001},
        {"min_payers": 1},
        {"min_payers": 10_001},
        {"max_history_windows": 0},
        {"max_history_windows": 367},
        {"min_history_windows": 0},
        {"min_history_windows": 5, "max_history_windows": 4},
        {"burst_threshold_minor": 0},
        {"burst_near_threshold_permille": 499},
        {"burst_near_threshold_permille": 1_000},
        {"burst_window_seconds": 0},
        {"burst_min_payers": 1},
        {"min_payers": True},
        {"surge_permille": 3_000.0},
    ],
)
def test_merchant_parameters_outside_their_limits_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(AmlError) as raised:
        MerchantFanInParameters(**arguments)
    assert raised.value.code == "invalid_detector_parameter"
