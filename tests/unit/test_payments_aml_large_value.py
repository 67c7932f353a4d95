"""Large-value transaction reports: thresholds by category, triggers, business dates, deadlines
and the CSV and JSON exports (regulation.md A1, A2)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tianping.payments.aml.errors import AML_ERROR_CODES, AmlError
from tianping.payments.aml.large_value import (
    A1_CITATION,
    CN_RULEBOOK_PARAMETERS,
    CSV_COLUMNS,
    AmlTransaction,
    LargeValueThresholds,
    WorkingCalendar,
    category_of,
    filing_deadline,
    large_value_reports,
    to_csv,
    to_json,
)

# Monday 2026-03-02, 12:00 in Beijing (04:00 UTC).
MONDAY_NOON = int(datetime(2026, 3, 2, 4, 0, tzinfo=UTC).timestamp())
MONDAY = date(2026, 3, 2)
CN = LargeValueThresholds.cn_2017()


def tx(transaction_id: str = "t1", **overrides: Any) -> AmlTransaction:
    """A domestic CNY transfer sent by a natural person, changed by `overrides`."""
    fields: dict[str, Any] = {
        "transaction_id": transaction_id,
        "at": MONDAY_NOON,
        "customer_id": "c1",
        "customer_kind": "person",
        "counterparty_id": "p9",
        "direction": "out",
        "amount_minor": 100,
        "currency": "CNY",
        "channel": "transfer",
        "cross_border": False,
    }
    fields.update(overrides)
    return AmlTransaction(**fields)


def cash(transaction_id: str, yuan_minor: int, **overrides: Any) -> AmlTransaction:
    return tx(transaction_id, channel="cash", amount_minor=yuan_minor, **overrides)


# -- thresholds by category -----------------------------------------------------------------


def test_cn_2017_thresholds_are_the_a1_values_in_minor_units() -> None:
    assert dict(CN.by_currency["CNY"]) == {
        "cash": 5_000_000,
        "entity_transfer": 200_000_000,
        "person_domestic_transfer": 50_000_000,
        "person_cross_border": 20_000_000,
    }
    assert dict(CN.by_currency["USD"]) == {
        "cash": 1_000_000,
        "entity_transfer": 20_000_000,
        "person_domestic_transfer": 10_000_000,
        "person_cross_border": 1_000_000,
    }
    assert CN.citation == A1_CITATION
    assert "PBoC Order [2016] No. 3" in A1_CITATION


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"channel": "cash"}, "cash"),
        ({"channel": "cash", "customer_kind": "entity", "cross_border": True}, "cash"),
        ({"customer_kind": "entity"}, "entity_transfer"),
        ({"customer_kind": "entity", "cross_border": True}, "entity_transfer"),
        ({}, "person_domestic_transfer"),
        ({"cross_border": True}, "person_cross_border"),
    ],
)
def test_category_of(overrides: dict[str, Any], expected: str) -> None:
    assert category_of(tx(**overrides)) == expected


@pytest.mark.parametrize(
    ("overrides", "threshold_minor"),
    [
        ({"channel": "cash"}, 5_000_000),
        ({}, 50_000_000),
        ({"customer_kind": "entity"}, 200_000_000),
        ({"cross_border": True}, 20_000_000),
        ({"channel": "cash", "currency": "USD"}, 1_000_000),
        ({"currency": "USD", "cross_border": True}, 1_000_000),
    ],
)
def test_exactly_the_threshold_reports_and_one_minor_unit_less_does_not(
    overrides: dict[str, Any], threshold_minor: int
) -> None:
    at_threshold = large_value_reports([tx(amount_minor=threshold_minor, **overrides)], CN)
    below = large_value_reports([tx(amount_minor=threshold_minor - 1, **overrides)], CN)
    assert len(at_threshold) == 1
    assert at_threshold[0].trigger == "single"
    assert at_threshold[0].threshold_minor == threshold_minor
    assert below == []


def test_a_person_domestic_amount_above_the_cross_border_threshold_is_not_reported() -> None:
    """200,000 CNY reaches the cross-border threshold but not the domestic one (500,000)."""
    assert large_value_reports([tx(amount_minor=20_000_000)], CN) == []
    assert len(large_value_reports([tx(amount_minor=20_000_000, cross_border=True)], CN)) == 1


def test_an_entity_transfer_is_measured_against_two_million() -> None:
    """500,000 CNY is reportable for a person but not for an entity."""
    assert large_value_reports([tx(amount_minor=50_000_000, customer_kind="entity")], CN) == []
    reports = large_value_reports([tx(amount_minor=200_000_000, customer_kind="entity")], CN)
    assert [report.category for report in reports] == ["entity_transfer"]
    assert reports[0].customer_kind == "entity"


# -- single against cumulative --------------------------------------------------------------


def test_cash_cumulative_reaching_the_threshold_is_reported_with_every_transaction() -> None:
    reports = large_value_reports(
        [cash("t2", 2_000_000, at=MONDAY_NOON + 60), cash("t1", 3_000_000)], CN
    )
    assert len(reports) == 1
    report = reports[0]
    assert report.trigger == "cumulative"
    assert report.total_minor == 5_000_000
    assert report.transaction_ids == ("t1", "t2")  # time order
    assert report.category == "cash"
    assert report.business_date == MONDAY


def test_cash_cumulative_one_minor_unit_short_is_not_reported() -> None:
    assert large_value_reports([cash("t1", 3_000_000), cash("t2", 1_999_999)], CN) == []


def test_a_single_trigger_still_lists_the_days_other_transactions() -> None:
    reports = large_value_reports([cash("big", 6_000_000), cash("small", 100)], CN)
    assert reports[0].trigger == "single"
    assert set(reports[0].transaction_ids) == {"big", "small"}
    assert reports[0].total_minor == 6_000_100


def test_inflows_and_outflows_are_summed_separately() -> None:
    """30,000 in and 30,000 out is 60,000 of cash movement but neither side reaches 50,000."""
    both = [cash("in1", 3_000_000, direction="in"), cash("out1", 3_000_000, direction="out")]
    assert large_value_reports(both, CN) == []
    two_out = [*both, cash("out2", 2_000_000, direction="out")]
    reports = large_value_reports(two_out, CN)
    assert [(r.direction, r.transaction_ids) for r in reports] == [("out", ("out1", "out2"))]


def test_customers_are_summed_separately() -> None:
    transactions = [cash("t1", 3_000_000), cash("t2", 3_000_000, customer_id="c2")]
    assert large_value_reports(transactions, CN) == []


def test_cny_and_usd_are_never_added_together() -> None:
    transactions = [cash("t1", 4_000_000), cash("t2", 900_000, currency="USD")]
    assert large_value_reports(transactions, CN) == []


def test_a_repeated_transaction_id_is_counted_once() -> None:
    assert large_value_reports([cash("t1", 3_000_000), cash("t1", 3_000_000)], CN) == []


def test_a_currency_without_a_threshold_is_refused() -> None:
    with pytest.raises(AmlError) as raised:
        large_value_reports([cash("t1", 100, currency="EUR")], CN)
    assert raised.value.code == "threshold_missing"


def test_thresholds_follow_the_given_parameters_and_the_currency_exponent() -> None:
    """A JPY threshold (exponent 0) is read and exported without decimals."""
    thresholds = LargeValueThresholds.from_decimal_text({"JPY": {"cash": "1000000"}}, "test")
    reports = large_value_reports([cash("t1", 1_000_000, currency="JPY")], thresholds)
    assert reports[0].threshold_minor == 1_000_000
    row = json.loads(to_json(reports))[0]
    assert (row["total"], row["threshold"], row["citation"]) == ("1000000", "1000000", "test")


@pytest.mark.parametrize(
    "by_currency",
    [
        {"CNY": {"cash": "0"}},
        {"CNY": {"cash": "-1.00"}},
        {"CNY": {"cash": "1.001"}},
        {"CNY": {"gold": "1.00"}},
        {"XYZ": {"cash": "1.00"}},
    ],
)
def test_invalid_thresholds_are_refused(by_currency: Any) -> None:
    with pytest.raises(AmlError) as raised:
        LargeValueThresholds.from_decimal_text(by_currency, "citation")
    assert raised.value.code == "invalid_thresholds"


# -- business date --------------------------------------------------------------------------


def test_business_date_turns_at_midnight_beijing_time() -> None:
    last_second = int(datetime(2026, 3, 2, 15, 59, 59, tzinfo=UTC).timestamp())
    assert tx(at=last_second).business_date == date(2026, 3, 2)
    assert tx(at=last_second + 1).business_date == date(2026, 3, 3)


def test_transactions_either_side_of_local_midnight_are_different_days() -> None:
    last_second = int(datetime(2026, 3, 2, 15, 59, 59, tzinfo=UTC).timestamp())
    split = [cash("t1", 3_000_000, at=last_second), cash("t2", 3_000_000, at=last_second + 1)]
    assert large_value_reports(split, CN) == []
    # The same two instants fall on one UTC day when the offset is zero.
    utc = [
        cash("t1", 3_000_000, at=last_second, utc_offset_minutes=0),
        cash("t2", 3_000_000, at=last_second + 1, utc_offset_minutes=0),
    ]
    assert [r.business_date for r in large_value_reports(utc, CN)] == [date(2026, 3, 2)]


# -- filing deadline ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("business_date", "deadline"),
    [
        (date(2026, 3, 2), date(2026, 3, 9)),  # Monday -> next Monday
        (date(2026, 3, 5), date(2026, 3, 12)),  # Thursday: over the weekend
        (date(2026, 3, 6), date(2026, 3, 13)),  # Friday
        (date(2026, 3, 7), date(2026, 3, 13)),  # Saturday: counting starts on Monday
    ],
)
def test_deadline_is_five_working_days_later(business_date: date, deadline: date) -> None:
    assert filing_deadline(business_date) == deadline


def test_deadline_skips_holidays_and_counts_make_up_working_days() -> None:
    thursday = date(2026, 3, 5)
    holiday = WorkingCalendar(holidays=frozenset({date(2026, 3, 9), date(2026, 3, 10)}))
    assert filing_deadline(thursday, holiday) == date(2026, 3, 16)
    make_up = WorkingCalendar(extra_working_days=frozenset({date(2026, 3, 7)}))
    assert filing_deadline(thursday, make_up) == date(2026, 3, 11)


def test_reports_carry_the_deadline_of_the_injected_calendar() -> None:
    calendar = WorkingCalendar(holidays=frozenset({date(2026, 3, 3)}))
    reports = large_value_reports([cash("t1", 5_000_000)], CN, calendar)
    assert reports[0].filing_deadline == date(2026, 3, 10)


def test_a_calendar_without_working_days_is_refused() -> None:
    every_day = frozenset(date.fromordinal(date(2026, 1, 1).toordinal() + n) for n in range(400))
    with pytest.raises(AmlError) as raised:
        filing_deadline(date(2026, 1, 1), WorkingCalendar(holidays=every_day))
    assert raised.value.code == "invalid_calendar"


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"customer_id": "=HYPERLINK(1)"},
        {"customer_id": ""},
        {"counterparty_id": "a;b"},
        {"transaction_id": "x" * 129},
        {"amount_minor": 0},
        {"amount_minor": 10**16},
        {"amount_minor": True},
        {"amount_minor": 1.5},
        {"at": 1_700_000_000_000},
        {"currency": "cny"},
        {"direction": "sideways"},
        {"customer_kind": "robot"},
        {"channel": "cheque"},
        {"cross_border": 1},
        {"utc_offset_minutes": -800},
        {"utc_offset_minutes": 900},
        {"flow": ""},
        {"flow": "Top-up"},
        {"flow": "payment;refund"},
        {"flow": "x" * 33},
        {"flow": 1},
    ],
)
def test_invalid_transactions_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(AmlError) as raised:
        tx(**overrides)
    assert raised.value.code == "invalid_transaction"


def test_ids_may_hold_a_slash_as_the_payments_ids_do() -> None:
    """A client's payment or rail request id may hold "/" (payments' id alphabet)."""
    assert tx("payment:order/2026/7:out").transaction_id == "payment:order/2026/7:out"
    with pytest.raises(AmlError):
        tx("/leading")


def test_error_messages_carry_no_identifiers() -> None:
    with pytest.raises(AmlError) as raised:
        tx(customer_id="=secret-customer")
    assert "secret" not in str(raised.value)


def test_every_raised_code_is_registered() -> None:
    """Codes are a public contract; each one raised in the package appears in the registry."""
    package = Path(__file__).parents[2] / "src" / "tianping" / "payments" / "aml"
    raised = set()
    for path in package.glob("*.py"):
        raised |= set(re.findall(r'AmlError\(\s*"([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert raised, "the scan found no codes"
    assert raised <= AML_ERROR_CODES
    with pytest.raises(ValueError, match="unregistered"):
        AmlError("made_up_code", "message")


# -- exports --------------------------------------------------------------------------------


def sample_reports() -> list[Any]:
    return large_value_reports(
        [
            cash("t1", 3_000_000, flow="topup"),
            cash("t2", 2_000_050, at=MONDAY_NOON + 5, flow="payment"),
            tx("t3", amount_minor=50_000_000, customer_id="c2", direction="in"),
        ],
        CN,
    )


def test_csv_has_the_stable_header_and_decimal_amounts() -> None:
    text = to_csv(sample_reports())
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 3
    first = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert first == {
        "report_key": "c1:2026-03-02:out:cash:CNY",
        "customer_id": "c1",
        "customer_kind": "person",
        "business_date": "2026-03-02",
        "direction": "out",
        "category": "cash",
        "currency": "CNY",
        "total": "50000.50",
        "threshold": "50000.00",
        "trigger": "cumulative",
        "transaction_count": "2",
        "transaction_ids": "t1;t2",
        "filing_deadline": "2026-03-09",
        "citation": A1_CITATION,
        "transaction_flows": "topup;payment",
    }
    assert text.endswith("\r\n")


def test_json_has_the_same_keys_in_order_and_string_amounts() -> None:
    rows = json.loads(to_json(sample_reports()))
    assert [tuple(row) for row in rows] == [CSV_COLUMNS, CSV_COLUMNS]
    second = rows[1]
    assert second["total"] == "500000.00"
    assert second["transaction_ids"] == ["t3"]
    assert rows[0]["transaction_flows"] == ["topup", "payment"]
    assert second["transaction_flows"] == [None]  # a transaction without a flow
    assert second["category"] == "person_domestic_transfer"
    assert second["transaction_count"] == 1
    assert all(isinstance(row["total"], str) for row in rows)


def test_empty_exports() -> None:
    assert to_csv([]) == ",".join(CSV_COLUMNS) + "\r\n"
    assert to_json([]) == "[]"


def test_rulebook_parameter_names_exist_in_the_cn_rulebook() -> None:
    """The names the caller reads thresholds by are the rulebook's own."""
    rulebook = Path(__file__).parents[2] / "src" / "tianping" / "rules" / "rulebooks" / "cn"
    parameters = (rulebook / "parameters" / "aml.yaml").read_text(encoding="utf-8")
    names = [name for per in CN_RULEBOOK_PARAMETERS.values() for name in per.values()]
    assert len(names) == 8
    for name in names:
        assert re.search(rf"^{re.escape(name)}:", parameters, re.MULTILINE), name
    assert set(CN_RULEBOOK_PARAMETERS["CNY"]) == set(CN.by_currency["CNY"])
