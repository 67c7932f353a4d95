"""The credit line's servicing rules, pure: where a refund goes, what of a bill converts, when
a line is past due and the class and stage that follow, and the line notices' texts."""

from __future__ import annotations

import datetime as dt

import pytest

from tianping.lending.credit_lines import (
    BillDue,
    Bucket,
    LineOwed,
    allocate_refund,
    convertible_principal,
    line_standing,
    oldest_unpaid_due,
)
from tianping.lending.loan_book import line_class_change_notice, line_write_off_notice
from tianping.lending.schedules import InvalidLendingInput

JAN, FEB, MAR = dt.date(2027, 1, 29), dt.date(2027, 2, 28), dt.date(2027, 3, 29)


def test_a_refund_pays_the_line_first_and_only_the_excess_reaches_the_wallet() -> None:
    owed = LineOwed(fees=10, interest=20, principal=300)
    within = allocate_refund(200, owed)
    assert within.to_line == {Bucket.FEES: 10, Bucket.INTEREST: 20, Bucket.PRINCIPAL: 170}
    assert (within.credited_to_line, within.to_wallet) == (200, 0)
    beyond = allocate_refund(500, owed)
    assert (beyond.credited_to_line, beyond.to_wallet) == (330, 170)
    nothing_owed = allocate_refund(50, LineOwed(0, 0, 0))
    assert (nothing_owed.credited_to_line, nothing_owed.to_wallet) == (0, 50)
    with pytest.raises(InvalidLendingInput):
        allocate_refund(0, owed)


def test_only_the_unpaid_billed_principal_converts() -> None:
    # A bill of 1,000.00 with 30.00 of interest on it, 200.00 repaid: 770.00 of principal.
    assert convertible_principal(800_00, 30_00, 970_00) == 770_00
    # Principal drawn after the bill is in the line's principal but not on the bill.
    assert convertible_principal(800_00, 0, 500_00) == 500_00
    # A bill paid down to its charges converts nothing.
    assert convertible_principal(30_00, 30_00, 900_00) == 0
    assert convertible_principal(-5, 0, 100) == 0
    with pytest.raises(InvalidLendingInput):
        convertible_principal(1.5, 0, 0)  # type: ignore[arg-type]


def test_the_oldest_unpaid_minimum_decides_days_past_due() -> None:
    assert oldest_unpaid_due([]) is None
    paid = [BillDue(JAN, 100, 100)]
    assert oldest_unpaid_due(paid) is None
    missed = [BillDue(JAN, 100, 0)]
    assert oldest_unpaid_due(missed) == JAN
    # Paying only February's minimum leaves January's unpaid: credits pay the oldest first.
    only_february = [BillDue(JAN, 100, 110), BillDue(FEB, 110, 110)]
    assert oldest_unpaid_due(only_february) == JAN
    # Paying both makes the line current.
    both = [BillDue(JAN, 100, 210), BillDue(FEB, 110, 210)]
    assert oldest_unpaid_due(both) is None
    # Paid in full for months, then a missed bill: past due from the missed one only.
    later = [BillDue(JAN, 100, 5_000), BillDue(FEB, 100, 4_000), BillDue(MAR, 100, 0)]
    assert oldest_unpaid_due(later) == MAR
    with pytest.raises(InvalidLendingInput):
        oldest_unpaid_due([BillDue(JAN, -1, 0)])


@pytest.mark.parametrize(
    ("days_late", "tier", "stage"),
    [
        (0, "normal", 1),
        (1, "special_mention", 2),
        (90, "special_mention", 2),
        (91, "substandard", 3),
        (121, "doubtful", 3),
        (181, "loss", 3),
    ],
)
def test_class_and_stage_follow_the_card_thresholds(days_late: int, tier: str, stage: int) -> None:
    standing = line_standing([BillDue(JAN, 100, 0)], JAN + dt.timedelta(days=days_late))
    assert (standing.days_past_due, standing.tier, standing.stage) == (days_late, tier, stage)


def test_line_notices_carry_reasons_and_the_review_path() -> None:
    party = "pty_" + "0" * 26
    notice = line_class_change_notice(party, "line-1", "2027-02-01", "normal", "substandard", 95)
    assert notice["line_id"] == "line-1" and notice["review_path"].startswith("/v1/identity/")
    assert [r["reason_id"] for r in notice["reasons"]] == [
        "N-LINE-MINIMUM-OVERDUE",
        "N-LINE-CLASS-WORSENED",
        "N-LINE-FROZEN",
    ]
    assert "95" in notice["reasons"][0]["text_en"] and "次级" in notice["reasons"][1]["text_zh"]
    written = line_write_off_notice(party, "line-1", "2027-08-01", 183, 1_234)
    assert written["still_owed"] == 1_234
    assert written["reasons"][-1]["reason_id"] == "N-LINE-WRITTEN-OFF"
