"""`tianping identity`, driven as a user would (Typer's CliRunner; SQLite in tmp_path).

Keys come from the environment; `identity keys generate` prints them and writes no file. Every
answer is one JSON document; every refusal is one `error:` line with a non-zero exit code.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tianping.cli.main import app
from tianping.identity.tokens import SigningKey

Invoke = Callable[..., Result]


# No TIANPING_* settings from outside, and an empty working directory (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_env")


def _generated_keys() -> dict[str, str]:
    result = CliRunner().invoke(app, ["identity", "keys", "generate"])
    assert result.exit_code == 0, result.output
    keys: dict[str, str] = {}
    for line in shlex.split(result.stdout, posix=True):
        name, _, value = line.partition("=")
        keys[name] = value
    return keys


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run `tianping --data-dir <tmp> identity ARGS...` with freshly generated keys."""
    for name, value in _generated_keys().items():
        monkeypatch.setenv(name, value)
    data_dir = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(app, ["--data-dir", str(data_dir), "db", "init"]).exit_code == 0

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(data_dir), "identity", *args])

    return run


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_keys_generate_prints_usable_keys_and_writes_nothing(tmp_path: Path) -> None:
    """Every identity key is printed; the signing key is RS256 by default, EdDSA on request."""
    before = sorted(Path.cwd().iterdir())
    keys = _generated_keys()
    assert set(keys) == {
        "TIANPING_MASTER_KEY",
        "TIANPING_CARD_FINGERPRINT_KEY",
        "TIANPING_SECRETS_KEY",
        "TIANPING_TOKEN_SIGNING_KEY",
    }
    assert SigningKey.from_pem(keys["TIANPING_TOKEN_SIGNING_KEY"].encode()).algorithm == "RS256"
    assert sorted(Path.cwd().iterdir()) == before
    assert _generated_keys()["TIANPING_MASTER_KEY"] != keys["TIANPING_MASTER_KEY"]
    eddsa = CliRunner().invoke(app, ["identity", "keys", "generate", "--algorithm", "EdDSA"])
    pem = dict(line.partition("=")[::2] for line in shlex.split(eddsa.stdout))
    assert SigningKey.from_pem(pem["TIANPING_TOKEN_SIGNING_KEY"].encode()).algorithm == "EdDSA"
    bad = CliRunner().invoke(app, ["identity", "keys", "generate", "--algorithm", "HS256"])
    refused(bad)


def test_person_lifecycle(invoke: Invoke) -> None:
    """Register, verify, consent, store, read for a purpose, withdraw, export, erase."""
    person = as_json(invoke("party", "register-person", "--date-of-birth", "1990-05-01"))
    party_id = person["party_id"]
    verified = as_json(
        invoke("verify", party_id, "--channel", "id_document_name_check", "--source", "nciic")
    )
    assert verified["account_class"] == 1
    shown = as_json(invoke("party", "show", party_id))
    assert shown["kind"] == "person" and len(shown["verifications"]) == 1
    as_json(
        invoke(
            "consent", "publish", "pay", "--version", "1", "--purpose", "payment_service",
            "--field", "name", "--field", "phone", "--language", "en",
            "--body", "I agree that Tianping uses my name and phone to run my payments.",
        )
    )  # fmt: skip
    as_json(invoke("consent", "grant", party_id, "--text", "pay"))
    [state] = as_json(invoke("consent", "list", party_id))
    assert state["live"] is True
    as_json(invoke("data", "put", party_id, "name=Li Lei", "phone=13800000000"))
    read = as_json(
        invoke("data", "read", party_id, "--purpose", "payment_service", "--field", "name")
    )
    assert read == {"name": "Li Lei"}
    line = refused(
        invoke(
            "data", "read", party_id, "--purpose", "marketing_personalisation", "--field", "name"
        )
    )
    assert "Li Lei" not in line
    exported = as_json(invoke("data", "export", party_id))
    assert exported["personal_data"]["phone"] == "13800000000"
    as_json(invoke("consent", "withdraw", party_id, "--text", "pay"))
    [state] = as_json(invoke("consent", "list", party_id))
    assert state["live"] is False
    as_json(invoke("data", "erase", party_id))
    refused(invoke("data", "put", party_id, "name=Again"))


def test_blocklist_and_refusals(invoke: Invoke) -> None:
    """A blocklisted party is suspended; bad input and unknown parties are one-line errors."""
    party_id = as_json(invoke("party", "register-person", "--date-of-birth", "1985-01-01"))[
        "party_id"
    ]
    as_json(invoke("blocklist", "add", party_id, "--reason", "account_renting", "--case", "PSB-7"))
    status = as_json(invoke("blocklist", "status", party_id))
    assert status["payment_services_suspended"] and status["new_accounts_barred"]
    refused(invoke("blocklist", "add", party_id, "--reason", "jaywalking", "--case", "PSB-8"))
    refused(invoke("party", "show", "pty_01m8f1bgh9x88s32z8a39bpasz"), 3)
    refused(invoke("party", "show", "not-a-party"))
    refused(invoke("data", "put", party_id, "religion=none"))
    refused(invoke("data", "put", party_id, "no-equals-sign"))
    refused(invoke("party", "register-person", "--date-of-birth", "2099-01-01"))
    merchant = as_json(
        invoke("party", "register-merchant", "--registration-number", "91330100716105852F")
    )
    assert merchant["party_id"].startswith("pty_")


def test_minor_needs_guardian_consent(invoke: Invoke) -> None:
    """A person under 14 is refused without a guardian and registered with one."""
    guardian = as_json(invoke("party", "register-person", "--date-of-birth", "1980-01-01"))
    refused(invoke("party", "register-person", "--date-of-birth", "2020-01-01"))
    minor = as_json(
        invoke(
            "party", "register-person", "--date-of-birth", "2020-01-01",
            "--guardian", guardian["party_id"], "--guardian-consent", "consent-record-1",
        )
    )  # fmt: skip
    assert (
        as_json(invoke("party", "show", minor["party_id"]))["guardian_party_id"]
        == (guardian["party_id"])
    )


def test_missing_keys_are_reported(tmp_path: Path) -> None:
    """Without the environment's keys, a command that needs them fails with one line."""
    runner = CliRunner()
    data_dir = str(tmp_path / "data")
    runner.invoke(app, ["--data-dir", data_dir, "db", "init"])
    result = runner.invoke(
        app,
        [
            "--data-dir",
            data_dir,
            "identity",
            "party",
            "register-person",
            "--date-of-birth",
            "1990-01-01",
        ],
    )
    refused(result)
    result = runner.invoke(app, ["--data-dir", data_dir, "identity", "consent", "list", "pty_x"])
    assert result.exit_code != 0
