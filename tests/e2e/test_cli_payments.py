"""`tianping payments`, driven as a user would (Typer's CliRunner; SQLite in tmp_path).

Persons, payment accounts, card bindings and merchants are registered through identity's own
service functions on the same database (the CLI has no commands for accounts and cards). Every
CLI invocation builds its services on one `ManualClock`, so the simulated clearing house's
callbacks arrive when the test moves the clock, not after real seconds: the commands' pause
between polls is replaced by a step of that clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ledger_support import ManualClock
from payments_support import registration_number
from tianping import bootstrap
from tianping.cli import common, payments_commands
from tianping.cli.main import app
from tianping.config import load_settings
from tianping.identity import party_service
from tianping.identity.party_service import CARD_FINGERPRINT_KEY_ENV, FingerprintKey
from tianping.identity.tokens import SIGNING_KEY_ENV_VAR, SigningKey
from tianping.identity.totp import SECRETS_KEY_ENV_VAR
from tianping.ledger.model import NewTransfer
from tianping.ledger.money import Money
from tianping.payments import chart
from tianping.payments.clearing import SettlementFile, SettlementRecord

NS = 1_000_000_000
# 2027-01-15 02:00 UTC, 10:00 in China: the middle of a business day.
START = int(dt.datetime(2027, 1, 15, 2, tzinfo=dt.UTC).timestamp()) * NS


# No TIANPING_* settings from outside, and an empty working directory (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_env")


@dataclass
class Shop:
    """A database with two Class II persons (wallets not yet open), a merchant, and the CLI."""

    data_dir: Path
    clock: ManualClock
    people: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    cards: dict[str, str] = field(default_factory=dict)
    merchant: str = ""

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["--data-dir", str(self.data_dir), "payments", *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    clock = ManualClock(START)
    monkeypatch.setattr(common, "build_services", partial(bootstrap.build_services, clock=clock))
    stepped: Callable[[float], None] = clock.advance
    monkeypatch.setattr(payments_commands, "_pause", stepped)
    data_dir = tmp_path / "data"
    assert CliRunner().invoke(app, ["--data-dir", str(data_dir), "db", "init"]).exit_code == 0
    world = Shop(data_dir, clock)
    services = bootstrap.build_services(load_settings(data_dir=data_dir), clock=clock)
    ledger = services.ledger
    key = FingerprintKey(b"k" * 32)
    try:
        bank = party_service.register_institution(
            ledger, "bank-1", institution_kind="partner_bank", clock=clock
        )
        for index, name in enumerate(("alice", "bob")):
            party = party_service.register_person(
                ledger, f"reg-{name}", date_of_birth=dt.date(1990, 1, 1), clock=clock, key=key
            )
            channels = ("id_document_name_check", "bank_card_element_check", "mobile_carrier_check")
            for number, channel in enumerate(channels):
                party_service.record_verification(
                    ledger, f"ver-{name}-{number}", party, channel=channel, source="test",
                    verified_at=clock(), clock=clock,
                )  # fmt: skip
            account = party_service.open_payment_account(
                ledger, f"acct-{name}", party, bank, clock=clock
            )
            card = key.card(f"622202020011223{index:04d}")
            party_service.bind_bank_card(
                ledger, f"bind-{name}", party, card_holder_name_matches=True,
                card_fingerprint=card.fingerprint, card_last_four=card.last_four, clock=clock,
            )  # fmt: skip
            world.people[name] = party
            world.accounts[name] = account.account_id
            world.cards[name] = card.fingerprint
        world.merchant = party_service.register_merchant(
            ledger, "reg-noodles", registration_number=registration_number("91330100000000001"),
            clock=clock,
        )  # fmt: skip
    finally:
        services.close()
    yield world


def _open_and_fund(shop: Shop, amount: str = "500.00") -> None:
    for name in ("alice", "bob"):
        wallet = as_json(shop("wallet", "open", shop.people[name], shop.accounts[name], "--json"))
        assert wallet["account_class"] == "II"
    # A season on, the wallets are no longer new to the risk engine.
    shop.clock.advance(90 * 86_400)
    top_up = as_json(
        shop(
            "top-up", "fund-1", "--party", shop.people["alice"], "--card", shop.cards["alice"],
            "--amount", amount, "--json",
        )
    )  # fmt: skip
    assert top_up["state"] == "succeeded", top_up
    assert top_up["amount"] == Money.parse(amount, "CNY").amount_minor


def test_wallet_top_up_pay_qr_refund_settle_and_check(shop: Shop, tmp_path: Path) -> None:
    """The main flows, each one command: money moves as the ledger shows it."""
    _open_and_fund(shop)
    alice, bob = shop.people["alice"], shop.people["bob"]
    assert as_json(shop("wallet", "balance", alice, "--json"))["available"] == 50_000

    paid = as_json(
        shop("pay", "p-1", "--from", alice, "--to", bob, "--amount", "12.34", "--factors", "2",
             "--json")
    )  # fmt: skip
    assert (paid["status"], paid["amount"], paid["kind"]) == ("completed", 1234, "p2p")
    assert as_json(shop("wallet", "balance", bob, "--json"))["available"] == 1234
    human = shop("wallet", "balance", bob)
    assert human.exit_code == 0 and "12.34 CNY available" in human.stdout

    registered = as_json(
        shop("merchant", "register", shop.merchant, "--mcc", "5812", "--discount-bps", "60",
             "--json")
    )  # fmt: skip
    assert registered["discount_bps"] == 60
    svg = tmp_path / "static.svg"
    payload = shop("merchant", "qr", shop.merchant, "--name", "Noodle Bar", "--svg", str(svg))
    assert payload.exit_code == 0, payload.output
    assert svg.read_text().lstrip().startswith("<?xml") or "<svg" in svg.read_text()
    static = as_json(
        shop("pay-qr", "q-1", "--from", alice, "--payload", payload.stdout.strip(),
             "--amount", "45.50", "--factors", "2", "--json")
    )  # fmt: skip
    assert (static["status"], static["channel"], static["amount"]) == (
        "completed",
        "qr_static",
        4550,
    )

    png = tmp_path / "order.png"
    order = as_json(
        shop("merchant", "order", shop.merchant, "--name", "Noodle Bar", "--reference", "o-1",
             "--amount", "88.00", "--png", str(png), "--json")
    )  # fmt: skip
    assert order["order"]["amount"] == 8800
    assert png.read_bytes().startswith(b"\x89PNG")
    dynamic = as_json(
        shop("pay-qr", "q-2", "--from", alice, "--payload", order["payload"], "--factors", "2",
             "--json")
    )  # fmt: skip
    assert (dynamic["status"], dynamic["channel"], dynamic["amount"]) == (
        "completed",
        "qr_dynamic",
        8800,
    )
    again = shop("pay-qr", "q-3", "--from", alice, "--payload", order["payload"], "--factors", "2")
    assert "qr_order_paid" in refused(again, 2)

    refund = as_json(shop("refund", "r-1", "q-2", "--amount", "8.00", "--json"))
    assert (refund["amount"], refund["refunded_total"]) == (800, 800)
    over = shop("refund", "r-2", "q-2", "--amount", "80.01")
    assert "refund_exceeds_payment" in refused(over, 2)

    day = paid["business_date"]
    rows = as_json(shop("summary", day, "--json"))
    completed = {(row["kind"], row["channel"]): row for row in rows if row["status"] == "completed"}
    assert completed[("p2p", "balance")]["count"] == 1
    assert completed[("merchant", "qr_static")]["amount"] == 4550
    table = shop("summary", day)
    assert table.exit_code == 0 and "qr_dynamic" in table.stdout

    settled = as_json(shop("settle", day, "--json"))
    (settlement,) = settled["settlements"]
    assert (settlement["gross"], settlement["refunds"]) == (4550 + 8800, 800)
    assert settlement["fee"] == ((4550 + 8800 - 800) * 60 + 5_000) // 10_000
    check = as_json(shop("safeguarding", "--json"))
    assert check["in_balance"] is True
    assert check["client_liabilities"] == 50_000 - settlement["gross"] + settlement["refunds"]


def test_a_payment_over_the_daily_cap_steps_up_and_resumes(shop: Shop) -> None:
    """A one-factor session may pay 1,000 yuan a day (P2): the payment from one that would pass
    it stops for a second factor, moves nothing, and completes once resumed with two.

    The earlier payments use two factors: each CLI process starts the risk engine's feature
    state afresh, so it challenges a first payment, and a second factor meets the challenge."""
    _open_and_fund(shop, "1500.00")
    alice, bob = shop.people["alice"], shop.people["bob"]
    for index in range(3):
        paid = as_json(
            shop("pay", f"small-{index}", "--from", alice, "--to", bob, "--amount", "300",
                 "--factors", "2", "--json")
        )  # fmt: skip
        assert paid["status"] == "completed", paid
    stopped = shop("pay", "over", "--from", alice, "--to", bob, "--amount", "200", "--json")
    assert stopped.exit_code == 0, stopped.output
    outcome = json.loads(stopped.stdout)
    assert outcome["status"] == "step_up_required"
    assert "cn.payments.daily_cap_by_authentication" in outcome["reasons"]
    assert as_json(shop("wallet", "balance", bob, "--json"))["available"] == 900_00
    human = shop("show", "over")
    assert human.exit_code == 0 and "step_up_required" in human.stdout
    resumed = as_json(shop("resume", "over", "--factors", "2", "--json"))
    assert resumed["status"] == "completed", resumed
    assert as_json(shop("show", "over", "--json"))["status"] == "completed"
    assert as_json(shop("wallet", "balance", bob, "--json"))["available"] == 1_100_00


def test_withdrawal_and_callbacks(shop: Shop) -> None:
    _open_and_fund(shop)
    alice, card = shop.people["alice"], shop.cards["alice"]
    out = as_json(
        shop("withdraw", "w-1", "--party", alice, "--card", card, "--amount", "100", "--json")
    )
    assert out["state"] == "succeeded"
    assert as_json(shop("wallet", "balance", alice, "--json"))["available"] == 400_00
    # Not waiting: the request stays with the clearing house, and its hold is reserved.
    pending = shop("withdraw", "w-2", "--party", alice, "--card", card, "--amount", "50",
                   "--wait", "0")  # fmt: skip
    assert "still awaiting the clearing house" in refused(pending, 1)
    assert as_json(shop("wallet", "balance", alice, "--json"))["available"] == 350_00
    # This process's clearing house is gone: after the rail timeout the hold is released.
    shop.clock.advance(300)
    table = shop("callbacks")
    assert table.exit_code == 0 and "Callbacks (0)" in table.stdout
    assert as_json(shop("rail", "w-2", "--json"))["state"] == "timed_out"
    assert as_json(shop("wallet", "balance", alice, "--json"))["available"] == 400_00


def test_reconcile_against_a_settlement_file_and_exit_1_on_breaks(
    shop: Shop, tmp_path: Path
) -> None:
    _open_and_fund(shop)
    rail = as_json(shop("rail", "fund-1", "--json"))
    day = rail["business_date"]
    # Without the clearing house's file, the posted top-up is missing from the settlement.
    broken = shop("reconcile", day)
    assert "1 break(s)" in refused(broken, 1)
    assert "missing_in_settlement" in broken.stdout
    record = SettlementRecord(
        rail["clearing_reference"], "fund-1", "top_up", rail["bank_id"], rail["amount"], "CNY", 50,
        day,
    )  # fmt: skip
    csv = tmp_path / "settlement.csv"
    csv.write_text(SettlementFile(day, "sim-netsunion", (record,)).to_csv())
    clean = as_json(shop("reconcile", day, "--file", str(csv), "--json"))
    assert clean["is_clean"] is True and clean["breaks"] == []
    wrong = SettlementFile(day, "sim-netsunion", (record,)).to_csv().replace(",50,", ",51,", 1)
    csv.write_text(wrong)
    assert refused(shop("reconcile", day, "--file", str(csv)), 2).startswith("error: settlement")


def test_a_safeguarding_break_exits_1(shop: Shop) -> None:
    _open_and_fund(shop)
    assert as_json(shop("safeguarding", "--json"))["in_balance"] is True
    services = bootstrap.build_services(load_settings(data_dir=shop.data_dir), clock=shop.clock)
    try:
        services.ledger.create_transfers(
            [NewTransfer(77, chart.operating_account("CNY"), chart.reserve_account("CNY"), 700,
                         "CNY", 1)]
        )  # fmt: skip
    finally:
        services.close()
    line = refused(shop("safeguarding"), 1)
    assert "the reserve is 7.00 short of client money" in line


def test_refusals_are_one_line_with_an_exit_code(shop: Shop) -> None:
    _open_and_fund(shop)
    alice, bob = shop.people["alice"], shop.people["bob"]
    assert "wallet_not_found" in refused(shop("wallet", "balance", "pty_unknown"), 3)
    unknown = shop("pay", "x-1", "--from", "pty_nobody", "--to", bob, "--amount", "1")
    assert "wallet_not_found" in refused(unknown, 3)
    assert "payment_not_found" in refused(shop("show", "nope"), 3)
    assert "party_not_found" in refused(
        shop("wallet", "open", "pty_01mcbh5e80h62epyv58m83jnms", "acct-x"), 3
    )
    assert "12.345" in refused(
        shop("pay", "x-2", "--from", alice, "--to", bob, "--amount", "12.345"), 2
    )
    assert "not a date" in refused(shop("summary", "27/11/2026"), 2)
    assert "not both" in refused(
        shop("merchant", "qr", shop.merchant, "--name", "N", "--png", "a", "--svg", "b"), 2
    )
    declined = shop("pay", "x-3", "--from", alice, "--to", bob, "--amount", "600", "--factors", "2")
    assert "insufficient_funds" in refused(declined, 2)
    assert "Payment" in declined.stdout
    bad_card = shop("top-up", "t-x", "--party", alice, "--card", "f" * 64, "--amount", "1")
    assert "card_not_bound" in refused(bad_card, 2)


def test_a_merchant_pays_its_free_balance_out_and_the_sweep_runs(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bank accounts are fingerprinted with identity's key, so this process has identity's keys.
    monkeypatch.setenv(SIGNING_KEY_ENV_VAR, SigningKey.generate().to_pem().decode())
    monkeypatch.setenv(SECRETS_KEY_ENV_VAR, base64.b64encode(b"s" * 32).decode())
    monkeypatch.setenv(CARD_FINGERPRINT_KEY_ENV, "6b" * 32)
    merchant = shop.merchant
    assert (
        shop("merchant", "register", merchant, "--mcc", "5812", "--discount-bps", "60").exit_code
        == 0
    )
    holder = registration_number("91330100000000001")
    wrong = shop("merchant", "payout-account", merchant, "--account-number", "62170000123456789",
                 "--holder", registration_number("91330100000000002"))  # fmt: skip
    assert "payout_account_holder_mismatch" in refused(wrong, 2)
    account = as_json(
        shop("merchant", "payout-account", merchant, "--account-number", "62170000123456789",
             "--holder", holder, "--json")
    )  # fmt: skip
    assert account["last_four"] == "6789"
    # Money that no settlement pays out (as a loan's proceeds are) arrives in the payable.
    services = bootstrap.build_services(load_settings(data_dir=shop.data_dir), clock=shop.clock)
    try:
        services.ledger.create_transfers(
            [NewTransfer(78, chart.reserve_account("CNY"), chart.merchant_account(merchant, "CNY"),
                         300_00, "CNY", 1)]
        )  # fmt: skip
    finally:
        services.close()
    free = as_json(shop("merchant", "free-balance", merchant, "--json"))
    assert free["free_balance"] == 300_00
    over = shop("merchant", "payout", merchant, "po-1", "--amount", "300.01")
    assert "payout_exceeds_free_balance" in refused(over, 2)
    paid = as_json(shop("merchant", "payout", merchant, "po-1", "--amount", "100", "--json"))
    assert (paid["state"], paid["direction"], paid["amount"]) == (
        "succeeded",
        "merchant_payout",
        100_00,
    )
    rest = as_json(shop("merchant", "payout", merchant, "po-2", "--json"))
    assert rest["amount"] == 200_00
    assert as_json(shop("merchant", "free-balance", merchant, "--json"))["free_balance"] == 0
    assert as_json(shop("safeguarding", "--json"))["in_balance"] is True
    sweep = as_json(shop("sweep", "2027-01-14", "--json"))
    assert (sweep["loans"], sweep["swept"], sweep["lines"]) == (0, 0, [])
    assert "not a date" in refused(shop("sweep", "14/01/2027"), 2)


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("wallet",),
        ("merchant",),
        ("pay",),
        ("pay-qr",),
        ("top-up",),
        ("merchant", "payout"),
        ("merchant", "payout-account"),
        ("sweep",),
        ("reconcile",),
        ("safeguarding",),
    ],
)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, ["payments", *command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
