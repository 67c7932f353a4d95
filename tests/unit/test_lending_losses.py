"""Write-off and recovery, pure (`lending.losses`): the funders' positions of a loan (a share)
and of a line (a recorded part), the write-off's parts and ledger transfers in each product's
order, a recovery's parts and transfers, the refusals, and the stored documents read back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from tianping.ledger.model import TransferFlags
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount, LendingCode
from tianping.lending.losses import (
    LINE,
    LOAN,
    Held,
    Receivable,
    bank_of,
    check_recovered,
    check_recovery_amount,
    check_same_request,
    check_write_off_allowed,
    check_write_off_date,
    funder_cash,
    funder_split,
    linked,
    other_fields,
    plan_write_off,
    recovery_document,
    recovery_fields,
    recovery_parts,
    recovery_request,
    recovery_transfers,
    write_off_document,
    write_off_fields,
    write_off_request,
    write_off_transfers,
)
from tianping.lending.model import LendingRefusal
from tianping.lending.servicing import LoanBalances, write_off
from tianping.payments import chart as payments_chart

BANK = "bank-7"
LATE_BANK = "zbank-9"  # sorts after "platform"
DAY = dt.date(2028, 10, 4)


def _loan_receivables(principal: int, interest: int, penalty: int) -> tuple[Receivable, ...]:
    return (
        Receivable("principal", LendingAccount.LOAN_RECEIVABLE, (Held.by_share(principal, 7_000),)),
        Receivable(
            "interest",
            LendingAccount.INTEREST_RECEIVABLE,
            (Held.by_share(interest, 7_000), Held.by_share(penalty, 7_000)),
        ),
    )


def test_a_loan_bank_holds_its_share_and_a_line_bank_its_recorded_part() -> None:
    assert Held.by_share(1_001, 7_000).position == 700  # floor(700.7)
    assert Held.by_share(1_001, 0).position == 0
    # A line's part comes from largest-remainder splits: any part of the balance, exactly.
    assert Held.recorded(1_001, 701).position == 701
    assert Held.recorded(0, 0).position == 0
    # A flow takes the change of the position: the same fraction of the recorded part.
    assert Held.by_share(1_001, 7_000).bank_change(1) == 700
    assert Held.recorded(1_000, 701).bank_change(500) == 701 - 350  # floor(500 x 0.701)
    assert Held.recorded(1_000, 701).bank_change(1_000) == 0


def test_the_bank_is_the_partner_with_a_share() -> None:
    assert bank_of(BANK, 7_000) == BANK
    assert bank_of(PLATFORM, 0) is None
    assert bank_of(BANK, 0) is None
    assert funder_split(BANK, 3, 10) == {BANK: 3, PLATFORM: 7}
    assert funder_split(None, 0, 10) == {PLATFORM: 10}
    assert list(funder_split(LATE_BANK, 0, 0)) == [LATE_BANK, PLATFORM]  # the bank first


def test_a_loan_write_off_takes_each_funder_position_in_each_receivable() -> None:
    plan = plan_write_off(LOAN, BANK, _loan_receivables(300_000, 69, 11))
    # Interest and penalty interest share a receivable; each is split by its own position.
    assert plan.by_funder == {
        BANK: {"principal": 210_000, "interest": 48 + 7},
        PLATFORM: {"principal": 90_000, "interest": 21 + 4},
    }
    transfers = write_off_transfers(LOAN, plan, "loan-1/wo-1", "CNY")
    assert [(t.amount, t.code) for t in transfers] == [
        (210_000, LendingCode.WRITE_OFF),
        (90_000, LendingCode.WRITE_OFF),
        (55, LendingCode.WRITE_OFF),
        (25, LendingCode.WRITE_OFF),
    ]
    first = transfers[0]
    assert first.id == chart.transfer_id("write-off", f"loan-1/wo-1/principal/{BANK}")
    assert first.debit_account_id == chart.account_id(LendingAccount.CREDIT_LOSSES, BANK, "CNY")
    assert first.credit_account_id == chart.account_id(LendingAccount.LOAN_RECEIVABLE, BANK, "CNY")
    # One chain: every transfer linked to the next but the last.
    assert [t.flags for t in transfers] == [TransferFlags.LINKED] * 3 + [0]


def test_each_product_books_its_funders_in_its_own_order() -> None:
    # A loan books its funders by id (a bank sorting after "platform" comes second)...
    loan = plan_write_off(LOAN, LATE_BANK, _loan_receivables(1_000, 0, 0))
    assert [leg.funder for leg in loan.legs] == [PLATFORM, LATE_BANK] * 2
    assert list(loan.by_funder) == [PLATFORM, LATE_BANK]
    # ...a line the bank first.
    line = plan_write_off(
        LINE,
        LATE_BANK,
        (Receivable("principal", LendingAccount.LINE_RECEIVABLE, (Held.recorded(1_000, 700),)),),
    )
    assert [leg.funder for leg in line.legs] == [LATE_BANK, PLATFORM]


def test_a_loan_document_names_every_funder_and_a_line_only_those_that_lost() -> None:
    nothing_for_the_bank = _loan_receivables(1, 0, 0)  # 70 % of a fen rounds down to zero
    loan = plan_write_off(LOAN, BANK, nothing_for_the_bank)
    assert loan.by_funder == {
        BANK: {"principal": 0, "interest": 0},
        PLATFORM: {"principal": 1, "interest": 0},
    }
    assert [t.amount for t in write_off_transfers(LOAN, loan, "l/w", "CNY")] == [1]
    line = plan_write_off(
        LINE,
        BANK,
        (
            Receivable("principal", LendingAccount.LINE_RECEIVABLE, (Held.recorded(5, 0),)),
            Receivable("charges", LendingAccount.LINE_CHARGES_RECEIVABLE, (Held.recorded(0, 0),)),
        ),
    )
    assert line.by_funder == {PLATFORM: {"principal": 5, "charges": 0}}
    (only,) = write_off_transfers(LINE, line, "line-1/wo-1", "CNY")
    assert only.id == chart.transfer_id("line-write-off", f"line-1/wo-1/principal/{PLATFORM}")
    assert (only.code, only.flags) == (LendingCode.LINE_WRITE_OFF, 0)


def test_the_platform_alone_writes_off_everything() -> None:
    plan = plan_write_off(LOAN, None, _loan_receivables(1_000, 10, 0))
    assert plan.by_funder == {PLATFORM: {"principal": 1_000, "interest": 10}}
    assert (
        write_off_transfers(
            LOAN, plan_write_off(LOAN, None, _loan_receivables(0, 0, 0)), "l/w", "CNY"
        )
        == []
    )


def test_a_recovery_splits_by_the_change_of_each_position() -> None:
    before = [Held.by_share(0, 7_000), Held.by_share(69, 7_000), Held.by_share(300_000, 7_000)]
    # 1,000.01 pays the interest and 999.32 of principal.
    parts = recovery_parts(BANK, before, [0, 0, 300_000 - 99_932])
    assert parts == {BANK: 48 + (210_000 - 140_047), PLATFORM: 100_001 - 48 - 69_953}
    assert sum(parts.values()) == 100_001
    assert recovery_parts(None, before, [0, 0, 0]) == {PLATFORM: 300_069}


def test_recovery_transfers_pay_each_funder_recoveries_and_release_its_cash() -> None:
    source = payments_chart.wallet_account("pty-1", "CNY")
    transfers = recovery_transfers(
        LINE, {LATE_BANK: 70, PLATFORM: 30}, source, "line-1/recovery/r-1", "CNY"
    )
    assert [
        (t.id, t.debit_account_id, t.credit_account_id, t.amount, t.code) for t in transfers
    ] == [
        (
            chart.transfer_id("line-recovery", f"line-1/recovery/r-1/{LATE_BANK}"),
            source,
            chart.account_id(LendingAccount.RECOVERIES, LATE_BANK, "CNY"),
            70,
            LendingCode.LINE_RECOVERY,
        ),
        (
            chart.transfer_id("line-recovery-cash", f"line-1/recovery/r-1/{LATE_BANK}"),
            payments_chart.clearing_account(LATE_BANK, "CNY"),
            payments_chart.reserve_account("CNY"),
            70,
            LendingCode.LINE_RECOVERY_FUNDING,
        ),
        (
            chart.transfer_id("line-recovery", f"line-1/recovery/r-1/{PLATFORM}"),
            source,
            chart.account_id(LendingAccount.RECOVERIES, PLATFORM, "CNY"),
            30,
            LendingCode.LINE_RECOVERY,
        ),
        (
            chart.transfer_id("line-recovery-cash", f"line-1/recovery/r-1/{PLATFORM}"),
            payments_chart.operating_account("CNY"),
            payments_chart.reserve_account("CNY"),
            30,
            LendingCode.LINE_RECOVERY_FUNDING,
        ),
    ]
    # A loan books by funder id and skips a part of zero.
    loan = recovery_transfers(LOAN, {LATE_BANK: 0, PLATFORM: 5}, source, "loan-1/r-1", "CNY")
    assert [(t.id, t.code) for t in loan] == [
        (chart.transfer_id("recovery", f"loan-1/r-1/{PLATFORM}"), LendingCode.RECOVERY),
        (
            chart.transfer_id("recovery-cash", f"loan-1/r-1/{PLATFORM}"),
            LendingCode.RECOVERY_FUNDING,
        ),
    ]
    assert [t.flags for t in loan] == [TransferFlags.LINKED, 0]


def test_funder_cash_and_linked() -> None:
    assert funder_cash(PLATFORM, "CNY") == payments_chart.operating_account("CNY")
    assert funder_cash(BANK, "CNY") == payments_chart.clearing_account(BANK, "CNY")
    assert linked([]) == []


def _refused(code: str, call: Callable[..., object], *args: object) -> None:
    with pytest.raises(LendingRefusal) as refused:
        call(*args)
    assert refused.value.code == code


def test_the_refusals_both_products_give() -> None:
    _refused("write_off_not_allowed", check_write_off_allowed, "line", "doubtful", 180, 181)
    check_write_off_allowed("line", "doubtful", 181, 181)
    check_write_off_allowed("loan", "loss", 0, 181)
    with pytest.raises(LendingRefusal) as refused:
        check_write_off_allowed("loan", "normal", 3, 181)
    assert (
        refused.value.message
        == "a loan is written off in the loss class or after 181 days past due"
    )
    _refused("write_off_date_invalid", check_write_off_date, DAY, "2028-10-05", "opening")
    check_write_off_date(DAY, DAY.isoformat(), "opening")
    for amount in (0, -1, 10**10 + 1, 1.0, True):
        _refused("amount_invalid", check_recovery_amount, amount)
    check_recovery_amount(10**10)
    _refused("nothing_to_recover", check_recovered, 0)
    check_recovered(1)


def test_a_request_replays_only_with_the_same_fields() -> None:
    request = write_off_request(DAY, "uncollectable")
    assert request == {"on": "2028-10-04", "reason": "uncollectable"}
    stored = {**request, "total": 5, "by_funder": {}}
    check_same_request("write_off", request, stored)
    with pytest.raises(LendingRefusal) as refused:
        check_same_request("write_off", write_off_request(DAY, "other"), stored)
    assert (refused.value.code, refused.value.message) == (
        "write_off_exists_with_different_fields",
        "the write-off id was used with other fields",
    )
    _refused(
        "recovery_exists_with_different_fields",
        check_same_request,
        "recovery",
        recovery_request(DAY, 2),
        recovery_request(DAY, 1),
    )
    assert other_fields("recovery").message == "the recovery id was used with other fields"


def test_the_documents_read_back_as_outcome_fields() -> None:
    balances = LoanBalances(interest=69, principal=300_000)
    by_funder = {
        BANK: {"principal": 210_000, "interest": 48},
        PLATFORM: {"principal": 90_000, "interest": 21},
    }
    written = {"fees": 0, "penalty_interest": 0, "interest": 69, "principal": 300_000}
    loan = write_off_document(
        write_off_request(DAY, "x"), written, by_funder, charged=write_off(balances, 0)
    )
    assert loan == {
        "on": "2028-10-04",
        "reason": "x",
        "written_off": written,
        "total": 300_069,
        "allowance_used": 0,
        "loss_expense": 300_069,
        "by_funder": by_funder,
    }
    # A line's document has never carried the charge.
    line = write_off_document(
        write_off_request(DAY, "x"), {"principal": 5}, {PLATFORM: {"principal": 5}}
    )
    assert set(line) == {"on", "reason", "written_off", "total", "by_funder"}
    fields = write_off_fields(loan)
    assert fields == {k: loan[k] for k in ("on", "reason", "written_off", "total", "by_funder")}
    fields["by_funder"][BANK]["principal"] = 0  # the outcome shares nothing with the record
    assert loan["by_funder"][BANK]["principal"] == 210_000
    recovery = recovery_document(
        recovery_request(DAY, 120), {"fees": 0, "principal": 100}, 20, 5, {BANK: 70, PLATFORM: 30}
    )
    assert recovery == {
        "on": "2028-10-04",
        "amount": 120,
        "allocation": {"fees": 0, "principal": 100},
        "recovered": 100,
        "overpayment": 20,
        "still_written_off": 5,
        "by_funder": {BANK: 70, PLATFORM: 30},
    }
    assert recovery_fields(recovery) == recovery
