"""Loan-book quality, pure: the penalty surcharge, funders' parts of a flow, PDs by horizon and
stage, charge-offs by funder with recovery rates, and adverse-change notices."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tianping.lending.loan_book import (
    DAY_DENOMINATOR,
    ChargeOffGroup,
    PenaltySurcharge,
    charge_offs,
    class_change_notice,
    daily_penalty,
    ecl,
    funder_parts,
    horizon_pd,
    recovery_rate,
    stage_pd,
    tier_rank,
    write_off_notice,
)
from tianping.lending.schedules import InvalidLendingInput
from tianping.lending.servicing import penalty_interest, penalty_rate
from tianping.lending.store import ACCRUAL_DENOMINATOR


def test_the_surcharge_is_what_penalty_rate_adds_to_the_contract_rate() -> None:
    assert PenaltySurcharge.for_uplift() == PenaltySurcharge(1, 2)
    assert PenaltySurcharge.for_uplift(Decimal("0.3")) == PenaltySurcharge(3, 10)
    assert PenaltySurcharge.for_uplift(Decimal(0)) == PenaltySurcharge(0, 1)
    with pytest.raises(InvalidLendingInput):
        PenaltySurcharge.for_uplift(Decimal("0.333"))


def test_the_day_denominator_is_the_accrual_one() -> None:
    assert DAY_DENOMINATOR == ACCRUAL_DENOMINATOR == 3_650_000


def test_a_daily_penalty_rounds_down_and_matches_the_surcharge_rate() -> None:
    # 10,000.00 overdue at 18 %: the surcharge is 9 % a year, 246.575... fen a day.
    assert daily_penalty(10_000_00, 1_800, PenaltySurcharge(1, 2)) == 246
    # Over a year the days' sum falls short of the exact surcharge by less than a fen a day.
    rate = Decimal("0.18")
    surcharge_rate = penalty_rate(rate) - rate
    exact = penalty_interest(10_000_00, surcharge_rate, date(2026, 1, 1), date(2027, 1, 2))
    assert exact == 90_000
    assert 0 <= exact - 365 * 246 < 365
    with pytest.raises(InvalidLendingInput):
        daily_penalty(-1, 1_800, PenaltySurcharge(1, 2))


def test_a_flow_gives_the_bank_the_change_of_its_position() -> None:
    # Disbursing 10.01: the bank's position is floor(70 % of 1,001) = 700, the platform's 301.
    assert funder_parts(0, 1_001, 7_000, "bank-7", "platform") == {"bank-7": 700, "platform": 301}
    # Repaying 1 of it: 70 % of 1,000 is 700 exactly, so the bank's position does not move.
    assert funder_parts(1_001, 1_000, 7_000, "bank-7", "platform") == {"bank-7": 0, "platform": 1}
    # Paying the rest takes each funder's holding to zero.
    assert funder_parts(1_000, 0, 7_000, "bank-7", "platform") == {"bank-7": 700, "platform": 300}
    assert funder_parts(0, 1_001, 0, "platform", "platform") == {"platform": 1_001}
    assert funder_parts(5, 5, 7_000, "bank-7", "platform") == {"bank-7": 0, "platform": 0}
    with pytest.raises(InvalidLendingInput):
        funder_parts(0, 1, 10_001, "bank-7", "platform")
    with pytest.raises(InvalidLendingInput):
        funder_parts(-1, 1, 7_000, "bank-7", "platform")


def test_pds_by_horizon_and_stage() -> None:
    pd = Decimal("0.1")
    assert horizon_pd(pd, 12) == pd
    assert horizon_pd(pd, 0) == 0
    assert horizon_pd(pd, 6) < pd < horizon_pd(pd, 24)
    assert abs(horizon_pd(pd, 24) - Decimal("0.19")) < Decimal("1e-20")
    assert horizon_pd(Decimal(1), 1) == 1
    # Stage 1: at most twelve months; stage 2: the remaining life; stage 3: default happened.
    assert stage_pd(1, pd, 36) == pd
    assert stage_pd(1, pd, 6) == horizon_pd(pd, 6)
    assert stage_pd(2, pd, 36) == horizon_pd(pd, 36)
    assert stage_pd(2, pd, 0) == horizon_pd(pd, 1)
    assert stage_pd(3, pd, 36) == 1
    with pytest.raises(InvalidLendingInput):
        stage_pd(4, pd, 1)
    with pytest.raises(InvalidLendingInput):
        horizon_pd(Decimal("1.5"), 12)
    assert ecl(1_000_00, Decimal("0.02"), Decimal("0.45")) == 900
    assert ecl(1, Decimal("0.5"), Decimal(1)) == 1  # half a fen rounds up


def test_notices_carry_reasons_and_the_review_path() -> None:
    notice = class_change_notice("pty_x", "loan-1", "2027-01-01", "normal", "substandard", 95)
    assert notice["notice"] == "class_worsened"
    assert [r["reason_id"] for r in notice["reasons"]] == [
        "N-PAYMENT-OVERDUE",
        "N-CLASS-WORSENED",
        "N-PENALTY-INTEREST",
    ]
    assert "95 days" in notice["reasons"][0]["text_en"]
    assert "次级" in notice["reasons"][1]["text_zh"]
    assert notice["review_path"] == "/v1/identity/parties/pty_x/review-requests"
    written = write_off_notice("pty_x", "loan-1", "2027-01-01", 400, 3_000_00)
    assert written["still_owed"] == 3_000_00
    assert written["reasons"][-1]["reason_id"] == "N-WRITTEN-OFF"
    assert [tier_rank(t) for t in ("normal", "special_mention", "loss")] == [1, 2, 5]


# -- charge-offs ---------------------------------------------------------------------------


def test_a_recovery_rate_is_six_places_rounded_half_up_and_undefined_without_losses() -> None:
    assert recovery_rate(1_000_01, 3_000_00) == "0.333337"
    assert recovery_rate(1, 2_000_000) == "0.000001"  # a half, rounded up
    assert recovery_rate(0, 5_00) == "0.000000"
    assert recovery_rate(5_00, 5_00) == "1.000000"
    assert recovery_rate(0, 0) is None
    with pytest.raises(InvalidLendingInput):
        recovery_rate(-1, 5_00)


def test_each_bank_gets_the_rest_of_its_groups_and_the_platform_its_parts() -> None:
    report = charge_offs(
        [
            ChargeOffGroup("bank-7", 3_000_00, 900_00, 1_000_01, 300_00, 1),
            ChargeOffGroup("platform", 500_00, 500_00, 0, 0, 2),
        ],
        "platform",
    )
    assert (report["written_off"], report["recovered"], report["write_offs"]) == (
        3_500_00,
        1_000_01,
        3,
    )
    assert report["by_funder"]["bank-7"] == {
        "written_off": 2_100_00,
        "recovered": 700_01,
        "net_charge_off": 1_399_99,
        "recovery_rate": "0.333338",
    }
    assert report["by_funder"]["platform"]["written_off"] == 1_400_00
    # Nothing at all still shows the platform, at zero and with no rate.
    assert charge_offs([], "platform")["by_funder"] == {
        "platform": {
            "written_off": 0,
            "recovered": 0,
            "net_charge_off": 0,
            "recovery_rate": None,
        }
    }
