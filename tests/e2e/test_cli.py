"""The `tianping` command line, driven as a user would (Typer's CliRunner, SQLite in tmp_path).

Every command must have a real `--help`; every failure must be one `error:` line on stderr with
exit code 2 (bad input), 1 (failed check or operation) or 3 (not found), never a traceback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from tianping.cli.main import app

Invoke = Callable[..., Result]

# Settings variables `serve` exports for its workers; the tests put them back afterwards.
_SERVE_ENV = (
    "TIANPING_DATABASE_URL",
    "TIANPING_DATA_DIR",
    "TIANPING_SQLITE_SYNCHRONOUS",
    "TIANPING_LOG_LEVEL",
    "TIANPING_CONFIG",
)


# No TIANPING_* settings from outside, and an empty working directory (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def invoke(data_dir: Path) -> Invoke:
    """Run `tianping --data-dir <tmp> ARGS...` in-process."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(data_dir), *args])

    return run


@pytest.fixture
def ledger_dir(invoke: Invoke, data_dir: Path) -> Path:
    """An initialised database with a reserve (1), two wallets (2, 3) and a top-up (100)."""
    assert invoke("db", "init").exit_code == 0
    for args in (
        (
            "--id",
            "1",
            "--currency",
            "CNY",
            "--code",
            "1010",
            "--flag",
            "credits_must_not_exceed_debits",
            "--flag",
            "history",
        ),
        (
            "--id",
            "2",
            "--currency",
            "CNY",
            "--code",
            "2010",
            "--flag",
            "debits_must_not_exceed_credits",
            "--flag",
            "history",
            "--owner",
            "cust:0001",
        ),
        (
            "--id",
            "3",
            "--currency",
            "CNY",
            "--code",
            "2010",
            "--flag",
            "debits_must_not_exceed_credits",
        ),
    ):
        result = invoke("ledger", "accounts", "create", *args)
        assert result.exit_code == 0, result.output
    result = invoke(
        "ledger",
        "transfers",
        "create",
        "--id",
        "100",
        "--debit",
        "1",
        "--credit",
        "2",
        "--amount",
        "1000.00",
        "--currency",
        "CNY",
        "--code",
        "101",
    )
    assert result.exit_code == 0, result.output
    return data_dir


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_error_line(result: Result, exit_code: int | None = None) -> str:
    """The failure is exactly one `error:` line on stderr, with no traceback anywhere."""
    assert result.exit_code != 0
    if exit_code is not None:
        assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# -- help ------------------------------------------------------------------------------------


def _command_paths(
    command: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, child in sorted(getattr(command, "commands", {}).items()):
        yield from _command_paths(child, (*path, name))


COMMAND_PATHS = [path for path, _ in _command_paths(get_command(app))]


def test_the_command_tree_is_complete() -> None:
    expected = {
        ("db", "init"),
        ("db", "migrate"),
        ("db", "status"),
        ("serve",),
        ("demo",),
        ("ledger", "accounts", "create"),
        ("ledger", "accounts", "show"),
        ("ledger", "accounts", "close"),
        ("ledger", "accounts", "reopen"),
        ("ledger", "transfers", "create"),
        ("ledger", "transfers", "import"),
        ("ledger", "transfers", "show"),
        ("ledger", "balances"),
        ("ledger", "history"),
        ("ledger", "statement"),
        ("ledger", "check"),
        ("ledger", "expire"),
        ("ledger", "codes"),
        ("audit", "verify"),
        ("audit", "head"),
    }
    assert expected <= set(COMMAND_PATHS)


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "tianping")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    assert (command.help or "").strip(), f"{path} has no description"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    assert (command.help or "").split("\n")[0].strip()[:30] in " ".join(result.stdout.split())


def test_no_command_prints_help_and_an_error(invoke: Invoke) -> None:
    result = invoke("ledger")
    assert "accounts" in result.stdout
    assert_one_error_line(result, 2)


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("tianping ")


# -- db --------------------------------------------------------------------------------------


def test_db_init_migrate_status(invoke: Invoke, data_dir: Path) -> None:
    before = invoke("db", "status")
    assert before.exit_code == 1
    assert "not initialised" in before.stdout
    assert not (data_dir / "tianping.db").exists()  # status never creates the database

    result = invoke("db", "init")
    assert result.exit_code == 0, result.output
    assert (data_dir / "tianping.db").is_file()
    assert "initialised" in result.stdout

    migrated = as_json(invoke("db", "migrate", "--json"))
    assert migrated["from_revision"] == migrated["to_revision"] is not None

    status = as_json(invoke("db", "status", "--json"))
    assert status["up_to_date"] is True
    assert status["current"] == status["head"]

    again = invoke("db", "init")
    assert again.exit_code == 0
    assert "already initialised" in again.stdout


def test_commands_refuse_an_uninitialised_database(invoke: Invoke, data_dir: Path) -> None:
    line = assert_one_error_line(invoke("ledger", "check"), 1)
    assert "tianping db init" in line
    assert not (data_dir / "tianping.db").exists()


def test_database_url_and_config_options(invoke: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/elsewhere/ledger.db"
    runner = CliRunner()
    assert runner.invoke(app, ["--database-url", url, "db", "init"]).exit_code == 0
    assert (tmp_path / "elsewhere" / "ledger.db").is_file()

    config = tmp_path / "tianping.toml"
    config.write_text(f'database_url = "{url}"\n')
    status = runner.invoke(app, ["--config", str(config), "db", "status", "--json"])
    assert json.loads(status.stdout)["up_to_date"] is True

    assert_one_error_line(
        runner.invoke(app, ["--config", str(tmp_path / "nope.toml"), "db", "status"]), 2
    )
    line = assert_one_error_line(
        runner.invoke(app, ["--database-url", "mysql://x/y", "db", "status"]), 2
    )
    assert "mysql" in line
    config.write_text('log_level = "LOUD"\n')
    assert_one_error_line(runner.invoke(app, ["--config", str(config), "db", "status"]), 2)


# -- accounts and transfers ------------------------------------------------------------------


def test_accounts_create_show_close_reopen(ledger_dir: Path, invoke: Invoke) -> None:
    shown = as_json(invoke("ledger", "accounts", "show", "2", "1", "--json"))
    assert [account["id"] for account in shown["accounts"]] == ["2", "1"]
    wallet = shown["accounts"][0]
    assert wallet["owner"] == "cust:0001"
    assert wallet["credits_posted"] == 100_000
    assert wallet["flags"] == ["debits_must_not_exceed_credits", "history"]

    table = invoke("ledger", "accounts", "show", "2")
    assert table.exit_code == 0
    assert "1000.00 Cr" in table.stdout

    replay = invoke(
        "ledger",
        "accounts",
        "create",
        "--id",
        "3",
        "--currency",
        "CNY",
        "--code",
        "2010",
        "--flag",
        "debits_must_not_exceed_credits",
    )
    assert replay.exit_code == 0
    assert "exists" in replay.stdout
    different = invoke(
        "ledger", "accounts", "create", "--id", "3", "--currency", "CNY", "--code", "2011"
    )
    assert "exists_with_different_fields" in assert_one_error_line(different, 2)

    assert as_json(invoke("ledger", "accounts", "close", "3", "--json"))["result"] == "ok"
    closed = invoke(
        "ledger",
        "transfers",
        "create",
        "--id",
        "101",
        "--debit",
        "2",
        "--credit",
        "3",
        "--amount",
        "1",
        "--currency",
        "CNY",
        "--code",
        "301",
    )
    assert "credit_account_closed" in assert_one_error_line(closed, 2)
    assert "already_closed" in assert_one_error_line(invoke("ledger", "accounts", "close", "3"))
    assert invoke("ledger", "accounts", "reopen", "3").exit_code == 0
    reopened = invoke(
        "ledger",
        "transfers",
        "create",
        "--id",
        "101",
        "--debit",
        "2",
        "--credit",
        "3",
        "--amount",
        "1",
        "--currency",
        "CNY",
        "--code",
        "301",
    )
    assert reopened.exit_code == 0, reopened.output


def test_transfers_two_phase_reversal_and_replay(ledger_dir: Path, invoke: Invoke) -> None:
    hold = as_json(
        invoke(
            "ledger",
            "transfers",
            "create",
            "--id",
            "200",
            "--debit",
            "2",
            "--credit",
            "3",
            "--amount",
            "50",
            "--currency",
            "CNY",
            "--code",
            "202",
            "--pending",
            "--timeout",
            "3600",
            "--json",
        )
    )
    assert hold["result"] == "ok"
    assert hold["transfer"]["kind"] == "hold"
    assert hold["transfer"]["amount"] == 5000

    # A decimal amount on a post takes the hold's currency when --currency is omitted.
    post = as_json(
        invoke(
            "ledger",
            "transfers",
            "create",
            "--id",
            "201",
            "--post",
            "200",
            "--amount",
            "20.5",
            "--json",
        )
    )
    assert post["result"] == "ok"
    assert post["transfer"]["amount"] == 2050
    assert post["transfer"]["debit_account_id"] == "2"

    again = invoke("ledger", "transfers", "create", "--id", "202", "--void", "200")
    assert "pending_transfer_already_posted" in assert_one_error_line(again, 2)

    refund = as_json(
        invoke(
            "ledger",
            "transfers",
            "create",
            "--id",
            "203",
            "--reverses",
            "201",
            "--amount-minor",
            "50",
            "--json",
        )
    )
    assert refund["transfer"]["debit_account_id"] == "3"
    assert refund["transfer"]["reverses_id"] == "201"

    replay = invoke(
        "ledger",
        "transfers",
        "create",
        "--id",
        "100",
        "--debit",
        "1",
        "--credit",
        "2",
        "--amount",
        "1000.00",
        "--currency",
        "CNY",
        "--code",
        "101",
    )
    assert replay.exit_code == 0
    assert "exists" in replay.stdout

    over = invoke(
        "ledger",
        "transfers",
        "create",
        "--id",
        "204",
        "--debit",
        "3",
        "--credit",
        "2",
        "--amount",
        "1000",
        "--currency",
        "CNY",
        "--code",
        "301",
    )
    assert "exceeds_credits (46)" in assert_one_error_line(over, 2)

    shown = as_json(invoke("ledger", "transfers", "show", "200", "201", "203", "--json"))
    assert [t["kind"] for t in shown["transfers"]] == ["hold", "post", "reversal"]
    assert assert_one_error_line(invoke("ledger", "transfers", "show", "200", "999"), 3)


def test_balances_history_and_statement(ledger_dir: Path, invoke: Invoke) -> None:
    for number in range(5):
        result = invoke(
            "ledger",
            "transfers",
            "create",
            "--id",
            str(300 + number),
            "--debit",
            "2",
            "--credit",
            "3",
            "--amount",
            "10",
            "--currency",
            "CNY",
            "--code",
            "301",
        )
        assert result.exit_code == 0, result.output

    now = as_json(invoke("ledger", "balances", "2", "--json"))
    assert (now["debits_posted"], now["credits_posted"]) == (5000, 100_000)

    history = as_json(invoke("ledger", "history", "2", "--limit", "4", "--json"))
    assert [t["id"] for t in history["transfers"]] == ["100", "300", "301", "302"]
    next_from = history["next_page"]["from"]
    rest = as_json(invoke("ledger", "history", "2", "--from", str(next_from), "--json"))
    assert [t["id"] for t in rest["transfers"]] == ["303", "304"]
    assert rest["next_page"] is None

    # The balance of a history account just before its third transfer.
    third = history["transfers"][2]["timestamp"]
    past = as_json(invoke("ledger", "balances", "2", "--at", str(third - 1), "--json"))
    assert (past["debits_posted"], past["credits_posted"]) == (1000, 100_000)
    table = invoke("ledger", "balances", "2")
    assert "950.00 Cr" in table.stdout
    line = assert_one_error_line(invoke("ledger", "balances", "3", "--at", str(third)), 2)
    assert "history" in line

    statement = as_json(invoke("ledger", "statement", "2", "--from", str(third), "--json"))
    assert statement["opening"] == {"debits": 1000, "credits": 100_000, "balance": "990.00 Cr"}
    assert [t["id"] for t in statement["entries"]] == ["301", "302", "303", "304"]
    assert statement["closing"]["balance"] == "950.00 Cr"
    assert statement["complete"] is True
    human = invoke("ledger", "statement", "2")
    assert human.exit_code == 0
    assert "opening" in human.stdout
    assert "closing" in human.stdout
    assert "950.00 Cr" in human.stdout


def test_import_jsonl(ledger_dir: Path, invoke: Invoke, tmp_path: Path) -> None:
    lines = [
        {
            "id": "400",
            "debit_account_id": "2",
            "credit_account_id": "3",
            "amount": "1.50",
            "currency": "CNY",
            "code": 301,
            "metadata": {"ref": "inv-1"},
        },
        {
            "id": 401,
            "debit_account_id": 2,
            "credit_account_id": 3,
            "amount_minor": 25,
            "currency": "CNY",
            "code": 301,
            "flags": ["linked"],
        },
        {
            "id": "402",
            "debit_account_id": "3",
            "credit_account_id": "2",
            "amount": "999",
            "currency": "CNY",
            "code": 301,
        },
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    summary = invoke("ledger", "transfers", "import", str(path), "--json")
    assert summary.exit_code == 1  # some were rejected
    document = json.loads(summary.stdout)
    assert document["results"] == {"ok": 1, "linked_event_failed": 1, "exceeds_credits": 1}
    assert [r["line"] for r in document["rejected"]] == [2, 3]
    stored = as_json(invoke("ledger", "transfers", "show", "400", "--json"))
    assert stored["transfers"][0]["metadata"] == '{"ref":"inv-1"}'

    path.write_text(json.dumps(lines[0]) + "\n")
    human = invoke("ledger", "transfers", "import", str(path))
    assert human.exit_code == 0
    assert "exists" in human.stdout

    path.write_text('{"id": "403", "amount": 12}\n')
    line = assert_one_error_line(invoke("ledger", "transfers", "import", str(path)), 2)
    assert ":1:" in line
    assert "decimal string" in line


def test_check_expire_codes_and_audit(ledger_dir: Path, invoke: Invoke) -> None:
    check = invoke("ledger", "check")
    assert check.exit_code == 0, check.output
    assert "ledger check: OK (3 accounts, 1 transfers)" in check.stdout
    assert as_json(invoke("ledger", "check", "--json"))["findings"] == []

    assert as_json(invoke("ledger", "expire", "--json")) == {"expired": 0}

    codes = as_json(invoke("ledger", "codes", "--json"))
    assert codes["create_transfer"]["46"] == "exceeds_credits"
    assert "exceeds_credits" in invoke("ledger", "codes").stdout

    verify = invoke("audit", "verify")
    assert verify.exit_code == 0, verify.output
    assert "audit verify: OK (4 records" in verify.stdout
    head = as_json(invoke("audit", "head", "--json"))
    assert head["seq"] == 4
    assert len(head["hash"]) == 64
    assert head["hash"] in verify.stdout
    assert head["anchor"] == f"4:{head['hash']}"

    # An anchored head stays valid as the chain grows; a wrong or missing one fails.
    invoke(
        "ledger",
        "transfers",
        "create",
        "--id",
        "101",
        "--debit",
        "1",
        "--credit",
        "3",
        "--amount",
        "1",
        "--currency",
        "CNY",
        "--code",
        "101",
    )
    anchored = invoke("audit", "verify", "--anchor", head["anchor"])
    assert anchored.exit_code == 0, anchored.output
    assert "record seq 4 still has the anchored hash" in anchored.stdout
    wrong = invoke("audit", "verify", "--anchor", "4:" + "0" * 64)
    assert "anchored hash" in assert_one_error_line(wrong, 1)
    assert_one_error_line(invoke("audit", "verify", "--anchor", "99:" + "0" * 64), 1)
    assert_one_error_line(invoke("audit", "verify", "--anchor", "4:xyz"), 2)


def test_audit_verify_fails_after_tampering(ledger_dir: Path, invoke: Invoke) -> None:
    result = invoke(
        "ledger",
        "transfers",
        "create",
        "--id",
        "500",
        "--debit",
        "2",
        "--credit",
        "3",
        "--amount",
        "5",
        "--currency",
        "CNY",
        "--code",
        "301",
    )
    assert result.exit_code == 0
    database = ledger_dir / "tianping.db"
    connection = sqlite3.connect(database)
    try:
        first_transfer = connection.execute("SELECT MIN(timestamp) FROM transfers").fetchone()[0]
        (broken_seq,) = connection.execute(
            "SELECT seq FROM audit_chain WHERE first_timestamp <= ? AND last_timestamp >= ?",
            (first_transfer, first_transfer),
        ).fetchone()
        connection.execute("DROP TRIGGER transfers_no_update")
        connection.execute("UPDATE transfers SET amount = amount + 1")
        connection.commit()
    finally:
        connection.close()

    verify = invoke("audit", "verify")
    line = assert_one_error_line(verify, 1)
    assert f"seq {broken_seq}" in line
    assert f"FAILED at record seq {broken_seq}:" in verify.stdout
    assert "2 break(s)" in verify.stdout  # both transfer records
    report = json.loads(invoke("audit", "verify", "--json").stdout)
    assert report["ok"] is False
    assert report["first_break"]["seq"] == broken_seq
    assert report["break_count"] == 2

    check = invoke("ledger", "check")
    assert check.exit_code == 1
    assert "FAILED" in check.stdout


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "exit_code", "expected"),
    [
        (("ledger", "accounts", "show", "abc"), 2, "id must be a decimal integer"),
        (("ledger", "accounts", "show", "0"), 2, "id must lie between"),
        (
            ("ledger", "accounts", "create", "--id", "-5", "--currency", "CNY", "--code", "1"),
            2,
            "--id",
        ),
        (
            (
                "ledger",
                "transfers",
                "create",
                "--id",
                "600",
                "--debit",
                "2",
                "--credit",
                "3",
                "--amount",
                "12.345",
                "--currency",
                "CNY",
                "--code",
                "301",
            ),
            2,
            "fraction digits",
        ),
        (
            (
                "ledger",
                "transfers",
                "create",
                "--id",
                "600",
                "--debit",
                "2",
                "--credit",
                "3",
                "--amount",
                "1e3",
                "--currency",
                "CNY",
                "--code",
                "301",
            ),
            2,
            "not a plain decimal",
        ),
        (
            (
                "ledger",
                "transfers",
                "create",
                "--id",
                "600",
                "--debit",
                "2",
                "--credit",
                "3",
                "--amount",
                "-1",
                "--currency",
                "CNY",
                "--code",
                "301",
            ),
            2,
            "positive",
        ),
        (
            (
                "ledger",
                "transfers",
                "create",
                "--id",
                "600",
                "--debit",
                "2",
                "--credit",
                "3",
                "--amount",
                "1",
                "--code",
                "301",
            ),
            2,
            "--currency",
        ),
        (
            ("ledger", "accounts", "create", "--id", "9", "--currency", "XYZ", "--code", "1"),
            2,
            "unknown currency",
        ),
        (
            ("ledger", "accounts", "create", "--id", "9", "--currency", "cny", "--code", "1"),
            2,
            "did you mean 'CNY'",
        ),
        (
            (
                "ledger",
                "accounts",
                "create",
                "--id",
                "9",
                "--currency",
                "CNY",
                "--code",
                "1",
                "--flag",
                "closed",
            ),
            2,
            "cannot be set",
        ),
        (
            (
                "ledger",
                "transfers",
                "create",
                "--id",
                "600",
                "--debit",
                "2",
                "--credit",
                "3",
                "--amount",
                "1",
                "--currency",
                "CNY",
                "--code",
                "301",
                "--metadata",
                "[1]",
            ),
            2,
            "JSON object",
        ),
        (("ledger", "accounts", "show", "77"), 3, "no account has id 77"),
        (("ledger", "balances", "77"), 3, "no account has id 77"),
        (("ledger", "statement", "77"), 3, "no account has id 77"),
        (("ledger", "history", "2", "--from", "yesterday"), 2, "ISO 8601"),
        (("ledger", "statement", "2", "--to", "99999999999999999999"), 2, "end of ledger time"),
        (
            (
                "ledger",
                "transfers",
                "create",
                "--id",
                "600",
                "--debit",
                "2",
                "--credit",
                "77",
                "--amount",
                "1",
                "--currency",
                "CNY",
                "--code",
                "301",
            ),
            3,
            "credit_account_not_found",
        ),
        (
            ("ledger", "transfers", "create", "--id", "600", "--post", "77", "--amount", "1"),
            3,
            "no transfer has id 77",
        ),
        (
            ("ledger", "accounts", "create", "--currency", "CNY", "--code", "1"),
            2,
            "Missing option '--id'",
        ),
        (
            (
                "ledger",
                "frobnicate",
            ),
            2,
            "No such command",
        ),
        (("serve", "--host", "0.0.0.0"), 2, "--allow-remote"),  # noqa: S104 - refused
        (("serve", "--port", "0"), 2, "--port"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_bad_input_is_one_error_line(
    ledger_dir: Path, invoke: Invoke, args: tuple[str, ...], exit_code: int, expected: str
) -> None:
    line = assert_one_error_line(invoke(*args), exit_code)
    assert expected in line


def test_database_errors_are_one_line(invoke: Invoke, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(
        app, ["--database-url", f"sqlite:///{blocker}/sub/x.db", "db", "init"]
    )
    assert_one_error_line(result, 1)
    unreachable = CliRunner().invoke(
        app, ["--database-url", "postgresql://u:secret@127.0.0.1:1/db", "db", "status"]
    )
    line = assert_one_error_line(unreachable, 1)
    assert "database error" in line
    assert "secret" not in unreachable.output


def test_the_installed_script_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    """Through the real entry point (`Typer.__call__`), not only through CliRunner."""
    script = Path(sys.executable).with_name("tianping")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    completed = subprocess.run(
        [str(script), "--data-dir", str(tmp_path), "ledger", "accounts", "show", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("error: ")
    assert "Traceback" not in completed.stderr


# -- serve -----------------------------------------------------------------------------------


def test_serve_runs_uvicorn_with_the_app_factory(
    invoke: Invoke, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    for name in _SERVE_ENV:  # recorded now, restored after the test whatever serve sets
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append((a, k)))

    assert invoke("db", "init").exit_code == 0
    result = invoke("serve", "--host", "localhost", "--port", "8123", "--workers", "2")
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = calls
    assert args == ("tianping.api.app:create_app",)
    assert kwargs["factory"] is True
    assert (kwargs["host"], kwargs["port"], kwargs["workers"]) == ("localhost", 8123, 2)
    assert os.environ["TIANPING_DATABASE_URL"] == f"sqlite:///{data_dir.resolve()}/tianping.db"
    assert "/docs" in result.stdout


def test_serve_refuses_an_uninitialised_database(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not serve"))
    assert "tianping db init" in assert_one_error_line(invoke("serve"), 1)


# -- both backends ---------------------------------------------------------------------------


def test_workflow_on_each_backend(database_url: str) -> None:
    """The same session on SQLite and on PostgreSQL (skipped loudly when there is none)."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        result = runner.invoke(app, ["--database-url", database_url, *args])
        assert result.exit_code == 0, result.output
        return result

    run("db", "init")
    assert json.loads(run("db", "status", "--json").stdout)["up_to_date"] is True
    run(
        "ledger",
        "accounts",
        "create",
        "--id",
        "1",
        "--currency",
        "USD",
        "--code",
        "1",
        "--flag",
        "credits_must_not_exceed_debits",
    )
    run(
        "ledger",
        "accounts",
        "create",
        "--id",
        "2",
        "--currency",
        "USD",
        "--code",
        "2",
        "--flag",
        "debits_must_not_exceed_credits",
        "--flag",
        "history",
    )
    run(
        "ledger",
        "transfers",
        "create",
        "--id",
        "10",
        "--debit",
        "1",
        "--credit",
        "2",
        "--amount",
        "25.00",
        "--currency",
        "USD",
        "--code",
        "1",
    )
    run(
        "ledger",
        "transfers",
        "create",
        "--id",
        "11",
        "--debit",
        "2",
        "--credit",
        "1",
        "--amount",
        "5.00",
        "--currency",
        "USD",
        "--code",
        "2",
        "--pending",
    )
    run("ledger", "transfers", "create", "--id", "12", "--void", "11")
    balances = json.loads(run("ledger", "balances", "2", "--json").stdout)
    assert (balances["credits_posted"], balances["debits_pending"]) == (2500, 0)
    statement = json.loads(run("ledger", "statement", "2", "--json").stdout)
    assert statement["closing"]["balance"] == "25.00 Cr"
    assert "ledger check: OK (2 accounts, 3 transfers)" in run("ledger", "check").stdout
    assert "audit verify: OK (5 records" in run("audit", "verify").stdout
