"""The credit line's pure rules: calendar, posting dates, repayment order, funder splits, the
instalment quote; and every refusal code lending raises has a problem document."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest

from tianping.api.problems import PROBLEMS
from tianping.lending.credit_lines import (
    DUE_DAY_OFFSET,
    Bucket,
    LineOwed,
    daily_rate,
    first_statement_date,
    line_terms,
    next_statement_date,
    posting_date,
    quote_instalments,
    split_charge,
    split_repayment,
)
from tianping.lending.pricing import LoanCashFlows, apr_irr
from tianping.lending.schedules import DatedAmount, InvalidLendingInput

LENDING = Path(__file__).resolve().parents[2] / "src" / "tianping" / "lending"


def test_the_first_statement_is_the_first_statement_day_on_or_after_opening() -> None:
    assert first_statement_date(dt.date(2027, 1, 15), 20) == (
        dt.date(2026, 12, 20),
        dt.date(2027, 1, 20),
    )
    assert first_statement_date(dt.date(2027, 1, 15), 15) == (
        dt.date(2026, 12, 15),
        dt.date(2027, 1, 15),
    )
    assert first_statement_date(dt.date(2027, 1, 15), 1) == (
        dt.date(2027, 1, 1),
        dt.date(2027, 2, 1),
    )
    assert next_statement_date(dt.date(2027, 1, 28), 28) == dt.date(2027, 2, 28)
    with pytest.raises(InvalidLendingInput):
        first_statement_date(dt.date(2027, 1, 15), 29)


def test_an_entry_after_todays_cut_is_posted_in_the_next_cycle() -> None:
    # The line's next statement is 20 February: 20 January has been cut.
    assert posting_date(dt.date(2027, 1, 20), dt.date(2027, 2, 20), 20) == dt.date(2027, 1, 21)
    assert posting_date(dt.date(2027, 1, 25), dt.date(2027, 2, 20), 20) == dt.date(2027, 1, 25)
    # Before its cut, the statement day itself is in the cycle.
    assert posting_date(dt.date(2027, 2, 20), dt.date(2027, 2, 20), 20) == dt.date(2027, 2, 20)


def test_terms_follow_the_product_calendar() -> None:
    terms = line_terms(10_000_00, 20, 1_825)
    assert terms.due_day_offset == DUE_DAY_OFFSET
    assert terms.daily_rate == Decimal("0.0005")  # 18.25 % a year is 0.05 % a day
    assert daily_rate(0) == 0


def test_a_repayment_pays_fees_then_interest_then_principal() -> None:
    owed = LineOwed(fees=5_00, interest=10_00, principal=100_00)
    paid, over = owed.pay(12_00)
    assert (paid, over) == ({Bucket.FEES: 5_00, Bucket.INTEREST: 7_00, Bucket.PRINCIPAL: 0}, 0)
    paid, over = owed.pay(200_00)
    assert (paid[Bucket.PRINCIPAL], over) == (100_00, 85_00)
    with pytest.raises(InvalidLendingInput):
        owed.pay(0)


def test_funder_splits_never_overpay_a_funder() -> None:
    assert split_charge(1_000_01, 7_000) == (700_01, 300_00)
    assert split_charge(1_00, 0) == (0, 1_00)
    # Each funder owed 1 fen after rounding drift: a 1-fen repayment goes where it is owed.
    assert split_repayment(1, 1, 0) == (1, 0)
    assert split_repayment(2, 1, 1) == (1, 1)
    assert split_repayment(0, 0, 0) == (0, 0)
    with pytest.raises(InvalidLendingInput):
        split_repayment(3, 1, 1)


def test_the_instalment_quote_shows_the_irr_on_the_lines_own_due_dates() -> None:
    quote = quote_instalments(3_000_00, 3, dt.date(2027, 1, 20), dt.date(2027, 2, 20), 20)
    assert [i.bill_on for i in quote.instalments] == [
        dt.date(2027, 2, 20),
        dt.date(2027, 3, 20),
        dt.date(2027, 4, 20),
    ]
    assert [i.due_on for i in quote.instalments] == [
        dt.date(2027, 3, 1),
        dt.date(2027, 3, 29),
        dt.date(2027, 4, 29),
    ]
    assert sum(i.principal for i in quote.instalments) == 3_000_00
    assert quote.total_fee == 63_00  # 0.70 % a month for 3 months, rounded once
    assert quote.disclosure.total_cost == quote.total_fee
    flows = LoanCashFlows(
        dt.date(2027, 1, 20),
        3_000_00,
        tuple(DatedAmount(i.due_on, i.principal + i.fee) for i in quote.instalments),
    )
    assert quote.apr == apr_irr(flows)
    assert Decimal("0.10") < quote.apr < Decimal("0.24")
    with pytest.raises(InvalidLendingInput):
        quote_instalments(3_000_00, 4, dt.date(2027, 1, 20), dt.date(2027, 2, 20), 20)
    with pytest.raises(InvalidLendingInput):
        quote_instalments(3_000_00, 3, dt.date(2027, 2, 20), dt.date(2027, 2, 20), 20)


def test_every_lending_refusal_code_has_a_problem() -> None:
    raised: set[str] = set()
    for path in LENDING.glob("*.py"):
        raised |= set(re.findall(r'LendingRefusal\(\s*"([a-z_]+)"', path.read_text("utf-8")))
    assert "credit_limit_exceeded" not in raised  # a payment's decline code, not a problem
    assert len(raised) > 20
    assert sorted(raised - set(PROBLEMS)) == []
