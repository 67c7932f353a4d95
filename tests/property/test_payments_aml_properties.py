"""Hypothesis properties of the AML domain.

Large-value reports: every transaction a report counts belongs to its customer, business day,
direction, category and currency, the report's total is their sum, no transaction of that group
is left out, and adding a transaction never removes a report. Cycle search: with generous caps
it finds exactly the cycles a brute-force enumeration finds, however the pruning works. Fan-in:
marking accounts as merchants changes no alert on any other account.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.payments.aml.large_value import (
    AmlTransaction,
    LargeValueReport,
    LargeValueThresholds,
    category_of,
    large_value_reports,
)
from tianping.payments.aml.patterns import (
    CycleParameters,
    FanParameters,
    MerchantFanInParameters,
    Transfer,
    TransferGraph,
    detect_cycles,
    detect_fan_in,
)

# 2026-03-02 15:00 UTC: an hour before midnight in Beijing, so generated times cross the
# business-day boundary often.
T0 = 1_772_463_600
# Small thresholds so that random amounts reach them often, both singly and cumulatively.
THRESHOLDS = LargeValueThresholds.from_decimal_text(
    {
        currency: {
            "cash": "10.00",
            "entity_transfer": "40.00",
            "person_domestic_transfer": "20.00",
            "person_cross_border": "15.00",
        }
        for currency in ("CNY", "USD")
    },
    "test thresholds",
)
# A customer's kind is a property of the customer, so it is fixed per id.
CUSTOMERS = {"c1": "person", "c2": "entity", "c3": "person"}


@st.composite
def transaction_fields(draw: st.DrawFn) -> dict[str, object]:
    customer = draw(st.sampled_from(sorted(CUSTOMERS)))
    return {
        "at": T0 + draw(st.integers(0, 3 * 3_600)),
        "customer_id": customer,
        "customer_kind": CUSTOMERS[customer],
        "counterparty_id": draw(st.sampled_from(["p1", "p2"])),
        "direction": draw(st.sampled_from(["in", "out"])),
        "amount_minor": draw(st.integers(1, 2_500)),
        "currency": draw(st.sampled_from(["CNY", "USD"])),
        "channel": draw(st.sampled_from(["cash", "transfer"])),
        "cross_border": draw(st.booleans()),
    }


def build(fields: list[dict[str, object]]) -> list[AmlTransaction]:
    return [
        AmlTransaction(transaction_id=f"t{index}", **field)  # type: ignore[arg-type]
        for index, field in enumerate(fields)
    ]


def group_key(transaction: AmlTransaction) -> tuple[object, ...]:
    return (
        transaction.customer_id,
        transaction.business_date,
        transaction.direction,
        category_of(transaction),
        transaction.currency,
    )


def report_key(report: LargeValueReport) -> tuple[object, ...]:
    return (
        report.customer_id,
        report.business_date,
        report.direction,
        report.category,
        report.currency,
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(transaction_fields(), max_size=30))
def test_reports_count_exactly_their_group(fields: list[dict[str, object]]) -> None:
    transactions = build(fields)
    by_id = {transaction.transaction_id: transaction for transaction in transactions}
    for report in large_value_reports(transactions, THRESHOLDS):
        members = [by_id[transaction_id] for transaction_id in report.transaction_ids]
        assert all(group_key(member) == report_key(report) for member in members)
        assert report.total_minor == sum(member.amount_minor for member in members)
        group = {t.transaction_id for t in transactions if group_key(t) == report_key(report)}
        assert set(report.transaction_ids) == group
        assert report.total_minor >= report.threshold_minor
        largest = max(member.amount_minor for member in members)
        assert (report.trigger == "single") == (largest >= report.threshold_minor)


@settings(max_examples=200, deadline=None)
@given(st.lists(transaction_fields(), max_size=25), transaction_fields())
def test_adding_a_transaction_never_removes_a_report(
    fields: list[dict[str, object]], extra: dict[str, object]
) -> None:
    before = {report_key(r): r for r in large_value_reports(build(fields), THRESHOLDS)}
    after = {report_key(r): r for r in large_value_reports(build([*fields, extra]), THRESHOLDS)}
    assert set(before) <= set(after)
    for key, report in before.items():
        assert after[key].total_minor >= report.total_minor


# -- cycle search against brute force -------------------------------------------------------

NODES = ["a", "b", "c", "d", "e"]
WINDOW = 10


def brute_force_cycles(
    transfers: list[Transfer], min_hops: int, max_hops: int, low: int = 0, high: int = 0
) -> set[frozenset[str]]:
    """Every simple time-respecting cycle whose hops keep `low` to `high` per mille of the
    previous hop's amount (0: no bound), by trying every sequence of transfers."""

    def walk(path: list[Transfer]) -> Iterator[list[Transfer]]:
        first, last = path[0], path[-1]
        for transfer in transfers:
            if transfer.source != last.target or transfer in path:
                continue
            if not last.at <= transfer.at <= first.at + WINDOW:
                continue
            if low and transfer.amount_minor * 1000 < last.amount_minor * low:
                continue
            if high and transfer.amount_minor * 1000 > last.amount_minor * high:
                continue
            if transfer.target == first.source:
                if len(path) + 1 >= min_hops:
                    yield [*path, transfer]
                continue
            if transfer.target in {step.source for step in path}:
                continue
            if len(path) + 1 < max_hops:
                yield from walk([*path, transfer])

    found: set[frozenset[str]] = set()
    for start in transfers:
        if start.source == start.target:
            continue
        for cycle in walk([start]):
            found.add(frozenset(step.transaction_id for step in cycle))
    return found


@st.composite
def small_graphs(draw: st.DrawFn) -> list[Transfer]:
    count = draw(st.integers(0, 14))
    transfers = []
    for index in range(count):
        source = draw(st.sampled_from(NODES))
        target = draw(st.sampled_from([node for node in NODES if node != source]))
        amount = draw(st.sampled_from(AMOUNTS))
        transfers.append(
            Transfer(1_800_000_000 + draw(st.integers(0, 20)), amount, source, target, f"t{index}")
        )
    return transfers


# Amounts close to each other and far apart, so the per-hop bounds both keep and drop hops.
AMOUNTS = [80, 90, 95, 100, 100, 100, 105, 300]


@settings(max_examples=300, deadline=None)
@given(
    small_graphs(),
    st.integers(2, 3),
    st.integers(3, 5),
    st.sampled_from([0, 800, 900, 950]),
    st.sampled_from([0, 1_000, 1_050, 2_000]),
)
def test_cycle_search_finds_what_brute_force_finds(
    transfers: list[Transfer], min_hops: int, max_hops: int, low: int, high: int
) -> None:
    parameters = CycleParameters(
        window_seconds=WINDOW,
        min_hops=min_hops,
        max_hops=max_hops,
        min_retention_permille=low,
        max_growth_permille=high,
        max_edges_per_start=1_000_000,
    )
    search = detect_cycles(TransferGraph.from_transfers(transfers, "CNY"), parameters)
    found = {frozenset(alert.transaction_ids) for alert in search.alerts}
    assert len(found) == len(search.alerts)  # each cycle reported once
    assert found == brute_force_cycles(transfers, min_hops, max_hops, low, high)
    for alert in search.alerts:
        # The score is how close the returned amount is to the first, never above 1000.
        amounts = {t.transaction_id: t.amount_minor for t in transfers}
        first, last = amounts[alert.transaction_ids[0]], amounts[alert.transaction_ids[-1]]
        assert alert.score == 1000 * min(first, last) // max(first, last)


# -- fan-in with merchants ------------------------------------------------------------------

FAN_NODES = [f"n{index}" for index in range(8)]
# Small counts and short windows, so that random graphs of a few dozen transfers have fans,
# surges and bursts often; amounts on both sides of the burst band of a 50,000 threshold.
SMALL_FAN = FanParameters(window_seconds=86_400, min_counterparties=3)
SMALL_MERCHANT = MerchantFanInParameters(
    window_seconds=86_400, min_payers=3, min_history_windows=1, burst_min_payers=2
)
FAN_AMOUNTS = [100, 47_400, 47_500, 49_999, 50_000]


@st.composite
def fan_graphs(draw: st.DrawFn) -> list[Transfer]:
    transfers = []
    for index in range(draw(st.integers(0, 40))):
        source = draw(st.sampled_from(FAN_NODES))
        target = draw(st.sampled_from([node for node in FAN_NODES if node != source]))
        at = T0 + draw(st.integers(0, 5 * 86_400))
        transfers.append(
            Transfer(at, draw(st.sampled_from(FAN_AMOUNTS)), source, target, f"t{index}")
        )
    return transfers


@settings(max_examples=300, deadline=None)
@given(fan_graphs(), st.sets(st.sampled_from(FAN_NODES)))
def test_marking_merchants_changes_no_alert_on_other_accounts(
    transfers: list[Transfer], merchants: set[str]
) -> None:
    plain = detect_fan_in(TransferGraph.from_transfers(transfers, "CNY"), SMALL_FAN, SMALL_MERCHANT)
    marked = detect_fan_in(
        TransferGraph.from_transfers(transfers, "CNY", merchants=merchants),
        SMALL_FAN,
        SMALL_MERCHANT,
    )
    assert [a for a in marked if a.subject_ids[0] not in merchants] == [
        a for a in plain if a.subject_ids[0] not in merchants
    ]
    # Operators see why: a merchant's alert says so, no other does; one alert per account.
    for alert in marked:
        is_merchant = alert.subject_ids[0] in merchants
        assert alert.reason.startswith("merchant (acquiring) account") == is_merchant
        assert alert.kind == "fan_in" and 0 <= alert.score <= 1000
    assert len({alert.subject_ids for alert in marked}) == len(marked)
    assert [alert.subject_ids for alert in marked] == sorted(alert.subject_ids for alert in marked)
