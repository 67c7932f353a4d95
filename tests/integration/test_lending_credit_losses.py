"""Credit losses in the portfolio, on both backends: a co-lent loan and a co-funded credit line
written off and partly recovered give the gross amounts written off and recovered, the net
charge-offs and the recovery rates of loans, of lines and of both, per funder, to the minor
unit; the sub-ledger agrees with each funder's credit-losses and recoveries accounts, a
sub-ledger row the ledger does not hold shows as a disagreement, and a date window keeps only
what was dated in it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from ledger_support import ManualClock
from lending_support import FixedScorer
from payments_support import PaymentsWorld, make_world
from tianping.ledger.service import Ledger
from tianping.lending import chart
from tianping.lending.chart import PLATFORM, LendingAccount
from tianping.lending.model import Application
from tianping.lending.service import LendingRefusal, LendingService
from tianping.lending.store import LendingStore
from tianping.payments.model import PaymentCommand, local_date
from tianping.rules.config import cached_rulebook
from tianping.rules.service import RulesService

DAY_NS = 86_400 * 1_000_000_000
BANK = "bank-7"
LINE_WRITTEN_OFF_ON = dt.date(2027, 7, 31)
LINE_RECOVERED_ON = dt.date(2027, 8, 3)


@dataclass
class Check:
    available: bool
    missing: tuple[str, ...]


class Consents:
    """Every consent a decision and a line need is live."""

    def service_available(self, party_id: str, service: str, uow: Any = None) -> Check:
        return Check(True, ())


@dataclass
class Book:
    lending: LendingService
    loan_written_off_on: dt.date
    loan_recovered_on: dt.date


@pytest.fixture
def world(ledger: Ledger, clock: ManualClock) -> PaymentsWorld:
    world = make_world(ledger, clock)
    world.person("alice")
    world.merchant("noodles")
    return world


def _to(world: PaymentsWorld, day: dt.date) -> None:
    while local_date(world.clock()) < day:
        world.clock.advance(nanoseconds=DAY_NS)


def _apply(
    lending: LendingService, world: PaymentsWorld, application_id: str, **extra: Any
) -> None:
    fields: dict[str, Any] = {
        "application_id": application_id,
        "party_id": world.people["alice"],
        "amount": 3_000_00,
        "term_months": 6,
        "annual_income": 120_000_00,
        "partner_bank_id": BANK,
    }
    fields.update(extra)
    assert lending.apply(Application(**fields)).outcome == "approved"


def _book(world: PaymentsWorld) -> Book:
    """A co-funded line (the bank 70 %) with a 1,000.00 purchase never repaid, written off at
    183 days past due and recovered by 300.00; then a co-lent loan of 3,000.00 (the bank 70 %)
    written off in the loss class and recovered by 1,000.01 from the wallet it was paid into."""
    lending = LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=FixedScorer(),
        consent=Consents(),
    )
    world.service.credit_line = lending
    _apply(lending, world, "app-line", amount=10_000_00, term_months=12, product="credit_line")
    lending.open_line("app-line", "line-1", 20)
    command = PaymentCommand(
        "pay-1",
        world.people["alice"],
        world.merchants["noodles"],
        1_000_00,
        "CNY",
        kind="merchant",
        funding_source="credit_line",
    )
    (paid,) = world.service.pay([command])
    assert paid.status == "completed"
    _to(world, dt.date(2027, 1, 20))
    lending.issue_statements(dt.date(2027, 1, 20))
    _to(world, LINE_WRITTEN_OFF_ON)
    lending.issue_statements(LINE_WRITTEN_OFF_ON)
    lending.classify_lines(LINE_WRITTEN_OFF_ON)
    lending.write_off_line("line-1", "wo-line", LINE_WRITTEN_OFF_ON, "uncollectable")

    _apply(lending, world, "app-loan")
    loan = lending.accept("app-loan", "loan-1")
    assert loan.next_due_on is not None
    first_due = dt.date.fromisoformat(loan.next_due_on)
    lending.classify(first_due + dt.timedelta(days=400))
    written_on = first_due + dt.timedelta(days=400)
    lending.write_off("loan-1", "wo-loan", written_on, "uncollectable")
    recovered_on = written_on + dt.timedelta(days=1)
    lending.record_recovery("loan-1", "rec-loan", 1_000_01, recovered_on)
    lending.record_line_recovery("line-1", "rec-line", 300_00, LINE_RECOVERED_ON)
    return Book(lending, written_on, recovered_on)


def _figures(written_off: int, recovered: int, rate: str | None) -> dict[str, Any]:
    return {
        "written_off": written_off,
        "recovered": recovered,
        "net_charge_off": written_off - recovered,
        "recovery_rate": rate,
    }


def _account(world: PaymentsWorld, kind: LendingAccount, funder: str) -> int:
    account = world.ledger.get_account(chart.account_id(kind, funder, "CNY"))
    return account.debits_posted - account.credits_posted


def test_losses_and_recoveries_per_product_and_funder_agree_with_the_ledger(
    world: PaymentsWorld,
) -> None:
    book = _book(world)
    line = book.lending.line("line-1")
    # The line was written off with its billed interest: 1,000.00 drawn (the bank's 700.00)
    # and 43.82 interest (the bank's 30.67, its recorded part); 300.00 came back, the interest
    # first, then 256.18 of principal, which takes the bank's part of the principal from
    # 700.00 to floor(743.82 x 70 %) = 520.67: the bank recovers 30.67 + 179.33 = 210.00.
    assert line.status == "written_off" and line.owed == 1_043_82 - 300_00
    losses = book.lending.portfolio()["credit_losses"]
    assert losses["loans"] == {
        **_figures(3_000_00, 1_000_01, "0.333337"),
        "write_offs": 1,
        "by_funder": {
            BANK: _figures(2_100_00, 700_01, "0.333338"),
            PLATFORM: _figures(900_00, 300_00, "0.333333"),
        },
    }
    assert losses["credit_lines"] == {
        **_figures(1_043_82, 300_00, "0.287406"),
        "write_offs": 1,
        "by_funder": {
            BANK: _figures(730_67, 210_00, "0.287407"),
            PLATFORM: _figures(313_15, 90_00, "0.287402"),
        },
    }
    assert losses["total"] == {
        **_figures(4_043_82, 1_300_01, "0.321481"),
        "write_offs": 2,
        "by_funder": {
            BANK: _figures(2_830_67, 910_01, "0.321482"),
            PLATFORM: _figures(1_213_15, 390_00, "0.321477"),
        },
    }
    # The ledger: credit losses a debit balance, recoveries a credit one, per funder.
    for funder, written_off, recovered in ((BANK, 2_830_67, 910_01), (PLATFORM, 1_213_15, 390_00)):
        assert _account(world, LendingAccount.CREDIT_LOSSES, funder) == written_off
        assert -_account(world, LendingAccount.RECOVERIES, funder) == recovered
        assert losses["ledger_by_funder"][funder] == {
            "credit_losses": written_off,
            "recoveries": recovered,
            "sub_ledger_written_off": written_off,
            "sub_ledger_recovered": recovered,
        }
    assert losses["ledger"] == {
        "credit_losses": 4_043_82,
        "recoveries": 1_300_01,
        "sub_ledger_written_off": 4_043_82,
        "sub_ledger_recovered": 1_300_01,
    }
    assert losses["ledger_agrees"] and losses["window"] is None
    # Another currency has none of it, and the platform is shown at zero.
    empty = book.lending.portfolio("USD")["credit_losses"]
    assert empty["total"] == {
        **_figures(0, 0, None),
        "write_offs": 0,
        "by_funder": {PLATFORM: _figures(0, 0, None)},
    }
    assert empty["ledger_agrees"]


def test_a_date_window_keeps_what_was_dated_in_it(world: PaymentsWorld) -> None:
    book = _book(world)
    portfolio = book.lending.portfolio
    # From the day after the line's write-off through its recovery: only that recovery.
    since = LINE_WRITTEN_OFF_ON + dt.timedelta(days=1)
    window = portfolio(since=since, until=LINE_RECOVERED_ON)["credit_losses"]["window"]
    assert (window["since"], window["until"]) == ("2027-08-01", "2027-08-03")
    assert window["loans"]["written_off"] == window["loans"]["recovered"] == 0
    assert window["credit_lines"] == {
        **_figures(0, 300_00, None),
        "write_offs": 0,
        "by_funder": {BANK: _figures(0, 210_00, None), PLATFORM: _figures(0, 90_00, None)},
    }
    # The loan's write-off day alone: the loan's write-off, nothing recovered yet.
    day = book.loan_written_off_on
    loans = portfolio(since=day, until=day)["credit_losses"]["window"]["loans"]
    assert (loans["written_off"], loans["recovered"], loans["write_offs"]) == (3_000_00, 0, 1)
    assert loans["recovery_rate"] == "0.000000"
    # Open at one end: from the loan's recovery on, the loan's recovery alone.
    later = portfolio(since=book.loan_recovered_on)["credit_losses"]["window"]
    assert (later["since"], later["until"]) == (book.loan_recovered_on.isoformat(), None)
    assert later["total"]["recovered"] == 1_000_01 and later["total"]["written_off"] == 0
    # The to-date figures are the same whatever the window.
    assert portfolio(since=day)["credit_losses"]["total"]["written_off"] == 4_043_82
    with pytest.raises(LendingRefusal) as backwards:
        portfolio(since=day, until=day - dt.timedelta(days=1))
    assert backwards.value.code == "window_invalid"


def test_a_recovery_the_ledger_does_not_hold_shows_as_a_disagreement(
    world: PaymentsWorld,
) -> None:
    book = _book(world)
    # A fault: a recovery recorded in the sub-ledger alone, with nothing posted to the ledger.
    with LendingStore.writing(world.ledger) as (_, store):
        store.insert_event(
            "loan-1",
            "recovery/ghost",
            "recovery",
            0,
            {"on": book.loan_recovered_on.isoformat(), "recovered": 10_00, "by_funder": {}},
        )
    losses = book.lending.portfolio()["credit_losses"]
    assert not losses["ledger_agrees"]
    # The ghost has no platform part, so the sub-ledger gives it to the bank.
    assert losses["ledger_by_funder"][BANK]["sub_ledger_recovered"] == 910_01 + 10_00
    assert losses["ledger_by_funder"][BANK]["recoveries"] == 910_01
    assert losses["ledger"]["sub_ledger_recovered"] == losses["ledger"]["recoveries"] + 10_00


def test_recoveries_are_movements_out_of_the_borrowers_wallet(world: PaymentsWorld) -> None:
    """What the AML large-value reports read of the recoveries: each one out of the wallet it
    was taken from, by the amount recovered, once."""
    book = _book(world)
    movements = book.lending.wallet_movements(0, 2**62, 1_000)
    recoveries = sorted(
        (m.flow, m.amount, m.party_id) for m in movements if m.flow.endswith("recovery")
    )
    alice = world.people["alice"]
    assert recoveries == [("line_recovery", 300_00, alice), ("loan_recovery", 1_000_01, alice)]
