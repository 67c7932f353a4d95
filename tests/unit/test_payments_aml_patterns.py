"""Suspicious-pattern detectors on small hand-made graphs: each finds its pattern, ignores the
near misses, and the cycle search keeps to its caps."""

from __future__ import annotations

from typing import Any

import pytest

from tianping.payments.aml.errors import AmlError
from tianping.payments.aml.large_value import AmlTransaction
from tianping.payments.aml.patterns import (
    Alert,
    CycleParameters,
    DetectorSuite,
    FanParameters,
    RapidInOutParameters,
    StructuringParameters,
    Transfer,
    TransferGraph,
    detect_cycles,
    detect_fan_in,
    detect_fan_out,
    detect_rapid_in_out,
    detect_structuring,
    triage_order,
)

T0 = 1_800_000_000
HOUR = 3_600
DAY = 86_400


def graph(*edges: tuple[int, int, str, str]) -> TransferGraph:
    """A CNY graph from (seconds after T0, amount, source, target); ids are t0, t1, ..."""
    return TransferGraph.from_transfers(
        [
            Transfer(T0 + offset, amount, source, target, f"t{index}")
            for index, (offset, amount, source, target) in enumerate(edges)
        ],
        "CNY",
    )


# -- graph ----------------------------------------------------------------------------------


def aml_tx(transaction_id: str, **overrides: Any) -> AmlTransaction:
    fields: dict[str, Any] = {
        "transaction_id": transaction_id,
        "at": T0,
        "customer_id": "a",
        "customer_kind": "person",
        "counterparty_id": "b",
        "direction": "out",
        "amount_minor": 100,
        "currency": "CNY",
        "channel": "transfer",
        "cross_border": False,
    }
    fields.update(overrides)
    return AmlTransaction(**fields)


def test_graph_orients_edges_by_direction_and_keeps_each_transfer_once() -> None:
    built = TransferGraph.from_transactions(
        [
            aml_tx("x1"),
            # The payee's view of the same transfer: same id, direction "in".
            aml_tx("x1", customer_id="b", counterparty_id="a", direction="in"),
            aml_tx("x2", customer_id="c", counterparty_id="a", direction="in"),
            aml_tx("x3", currency="USD"),
        ],
        "CNY",
    )
    assert [(t.source, t.target) for t in built.transfers] == [("a", "b"), ("a", "c")]
    assert built.other_currency_count == 1
    assert built.accounts() == {"a", "b", "c"}


# -- structuring ----------------------------------------------------------------------------

STRUCTURING = StructuringParameters(threshold_minor=1_000, window_seconds=DAY, min_transactions=3)


def test_structuring_finds_split_amounts_just_under_the_threshold() -> None:
    found = detect_structuring(
        graph(
            (0, 950, "a", "x"),
            (HOUR, 960, "a", "y"),
            (2 * HOUR, 990, "a", "z"),
            (3 * HOUR, 100, "a", "x"),  # too small to count
        ),
        STRUCTURING,
    )
    assert [(alert.kind, alert.account_ids) for alert in found] == [
        ("structuring", ("a", "x", "y", "z"))
    ]
    assert found[0].transaction_ids == ("t0", "t1", "t2")
    assert found[0].subject_ids == ("a",)
    assert 0 <= found[0].score <= 1000


@pytest.mark.parametrize(
    "edges",
    [
        # Spread over more than the window.
        [(0, 950, "a", "x"), (DAY, 950, "a", "x"), (2 * DAY + 1, 950, "a", "x")],
        # Below 90 % of the threshold.
        [(0, 899, "a", "x"), (1, 899, "a", "x"), (2, 899, "a", "x")],
        # At the threshold is not "just under": the large-value report sees those.
        [(0, 1_000, "a", "x"), (1, 1_000, "a", "x"), (2, 1_000, "a", "x")],
        # Only two near-threshold transfers.
        [(0, 990, "a", "x"), (1, 990, "a", "x")],
    ],
)
def test_structuring_ignores_near_misses(edges: list[tuple[int, int, str, str]]) -> None:
    assert detect_structuring(graph(*edges), STRUCTURING) == []


def test_structuring_on_the_receiving_side() -> None:
    found = detect_structuring(
        graph((0, 950, "x", "b"), (1, 950, "y", "b"), (2, 950, "z", "b")), STRUCTURING
    )
    subjects = [alert.subject_ids for alert in found]
    assert ("b",) in subjects


# -- rapid in-and-out -----------------------------------------------------------------------

RAPID = RapidInOutParameters(window_seconds=DAY, pass_through_permille=900, min_inflows=2)


def test_rapid_in_and_out_finds_a_pass_through_account() -> None:
    found = detect_rapid_in_out(
        graph((0, 500, "x", "m"), (HOUR, 500, "y", "m"), (2 * HOUR, 950, "m", "z")), RAPID
    )
    assert len(found) == 1
    assert found[0].account_ids == ("m", "x", "y", "z")
    assert found[0].transaction_ids == ("t0", "t1", "t2")
    assert found[0].score == 950


@pytest.mark.parametrize(
    "edges",
    [
        # Most of the money stays.
        [(0, 500, "x", "m"), (1, 500, "y", "m"), (2, 300, "m", "z")],
        # The money leaves after the window.
        [(0, 500, "x", "m"), (1, 500, "y", "m"), (DAY + 1, 1_000, "m", "z")],
        # Far more leaves than came in: spending a balance, not passing money through.
        [(0, 500, "x", "m"), (1, 500, "y", "m"), (2, 5_000, "m", "z")],
        # Only one inflow.
        [(0, 1_000, "x", "m"), (1, 1_000, "m", "z")],
        # The outflow happened before the inflows.
        [(0, 1_000, "m", "z"), (1, 500, "x", "m"), (2, 500, "y", "m")],
    ],
)
def test_rapid_in_and_out_ignores_near_misses(edges: list[tuple[int, int, str, str]]) -> None:
    assert detect_rapid_in_out(graph(*edges), RAPID) == []


# -- fan-in and fan-out ---------------------------------------------------------------------

FAN = FanParameters(window_seconds=DAY, min_counterparties=4)


def test_fan_in_finds_many_sources_in_a_window() -> None:
    edges = [(index * HOUR, 100, source, "hub") for index, source in enumerate("pqrs")]
    found = detect_fan_in(graph(*edges), FAN)
    assert [(alert.kind, alert.account_ids) for alert in found] == [
        ("fan_in", ("hub", "p", "q", "r", "s"))
    ]
    assert found[0].score == 500  # 4 of the 8 that score full marks
    assert detect_fan_out(graph(*edges), FAN) == []


def test_fan_out_finds_many_targets_in_a_window() -> None:
    edges = [(index * HOUR, 100, "hub", target) for index, target in enumerate("pqrst")]
    found = detect_fan_out(graph(*edges), FAN)
    assert [alert.account_ids for alert in found] == [("hub", "p", "q", "r", "s", "t")]
    assert found[0].subject_ids == ("hub",)


@pytest.mark.parametrize(
    "edges",
    [
        # Four sources, but spread over four days.
        [(index * DAY + index, 100, source, "hub") for index, source in enumerate("pqrs")],
        # One source many times.
        [(index, 100, "p", "hub") for index in range(10)],
        # Three sources only.
        [(index, 100, source, "hub") for index, source in enumerate("pqr")],
    ],
)
def test_fan_in_ignores_near_misses(edges: list[tuple[int, int, str, str]]) -> None:
    assert detect_fan_in(graph(*edges), FAN) == []


SIMILAR_FAN = FanParameters(
    window_seconds=DAY, min_counterparties=4, max_amount_spread_permille=1_100
)


def test_a_fan_of_similar_amounts_is_found_with_the_spread_check() -> None:
    edges = [
        (index * HOUR, amount, source, "hub")
        for index, (source, amount) in enumerate(
            zip("pqrs", (10_000, 10_300, 10_500, 10_900), strict=True)
        )
    ]
    (alert,) = detect_fan_in(graph(*edges), SIMILAR_FAN)
    assert alert.account_ids == ("hub", "p", "q", "r", "s")
    assert "within 1100 per mille of each other" in alert.reason


def test_a_fan_of_unrelated_amounts_is_dropped_by_the_spread_check() -> None:
    # A shop's customers pay what they owe: four payers, amounts far apart.
    edges = [
        (index * HOUR, amount, source, "hub")
        for index, (source, amount) in enumerate(
            zip("pqrs", (1_000, 5_000, 12_000, 80_000), strict=True)
        )
    ]
    assert len(detect_fan_in(graph(*edges), FAN)) == 1
    assert detect_fan_in(graph(*edges), SIMILAR_FAN) == []


def test_the_spread_check_finds_the_similar_band_among_other_payments() -> None:
    similar = [(index, 10_000 + index, source, "hub") for index, source in enumerate("pqrst")]
    others = [
        (10 + index, amount, source, "hub")
        for index, (source, amount) in enumerate(zip("uvw", (300, 50_000, 900_000), strict=True))
    ]
    (alert,) = detect_fan_in(graph(*similar, *others), SIMILAR_FAN)
    assert alert.account_ids == ("hub", "p", "q", "r", "s", "t")
    # Spread over more than the window, the same band is no fan.
    slow = [(index * 2 * DAY, 10_000, source, "hub") for index, source in enumerate("pqrst")]
    assert detect_fan_in(graph(*slow), SIMILAR_FAN) == []


def test_fan_keeps_the_widest_window_only() -> None:
    early = [(index, 100, source, "hub") for index, source in enumerate("pqrs")]
    late = [(10 * DAY + index, 100, source, "hub") for index, source in enumerate("tuvwx")]
    found = detect_fan_in(graph(*early, *late), FAN)
    assert len(found) == 1
    assert found[0].account_ids == ("hub", "t", "u", "v", "w", "x")


# -- cycles ---------------------------------------------------------------------------------

CYCLES = CycleParameters(window_seconds=7 * DAY, max_hops=4)


def test_a_three_hop_cycle_is_found_once() -> None:
    search = detect_cycles(
        graph((0, 1_000, "a", "b"), (HOUR, 990, "b", "c"), (2 * HOUR, 980, "c", "a")), CYCLES
    )
    assert [(alert.account_ids, alert.transaction_ids) for alert in search.alerts] == [
        (("a", "b", "c"), ("t0", "t1", "t2"))
    ]
    assert search.alerts[0].score == 980
    assert search.alerts[0].subject_ids == ("a", "b", "c")
    assert search.starts_truncated == 0
    assert not search.budget_exhausted


@pytest.mark.parametrize(
    "edges",
    [
        # Money cannot flow back in time: b paid c before a paid b, and no rotation of the
        # loop is in time order either.
        [(2 * HOUR, 1_000, "a", "b"), (HOUR, 990, "b", "c"), (3 * HOUR, 980, "c", "a")],
        # The loop closes after the window.
        [(0, 1_000, "a", "b"), (HOUR, 990, "b", "c"), (8 * DAY, 980, "c", "a")],
        # No way back at all.
        [(0, 1_000, "a", "b"), (HOUR, 990, "b", "c"), (2 * HOUR, 980, "c", "d")],
    ],
)
def test_cycle_near_misses(edges: list[tuple[int, int, str, str]]) -> None:
    assert detect_cycles(graph(*edges), CYCLES).alerts == ()


def test_cycles_longer_than_max_hops_are_not_found() -> None:
    ring = [(index, 100, f"n{index}", f"n{(index + 1) % 5}") for index in range(5)]
    assert detect_cycles(graph(*ring), CYCLES).alerts == ()
    longer = CycleParameters(window_seconds=7 * DAY, max_hops=5)
    assert len(detect_cycles(graph(*ring), longer).alerts) == 1


def test_min_hops_excludes_round_trips() -> None:
    round_trip = graph((0, 100, "a", "b"), (1, 100, "b", "a"))
    assert len(detect_cycles(round_trip, CYCLES).alerts) == 1
    at_least_three = CycleParameters(window_seconds=DAY, min_hops=3, max_hops=4)
    assert detect_cycles(round_trip, at_least_three).alerts == ()


UNBOUNDED = CycleParameters(
    window_seconds=7 * DAY, max_hops=4, min_retention_permille=0, max_growth_permille=0
)


def test_retention_drops_cycles_that_lose_most_of_the_money() -> None:
    leaky = graph((0, 1_000, "a", "b"), (1, 100, "b", "c"), (2, 100, "c", "a"))
    assert len(detect_cycles(leaky, UNBOUNDED).alerts) == 1
    assert detect_cycles(leaky, CYCLES).alerts == ()
    strict = CycleParameters(window_seconds=DAY, max_hops=4, min_retention_permille=800)
    assert detect_cycles(leaky, strict).alerts == ()


def test_growth_bound_drops_chains_where_the_money_grows() -> None:
    # A 30-yuan payment followed by 3,000-yuan ones is no money passed on.
    growing = graph((0, 30_00, "a", "b"), (1, 3_000_00, "b", "c"), (2, 3_000_00, "c", "a"))
    assert len(detect_cycles(growing, UNBOUNDED).alerts) == 1
    assert detect_cycles(growing, CYCLES).alerts == ()
    # Rounding or a refunded fee may add a little: within the default 1050 per mille it is
    # still a cycle, beyond it not, unless the caller widens the tolerance.
    slightly = graph((0, 1_000, "a", "b"), (1, 1_040, "b", "c"), (2, 1_080, "c", "a"))
    assert len(detect_cycles(slightly, CYCLES).alerts) == 1
    more = graph((0, 1_000, "a", "b"), (1, 1_100, "b", "c"), (2, 1_100, "c", "a"))
    assert detect_cycles(more, CYCLES).alerts == ()
    tolerant = CycleParameters(window_seconds=DAY, max_hops=4, max_growth_permille=1_100)
    assert len(detect_cycles(more, tolerant).alerts) == 1


def test_the_default_bounds_keep_a_cycle_that_passes_the_money_on_less_a_cut() -> None:
    # Each intermediary keeps 5 per cent: 950 per mille of the previous hop, within 800-1050.
    cut = graph((0, 10_000, "a", "b"), (HOUR, 9_500, "b", "c"), (2 * HOUR, 9_025, "c", "a"))
    assert len(detect_cycles(cut).alerts) == 1


@pytest.mark.parametrize(
    ("amounts", "score"),
    [
        ((1_000, 1_000, 1_000), 1000),  # exactly what was sent came back
        ((1_000, 900, 810), 810),
        ((1_000, 1_100, 1_210), 826),  # more came back: scored as far, not as stronger
        ((1_000, 2_000, 4_000), 250),
    ],
)
def test_cycle_score_is_how_close_the_returned_amount_is_to_the_first(
    amounts: tuple[int, int, int], score: int
) -> None:
    first, second, third = amounts
    edges = graph((0, first, "a", "b"), (1, second, "b", "c"), (2, third, "c", "a"))
    (alert,) = detect_cycles(edges, UNBOUNDED).alerts
    assert alert.score == score


def dense_graph(accounts: int) -> TransferGraph:
    """Every account pays every other one, in one second: a worst case for cycle search."""
    names = [f"n{index}" for index in range(accounts)]
    edges = [(0, 100, source, target) for source in names for target in names if source != target]
    return graph(*edges)


def test_cycle_search_stops_each_start_at_its_edge_cap() -> None:
    dense = dense_graph(8)
    capped = detect_cycles(
        dense, CycleParameters(window_seconds=DAY, max_hops=6, max_edges_per_start=20)
    )
    assert capped.starts_truncated > 0
    assert capped.edges_explored <= 20 * len(dense.transfers)
    uncapped = detect_cycles(
        dense, CycleParameters(window_seconds=DAY, max_hops=6, max_edges_per_start=1_000_000)
    )
    assert uncapped.starts_truncated == 0
    assert len(uncapped.alerts) > len(capped.alerts)


def test_cycle_search_stops_when_the_total_budget_is_spent() -> None:
    search = detect_cycles(
        dense_graph(8), CycleParameters(window_seconds=DAY, max_hops=6, max_edges_total=50)
    )
    assert search.budget_exhausted
    # The budget is checked after each start, so it is overrun by at most one start's cap.
    assert search.edges_explored < 50 + 5_000


@pytest.mark.parametrize(
    ("factory", "arguments"),
    [
        (CycleParameters, {"max_hops": 11}),
        (CycleParameters, {"min_hops": 1}),
        (CycleParameters, {"min_hops": 4, "max_hops": 3}),
        (CycleParameters, {"max_edges_per_start": 0}),
        (CycleParameters, {"window_seconds": 91 * DAY}),
        (FanParameters, {"min_counterparties": 1}),
        (FanParameters, {"window_seconds": 0}),
        (FanParameters, {"max_amount_spread_permille": 999}),
        (FanParameters, {"max_amount_spread_permille": 100_001}),
        (CycleParameters, {"min_retention_permille": 1_001}),
        (CycleParameters, {"min_retention_permille": 900, "max_growth_permille": 899}),
        (CycleParameters, {"max_growth_permille": 100_001}),
        (CycleParameters, {"max_growth_permille": -1}),
        (RapidInOutParameters, {"pass_through_permille": 0}),
        (RapidInOutParameters, {"max_outflow_permille": 999}),
        (StructuringParameters, {"near_threshold_permille": 1_000}),
        (StructuringParameters, {"min_transactions": 1}),
        (StructuringParameters, {"threshold_minor": 0}),
    ],
)
def test_parameters_outside_their_limits_are_refused(
    factory: Any, arguments: dict[str, int]
) -> None:
    with pytest.raises(AmlError) as raised:
        factory(**arguments)
    assert raised.value.code == "invalid_detector_parameter"


def test_suite_runs_the_enabled_detectors() -> None:
    # Fan-in's default asks for 6 distinct payers (FAN_IN_DEFAULTS); five are not enough.
    five = [(index * HOUR, 100, source, "hub") for index, source in enumerate("pqrst")]
    assert DetectorSuite().run(graph(*five))["fan_in"] == []
    edges = [(index * HOUR, 100, source, "hub") for index, source in enumerate("pqrstu")]
    results = DetectorSuite(structuring=STRUCTURING, fan_out=None).run(graph(*edges))
    assert set(results) == {"structuring", "rapid_in_out", "fan_in", "cycle"}
    assert [alert.kind for alert in results["fan_in"]] == ["fan_in"]
    assert all(isinstance(alert, Alert) for alerts in results.values() for alert in alerts)


def test_triage_order_takes_each_kind_strongest_first_in_turns() -> None:
    def alert(kind: Any, score: int, name: str) -> Alert:
        return Alert(kind, (name,), (name,), score, "r")

    fans = [alert("fan_in", 1000, f"f{index}") for index in range(3)]
    cycles = [alert("cycle", 700, "c1"), alert("cycle", 990, "c2")]
    ordered = triage_order([*fans, *cycles])
    # A saturated fan score does not push the cycles behind every fan.
    assert [a.transaction_ids[0] for a in ordered] == ["c2", "f0", "c1", "f1", "f2"]
    assert triage_order([]) == []
