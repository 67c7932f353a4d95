"""`tianping lending`, driven as a user would (Typer's CliRunner; SQLite in tmp_path).

The borrower (a verified person with a wallet and a bound card) is set up through the identity
and payments services on the same database, as `payments_support` does for the service tests;
every CLI invocation builds its services on one `ManualClock`, so business days are the test's.
The credit model is the platform scorecard the CLI really uses.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ledger_support import ManualClock
from lending_support import FixedScorer, rate_text
from payments_support import PaymentsWorld, make_world
from tianping import bootstrap
from tianping.cli import common, lending_commands
from tianping.cli.common import format_amount
from tianping.cli.main import app
from tianping.config import load_settings
from tianping.lending.chart import PLATFORM
from tianping.lending.loan_book import ChargeOffGroup, charge_offs
from tianping.lending.model import Application
from tianping.lending.service import LendingService
from tianping.payments.model import local_date
from tianping.rules.config import cached_rulebook
from tianping.rules.service import RulesService

NS = 1_000_000_000
DAY_S = 86_400
# 2027-03-01 02:00 UTC, 10:00 in China.
START = int(dt.datetime(2027, 3, 1, 2, tzinfo=dt.UTC).timestamp()) * NS

pytestmark = pytest.mark.usefixtures("clean_env")


@dataclass
class Desk:
    """A database with one funded borrower, and the CLI on it."""

    data_dir: Path
    clock: ManualClock
    borrower: str
    card: str = ""

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["--data-dir", str(self.data_dir), "lending", *args])

    def today(self) -> dt.date:
        return local_date(self.clock())


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _open_desk(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    funds: int,
    prepare: Callable[[PaymentsWorld], None] | None = None,
) -> Desk:
    """A fresh database with one verified borrower (wallet, bound card) topped up by `funds`,
    and whatever `prepare` makes of it through the services."""
    clock = ManualClock(START)
    monkeypatch.setattr(common, "build_services", partial(bootstrap.build_services, clock=clock))
    data_dir = tmp_path / "data"
    assert CliRunner().invoke(app, ["--data-dir", str(data_dir), "db", "init"]).exit_code == 0
    services = bootstrap.build_services(load_settings(data_dir=data_dir), clock=clock)
    try:
        world = make_world(services.ledger, clock)
        borrower = world.person("alice")
        if funds:
            world.fund("alice", funds)
        if prepare is not None:
            prepare(world)
    finally:
        services.close()
    return Desk(data_dir, clock, borrower, world.cards["alice"])


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    yield _open_desk(tmp_path, monkeypatch, funds=1_000_00)


def _apply(desk: Desk, application_id: str, *extra: str) -> Result:
    return desk(
        "apply", application_id, "--party", desk.borrower, "--amount", "5000",
        "--term", "12", "--income", "150000", *extra,
    )  # fmt: skip


def test_apply_accept_accrue_repay_classify_and_report(desk: Desk) -> None:
    offer = as_json(_apply(desk, "app-1", "--json"))
    assert offer["outcome"] == "approved", offer
    assert offer["apr_bps"] >= offer["rate_bps"] > 0
    # The same command again is a replay of the recorded decision, not a second one.
    again = as_json(_apply(desk, "app-1", "--json"))
    assert again["replayed"] and again["decision_id"] == offer["decision_id"]
    shown = desk("application", "app-1")
    assert shown.exit_code == 0 and "approved" in shown.stdout and "apr" in shown.stdout

    loan = as_json(desk("accept", "app-1", "--loan", "loan-1", "--json"))
    assert (loan["principal"], loan["outstanding_principal"]) == (5_000_00, 5_000_00)
    table = desk("loan", "loan-1")
    assert table.exit_code == 0 and "5000.00" in table.stdout

    tomorrow = desk.today() + dt.timedelta(days=1)
    accrued = as_json(desk("accrue", tomorrow.isoformat(), "--json"))
    assert [(report["day"], report["loans"]) for report in accrued] == [(tomorrow.isoformat(), 1)]
    interest = accrued[0]["interest"]
    assert interest == 5_000_00 * loan["rate_bps"] // 3_650_000
    # A catch-up over days already run replays them and accrues only the new day.
    later = tomorrow + dt.timedelta(days=1)
    caught_up = as_json(
        desk("accrue", later.isoformat(), "--since", desk.today().isoformat(), "--json")
    )
    assert [report["replayed"] for report in caught_up] == [True, False]

    repaid = as_json(desk("repay", "loan-1", "pay-1", "--amount", "100.00", "--json"))
    paid_interest = interest + caught_up[1]["interest"]
    assert repaid["allocation"]["interest"] == paid_interest
    assert repaid["allocation"]["principal"] == 100_00 - paid_interest
    assert repaid["status"] == "active"
    shown_repayment = desk("repay", "loan-1", "pay-1", "--amount", "100.00")
    assert shown_repayment.exit_code == 0 and "overpayment" in shown_repayment.stdout

    classified = as_json(desk("classify", later.isoformat(), "--json"))
    assert classified == {"day": later.isoformat(), "loans": 1}
    book = as_json(desk("portfolio", "--json"))
    assert book["by_tier"]["normal"]["loans"] == 1
    assert book["by_tier"]["normal"]["exposure"] > 0
    chart = desk("portfolio")
    assert chart.exit_code == 0
    assert "normal" in chart.stdout and "Expected-loss provision by stage" in chart.stdout


def test_a_ledger_disagreement_on_credit_losses_is_printed_per_funder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The table the portfolio prints when the recoveries accounts do not hold what the
    sub-ledger recovered: every funder's four figures, under a heading that says so."""
    section = charge_offs([ChargeOffGroup("bank-7", 1_000_00, 300_00, 100_00, 30_00, 1)], PLATFORM)
    ledger = {"credit_losses": 1_000_00, "sub_ledger_written_off": 1_000_00}
    losses = {
        "loans": section,
        "credit_lines": charge_offs([], PLATFORM),
        "total": section,
        "ledger": {**ledger, "recoveries": 90_00, "sub_ledger_recovered": 100_00},
        "ledger_by_funder": {
            "bank-7": {
                "credit_losses": 700_00,
                "sub_ledger_written_off": 700_00,
                "recoveries": 60_00,
                "sub_ledger_recovered": 70_00,
            },
        },
        "ledger_agrees": False,
        "window": None,
    }
    lending_commands._show_credit_losses(losses, "CNY")
    out = capsys.readouterr().out
    assert "LEDGER DISAGREES" in out and "agree with the sub-ledger" not in out
    check = out[out.index("LEDGER DISAGREES") :]
    bank_row = next(row for row in check.splitlines() if "│ bank-7" in row)
    assert [column.strip() for column in bank_row.split("│")[1:-1]] == [
        "bank-7",
        "700.00",
        "700.00",
        "60.00",
        "70.00",
    ]


def test_a_declined_application_shows_its_reasons_and_exits_zero(desk: Desk) -> None:
    """A student is refused by the rule, not the model; the answer is printed, not an error."""
    declined = as_json(_apply(desk, "app-student", "--student", "--json"))
    assert declined["outcome"] == "declined"
    assert "cn.lending.student_microloan_ban" in declined["rule_ids"]
    assert declined["review_path"]
    shown = _apply(desk, "app-student", "--student")
    assert shown.exit_code == 0 and "declined" in shown.stdout


def test_refusals_are_one_line_with_exit_codes(desk: Desk) -> None:
    assert "loan_not_found" in refused(desk("loan", "no-such-loan"), 3)
    assert "loan_not_found" in refused(desk("repay", "no-such-loan", "p", "--amount", "1"), 3)
    assert "application_not_found" in refused(desk("accept", "nope", "--loan", "l"), 3)
    # Amounts are decimal text; a negative or malformed one is refused before any service call.
    assert refused(_apply(desk, "app-x", "--amount", "-5"), 2)
    declined = refused(desk("accrue", desk.today().isoformat(), "--since", "2020-01-01"), 2)
    assert "--since" in declined
    # A day that is not a date is a usage error (Typer's message, exit 2).
    assert desk("classify", "yesterday").exit_code == 2


def test_payoff_closes_the_loan_the_day_it_is_quoted(desk: Desk) -> None:
    as_json(_apply(desk, "app-p", "--json"))
    as_json(desk("accept", "app-p", "--loan", "loan-p", "--json"))
    desk.clock.advance(10 * DAY_S)
    quote = as_json(desk("payoff", "loan-p", "--json"))
    assert quote["principal"] == 5_000_00 and quote["interest"] > 0
    assert quote["total"] == quote["principal"] + quote["interest"] + quote["penalty_interest"]
    shown = desk("payoff", "loan-p")
    assert shown.exit_code == 0 and "Payoff of loan-p" in shown.stdout
    # The wallet holds the principal and the first top-up: enough to settle.
    total = f"{quote['total'] // 100}.{quote['total'] % 100:02d}"
    paid = as_json(desk("repay", "loan-p", "pay-off", "--amount", total, "--json"))
    assert (paid["status"], paid["overpayment"]) == ("repaid", 0)
    assert "loan_not_active" in refused(desk("payoff", "loan-p"), 2)


def test_a_loan_never_repaid_is_classified_written_off_and_recovers(desk: Desk) -> None:
    as_json(_apply(desk, "app-w", "--json"))
    as_json(desk("accept", "app-w", "--loan", "loan-w", "--json"))
    too_early = desk.today() + dt.timedelta(days=40)
    assert "write_off_not_allowed" in refused(
        desk("write-off", "loan-w", "wo-1", "--on", too_early.isoformat(), "--reason", "r"), 2
    )
    # The first instalment falls due a month in; seven months on the loan is past the
    # write-off threshold (181 days past due) and in a worse class.
    late = desk.today() + dt.timedelta(days=30 + 200)
    as_json(desk("classify", late.isoformat(), "--json"))
    assert as_json(desk("loan", "loan-w", "--json"))["days_past_due"] >= 181
    written = as_json(
        desk("write-off", "loan-w", "wo-1", "--on", late.isoformat(), "--reason",
             "unreachable for 200 days", "--json")
    )  # fmt: skip
    assert written["total"] >= 5_000_00
    assert as_json(desk("loan", "loan-w", "--json"))["status"] == "written_off"
    notices = as_json(desk("notices", desk.borrower, "--json"))
    assert {notice["notice"] for notice in notices} >= {"class_worsened", "written_off"}
    assert all(notice["review_path"].endswith("/review-requests") for notice in notices)
    table = desk("notices", desk.borrower)
    assert table.exit_code == 0 and "written_off" in table.stdout
    recovered = as_json(
        desk("recover", "loan-w", "rec-1", "--amount", "100.00", "--on", late.isoformat(), "--json")
    )
    assert recovered["recovered"] == 100_00
    assert recovered["still_written_off"] == written["total"] - 100_00
    # The portfolio's credit losses: the platform funds the loan alone, so its row is the
    # loans' row; nothing was lost on lines, whose rate is undefined.
    losses = as_json(desk("portfolio", "--json"))["credit_losses"]
    lost = written["total"]
    assert losses["loans"]["by_funder"] == {
        "platform": {
            "written_off": lost,
            "recovered": 100_00,
            "net_charge_off": lost - 100_00,
            "recovery_rate": rate_text(100_00, lost),
        }
    }
    assert losses["credit_lines"]["recovery_rate"] is None and losses["ledger_agrees"]
    chart = desk("portfolio")
    assert chart.exit_code == 0, chart.output
    assert "Credit losses (CNY) to date" in chart.stdout
    percent = f"{Decimal(rate_text(100_00, lost)) * 100:.4f} %"
    loans_row = next(row for row in chart.stdout.splitlines() if "│ loans" in row)
    for text in ("all", format_amount(lost, "CNY"), "100.00", percent):
        assert text in loans_row, (text, loans_row)
    assert "agree with the sub-ledger for every funder" in chart.stdout
    # A window: the day of the write-off and the recovery, then the day after (nothing).
    day = late.isoformat()
    windowed = desk("portfolio", "--since", day, "--until", day)
    assert f"Credit losses (CNY) from {day} to {day}" in windowed.stdout
    after = (late + dt.timedelta(days=1)).isoformat()
    empty = as_json(desk("portfolio", "--since", after, "--json"))["credit_losses"]["window"]
    assert (empty["total"]["written_off"], empty["total"]["recovered"]) == (0, 0)
    backwards = desk("portfolio", "--since", after, "--until", day)
    assert "window_invalid" in refused(backwards, 2)
    # A bank that registered no figures has no concentration report (exit 3: not found).
    assert "partner_not_registered" in refused(desk("concentration", "no-such-bank"), 3)


def test_a_credit_line_needs_the_reporting_consent_then_bills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """L5 through the CLI: no line without the consent to credit-bureau reporting; with it, the
    line opens with the approved limit and the statement run bills it."""
    keys = CliRunner().invoke(app, ["identity", "keys", "generate"])
    assert keys.exit_code == 0, keys.output
    for line in shlex.split(keys.stdout, posix=True):
        name, _, value = line.partition("=")
        monkeypatch.setenv(name, value)
    desk = _open_desk(tmp_path, monkeypatch, funds=0)
    data_dir, borrower = desk.data_dir, desk.borrower

    def identity(*args: str) -> Result:
        return CliRunner().invoke(app, ["--data-dir", str(data_dir), "identity", *args])

    offer = as_json(_apply(desk, "app-line", "--product", "credit_line", "--json"))
    assert offer["outcome"] == "approved", offer
    assert "credit_reporting_consent_required" in refused(
        desk("line", "open", "app-line", "--line", "line-1", "--statement-day", "5"), 2
    )
    as_json(
        identity(
            "consent", "publish", "bureau", "--version", "1",
            "--purpose", "credit_bureau_reporting", "--field", "name", "--language", "en",
            "--body", "I agree that my credit line is reported to the credit reference centre.",
        )
    )  # fmt: skip
    assert identity("consent", "grant", borrower, "--text", "bureau").exit_code == 0
    line = as_json(
        desk("line", "open", "app-line", "--line", "line-1", "--statement-day", "5", "--json")
    )
    assert line["credit_limit"] == 5_000_00 and line["status"] == "active"
    assert as_json(desk("line", "show", "line-1", "--json"))["line_id"] == "line-1"
    # The first statement day after opening: the run bills the line (nothing drawn yet).
    run = as_json(desk("line", "statement-run", "2027-03-05", "--json"))
    assert run == {"day": "2027-03-05", "issued": 1, "frozen_for_consent": 0}
    statements = as_json(desk("line", "statements", "line-1", "--json"))
    assert [row["statement_date"] for row in statements] == ["2027-03-05"]
    assert statements[0]["new_balance"] == 0
    shown = desk("line", "statement", "line-1", "2027-03-05")
    assert shown.exit_code == 0, shown.output
    assert statements[0]["due_date"] in shown.stdout
    # The operator freezes and unfreezes the line; the classification finds nothing past due;
    # the holder, owing nothing, closes it. The transactions page is empty and has no next page.
    assert as_json(desk("line", "freeze", "line-1", "--json"))["status"] == "frozen"
    assert as_json(desk("line", "unfreeze", "line-1", "--json"))["status"] == "active"
    classified = as_json(desk("line", "classify", "2027-03-20", "--json"))
    assert (classified["lines"], classified["past_due"]) == (1, 0)
    assert as_json(desk("line", "transactions", "line-1", "--json")) == {
        "transactions": [],
        "next": None,
    }
    assert as_json(desk("line", "close", "line-1", "--json"))["status"] == "closed"
    # A closed line is not written off, nor does it take a recovery.
    closed = desk("line", "write-off", "line-1", "wo-1", "--on", "2027-03-20", "--reason", "x")
    assert "credit_line_not_active" in refused(closed, 2)
    recovery = desk("line", "recover", "line-1", "rec-1", "--amount", "1.00", "--on", "2027-03-20")
    assert "line_not_written_off" in refused(recovery, 2)


WRITTEN_OFF_ON = dt.date(2027, 9, 20)


def _written_off_line(world: PaymentsWorld) -> None:
    """A line with a 1,000.00 purchase never repaid, written off on `WRITTEN_OFF_ON` (over 181
    days after its first bill's due date); the holder's wallet then holds 2,000.00. Built
    through the services with the bureau-reporting consent taken as live."""
    live = SimpleNamespace(available=True, missing=())
    lending = LendingService(
        world.ledger,
        world.clock,
        rules=RulesService(world.ledger, cached_rulebook("cn")),
        scorer=FixedScorer(),
        consent=SimpleNamespace(service_available=lambda *_, **__: live),
    )
    world.service.credit_line = lending
    world.merchant("noodles")
    alice = world.people["alice"]
    offer = lending.apply(
        Application("app-line", alice, 5_000_00, 12, 150_000_00, product="credit_line")
    )
    assert offer.outcome == "approved", offer
    lending.open_line("app-line", "line-1", 5)
    assert world.pay(
        "pay-1", "alice", "noodles", 1_000_00, funding_source="credit_line"
    ).status == ("completed")
    for day in (dt.date(2027, 3, 5), WRITTEN_OFF_ON):
        while local_date(world.clock()) < day:
            world.clock.advance(nanoseconds=DAY_S * NS)
        lending.issue_statements(day)
    lending.classify_lines(WRITTEN_OFF_ON)
    lending.write_off_line("line-1", "wo-1", WRITTEN_OFF_ON, "uncollectable")
    world.fund("alice", 2_000_00)


def test_a_written_off_line_recovers_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = _open_desk(tmp_path, monkeypatch, funds=0, prepare=_written_off_line)
    on = WRITTEN_OFF_ON.isoformat()
    owed = as_json(desk("line", "show", "line-1", "--json"))["owed"]
    booked = as_json(
        desk("line", "recover", "line-1", "rec-1", "--amount", "300.00", "--on", on, "--json")
    )
    assert (booked["recovered"], booked["still_written_off"]) == (300_00, owed - 300_00)
    assert sum(booked["by_funder"].values()) == 300_00
    shown = desk("line", "recover", "line-1", "rec-2", "--amount", "50", "--on", on)
    assert shown.exit_code == 0 and "Recovery rec-2 of line-1" in shown.stdout
    page = as_json(desk("line", "transactions", "line-1", "--json"))["transactions"]
    assert [(t["kind"], t["amount"]) for t in page[-2:]] == [
        ("recovery", 300_00),
        ("recovery", 50_00),
    ]
    # Refusals are one line: a known id with another amount, no such line (exit 3), a bad
    # amount or date.
    conflict = desk("line", "recover", "line-1", "rec-1", "--amount", "1.00", "--on", on)
    assert "recovery_exists_with_different_fields" in refused(conflict, 2)
    missing = desk("line", "recover", "line-x", "rec-9", "--amount", "1.00", "--on", on)
    assert "credit_line_not_found" in refused(missing, 3)
    for amount, day in (("-1", on), ("ten", on), ("0.001", on), ("1.00", "2027-13-01")):
        refused(desk("line", "recover", "line-1", "rec-9", "--amount", amount, "--on", day), 2)


def test_equal_principal_through_the_cli_and_the_schedule(desk: Desk) -> None:
    offer = as_json(_apply(desk, "app-ep", "--method", "equal_principal", "--json"))
    assert (offer["outcome"], offer["repayment_method"]) == ("approved", "equal_principal")
    as_json(desk("accept", "app-ep", "--loan", "loan-ep", "--json"))
    plan = as_json(desk("schedule", "loan-ep", "--json"))
    parts = [row["principal"] for row in plan["instalments"]]
    assert sum(parts) == 5_000_00 and len(set(parts[:-1])) == 1
    shown = desk("schedule", "loan-ep")
    assert shown.exit_code == 0 and "equal_principal" in shown.stdout
    assert "repayment_method_invalid" in refused(_apply(desk, "app-bad", "--method", "bullet"), 2)


def test_accept_pays_the_loan_on_to_the_borrowers_card(desk: Desk) -> None:
    as_json(_apply(desk, "app-c", "--json"))
    taken = as_json(desk("accept", "app-c", "--loan", "loan-c", "--to-card", desk.card, "--json"))
    assert taken["loan"]["principal"] == taken["card_payout"]["amount"] == 5_000_00
    assert taken["card_payout"]["state"] == "submitted"
    # The loan is paid on once: the same acceptance naming another card is refused.
    elsewhere = desk("accept", "app-c", "--loan", "loan-c", "--to-card", "cd" * 32)
    assert "request_conflict" in refused(elsewhere, 2)
