"""The daily accrual: set-based, exact to the fen over any number of days, split by funder."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from ledger_support import ManualClock
from tianping.ledger.service import Ledger
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount
from tianping.lending.service import LendingService
from tianping.lending.store import ACCRUAL_DENOMINATOR, LendingStore, LoanRow, new_loan

START = date(2026, 1, 1)


def _loan(index: int, principal: int, rate_bps: int, bank: str, share: int) -> LoanRow:
    return new_loan(
        loan_id=f"loan-{index}",
        application_id=f"app-{index}",
        party_id=f"pty_{index:026d}",
        currency="CNY",
        partner_bank_id=bank,
        bank_share_bps=share,
        rate_bps=rate_bps,
        principal=principal,
        disbursed_on=START.isoformat(),
        at=1,
    )


def test_accrual_is_exact_over_a_year_and_split_by_funder(
    ledger: Ledger, clock: ManualClock
) -> None:
    loans = [
        _loan(1, 10_000_00, 1_800, "bank-a", 7_000),
        _loan(2, 333_33, 2_400, "bank-a", 7_000),
        _loan(3, 1_00, 1_000, PLATFORM, 0),
    ]
    with ledger.write() as uow:
        LendingStore(uow.connection, uow.store.backend).insert_loans(loans)
    service = LendingService(ledger, clock)
    reports = service.accrue_through(START + timedelta(days=365), START)
    assert len(reports) == 365
    # Exact interest over a year of daily accrual: outstanding x rate / 10,000, floored once.
    expected = {
        loan.loan_id: loan.principal * loan.rate_bps * 365 // ACCRUAL_DENOMINATOR for loan in loans
    }
    with ledger.read() as store:
        rows = {
            loan.loan_id: LendingStore(store.connection, store.backend).loan(loan.loan_id)
            for loan in loans
        }
    assert {key: row.accrued_interest for key, row in rows.items() if row} == expected
    assert expected["loan-1"] == 1_800_00  # 18% of 10,000.00 over 365 days
    total = sum(report.interest for report in reports)
    assert total == sum(expected.values())
    # The general ledger moved exactly what the sub-ledger accrued, split 70/30 for bank-a.
    receivable = {
        funder: ledger.get_account(
            chart.account_id(LendingAccount.INTEREST_RECEIVABLE, funder, "CNY")
        ).debits_posted
        for funder in ("bank-a", PLATFORM)
    }
    assert sum(receivable.values()) == total
    bank_a = expected["loan-1"] + expected["loan-2"]
    assert abs(receivable["bank-a"] - bank_a * 7 // 10) <= 365
    # Accruing a day again changes nothing.
    again = service.accrue(START + timedelta(days=365))
    assert again.replayed and again.interest == reports[-1].interest


def test_only_active_loans_accrue(ledger: Ledger, clock: ManualClock) -> None:
    with ledger.write() as uow:
        LendingStore(uow.connection, uow.store.backend).insert_loans(
            [
                _loan(1, 1_000_00, 3_650, PLATFORM, 0),
                replace(_loan(2, 1_000_00, 3_650, PLATFORM, 0), status="repaid"),
            ]
        )
    report = LendingService(ledger, clock).accrue(START + timedelta(days=1))
    assert (report.loans, report.interest) == (1, 1_00)  # 1,000.00 x 36.5% / 365
