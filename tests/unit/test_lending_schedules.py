"""Unit tests of instalment schedules, early payoff and credit-line statements."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tianping.lending.schedules import (
    AccrualBasis,
    CreditLineTerms,
    DatedAmount,
    DayCount,
    InvalidLendingInput,
    PreviousStatement,
    RepaymentMethod,
    annuity_payment,
    bill_to_instalments,
    build_schedule,
    due_dates,
    early_payoff,
    statement,
)

TEN_THOUSAND_YUAN = 1_000_000  # in fen
TWELVE_PERCENT = Decimal("0.12")


def test_textbook_annuity_payment_is_888_49() -> None:
    """10,000.00 over 12 months at 12 % nominal (1 % a month) costs 888.49 a month."""
    assert annuity_payment(TEN_THOUSAND_YUAN, TWELVE_PERCENT / 12, 12) == 88_849


def test_textbook_schedule_final_instalment_absorbs_rounding() -> None:
    """With monthly accrual 11 instalments are 888.49 and the last takes the rounding: 888.47."""
    schedule = build_schedule(
        TEN_THOUSAND_YUAN, TWELVE_PERCENT, 12, dt.date(2025, 1, 15), accrual=AccrualBasis.MONTHLY
    )
    totals = [instalment.total for instalment in schedule.instalments]
    assert totals[:-1] == [88_849] * 11
    assert totals[-1] == 88_847
    assert schedule.instalments[0].interest == 10_000
    assert schedule.instalments[0].principal == 78_849
    assert sum(instalment.principal for instalment in schedule.instalments) == TEN_THOUSAND_YUAN
    assert schedule.instalments[-1].closing_principal == 0


@pytest.mark.parametrize("method", list(RepaymentMethod))
@pytest.mark.parametrize("accrual", list(AccrualBasis))
def test_principal_parts_sum_exactly_to_the_principal(
    method: RepaymentMethod, accrual: AccrualBasis
) -> None:
    schedule = build_schedule(
        1_234_567, Decimal("0.0735"), 7, dt.date(2025, 3, 31), method=method, accrual=accrual
    )
    assert sum(instalment.principal for instalment in schedule.instalments) == 1_234_567
    for previous, current in zip(schedule.instalments, schedule.instalments[1:], strict=False):
        assert current.opening_principal == previous.closing_principal
    for instalment in schedule.instalments:
        assert instalment.total == instalment.principal + instalment.interest + instalment.fees
    assert schedule.total_payable == 1_234_567 + schedule.total_interest


def test_daily_accrual_charges_actual_days() -> None:
    """A 28-day February period bears 28/365 of a year's interest, rounded half up."""
    schedule = build_schedule(TEN_THOUSAND_YUAN, TWELVE_PERCENT, 12, dt.date(2025, 1, 31))
    first = schedule.instalments[0]
    assert first.due_date == dt.date(2025, 2, 28)
    # 1,000,000 * 0.12 * 28 / 365 = 9205.479...
    assert first.interest == 9_205
    assert first.total == 88_849


def test_act_360_charges_more_than_act_365() -> None:
    on_365 = build_schedule(TEN_THOUSAND_YUAN, TWELVE_PERCENT, 3, dt.date(2025, 1, 1))
    on_360 = build_schedule(
        TEN_THOUSAND_YUAN, TWELVE_PERCENT, 3, dt.date(2025, 1, 1), day_count=DayCount.ACT_360
    )
    # 31 days: 1,000,000 * 0.12 * 31 / 360 = 10333.33; / 365 = 10191.78.
    assert on_360.instalments[0].interest == 10_333
    assert on_365.instalments[0].interest == 10_192


def test_equal_principal_schedule() -> None:
    schedule = build_schedule(
        TEN_THOUSAND_YUAN,
        TWELVE_PERCENT,
        12,
        dt.date(2025, 1, 15),
        method=RepaymentMethod.EQUAL_PRINCIPAL,
        accrual=AccrualBasis.MONTHLY,
    )
    principals = [instalment.principal for instalment in schedule.instalments]
    # 1,000,000 / 12 = 83,333.33: eleven truncated parts and a final part of 83,337.
    assert principals == [83_333] * 11 + [83_337]
    interests = [instalment.interest for instalment in schedule.instalments]
    assert interests[0] == 10_000
    assert interests[1] == 9_167  # 916,667 * 1 % = 9,166.67, rounded half up
    assert interests == sorted(interests, reverse=True)


def test_month_end_due_dates() -> None:
    assert due_dates(dt.date(2025, 1, 31), 4) == (
        dt.date(2025, 2, 28),
        dt.date(2025, 3, 31),
        dt.date(2025, 4, 30),
        dt.date(2025, 5, 31),
    )
    assert due_dates(dt.date(2024, 1, 30), 2) == (dt.date(2024, 2, 29), dt.date(2024, 3, 30))
    assert due_dates(dt.date(2025, 1, 15), 2, repayment_day=31) == (
        dt.date(2025, 2, 28),
        dt.date(2025, 3, 31),
    )
    assert due_dates(dt.date(2025, 11, 20), 3, repayment_day=5)[-1] == dt.date(2026, 2, 5)


def test_invalid_term_is_refused_with_a_stable_code() -> None:
    with pytest.raises(InvalidLendingInput) as raised:
        build_schedule(TEN_THOUSAND_YUAN, TWELVE_PERCENT, 0, dt.date(2025, 1, 1))
    assert raised.value.code == "invalid_lending_input"
    assert raised.value.field == "term_months"


def test_float_rate_is_refused() -> None:
    with pytest.raises(InvalidLendingInput):
        build_schedule(TEN_THOUSAND_YUAN, 12, 12, dt.date(2025, 1, 1))  # type: ignore[arg-type]


def test_early_payoff_on_a_due_date_equals_remaining_principal() -> None:
    schedule = build_schedule(TEN_THOUSAND_YUAN, TWELVE_PERCENT, 12, dt.date(2025, 1, 31))
    third = schedule.instalments[2]
    payoff = early_payoff(schedule, 3, third.due_date, TWELVE_PERCENT)
    assert payoff.principal == third.closing_principal
    assert payoff.accrued_interest == 0
    assert payoff.total == third.closing_principal


def test_early_payoff_between_due_dates_accrues_daily_interest() -> None:
    schedule = build_schedule(TEN_THOUSAND_YUAN, TWELVE_PERCENT, 12, dt.date(2025, 1, 1))
    payoff = early_payoff(
        schedule,
        0,
        dt.date(2025, 1, 11),
        TWELVE_PERCENT,
        prepayment_fee_rate=Decimal("0.01"),
        prepayment_fee_minor=500,
    )
    # 1,000,000 * 0.12 * 10 / 365 = 3287.67 -> 3,288; fee 1 % of 1,000,000 plus 5.00.
    assert payoff == type(payoff)(
        principal=1_000_000, accrued_interest=3_288, fees=10_500, total=1_013_788
    )


def test_early_payoff_on_the_next_due_date_matches_that_instalments_interest() -> None:
    schedule = build_schedule(TEN_THOUSAND_YUAN, TWELVE_PERCENT, 6, dt.date(2025, 1, 31))
    second = schedule.instalments[1]
    payoff = early_payoff(schedule, 1, second.due_date)
    assert payoff.accrued_interest == second.interest
    assert payoff.principal == second.opening_principal


def test_early_payoff_after_the_next_due_date_is_refused() -> None:
    schedule = build_schedule(TEN_THOUSAND_YUAN, TWELVE_PERCENT, 6, dt.date(2025, 1, 31))
    with pytest.raises(InvalidLendingInput) as raised:
        early_payoff(schedule, 0, dt.date(2025, 3, 1))
    assert raised.value.field == "payoff_date"


# --------------------------------------------------------------------------- credit line

TERMS = CreditLineTerms(
    limit=2_000_000,
    statement_day=1,
    due_day_offset=9,
    interest_free_days=40,
    daily_rate=Decimal("0.0005"),
    min_payment_ratio=Decimal("0.1"),
    min_payment_floor=1_000,
)
PREVIOUS = PreviousStatement(
    statement_date=dt.date(2025, 3, 1), due_date=dt.date(2025, 3, 10), balance=100_000
)


def test_statement_paid_in_full_keeps_the_interest_free_period() -> None:
    cut = statement(
        transactions=[
            DatedAmount(dt.date(2025, 2, 20), 100_000),
            DatedAmount(dt.date(2025, 3, 15), 50_000),
        ],
        previous_balance=PREVIOUS,
        payments=[DatedAmount(dt.date(2025, 3, 10), 100_000)],
        terms=TERMS,
        statement_date=dt.date(2025, 4, 1),
    )
    assert cut.grace_kept
    assert cut.interest_charged == 0
    assert cut.new_balance == 50_000
    assert cut.minimum_payment == 5_000
    assert cut.due_date == dt.date(2025, 4, 10)


def test_statement_not_paid_in_full_charges_interest_from_transaction_dates() -> None:
    cut = statement(
        transactions=[
            DatedAmount(dt.date(2025, 2, 20), 100_000),
            DatedAmount(dt.date(2025, 3, 15), 50_000),
        ],
        previous_balance=PREVIOUS,
        payments=[DatedAmount(dt.date(2025, 3, 10), 10_000)],
        terms=TERMS,
        statement_date=dt.date(2025, 4, 1),
    )
    # Balance-days: back interest 100,000 * 10 (20 Feb to 1 Mar), then 100,000 * 8 (2-9 Mar),
    # 90,000 * 5 (10-14 Mar) and 140,000 * 18 (15 Mar to 1 Apr) = 4,770,000; * 0.05 % = 2,385.
    assert not cut.grace_kept
    assert cut.interest_charged == 2_385
    assert cut.new_balance == 142_385
    # 10 % of 142,385 is 14,238.5, rounded half up.
    assert cut.minimum_payment == 14_239


def test_payment_after_the_due_date_loses_the_grace() -> None:
    cut = statement(
        transactions=[],
        previous_balance=PREVIOUS,
        payments=[DatedAmount(dt.date(2025, 3, 11), 100_000)],
        terms=TERMS,
        statement_date=dt.date(2025, 4, 1),
    )
    # 100,000 for 9 days (2-10 Mar) at 0.05 % a day.
    assert cut.interest_charged == 450
    assert cut.new_balance == 450
    assert cut.minimum_payment == 450  # the floor is capped at the balance


def test_statement_must_fall_on_the_statement_day_with_month_end_rule() -> None:
    terms_31 = CreditLineTerms(
        limit=2_000_000,
        statement_day=31,
        due_day_offset=10,
        interest_free_days=41,
        daily_rate=Decimal("0.0005"),
        min_payment_ratio=Decimal("0.1"),
        min_payment_floor=1_000,
    )
    previous = PreviousStatement(dt.date(2025, 3, 31), dt.date(2025, 4, 10), 0)
    cut = statement([], previous, [], terms_31, dt.date(2025, 4, 30))
    assert cut.new_balance == 0
    assert cut.minimum_payment == 0
    with pytest.raises(InvalidLendingInput):
        statement([], previous, [], terms_31, dt.date(2025, 4, 29))


def test_terms_refuse_an_interest_free_period_longer_than_the_calendar_gives() -> None:
    with pytest.raises(InvalidLendingInput) as raised:
        CreditLineTerms(
            limit=1,
            statement_day=1,
            due_day_offset=9,
            interest_free_days=50,
            daily_rate=Decimal("0.0005"),
            min_payment_ratio=Decimal("0.1"),
            min_payment_floor=0,
        )
    assert raised.value.field == "interest_free_days"


def test_bill_to_instalments_keeps_every_fen() -> None:
    instalments = bill_to_instalments(100_001, 7, Decimal("0.0075"), dt.date(2025, 1, 31))
    # Fee 100,001 * 0.75 % * 7 = 5,250.05 -> 5,250; 6 * 750 + 750.
    assert [instalment.fees for instalment in instalments] == [750] * 7
    # Principal floor(100,001 / 7) = 14,285 six times and the rest, 14,291.
    assert [instalment.principal for instalment in instalments] == [14_285] * 6 + [14_291]
    assert sum(instalment.total for instalment in instalments) == 100_001 + 5_250
    assert instalments[1].due_date == dt.date(2025, 2, 28)
    assert instalments[-1].closing_principal == 0


def test_bill_to_instalments_final_fee_absorbs_remainder() -> None:
    instalments = bill_to_instalments(33_333, 3, Decimal("0.006"), dt.date(2025, 5, 10))
    # 33,333 * 0.6 % * 3 = 599.994, rounded half up to 600 = 200 * 3.
    assert [instalment.fees for instalment in instalments] == [200, 200, 200]
    assert [instalment.principal for instalment in instalments] == [11_111] * 3
    instalments = bill_to_instalments(10_050, 3, Decimal("0.0065"), dt.date(2025, 5, 10))
    # 10,050 * 0.65 % * 3 = 195.975 -> 196 = 65 + 65 + 66.
    assert [instalment.fees for instalment in instalments] == [65, 65, 66]
