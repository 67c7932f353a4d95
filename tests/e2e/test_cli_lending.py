"""`tianping lending`, driven as a user would (Typer's CliRunner; SQLite in tmp_path).

The borrower (a verified person with a wallet and a bound card) is set up through the identity
and payments services on the same database, as `payments_support` does for the service tests;
every CLI invocation builds its services on one `ManualClock`, so business days are the test's.
The credit model is the platform scorecard the CLI really uses.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ledger_support import ManualClock
from payments_support import make_world
from tianping import bootstrap
from tianping.cli import common
from tianping.cli.main import app
from tianping.config import load_settings
from tianping.payments.model import local_date

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


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    clock = ManualClock(START)
    monkeypatch.setattr(common, "build_services", partial(bootstrap.build_services, clock=clock))
    data_dir = tmp_path / "data"
    assert CliRunner().invoke(app, ["--data-dir", str(data_dir), "db", "init"]).exit_code == 0
    services = bootstrap.build_services(load_settings(data_dir=data_dir), clock=clock)
    try:
        world = make_world(services.ledger, clock)
        borrower = world.person("alice")
        world.fund("alice", 1_000_00)
    finally:
        services.close()
    yield Desk(data_dir, clock, borrower)


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
