"""The credit line's servicing rules, pure: where a refund goes, what of a bill converts, when
a line is past due and the class and stage that follow, the line notices' texts, and how a
recovery pays what remains written off and splits between the funders."""

from __future__ import annotations

import datetime as dt

import pytest

from tianping.lending.colending import CoLendingInputInvalid, bank_position, position_change
from tianping.lending.credit_lines import (
    BillDue,
    Bucket,
    LineOwed,
    WrittenOff,
    allocate_refund,
    convertible_principal,
    line_standing,
    oldest_unpaid_due,
    recover_line,
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


# -- recoveries on a written-off line ---------------------------------------------------------

# A co-funded line as a write-off leaves it: the bank's part of each bucket is what the line
# recorded (largest-remainder splits of its draws and charges), not 70 % rounded down.
WRITTEN = WrittenOff(
    fees=3,
    interest=1_001,
    principal=900_01,
    instalment_principal=300_00,
    bank_fees=2,
    bank_interest=701,
    bank_principal=630_01,
    bank_instalment_principal=210_00,
)


def test_a_recovery_pays_charges_then_principal_then_converted_principal() -> None:
    first = recover_line(WRITTEN, 2_000)
    assert first.allocation == {
        "fees": 3,
        "interest": 1_001,
        "principal": 996,
        "instalment_principal": 0,
    }
    assert (first.recovered, first.overpayment) == (2_000, 0)
    assert first.remaining.total == WRITTEN.total - 2_000
    rest = recover_line(first.remaining, WRITTEN.total)
    assert rest.allocation["instalment_principal"] == 300_00
    assert (rest.recovered, rest.overpayment) == (WRITTEN.total - 2_000, 2_000)
    assert rest.remaining.total == 0


def test_recovered_in_full_each_bucket_returns_exactly_the_banks_recorded_part() -> None:
    # Each bucket's bank part is the change of the bank's position: its recorded part as a
    # fraction of the bucket, rounded down; in full, exactly the recorded part.
    whole = recover_line(WRITTEN, WRITTEN.total)
    assert whole.bank == {
        "fees": 2,
        "interest": 701,
        "principal": 630_01,
        "instalment_principal": 210_00,
    }
    assert whole.remaining == WrittenOff(0, 0, 0, 0)
    # In pieces, the same totals: position changes telescope.
    remaining, bank = WRITTEN, 0
    for piece in (1, 7, 333, 1_000, 50_000, 10**9):
        step = recover_line(remaining, piece)
        assert 0 <= step.bank_total <= step.recovered
        bank += step.bank_total
        remaining = step.remaining
    assert remaining.total == 0
    assert bank == 2 + 701 + 630_01 + 210_00


def test_a_platform_line_and_nothing_left_to_recover() -> None:
    alone = WrittenOff(fees=0, interest=50, principal=1_000, instalment_principal=0)
    parts = recover_line(alone, 600)
    assert parts.bank_total == 0 and parts.recovered == 600
    nothing = recover_line(WrittenOff(0, 0, 0, 0), 100)
    assert (nothing.recovered, nothing.overpayment) == (0, 100)
    with pytest.raises(InvalidLendingInput):
        recover_line(alone, 0)
    with pytest.raises(InvalidLendingInput):
        WrittenOff(fees=1, interest=0, principal=0, instalment_principal=0, bank_fees=2)


def test_a_position_may_be_any_fraction_of_the_balance() -> None:
    # Basis points by default, as the loans use it; `whole` is the share's denominator.
    assert bank_position(1_001, 7_000) == 700
    assert bank_position(1_001, 701, whole=1_001) == 701
    assert bank_position(500, 701, whole=1_001) == 350
    assert position_change(1_001, 500, 701, whole=1_001).bank == 351
    with pytest.raises(CoLendingInputInvalid):
        bank_position(10, 11, whole=10)
    with pytest.raises(CoLendingInputInvalid):
        bank_position(10, 0, whole=0)
