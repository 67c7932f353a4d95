"""Large-value transaction reports (LVTR) under PBoC Order [2016] No. 3 (regulation.md A1, A2).

A financial institution must report a customer's transactions when a single transaction, or the
customer's total for one business day in one direction (inflows and outflows are summed
separately), reaches the threshold of its category: cash 50,000 CNY or USD 10,000; transfers by
an entity 2,000,000 CNY or USD 200,000; domestic transfers by a natural person 500,000 CNY or
USD 100,000; cross-border transfers by a natural person 200,000 CNY or USD 10,000. The report is
filed within five working days (A2) and the records kept at least ten years (A4, A5).

This module is pure: it groups transactions, compares integer minor-unit totals with thresholds
and renders CSV or JSON. Thresholds are passed in (the rules engine owns the dated values;
`LargeValueThresholds.cn_2017` is a convenience copy of A1 for tests and tools), and so is the
working-day calendar, because public holidays and make-up working days are announced yearly.

Amounts in different currencies are never added together: a customer's CNY and USD activity on
the same day are two groups, each measured against its own threshold, as the Measures give a
separate USD figure rather than a conversion rule. Transactions in any other currency must be
converted to a USD equivalent by the caller (the rate is a business decision, not this module's).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Literal, get_args

from tianping.ledger.money import Currency, Money, MoneyError
from tianping.payments.aml.errors import AmlError

__all__ = [
    "A1_CITATION",
    "CATEGORIES",
    "CN_RULEBOOK_PARAMETERS",
    "CSV_COLUMNS",
    "DEFAULT_UTC_OFFSET_MINUTES",
    "FILING_WORKING_DAYS",
    "FLOW_LENGTH_MAX",
    "ID_LENGTH_MAX",
    "RECORD_RETENTION_YEARS",
    "TRANSACTIONS_PER_CALL_MAX",
    "AmlTransaction",
    "Category",
    "Channel",
    "CustomerKind",
    "Direction",
    "LargeValueReport",
    "LargeValueThresholds",
    "Trigger",
    "WorkingCalendar",
    "category_of",
    "filing_deadline",
    "large_value_reports",
    "to_csv",
    "to_json",
]

A1_CITATION: Final = (
    "PBoC Order [2016] No. 3, Measures for the Administration of Large-value and Suspicious "
    "Transaction Reports by Financial Institutions, effective 2017-07-01 (regulation.md A1, A2)"
)

# China Standard Time is UTC+8 all year (no daylight saving), so a fixed offset is exact there.
DEFAULT_UTC_OFFSET_MINUTES: Final = 8 * 60
# Real offsets run from UTC-12:00 to UTC+14:00; anything outside is a unit mistake (hours or
# seconds passed as minutes).
UTC_OFFSET_MINUTES_MIN: Final = -12 * 60
UTC_OFFSET_MINUTES_MAX: Final = 14 * 60

# A2: the report is due within five working days of the transaction.
FILING_WORKING_DAYS: Final = 5
# A4 and A5: transaction records are kept at least ten years. Exposed so storage can use it.
RECORD_RETENTION_YEARS: Final = 10

# Identifiers are pseudonymous ids of bounded length from a safe alphabet. The alphabet also
# keeps exported CSV free of spreadsheet formula injection: no id can start with "=", "+", "-"
# or "@", because the first character must be a letter or digit. It takes "/" because the
# payments context's client-chosen ids (payments, refunds, rail requests) may hold one.
ID_LENGTH_MAX: Final = 128
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
# A flow names the caller's kind of movement (a payment, a top-up, a refund) in lower case.
FLOW_LENGTH_MAX: Final = 32
_FLOW_PATTERN: Final = re.compile(r"[a-z][a-z_]*")

# One call groups at most this many transactions. A day's activity of a large payment
# institution, split by the caller, stays well below it, and the bound keeps memory predictable.
TRANSACTIONS_PER_CALL_MAX: Final = 2_000_000
# Bounds on the injected calendar, so a corrupted holiday feed cannot make the deadline search
# walk for ever: a year has at most 366 holidays, and ten years of them is plenty.
CALENDAR_DATES_MAX: Final = 4_000
# The deadline search gives up after this many calendar days (a calendar with no working day).
DEADLINE_SEARCH_DAYS_MAX: Final = 366
# A transaction amount above this is refused as a unit error: 10^15 minor units is ten trillion
# yuan, far above any single payment.
AMOUNT_MINOR_MAX: Final = 10**15
# Unix seconds accepted: 2000-01-01 to 2100-01-01 (UTC). Earlier or later stamps are unit
# mistakes (milliseconds or nanoseconds passed as seconds).
AT_MIN: Final = 946_684_800
AT_MAX: Final = 4_102_444_800

# The `cn` rulebook's parameter names for each threshold (rules/rulebooks/cn/parameters/aml.yaml),
# so the caller can read the values in force on a date and pass them to `from_decimal_text`.
CN_RULEBOOK_PARAMETERS: Final = MappingProxyType(
    {
        "CNY": {
            "cash": "aml.lvtr_cash_threshold",
            "entity_transfer": "aml.lvtr_entity_transfer_threshold",
            "person_domestic_transfer": "aml.lvtr_person_domestic_transfer_threshold",
            "person_cross_border": "aml.lvtr_person_cross_border_transfer_threshold",
        },
        "USD": {
            "cash": "aml.lvtr_cash_threshold_usd",
            "entity_transfer": "aml.lvtr_entity_transfer_threshold_usd",
            "person_domestic_transfer": "aml.lvtr_person_domestic_transfer_threshold_usd",
            "person_cross_border": "aml.lvtr_person_cross_border_transfer_threshold_usd",
        },
    }
)

CustomerKind = Literal["person", "entity"]
Direction = Literal["in", "out"]
Channel = Literal["cash", "transfer"]
Category = Literal["cash", "entity_transfer", "person_domestic_transfer", "person_cross_border"]
Trigger = Literal["single", "cumulative"]

CATEGORIES: Final[tuple[Category, ...]] = get_args(Category)
_CUSTOMER_KINDS: Final = frozenset(get_args(CustomerKind))
_DIRECTIONS: Final = frozenset(get_args(Direction))
_CHANNELS: Final = frozenset(get_args(Channel))


def _check_id(value: object, name: str) -> None:
    """Refuse an identifier that is not a bounded string from the safe alphabet."""
    if (
        not isinstance(value, str)
        or len(value) > ID_LENGTH_MAX
        or _ID_PATTERN.fullmatch(value) is None
    ):
        raise AmlError(
            "invalid_transaction",
            f"{name} must be 1 to {ID_LENGTH_MAX} characters of letters, digits and _.:/- "
            "starting with a letter or digit",
        )


@dataclass(frozen=True, slots=True)
class AmlTransaction:
    """One movement of money seen from one customer's side, as the AML rules measure it.

    `direction` is from the customer's view: "in" is money received, "out" money sent.
    `customer_id` and `counterparty_id` are pseudonymous party ids, never names or account
    numbers. `business_date` is derived from `at` in the local time given by
    `utc_offset_minutes` (UTC+8 by default), because the daily cumulative total runs over the
    local calendar day, not the UTC one. `flow` optionally names the caller's kind of movement
    (a payment, a top-up, a refund); the exports show it next to the transaction id, so a
    filing clerk can trace each transaction of a report to its record.
    """

    transaction_id: str
    at: int
    customer_id: str
    customer_kind: CustomerKind
    counterparty_id: str
    direction: Direction
    amount_minor: int
    currency: str
    channel: Channel
    cross_border: bool
    utc_offset_minutes: int = DEFAULT_UTC_OFFSET_MINUTES
    flow: str | None = None
    business_date: date = field(init=False, compare=False)

    def __post_init__(self) -> None:
        _check_id(self.transaction_id, "transaction_id")
        _check_id(self.customer_id, "customer_id")
        _check_id(self.counterparty_id, "counterparty_id")
        if type(self.at) is not int or not AT_MIN <= self.at < AT_MAX:
            raise AmlError("invalid_transaction", "at must be unix seconds (int) in 2000..2099")
        if self.customer_kind not in _CUSTOMER_KINDS:
            raise AmlError("invalid_transaction", "customer_kind must be 'person' or 'entity'")
        if self.direction not in _DIRECTIONS:
            raise AmlError("invalid_transaction", "direction must be 'in' or 'out'")
        if self.channel not in _CHANNELS:
            raise AmlError("invalid_transaction", "channel must be 'cash' or 'transfer'")
        if type(self.cross_border) is not bool:
            raise AmlError("invalid_transaction", "cross_border must be a bool")
        if self.flow is not None and (
            not isinstance(self.flow, str)
            or len(self.flow) > FLOW_LENGTH_MAX
            or _FLOW_PATTERN.fullmatch(self.flow) is None
        ):
            raise AmlError(
                "invalid_transaction",
                f"flow must be None or 1 to {FLOW_LENGTH_MAX} lower-case letters and _",
            )
        if type(self.amount_minor) is not int or not 0 < self.amount_minor <= AMOUNT_MINOR_MAX:
            raise AmlError(
                "invalid_transaction",
                f"amount_minor must be an int from 1 to {AMOUNT_MINOR_MAX}",
            )
        try:
            Currency.of(self.currency)
        except MoneyError:
            raise AmlError("invalid_transaction", "currency is not an ISO 4217 code") from None
        offset = self.utc_offset_minutes
        if (
            type(offset) is not int
            or not UTC_OFFSET_MINUTES_MIN <= offset <= UTC_OFFSET_MINUTES_MAX
        ):
            raise AmlError("invalid_transaction", "utc_offset_minutes must be -720 to 840")
        local = datetime.fromtimestamp(self.at + offset * 60, tz=UTC)
        # The dataclass is frozen; the derived field is set once here, the only writer.
        object.__setattr__(self, "business_date", local.date())

    @property
    def money(self) -> Money:
        """The amount as a `Money` value, for callers that format or add it."""
        return Money(self.amount_minor, Currency.of(self.currency))


def category_of(transaction: AmlTransaction) -> Category:
    """Which A1 threshold a transaction is measured against.

    Cash comes first because the cash threshold applies to individuals and entities alike and
    to domestic and cross-border cash; transfers are then split by customer kind and, for
    natural persons, by whether they cross the border.
    """
    if transaction.channel == "cash":
        return "cash"
    if transaction.customer_kind == "entity":
        return "entity_transfer"
    return "person_cross_border" if transaction.cross_border else "person_domestic_transfer"


@dataclass(frozen=True, slots=True)
class LargeValueThresholds:
    """Reporting thresholds in minor units, per currency and per category, with their source.

    Build it from the rules engine's dated parameter values with `from_decimal_text`, or take
    `cn_2017()` for the values in force since 2017-07-01. A currency may omit categories, but a
    transaction whose currency and category have no threshold is refused by
    `large_value_reports` rather than silently left unreported.
    """

    by_currency: Mapping[str, Mapping[Category, int]]
    citation: str

    def __post_init__(self) -> None:
        if not isinstance(self.citation, str) or not self.citation.strip():
            raise AmlError("invalid_thresholds", "a citation is required")
        frozen: dict[str, Mapping[Category, int]] = {}
        for code, per_category in self.by_currency.items():
            try:
                Currency.of(code)
            except MoneyError:
                raise AmlError("invalid_thresholds", "unknown currency code") from None
            checked: dict[Category, int] = {}
            for category, amount in per_category.items():
                if category not in CATEGORIES:
                    raise AmlError("invalid_thresholds", "unknown threshold category")
                if type(amount) is not int or not 0 < amount <= AMOUNT_MINOR_MAX:
                    raise AmlError("invalid_thresholds", "thresholds are positive int minor units")
                checked[category] = amount
            frozen[code] = MappingProxyType(checked)
        # Read-only views, so a caller cannot change a threshold after validation.
        object.__setattr__(self, "by_currency", MappingProxyType(frozen))

    @classmethod
    def from_decimal_text(
        cls, by_currency: Mapping[str, Mapping[Category, str | Decimal]], citation: str
    ) -> LargeValueThresholds:
        """Build thresholds from decimal amounts in major units, such as {"CNY": {"cash":
        "50000.00"}}, which is how the rules engine stores parameter values."""
        converted: dict[str, dict[Category, int]] = {}
        for code, per_category in by_currency.items():
            converted[code] = {}
            for category, amount in per_category.items():
                try:
                    money = Money.parse(str(amount), code)
                except MoneyError:
                    raise AmlError(
                        "invalid_thresholds", "threshold is not an exact amount"
                    ) from None
                converted[code][category] = money.amount_minor
        return cls(converted, citation)

    @classmethod
    def cn_2017(cls) -> LargeValueThresholds:
        """The A1 thresholds in force since 2017-07-01, in CNY and their USD equivalents."""
        return cls.from_decimal_text(
            {
                "CNY": {
                    "cash": "50000.00",
                    "entity_transfer": "2000000.00",
                    "person_domestic_transfer": "500000.00",
                    "person_cross_border": "200000.00",
                },
                "USD": {
                    "cash": "10000.00",
                    "entity_transfer": "200000.00",
                    "person_domestic_transfer": "100000.00",
                    "person_cross_border": "10000.00",
                },
            },
            A1_CITATION,
        )

    def threshold_minor(self, currency: str, category: Category) -> int | None:
        """The threshold for a currency and category, or None if none was given."""
        per_category = self.by_currency.get(currency)
        return None if per_category is None else per_category.get(category)


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Which days are working days: Monday to Friday, minus holidays, plus make-up days.

    China moves working days around public holidays (调休): some Saturdays and Sundays become
    working days. Both sets are injected because the State Council announces them each year.
    """

    holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if len(self.holidays) + len(self.extra_working_days) > CALENDAR_DATES_MAX:
            raise AmlError("invalid_calendar", f"at most {CALENDAR_DATES_MAX} calendar dates")
        if self.holidays & self.extra_working_days:
            raise AmlError("invalid_calendar", "a date cannot be both holiday and working day")

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is a working day under this calendar."""
        if day in self.extra_working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays


def filing_deadline(
    business_date: date,
    calendar: WorkingCalendar | None = None,
    working_days: int = FILING_WORKING_DAYS,
) -> date:
    """The last day to file: the `working_days`-th working day after `business_date`.

    The transaction day itself is not counted, so a report for a Monday transaction with no
    holidays is due the next Monday.
    """
    calendar = calendar or WorkingCalendar()
    if type(working_days) is not int or not 1 <= working_days <= 60:
        raise AmlError("invalid_calendar", "working_days must be an int from 1 to 60")
    day = business_date
    remaining = working_days
    for _ in range(DEADLINE_SEARCH_DAYS_MAX):
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            remaining -= 1
            if remaining == 0:
                return day
    raise AmlError("invalid_calendar", "no deadline found within a year; check the holidays")


@dataclass(frozen=True, slots=True)
class LargeValueReport:
    """One large-value report: a customer's transactions of one day, direction and category.

    `transaction_ids` lists every transaction of the group (time order), whichever way it was
    triggered: "single" when at least one transaction reached the threshold on its own,
    "cumulative" when only the day's total did. `total_minor` is their sum.
    `transaction_flows` gives each of them its `AmlTransaction.flow`, in the same order.
    """

    customer_id: str
    customer_kind: CustomerKind
    business_date: date
    direction: Direction
    category: Category
    currency: str
    total_minor: int
    threshold_minor: int
    trigger: Trigger
    transaction_ids: tuple[str, ...]
    transaction_flows: tuple[str | None, ...]
    filing_deadline: date
    citation: str

    @property
    def report_key(self) -> str:
        """A deterministic key, so re-running the same day's data is idempotent downstream."""
        return ":".join(
            (
                self.customer_id,
                self.business_date.isoformat(),
                self.direction,
                self.category,
                self.currency,
            )
        )


def large_value_reports(
    transactions: Iterable[AmlTransaction],
    thresholds: LargeValueThresholds,
    calendar: WorkingCalendar | None = None,
) -> list[LargeValueReport]:
    """Every large-value report due for the given transactions, in a stable order.

    Transactions are grouped by customer, business date, direction, category and currency; a
    group is reported when one of its transactions, or its total, reaches the threshold (">=":
    exactly the threshold is reported, one minor unit less is not). A repeated transaction id
    is counted once, so feeding the same record twice cannot inflate a total. The caller should
    pass whole days: a day cut in two batches may miss a cumulative report.
    """
    calendar = calendar or WorkingCalendar()
    groups: dict[tuple[str, date, Direction, Category, str], list[AmlTransaction]] = {}
    kinds: dict[str, CustomerKind] = {}
    seen: set[str] = set()
    for count, transaction in enumerate(transactions, start=1):
        if count > TRANSACTIONS_PER_CALL_MAX:
            raise AmlError(
                "too_many_transactions",
                f"at most {TRANSACTIONS_PER_CALL_MAX} transactions per call; split by day",
            )
        if transaction.transaction_id in seen:
            continue
        seen.add(transaction.transaction_id)
        category = category_of(transaction)
        if thresholds.threshold_minor(transaction.currency, category) is None:
            raise AmlError(
                "threshold_missing",
                f"no {category} threshold for {transaction.currency}; convert the amount to a "
                "currency that has one",
            )
        key = (
            transaction.customer_id,
            transaction.business_date,
            transaction.direction,
            category,
            transaction.currency,
        )
        groups.setdefault(key, []).append(transaction)
        # Category depends on the kind, so a customer's kind is taken from its transactions;
        # conflicting kinds for one id would be a data error upstream, and the first one wins.
        kinds.setdefault(transaction.customer_id, transaction.customer_kind)

    reports: list[LargeValueReport] = []
    deadlines: dict[date, date] = {}
    for key in sorted(groups):
        customer_id, business_date, direction, category, currency = key
        members = groups[key]
        threshold = thresholds.threshold_minor(currency, category)
        assert threshold is not None  # checked while grouping
        total = sum(member.amount_minor for member in members)
        if max(member.amount_minor for member in members) >= threshold:
            trigger: Trigger = "single"
        elif total >= threshold:
            trigger = "cumulative"
        else:
            continue
        members.sort(key=lambda member: (member.at, member.transaction_id))
        if business_date not in deadlines:
            deadlines[business_date] = filing_deadline(business_date, calendar)
        reports.append(
            LargeValueReport(
                customer_id=customer_id,
                customer_kind=kinds[customer_id],
                business_date=business_date,
                direction=direction,
                category=category,
                currency=currency,
                total_minor=total,
                threshold_minor=threshold,
                trigger=trigger,
                transaction_ids=tuple(member.transaction_id for member in members),
                transaction_flows=tuple(member.flow for member in members),
                filing_deadline=deadlines[business_date],
                citation=thresholds.citation,
            )
        )
    return reports


# The export columns, in their stable order. Adding a column appends it at the end, so readers
# that index by position keep working.
CSV_COLUMNS: Final = (
    "report_key",
    "customer_id",
    "customer_kind",
    "business_date",
    "direction",
    "category",
    "currency",
    "total",
    "threshold",
    "trigger",
    "transaction_count",
    "transaction_ids",
    "filing_deadline",
    "citation",
    "transaction_flows",
)


def _decimal_text(amount_minor: int, currency: str) -> str:
    """An amount as exact decimal text with the currency's exponent, such as "50000.00"."""
    return Money(amount_minor, Currency.of(currency)).format()


def _row(report: LargeValueReport) -> dict[str, str | int | list[str] | list[str | None]]:
    """One report as an ordered mapping of the export columns (ids and flows as lists)."""
    return {
        "report_key": report.report_key,
        "customer_id": report.customer_id,
        "customer_kind": report.customer_kind,
        "business_date": report.business_date.isoformat(),
        "direction": report.direction,
        "category": report.category,
        "currency": report.currency,
        "total": _decimal_text(report.total_minor, report.currency),
        "threshold": _decimal_text(report.threshold_minor, report.currency),
        "trigger": report.trigger,
        "transaction_count": len(report.transaction_ids),
        "transaction_ids": list(report.transaction_ids),
        "filing_deadline": report.filing_deadline.isoformat(),
        "citation": report.citation,
        "transaction_flows": list(report.transaction_flows),
    }


def to_csv(reports: Iterable[LargeValueReport]) -> str:
    """The reports as CSV (RFC 4180, CRLF line ends) with a header of `CSV_COLUMNS`.

    Transaction ids are joined with ";" in one cell; ids cannot contain ";" (see `_ID_PATTERN`).
    Their flows are joined the same way in `transaction_flows`, the n-th flow the n-th id's,
    an empty entry for a transaction without one.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for report in reports:
        row = _row(report)
        row["transaction_ids"] = ";".join(report.transaction_ids)
        row["transaction_flows"] = ";".join(flow or "" for flow in report.transaction_flows)
        writer.writerow([row[column] for column in CSV_COLUMNS])
    return buffer.getvalue()


def to_json(reports: Iterable[LargeValueReport]) -> str:
    """The reports as a JSON array of objects whose keys follow `CSV_COLUMNS` in order.

    Amounts are decimal strings, never JSON numbers, so no reader parses them as floats. A
    transaction without a flow has null in `transaction_flows`.
    """
    return json.dumps([_row(report) for report in reports], ensure_ascii=False)
