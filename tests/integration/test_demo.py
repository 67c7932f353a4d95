"""`tianping demo --no-serve` on a temporary data directory (SQLite).

The demo must finish with its ledger checked and its audit chain verified, start from a fresh
database on every run, and touch no file of the data directory but its own `demo.db`.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tianping.cli.demo import (
    ACCOUNT_CODES,
    DEMO_DATABASE,
    WALLETS_CNY,
    chart_of_accounts,
)
from tianping.cli.main import app
from tianping.db.writer_lock import WRITER_LOCK_SUFFIX

# No TIANPING_* settings from outside, and an empty working directory (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_env")


def run_demo(data_dir: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(data_dir), "--no-serve", *extra])
    return result.exit_code, result.stdout, result.stderr


def test_demo_runs_and_passes_check_and_verify(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    started = time.perf_counter()
    code, out, err = run_demo(data_dir)
    elapsed = time.perf_counter() - started
    assert code == 0, out + err
    assert re.search(r"ledger check: OK \(\d+ accounts,", out)
    assert "audit verify: OK (" in out
    assert "Balances of the main accounts" in out
    assert re.search(
        r"credit losses to date: .* CNY written off, .*; against the ledger: agrees", out
    )
    assert elapsed < 30, f"the demo took {elapsed:.1f} s"

    database = data_dir / DEMO_DATABASE
    connection = sqlite3.connect(database)
    try:
        transfers = connection.execute("SELECT COUNT(*) FROM transfers").fetchone()[0]
        # The ledger scenario's own hold (code 202); the payments day's rail holds that time out
        # expire too, under the payments chart's codes.
        expired = connection.execute(
            "SELECT COUNT(*) FROM pending_resolutions r JOIN transfers t ON t.id = r.pending_id "
            "WHERE r.kind = 'expired' AND t.code = 202"
        ).fetchone()[0]
        reversals = connection.execute(
            "SELECT COUNT(*) FROM transfers WHERE reverses_id IS NOT NULL"
        ).fetchone()[0]
        currencies = {row[0] for row in connection.execute("SELECT currency FROM transfers")}
    finally:
        connection.close()
    assert transfers >= 3000
    assert expired == 1
    assert reversals >= 1
    assert currencies == {"CNY", "USD"}

    # Every feature the demo walks through shows its result code.
    for expected in (
        "pending_transfer_expired",
        "linked_event_failed",
        "exists",
        "exceeds_credits",
        "reversal_exceeds_original",
    ):
        assert expected in out, expected


def test_demo_is_fresh_each_run_and_removes_only_its_own_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    keep = {name: f"do not touch {name}" for name in ("tianping.db", "notes.txt", "demo.db.bak")}
    for name, text in keep.items():
        (data_dir / name).write_text(text)
    (data_dir / DEMO_DATABASE).write_text("an old demo database that is not SQLite at all")

    first = run_demo(data_dir, "--transfers", "200", "--seed", "3")
    second = run_demo(data_dir, "--transfers", "200", "--seed", "3")
    assert first[0] == 0, first[1] + first[2]
    assert second[0] == 0, second[1] + second[2]
    for name, text in keep.items():
        assert (data_dir / name).read_text() == text

    # Same seed, fresh database: the same day again (balances do not depend on the clock), and
    # the same payments day, down to every payment's outcome and every merchant's settlement.
    def balances_table(out: str) -> str:
        return out[out.index("Balances of the main accounts") : out.index("ledger check:")]

    def payments_day(out: str) -> str:
        return out[out.index("Payments on ") : out.index("safeguarding:")]

    assert balances_table(first[1]) == balances_table(second[1])
    assert payments_day(first[1]) == payments_day(second[1])


def test_demo_refuses_an_explicit_database_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "--database-url",
            f"sqlite:///{tmp_path}/x.db",
            "demo",
            "--data-dir",
            str(tmp_path),
            "--no-serve",
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the demo always uses its own SQLite file")


def test_chart_of_accounts_is_documented() -> None:
    accounts = chart_of_accounts()
    assert len({account.id for account in accounts}) == len(accounts)
    assert {account.code for account in accounts} == set(ACCOUNT_CODES)
    assert all(account.currency in ("CNY", "USD") for account in accounts)
    assert WALLETS_CNY[0] in {account.id for account in accounts}


def test_demo_creates_its_population_through_the_identity_flows(tmp_path: Path) -> None:
    """Without configured keys the demo uses throwaway in-memory keys and writes no key file;
    its persons get account classes, consent and vault data, the minor a guardian, and the
    blocklisted person is refused a new account."""
    data_dir = tmp_path / "var"
    code, out, err = run_demo(data_dir, "--transfers", "10")
    assert code == 0, out + err
    assert "throwaway keys generated in memory" in out
    assert "Identity: demo population" in out
    for expected in (
        "Class I customer",
        "Class II customer",
        "Class III customer",
        "registered with guardian consent",
        "new_accounts_barred",
        "merchant",
    ):
        assert expected in out, expected
    # The database and its writers' lock file (`tianping.db.writer_lock`), nothing else: no
    # keys, no personal data outside the database.
    assert sorted(path.name for path in data_dir.iterdir()) == [
        DEMO_DATABASE,
        DEMO_DATABASE + WRITER_LOCK_SUFFIX,
    ]
    connection = sqlite3.connect(data_dir / DEMO_DATABASE)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        # Only wrapped data keys are stored; the master key never is.
        dump = "\n".join(connection.iterdump())
    finally:
        connection.close()
    assert any("part" in name for name in tables)
    assert "Demo Person A" not in dump


def test_demo_runs_a_day_of_payments(tmp_path: Path) -> None:
    """The payments day: Class II customers and merchants through identity, top-ups through the
    simulated clearing house, about 2,000 payments with declines, step-ups and resumes, refunds
    and withdrawals; merchants settled T+1, the clearing file reconciled (its one scripted late
    success is the only break) and client money safeguarded."""
    code, out, err = run_demo(tmp_path / "var", "--transfers", "10")
    assert code == 0, out + err
    summary = re.search(
        r"payments day (\d{4}-\d{2}-\d{2}): (\d+) payments, (\d+) completed .*?, "
        r"(\d+) step-ups \((\d+) resumed and completed\)",
        out,
    )
    assert summary is not None, out
    assert int(summary[2]) == 2_000
    assert 1_000 < int(summary[3]) < 2_000
    assert int(summary[4]) > 0 and 0 < int(summary[5]) <= int(summary[4])
    for expected in (
        "Declines by rule or reason",
        "rule cn.payments.qr_daily_cap",
        "insufficient_funds",
        "step-up asked by rule cn.payments.daily_cap_by_authentication",
        "risk challenge",
        "top_up: succeeded",
        "withdrawal: succeeded",
        "refund: refunded",
        f"Merchant settlement T+1 of {summary[1]}",
        "Noodle Bar",
    ):
        assert expected in out, expected
    assert re.search(r"missing_in_ledger\s*│\s*demo-withdrawal-late", out), out

    # Every payment of the day went through the HTTP API (in process): its P2P and QR routes
    # answered at least as many payments as the day counts, and the step-up resumes, refunds
    # and rails went through theirs.
    def requests_to(route: str) -> int:
        row = re.search(rf"│ POST /v1/payments{re.escape(route)}\s*│\s*(\d+) │", out)
        return 0 if row is None else int(row[1])

    assert requests_to("") + requests_to("/qr") >= int(summary[2]), out
    for route in ("/{payment_id}/resume", "/{payment_id}/refunds", "/rails"):
        assert requests_to(route) > 0, route
    http = re.search(r"HTTP API in process, .*?: (\d+) requests, (\d+) refused", out)
    assert http is not None and int(http[1]) > int(summary[2]), out
    assert "1 break(s) for an operator" in out
    safeguarding = re.search(
        r"safeguarding: in balance \(reserve ([\d.]+), client money ([\d.]+), difference 0.00\)",
        out,
    )
    assert safeguarding is not None and safeguarding[1] == safeguarding[2], out
    # The morning after: a third of the customers apply for credit; approved offers are paid
    # into the wallets (inside the safeguarding check above), a day accrues, a few repay.
    assert "Credit applications" in out
    assert "rule cn.lending.student_microloan_ban" in out
    book = re.search(r"loan book: (\d+) active loans, ([\d.]+) CNY outstanding", out)
    assert book is not None and int(book[1]) > 0 and float(book[2]) > 0, out
