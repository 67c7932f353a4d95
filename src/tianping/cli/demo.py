"""`tianping demo`: one simulated day of a small payments platform on a fresh SQLite ledger.

The demo builds its own database, ``DIR/demo.db`` under ``--data-dir`` (removing only that file
and its ``-wal``/``-shm`` companions from an earlier run), opens a chart of accounts, posts a few
thousand transfers drawn from a seeded random generator, walks through the ledger's features one
scenario at a time, registers a population through the identity flows, runs a day of payments
through the payments HTTP API, served in process on the demo's own services (see "a day of
payments" below), prints the main balances, runs `ledger check` and `audit verify`, and then
serves the API on the demo database unless ``--no-serve`` is given.

Ledger time comes from a clock the demo controls: it starts at midnight China time four days
before the wall clock and moves forward as the days are replayed, so a hold's timeout can pass
without sleeping, and every later write (by the API, on the real clock) lands after the demo.

The payments day uses the payments context's own chart (`tianping.payments.chart`), which the
tables below do not list. Its account codes (1001-3001) do not overlap the demo's, so the
safeguarding check sees the payments accounts only; its transfer codes (101-133) reuse some of
the demo's numbers with other meanings, and a transfer's accounts tell which chart it is from.

Chart of accounts (account codes are the `code` field, Tianping's account type):

    ========  ===========================  ====  ====  =========================================
    id        account                      cur   code  flags
    ========  ===========================  ====  ====  =========================================
    10        customer reserve at the PBOC CNY   1010  credits_must_not_exceed_debits, history
    11        USD correspondent reserve    USD   1020  credits_must_not_exceed_debits, history
    20        FX liquidity position        CNY   2030  debits_must_not_exceed_credits, history
    21        FX liquidity position        USD   2030  debits_must_not_exceed_credits, history
    30        payment fee income           CNY   4010  debits_must_not_exceed_credits
    100-104   merchant settlement payable  CNY   2020  debits_must_not_exceed_credits
    1000-1019 customer e-wallet            CNY   2010  debits_must_not_exceed_credits (+history
                                                       for 1000-1002)
    1100-1104 customer e-wallet            USD   2011  debits_must_not_exceed_credits
    ========  ===========================  ====  ====  =========================================

Reserves are assets (debit-normal: they may not go below zero, so credits must not exceed
debits); wallets, merchant payables and the liquidity positions are liabilities (credit-normal:
a customer cannot spend more than they hold, so debits must not exceed credits). A top-up debits
the reserve and credits the wallet; a payment debits the wallet and credits the merchant.

Transfer codes:

    ====  ================================================================================
    code  meaning
    ====  ================================================================================
    101   top-up: customer money arrives in the reserve and is credited to the wallet
    102   withdrawal: wallet to the customer's bank account (out of the reserve)
    103   merchant settlement: payable paid out of the reserve
    104   liquidity funding: a liquidity provider deposits into its position
    201   wallet payment to a merchant
    202   pre-authorisation hold (pending), later posted in full or in part, voided or expired
    203   platform fee on a payment, taken from the merchant
    204   refund: a reversal of a payment
    301   peer-to-peer transfer between wallets
    401   currency exchange leg (a linked pair through the liquidity positions)
    ====  ================================================================================
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tianping.bootstrap import Services, build_services
from tianping.cli.audit_commands import print_report, verify
from tianping.cli.common import (
    EXIT_FAILED,
    CliError,
    CliState,
    cell,
    console,
    format_amount,
    format_balance,
    progress_console,
    state_of,
)
from tianping.cli.ledger_commands import results_table, run_check
from tianping.cli.serve import run_server
from tianping.identity import party_service
from tianping.identity.errors import IdentityError
from tianping.identity.parties import event_date
from tianping.identity.party_service import CARD_FINGERPRINT_KEY_ENV, FingerprintKey
from tianping.identity.privacy_service import PrivacyService
from tianping.identity.vault import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    MasterKey,
    Vault,
    load_master_key,
)
from tianping.ledger.model import AccountFlags, NewAccount, NewTransfer, TransferFlags, flag_names
from tianping.ledger.results import CreateAccountResult, CreateTransferResult
from tianping.ledger.service import Ledger
from tianping.lending.model import Application
from tianping.lending.runtime import build_lending
from tianping.lending.service import LendingRefusal, LendingService
from tianping.lending.store import LendingStore
from tianping.payments.aml.large_value import LargeValueReport
from tianping.payments.aml_service import AmlService, ScanReport
from tianping.payments.clearing_sim import (
    ScriptedScenario,
    SimulatedClearingHouse,
    SimulatorBehaviour,
)
from tianping.payments.model import PaymentOutcome, local_date, local_day_start
from tianping.payments.reconciliation import ReconciliationReport
from tianping.payments.service import (
    DEFAULT_RAIL_TIMEOUT_S,
    PaymentsService,
    SafeguardingReport,
    SettlementReport,
)
from tianping.payments.store import CaseRow
from tianping.rules.config import cached_rulebook

if TYPE_CHECKING:
    import httpx

DEMO_DATABASE = "demo.db"
# Where the payments routes are; the payments day calls them in process (see `_payments_api`).
PAYMENTS_API = "/v1/payments"
BATCH_SIZE = 500
DAY_NS = 24 * 3600 * 1_000_000_000
SECOND_NS = 1_000_000_000
# The AML scan looks back a week; the summary counts up to AML_CASES_READ open cases and
# lists the strongest of each pattern.
AML_SCAN_DAYS = 7
AML_CASES_READ = 1_000
# Credit lines bill on a day of the month from 1 to 28; the month end comes this many days on.
LINE_STATEMENT_DAY_MAX = 28
MONTH_END_DAYS = 38

_DEBITS_LIMITED = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
_CREDITS_LIMITED = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
_HISTORY = AccountFlags.HISTORY

RESERVE_CNY, RESERVE_USD = 10, 11
FX_LIQUIDITY_CNY, FX_LIQUIDITY_USD = 20, 21
FEE_INCOME = 30
MERCHANTS = tuple(range(100, 105))
WALLETS_CNY = tuple(range(1000, 1020))
WALLETS_USD = tuple(range(1100, 1105))  # the USD wallets of customers 1000-1004

ACCOUNT_CODES = {
    1010: "customer reserve at the central bank (asset)",
    1020: "USD correspondent reserve (asset)",
    2010: "customer e-wallet, CNY (liability)",
    2011: "customer e-wallet, USD (liability)",
    2020: "merchant settlement payable (liability)",
    2030: "FX liquidity position, one per currency (liability)",
    4010: "payment fee income (income)",
}
TOP_UP, WITHDRAWAL, SETTLEMENT, FUNDING = 101, 102, 103, 104
PAYMENT, HOLD, FEE, REFUND, P2P, EXCHANGE = 201, 202, 203, 204, 301, 401

# The demo's exchange rate: 1 USD = 7.10 CNY, as a ratio of minor units (cents to fen).
USD_TO_CNY_NUMERATOR, USD_TO_CNY_DENOMINATOR = 71, 10


@dataclass(frozen=True, slots=True)
class ChartAccount:
    """One account of the demo's chart."""

    id: int
    name: str
    currency: str
    code: int
    flags: int
    owner: str


def chart_of_accounts() -> list[ChartAccount]:
    """The demo's accounts, in creation order."""
    accounts = [
        ChartAccount(
            RESERVE_CNY,
            "customer reserve at the PBOC",
            "CNY",
            1010,
            _CREDITS_LIMITED | _HISTORY,
            "platform",
        ),
        ChartAccount(
            RESERVE_USD,
            "USD correspondent reserve",
            "USD",
            1020,
            _CREDITS_LIMITED | _HISTORY,
            "platform",
        ),
        ChartAccount(
            FX_LIQUIDITY_CNY,
            "FX liquidity position CNY",
            "CNY",
            2030,
            _DEBITS_LIMITED | _HISTORY,
            "lp:0001",
        ),
        ChartAccount(
            FX_LIQUIDITY_USD,
            "FX liquidity position USD",
            "USD",
            2030,
            _DEBITS_LIMITED | _HISTORY,
            "lp:0001",
        ),
        ChartAccount(FEE_INCOME, "payment fee income", "CNY", 4010, _DEBITS_LIMITED, "platform"),
    ]
    accounts += [
        ChartAccount(
            account_id,
            f"merchant {n + 1} payable",
            "CNY",
            2020,
            _DEBITS_LIMITED,
            f"mch:{n + 1:04d}",
        )
        for n, account_id in enumerate(MERCHANTS)
    ]
    accounts += [
        ChartAccount(
            account_id,
            f"customer {n + 1} wallet",
            "CNY",
            2010,
            _DEBITS_LIMITED | (_HISTORY if n < 3 else 0),
            f"cust:{n + 1:04d}",
        )
        for n, account_id in enumerate(WALLETS_CNY)
    ]
    accounts += [
        ChartAccount(
            account_id,
            f"customer {n + 1} wallet (USD)",
            "USD",
            2011,
            _DEBITS_LIMITED,
            f"cust:{n + 1:04d}",
        )
        for n, account_id in enumerate(WALLETS_USD)
    ]
    return accounts


class DemoClock:
    """Ledger time under the demo's control (nanoseconds since the epoch)."""

    def __init__(self, start: int) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, nanoseconds: int) -> None:
        self.now += nanoseconds


@dataclass
class _Balances:
    flags: int
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0


@dataclass(slots=True)
class _Hold:
    id: int
    debit: int
    credit: int
    amount: int


class _Model:
    """Balances as the generator expects them, so that it only draws events the ledger takes.

    The generator is meant to produce a realistic day, not a stream of rejections; the rejected
    events are shown deliberately, one scenario each.
    """

    def __init__(self, accounts: Sequence[ChartAccount]) -> None:
        self.balances = {account.id: _Balances(account.flags) for account in accounts}

    def allows(self, debit: int, credit: int, amount: int) -> bool:
        d, c = self.balances[debit], self.balances[credit]
        if d.flags & _DEBITS_LIMITED and d.debits_pending + d.debits_posted + amount > (
            d.credits_posted
        ):
            return False
        return not (
            c.flags & _CREDITS_LIMITED
            and c.credits_pending + c.credits_posted + amount > c.debits_posted
        )

    def apply(self, debit: int, credit: int, amount: int, pending: bool = False) -> None:
        d, c = self.balances[debit], self.balances[credit]
        if pending:
            d.debits_pending += amount
            c.credits_pending += amount
        else:
            d.debits_posted += amount
            c.credits_posted += amount

    def resolve(self, hold: _Hold, posted: int) -> None:
        d, c = self.balances[hold.debit], self.balances[hold.credit]
        d.debits_pending -= hold.amount
        c.credits_pending -= hold.amount
        d.debits_posted += posted
        c.credits_posted += posted


@dataclass
class _Generator:
    """Draws the day's events from a seeded RNG; ids are consecutive from `next_id`."""

    rng: random.Random
    model: _Model
    next_id: int = 1_000_001
    holds: list[_Hold] = field(default_factory=list)
    payments: list[tuple[int, int, int, int]] = field(default_factory=list)  # id, wallet, mch, amt

    def take_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _plain(
        self, debit: int, credit: int, amount: int, currency: str, code: int, flags: int = 0
    ) -> NewTransfer:
        self.model.apply(debit, credit, amount)
        return NewTransfer(
            id=self.take_id(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency=currency,
            code=code,
            flags=flags,
        )

    def funding(self) -> list[NewTransfer]:
        """Opening balances: every wallet topped up, the liquidity provider funded."""
        rng = self.rng
        events = [
            self._plain(RESERVE_CNY, wallet, rng.randrange(20_000, 80_000) * 100, "CNY", TOP_UP)
            for wallet in WALLETS_CNY
        ]
        events += [
            self._plain(RESERVE_USD, wallet, rng.randrange(1_000, 5_000) * 100, "USD", TOP_UP)
            for wallet in WALLETS_USD
        ]
        events.append(self._plain(RESERVE_USD, FX_LIQUIDITY_USD, 2_000_000_00, "USD", FUNDING))
        events.append(self._plain(RESERVE_CNY, FX_LIQUIDITY_CNY, 10_000_000_00, "CNY", FUNDING))
        return events

    def batch(self, size: int) -> list[NewTransfer]:
        """About `size` events (never more): resolutions of earlier holds, then a random mix."""
        rng = self.rng
        events: list[NewTransfer] = []
        still_open: list[_Hold] = []
        for hold in self.holds:
            if len(events) >= size // 10 or rng.random() < 0.4:
                still_open.append(hold)
                continue
            events.append(self._resolve(hold))
        self.holds = still_open
        kinds = (
            "payment",
            "payment_fee",
            "p2p",
            "top_up",
            "withdrawal",
            "hold",
            "settlement",
            "exchange",
            "refund",
        )
        weights = (30, 12, 15, 10, 8, 10, 5, 5, 5)
        guard = 0
        while len(events) < size and guard < size * 20:
            guard += 1
            kind = rng.choices(kinds, weights)[0]
            room = size - len(events)
            events += self._draw(kind, room)
        return events

    def _resolve(self, hold: _Hold) -> NewTransfer:
        choice = self.rng.random()
        if choice < 0.5:  # post the whole hold
            self.model.resolve(hold, hold.amount)
            return NewTransfer(
                id=self.take_id(), pending_id=hold.id, flags=TransferFlags.POST_PENDING
            )
        if choice < 0.75:  # post part of it (a final fare below the authorised amount)
            part = max(1, hold.amount * self.rng.randrange(50, 96) // 100)
            self.model.resolve(hold, part)
            return NewTransfer(
                id=self.take_id(), pending_id=hold.id, amount=part, flags=TransferFlags.POST_PENDING
            )
        self.model.resolve(hold, 0)
        return NewTransfer(id=self.take_id(), pending_id=hold.id, flags=TransferFlags.VOID_PENDING)

    def _draw(self, kind: str, room: int) -> list[NewTransfer]:
        rng, model = self.rng, self.model
        wallet = rng.choice(WALLETS_CNY)
        merchant = rng.choice(MERCHANTS)
        if kind == "payment":
            amount = rng.randrange(100, 50_000)
            if model.allows(wallet, merchant, amount):
                event = self._plain(wallet, merchant, amount, "CNY", PAYMENT)
                self.payments.append((event.id, wallet, merchant, amount))
                return [event]
        elif kind == "payment_fee" and room >= 2:
            amount = rng.randrange(1_000, 80_000)
            fee = max(1, amount * 6 // 1000)
            if model.allows(wallet, merchant, amount):
                first = self._plain(wallet, merchant, amount, "CNY", PAYMENT, TransferFlags.LINKED)
                return [first, self._plain(merchant, FEE_INCOME, fee, "CNY", FEE)]
        elif kind == "p2p":
            other = rng.choice([w for w in WALLETS_CNY if w != wallet])
            amount = rng.randrange(100, 100_000)
            if model.allows(wallet, other, amount):
                return [self._plain(wallet, other, amount, "CNY", P2P)]
        elif kind == "top_up":
            return [self._plain(RESERVE_CNY, wallet, rng.randrange(10_000, 500_000), "CNY", TOP_UP)]
        elif kind == "withdrawal":
            amount = rng.randrange(5_000, 200_000)
            if model.allows(wallet, RESERVE_CNY, amount):
                return [self._plain(wallet, RESERVE_CNY, amount, "CNY", WITHDRAWAL)]
        elif kind == "hold":
            amount = rng.randrange(1_000, 80_000)
            if model.allows(wallet, merchant, amount):
                hold = _Hold(self.take_id(), wallet, merchant, amount)
                model.apply(wallet, merchant, amount, pending=True)
                self.holds.append(hold)
                return [
                    NewTransfer(
                        id=hold.id,
                        debit_account_id=wallet,
                        credit_account_id=merchant,
                        amount=amount,
                        currency="CNY",
                        code=HOLD,
                        flags=TransferFlags.PENDING,
                    )
                ]
        elif kind == "settlement":
            balances = model.balances[merchant]
            available = balances.credits_posted - balances.debits_posted - balances.debits_pending
            if available > 100_000:
                return [self._plain(merchant, RESERVE_CNY, available // 2, "CNY", SETTLEMENT)]
        elif kind == "exchange" and room >= 2:
            index = rng.randrange(len(WALLETS_USD))
            usd = rng.randrange(1_000, 50_000)
            cny = usd * USD_TO_CNY_NUMERATOR // USD_TO_CNY_DENOMINATOR
            source, target = WALLETS_CNY[index], WALLETS_USD[index]
            if model.allows(source, FX_LIQUIDITY_CNY, cny) and model.allows(
                FX_LIQUIDITY_USD, target, usd
            ):
                return [
                    self._plain(
                        source, FX_LIQUIDITY_CNY, cny, "CNY", EXCHANGE, TransferFlags.LINKED
                    ),
                    self._plain(FX_LIQUIDITY_USD, target, usd, "USD", EXCHANGE),
                ]
        elif kind == "refund" and self.payments:
            payment_id, payer, payee, amount = self.payments.pop(rng.randrange(len(self.payments)))
            if model.allows(payee, payer, amount):
                model.apply(payee, payer, amount)
                return [NewTransfer(id=self.take_id(), reverses_id=payment_id, code=REFUND)]
        return []


@dataclass
class _Run:
    """The demo's ledger and its running tally of result codes."""

    ledger: Ledger
    clock: DemoClock
    generator: _Generator
    results: Counter[str] = field(default_factory=Counter)
    scenarios: list[tuple[str, str, str]] = field(default_factory=list)

    def submit(self, events: Sequence[NewTransfer]) -> list[CreateTransferResult]:
        results = self.ledger.create_transfers(events)
        self.results.update(result.name for result in results)
        return results

    def scenario(self, title: str, events: Sequence[NewTransfer]) -> list[CreateTransferResult]:
        """Submit one batch as a named scenario, one second of ledger time after the last."""
        self.clock.advance(SECOND_NS)
        results = self.submit(events)
        self.record(title, [event.id for event in events], [r.name for r in results])
        return results

    def record(self, title: str, ids: Sequence[int], outcome: Sequence[str]) -> None:
        self.scenarios.append((title, ", ".join(str(i) for i in ids), ", ".join(outcome)))

    def plain(
        self, debit: int, credit: int, amount: int, currency: str, code: int, flags: int = 0
    ) -> NewTransfer:
        return NewTransfer(
            id=self.generator.take_id(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency=currency,
            code=code,
            flags=flags,
        )


def _scenarios(run: _Run) -> None:
    """The ledger's features, one deliberate example each."""
    wallet, other, merchant = WALLETS_CNY[0], WALLETS_CNY[1], MERCHANTS[0]
    take = run.generator.take_id

    run.scenario(
        "top up 10000.00 (reserve to wallet)",
        [run.plain(RESERVE_CNY, wallet, 10_000_00, "CNY", TOP_UP)],
    )
    hold = run.plain(wallet, merchant, 300_00, "CNY", HOLD, TransferFlags.PENDING)
    run.scenario("hold 300.00", [hold])
    run.scenario(
        "post the hold in full",
        [NewTransfer(id=take(), pending_id=hold.id, flags=TransferFlags.POST_PENDING)],
    )

    hold = run.plain(wallet, merchant, 200_00, "CNY", HOLD, TransferFlags.PENDING)
    run.scenario("hold 200.00", [hold])
    run.scenario(
        "post 150.00 of it (the rest is released)",
        [
            NewTransfer(
                id=take(), pending_id=hold.id, amount=150_00, flags=TransferFlags.POST_PENDING
            )
        ],
    )

    hold = run.plain(wallet, merchant, 80_00, "CNY", HOLD, TransferFlags.PENDING)
    run.scenario("hold 80.00", [hold])
    run.scenario(
        "void it", [NewTransfer(id=take(), pending_id=hold.id, flags=TransferFlags.VOID_PENDING)]
    )

    hold = run.plain(wallet, merchant, 50_00, "CNY", HOLD, TransferFlags.PENDING)
    hold.timeout = 30
    run.scenario("hold 50.00 with a 30 s timeout", [hold])
    run.clock.advance(31 * SECOND_NS)
    expired = run.ledger.expire_pending()
    run.record("31 s later: ledger expire", [hold.id], [f"{expired} hold(s) voided"])
    run.scenario(
        "post the expired hold",
        [NewTransfer(id=take(), pending_id=hold.id, flags=TransferFlags.POST_PENDING)],
    )

    payment = run.plain(wallet, merchant, 88_00, "CNY", PAYMENT, TransferFlags.LINKED)
    fee = run.plain(merchant, FEE_INCOME, 53, "CNY", FEE)
    run.scenario("linked chain: payment 88.00 + fee 0.53", [payment, fee])

    account = run.ledger.get_account(other)
    available = account.credits_posted - account.debits_posted - account.debits_pending
    first = run.plain(other, merchant, 10_00, "CNY", PAYMENT, TransferFlags.LINKED)
    second = run.plain(other, merchant, available, "CNY", PAYMENT)
    run.scenario("linked chain whose 2nd member is over the limit", [first, second])

    usd = 100_00
    cny = usd * USD_TO_CNY_NUMERATOR // USD_TO_CNY_DENOMINATOR
    run.scenario(
        f"exchange {format_amount(cny, 'CNY')} CNY to 100.00 USD",
        [
            run.plain(wallet, FX_LIQUIDITY_CNY, cny, "CNY", EXCHANGE, TransferFlags.LINKED),
            run.plain(FX_LIQUIDITY_USD, WALLETS_USD[0], usd, "USD", EXCHANGE),
        ],
    )

    payment = run.plain(wallet, merchant, 120_00, "CNY", PAYMENT)
    run.scenario("payment 120.00", [payment])
    run.scenario(
        "refund it (reversal)", [NewTransfer(id=take(), reverses_id=payment.id, code=REFUND)]
    )
    run.scenario(
        "refund it again",
        [NewTransfer(id=take(), reverses_id=payment.id, amount=1_00, code=REFUND)],
    )
    run.scenario("replay the payment (same id and fields)", [payment])

    account = run.ledger.get_account(wallet)
    available = account.credits_posted - account.debits_posted - account.debits_pending
    run.scenario(
        f"pay {format_amount(available + 1, 'CNY')} from a wallet holding "
        f"{format_amount(available, 'CNY')}",
        [run.plain(wallet, merchant, available + 1, "CNY", PAYMENT)],
    )


def _fresh_database(data_dir: Path) -> Path:
    """Remove the previous demo database (only demo.db and its WAL files); return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / DEMO_DATABASE
    for path in (database, data_dir / f"{DEMO_DATABASE}-wal", data_dir / f"{DEMO_DATABASE}-shm"):
        if path.is_dir():
            raise CliError(f"{path} is a directory; the demo will not touch it")
        path.unlink(missing_ok=True)
    return database


def _chart_table(accounts: Sequence[ChartAccount]) -> Table:
    table = Table(title="Chart of accounts")
    for name in ("id", "account", "currency", "code", "type", "flags"):
        table.add_column(name)
    grouped: list[list[ChartAccount]] = []
    for account in accounts:
        if grouped and grouped[-1][0].code == account.code and account.code in (2010, 2011, 2020):
            grouped[-1].append(account)
        else:
            grouped.append([account])
    plural = {2010: "customer wallets", 2011: "customer wallets (USD)", 2020: "merchant payables"}
    for group in grouped:
        first, last = group[0], group[-1]
        ids = str(first.id) if len(group) == 1 else f"{first.id}-{last.id}"
        name = first.name if len(group) == 1 else f"{len(group)} {plural[first.code]}"
        counts = Counter(n for a in group for n in flag_names(a.flags, AccountFlags.NAMES))
        flags = [
            flag if count == len(group) else f"{flag} ({count} of them)"
            for flag, count in counts.items()
        ]
        table.add_row(
            cell(ids),
            cell(name),
            cell(first.currency),
            cell(first.code),
            cell(ACCOUNT_CODES[first.code]),
            cell(", ".join(flags)),
        )
    return table


def _balances_table(ledger: Ledger, accounts: Sequence[ChartAccount]) -> Table:
    names = {account.id: account.name for account in accounts}
    shown = [
        RESERVE_CNY,
        RESERVE_USD,
        FX_LIQUIDITY_CNY,
        FX_LIQUIDITY_USD,
        FEE_INCOME,
        *MERCHANTS[:2],
        *WALLETS_CNY[:3],
        WALLETS_USD[0],
    ]
    table = Table(title="Balances of the main accounts")
    for name in ("id", "account", "cur"):
        table.add_column(name)
    for name in ("debits posted", "credits posted", "pending", "balance"):
        table.add_column(name, justify="right", no_wrap=True)
    for account in ledger.lookup_accounts(shown):
        currency = account.currency
        pending = format_balance(account.debits_pending, account.credits_pending, currency)
        table.add_row(
            cell(account.id),
            cell(names[account.id]),
            cell(currency),
            cell(format_amount(account.debits_posted, currency)),
            cell(format_amount(account.credits_posted, currency)),
            cell(pending),
            cell(format_balance(account.debits_posted, account.credits_posted, currency), "bold"),
        )
    return table


def _post_the_day(run: _Run, total: int, progress_to: Console) -> int:
    """Post `total` generated events in batches, spread over the simulated day."""
    batches = max(1, -(-total // BATCH_SIZE))
    step = (DAY_NS - 3600 * SECOND_NS) // batches
    posted = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_to,
    ) as progress:
        task = progress.add_task("posting the day's transfers", total=total)
        while posted < total:
            events = run.generator.batch(min(BATCH_SIZE, total - posted))
            if not events:  # pragma: no cover - the generator always finds something to do
                break
            run.clock.advance(step)
            run.submit(events)
            posted += len(events)
            progress.advance(task, len(events))
    return posted


# The demo population, created through the identity flows. Every value is invented.
_DEMO_PEOPLE: tuple[tuple[str, str, tuple[str, ...], dict[str, str]], ...] = (
    ("Class I customer", "1991-03-14", ("id_document_name_check",), {"name": "Demo Person A"}),
    (
        "Class II customer",
        "1987-07-02",
        ("id_document_name_check", "bank_card_element_check", "face_match"),
        {"name": "Demo Person B", "phone": "13800000002"},
    ),
    (
        "Class III customer",
        "1979-11-30",
        ("in_person",),
        {"name": "Demo Person C", "phone": "13800000003", "id_number": "DEMO0000000003"},
    ),
)
_DEMO_MERCHANTS = ("91330100716105852F", "9144030071526726XG")
_CREDIT_CONSENT_TEXTS = (
    (
        "demo-credit-assessment",
        "credit_assessment",
        "I agree that Tianping's lenders assess my credit from my payments and my bureau record.",
    ),
    (
        "demo-bureau-reporting",
        "credit_bureau_reporting",
        "I agree that my credit line and its repayments are reported to a licensed credit bureau.",
    ),
)


def _identity_keys() -> tuple[FingerprintKey, MasterKey, bool]:
    """The configured identity keys, or throwaway in-memory keys for this run (never stored)."""
    configured = bool(os.environ.get(CARD_FINGERPRINT_KEY_ENV)) and bool(
        os.environ.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_FILE_ENV)
    )
    if configured:
        return FingerprintKey.from_env(), load_master_key(), False
    return FingerprintKey(secrets.token_bytes(32)), MasterKey.generate(), True


@dataclass(frozen=True, slots=True)
class _IdentityWorld:
    """What the payments day takes over from the identity population."""

    fingerprint_key: FingerprintKey
    bank: str
    merchants: tuple[str, ...]
    privacy: PrivacyService


def _identity_population(ledger: Ledger, clock: DemoClock, out: Console) -> _IdentityWorld:
    """Register the demo's persons and merchants through the identity flows; print a summary."""
    fingerprint_key, master_key, throwaway = _identity_keys()
    out.print(
        "identity keys: "
        + (
            "throwaway keys generated in memory for this run"
            if throwaway
            else "from the environment"
        ),
        markup=False,
    )
    privacy = PrivacyService(ledger, Vault(master_key), clock)
    privacy.publish_consent_text(
        "demo-payment-service",
        1,
        ["payment_service"],
        ["name", "phone", "id_number"],
        "en",
        "I agree that Tianping uses my name, phone and ID number to provide payment services.",
    )
    # Credit needs consents of its own, each given separately (C1, D3): to the credit
    # assessment that reads the person's payments and the bureau, and to credit-bureau
    # reporting, without which there is no credit line (L5).
    for text_id, purpose, body in _CREDIT_CONSENT_TEXTS:
        privacy.publish_consent_text(text_id, 1, [purpose], ["name", "income"], "en", body)
    bank = party_service.register_institution(
        ledger, "demo-bank", institution_kind="partner_bank", clock=clock
    )
    table = Table(title="Identity: demo population")
    for name in ("party", "who", "class", "consent", "vault fields", "outcome"):
        table.add_column(name)
    guardian: str | None = None
    for index, (who, born, channels, fields) in enumerate(_DEMO_PEOPLE):
        party_id = party_service.register_person(
            ledger,
            f"demo-person-{index}",
            date_of_birth=date.fromisoformat(born),
            clock=clock,
            key=fingerprint_key,
        )
        guardian = guardian or party_id
        result = None
        for number, channel in enumerate(channels):
            clock.advance(SECOND_NS)
            result = party_service.record_verification(
                ledger,
                f"demo-verification-{index}-{number}",
                party_id,
                channel=channel,
                source="branch:demo" if channel == "in_person" else "nciic",
                verified_at=clock(),
                clock=clock,
            )
        privacy.grant_consent(party_id, "demo-payment-service", 1, f"demo-consent-{index}")
        privacy.put_personal_data(party_id, fields, f"demo-data-{index}")
        account = party_service.open_payment_account(
            ledger, f"demo-account-{index}", party_id, bank, clock=clock
        )
        label = "-" if result is None or result.account_class is None else result.account_class.name
        table.add_row(
            cell(party_id),
            cell(who),
            cell(label),
            cell("payment_service"),
            cell(", ".join(sorted(fields))),
            cell(f"account {account.account_id} opened", "green"),
        )
    minor_born = event_date(clock()).replace(year=event_date(clock()).year - 10, day=1)
    minor = party_service.register_person(
        ledger,
        "demo-minor",
        date_of_birth=minor_born,
        guardian_party_id=guardian,
        guardian_consent_reference="demo-guardian-consent-1",
        clock=clock,
        key=fingerprint_key,
    )
    table.add_row(
        cell(minor), cell("minor (10)"), cell("-"), cell("guardian's"), cell("-"),
        cell("registered with guardian consent", "green"),
    )  # fmt: skip
    blocked = party_service.register_person(
        ledger,
        "demo-blocked",
        date_of_birth=date(1990, 1, 1),
        clock=clock,
        key=fingerprint_key,
    )
    clock.advance(SECOND_NS)
    party_service.record_verification(
        ledger, "demo-verification-blocked", blocked, channel="id_document_name_check",
        source="nciic", verified_at=clock(), clock=clock,
    )  # fmt: skip
    party_service.add_to_blocklist(
        ledger,
        blocked,
        listed_on=event_date(clock()),
        reason_code="account_renting",
        case_reference="demo-case-1",
        clock=clock,
    )
    try:
        party_service.open_payment_account(
            ledger, "demo-account-blocked", blocked, bank, clock=clock
        )
        outcome, style = "account opened (unexpected)", "red"
    except IdentityError as refused:
        outcome, style = f"new account refused: {refused.code}", "yellow"
    table.add_row(
        cell(blocked), cell("blocklisted"), cell("I"), cell("-"), cell("-"), cell(outcome, style)
    )
    merchants = []
    for index, registration in enumerate(_DEMO_MERCHANTS):
        merchant = party_service.register_merchant(
            ledger, f"demo-merchant-{index}", registration_number=registration, clock=clock
        )
        merchants.append(merchant)
        table.add_row(
            cell(merchant), cell("merchant"), cell("-"), cell("-"), cell("-"),
            cell("registered", "green"),
        )  # fmt: skip
    out.print(table)
    return _IdentityWorld(fingerprint_key, bank, tuple(merchants), privacy)


# -- a day of payments ----------------------------------------------------------------------
#
# The payments context on the same database: persons verified to Class II through identity,
# wallets and bound cards, merchants, top-ups and withdrawals through the simulated clearing
# house, and a day of payments decided by the rulebook and the default risk engine. What a
# customer's app or a merchant's till would ask goes through the HTTP API, called in process
# by the checkout backend acting (as the operator) for the payer; the operator's batch jobs
# call the service.

PAYMENT_CUSTOMERS = 50
# (display name, merchant category code, discount rate in basis points).
PAYMENT_MERCHANTS: Final = (
    ("Noodle Bar", "5812", 60),
    ("Corner Grocery", "5411", 38),
    ("Metro Books", "5942", 60),
    ("Tea House", "5814", 55),
    ("Night Pharmacy", "5912", 45),
)
# Registration numbers (unified social credit codes, check character included) of the three
# merchants the payments day adds to the two of the identity population. All invented.
_PAYMENT_MERCHANT_REGISTRATIONS: Final = (
    "91330100MA2CFD1X0D",
    "91440300MA5EQ3R77Y",
    "91110105MA01AB2C3F",
)
PAYMENTS_PER_DAY = 2_000
PAYMENT_ROUNDS = 62
# A round's payments come this many seconds apart: its ~33 payments and the rails' callbacks
# (165 s) fit in its quarter of an hour.
PAYMENT_SPACING_S = 15
# The day's payments run from 07:00 to 22:30 China time, before the clearing cut-off at 23:00,
# so every rail request and payment of the day shares one business date.
_DAY_OPENS_S, _DAY_CLOSES_S = 7 * 3600, 22 * 3600 + 1800
_LATE_WITHDRAWAL = "demo-withdrawal-late"
# A rail that misbehaves now and then: declines, technical failures, timeouts, redelivered
# callbacks; one withdrawal's success arrives after the service has timed it out, which the
# reconciliation shows as a break for an operator.
DEMO_RAIL_BEHAVIOUR: Final = SimulatorBehaviour(
    decline_ppm=40_000,
    fail_ppm=10_000,
    timeout_ppm=20_000,
    duplicate_ppm=50_000,
    script={_LATE_WITHDRAWAL: ScriptedScenario("late")},
)


def china_midnight(at_ns: int, days_back: int = 0) -> int:
    """Ledger time of 00:00 China Standard Time on the China date of `at_ns`, minus days."""
    return local_day_start(local_date(at_ns) - timedelta(days=days_back))


@dataclass
class _Customer:
    party_id: str
    card: str
    device: str


class _Refused(Exception):
    """The API refused a request with a problem+json document; `code` is its stable code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _PaymentsApi:
    """The payments routes as the demo's checkout backend calls them: over HTTP, in this
    process, as the operator acting for each payer (or merchant).

    Every answer is read from its JSON; a refusal raises `_Refused` with the problem's code.
    `requests` counts the requests by method and route, for the line the summary prints.
    """

    client: httpx.Client
    requests: Counter[str] = field(default_factory=Counter)
    refusals: int = 0

    def call(
        self,
        method: str,
        route: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        **path: str,
    ) -> Any:
        """Send one request to `PAYMENTS_API + route` (its `{names}` filled from `path`)."""
        response = self.client.request(
            method, PAYMENTS_API + route.format(**path), json=body, params=params
        )
        self.requests[f"{method} {PAYMENTS_API}{route}"] += 1
        if response.is_success:
            return response.json()
        if response.is_client_error:
            # Every refusal is problem+json (RFC 9457) with a stable `code`.
            self.refusals += 1
            raise _Refused(str(response.json()["code"]))
        raise CliError(
            f"the API answered {method} {PAYMENTS_API}{route} with HTTP {response.status_code}",
            EXIT_FAILED,
        )

    def print_summary(self, out: Console) -> None:
        title = "Payments over HTTP (the day, then checkouts on credit): requests by route"
        out.print(_count_table(title, "route", self.requests))
        out.print(
            "HTTP API in process, as the operator acting for each payer: "
            f"{sum(self.requests.values())} requests, {self.refusals} refused with problem+json",
            markup=False,
        )


@contextlib.contextmanager
def _payments_api(services: Services) -> Iterator[_PaymentsApi]:
    """The HTTP API on the demo's own services, and a client that calls it in this process.

    The operator's token is made here for this process alone: the app and the client get it,
    and it is never printed, stored or put in the environment (the API the demo serves
    afterwards is configured as usual). httpx's ASGI transport is asynchronous, so each request
    of the synchronous client is carried to it on an event loop in a helper thread.
    """
    # Imported here so that the other commands do not load the web stack.
    import httpx
    from anyio.from_thread import start_blocking_portal

    from tianping.api.app import create_app
    from tianping.api.security import BearerTokenAuthenticator

    token = secrets.token_urlsafe(32)
    app = create_app(services, authenticator=BearerTokenAuthenticator(token))
    asgi = httpx.ASGITransport(app=app)

    async def send(request: httpx.Request) -> httpx.Response:
        response = await asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    with (
        start_blocking_portal() as portal,
        httpx.Client(
            # A transport that hands each request to a function: here, to the app.
            transport=httpx.MockTransport(lambda request: portal.call(send, request)),
            base_url="http://tianping.demo",
            headers={"Authorization": f"Bearer {token}"},
        ) as client,
    ):
        yield _PaymentsApi(client)


@dataclass
class _PaymentsDay:
    """What the payments day did, tallied for its summary tables."""

    service: PaymentsService
    api: _PaymentsApi
    clock: DemoClock
    rng: random.Random
    customers: list[_Customer] = field(default_factory=list)
    merchants: list[tuple[str, str]] = field(default_factory=list)  # (party id, name)
    static_codes: dict[str, str] = field(default_factory=dict)  # merchant id -> QR payload
    first: dict[str, PaymentOutcome] = field(default_factory=dict)
    final: dict[str, PaymentOutcome] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    awaiting_step_up: list[str] = field(default_factory=list)
    resumed: Counter[str] = field(default_factory=Counter)
    refunds: Counter[str] = field(default_factory=Counter)
    refunded_minor: int = 0
    rails: list[str] = field(default_factory=list)
    rail_refused: Counter[str] = field(default_factory=Counter)
    dispositions: Counter[str] = field(default_factory=Counter)
    sequence: int = 0

    def next_id(self, prefix: str) -> str:
        self.sequence += 1
        return f"{prefix}-{self.sequence:05d}"

    def callbacks(self) -> None:
        # An operator's batch job: the service is called directly (see `_run_payments_day`).
        for report in self.service.process_callbacks():
            self.dispositions[report.disposition] += 1

    def rail(self, direction: str, customer: _Customer, amount: int, request_id: str) -> None:
        body = {
            "request_id": request_id,
            "direction": direction,
            "card_fingerprint": customer.card,
            "amount": amount,
        }
        try:
            self.api.call("POST", "/rails", body, params={"party_id": customer.party_id})
            self.rails.append(request_id)
        except _Refused as refused:
            self.rail_refused[f"{direction}: {refused.code}"] += 1


def _outcome_of(document: dict[str, Any]) -> PaymentOutcome:
    """A payment's outcome from the API's JSON (ids travel as decimal strings there)."""
    values = {name: document[name] for name in PaymentOutcome.__dataclass_fields__}
    for name in ("decision_id", "transfer_id"):
        if values[name] is not None:
            values[name] = int(values[name])
    values["reasons"] = tuple(values["reasons"])
    return PaymentOutcome(**values)


def _payments_population(day: _PaymentsDay, ledger: Ledger, world: _IdentityWorld) -> None:
    """Class II customers with wallets and bound cards, and merchants, via identity's flows;
    wallets, merchants and the merchants' static QR codes through the payments API."""
    clock, api = day.clock, day.api
    channels = ("id_document_name_check", "bank_card_element_check", "mobile_carrier_check")
    for index in range(PAYMENT_CUSTOMERS):
        party_id = party_service.register_person(
            ledger,
            f"demo-payer-{index}",
            date_of_birth=date(1970 + index % 35, 1 + index % 12, 1 + index % 28),
            clock=clock,
            key=world.fingerprint_key,
        )
        for number, channel in enumerate(channels):
            party_service.record_verification(
                ledger,
                f"demo-payer-{index}-verification-{number}",
                party_id,
                channel=channel,
                source="nciic",
                verified_at=clock(),
                clock=clock,
            )
        account = party_service.open_payment_account(
            ledger, f"demo-payer-{index}-account", party_id, world.bank, clock=clock
        )
        api.call(
            "POST",
            "/parties/{party_id}/wallet",
            {"payment_account_id": account.account_id},
            party_id=party_id,
        )
        card = world.fingerprint_key.card(f"62220202{index:011d}")
        party_service.bind_bank_card(
            ledger,
            f"demo-payer-{index}-card",
            party_id,
            card_holder_name_matches=True,
            card_fingerprint=card.fingerprint,
            card_last_four=card.last_four,
            clock=clock,
        )
        day.customers.append(_Customer(party_id, card.fingerprint, f"phone-{index:03d}"))
        clock.advance(SECOND_NS)
    registered = list(world.merchants)
    for index, registration in enumerate(_PAYMENT_MERCHANT_REGISTRATIONS):
        registered.append(
            party_service.register_merchant(
                ledger, f"demo-shop-{index}", registration_number=registration, clock=clock
            )
        )
    for merchant_id, (name, category, discount_bps) in zip(
        registered, PAYMENT_MERCHANTS, strict=True
    ):
        api.call(
            "POST",
            "/merchants/{party_id}",
            {"category_code": category, "discount_bps": discount_bps},
            party_id=merchant_id,
        )
        day.merchants.append((merchant_id, name))
        # The static code is printed once and stays at the till all day.
        day.static_codes[merchant_id] = api.call(
            "GET", "/merchants/{party_id}/qr", params={"merchant_name": name}, party_id=merchant_id
        )["payload"]


def _top_up_everyone(day: _PaymentsDay) -> None:
    """Every wallet funded from its bound card; a failed top-up is retried once."""
    amounts = {c.party_id: day.rng.randrange(1_500, 6_000) * 100 for c in day.customers}
    for attempt in ("top-up", "top-up-retry"):
        unfunded = [
            c
            for c in day.customers
            if day.api.call("GET", "/parties/{party_id}/wallet", party_id=c.party_id)["available"]
            == 0
        ]
        for customer in unfunded:
            request_id = f"demo-{attempt}-{day.customers.index(customer):03d}"
            day.rail("top_up", customer, amounts[customer.party_id], request_id)
        _await_rails(day)


def _await_rails(day: _PaymentsDay) -> None:
    """Take the callbacks of the requests just made, then time out those left unanswered."""
    # Every normal callback comes within 30 s, inside the service's rail timeout of 120 s.
    day.clock.advance(45 * SECOND_NS)
    day.callbacks()
    day.clock.advance(DEFAULT_RAIL_TIMEOUT_S * SECOND_NS)
    day.callbacks()


def _draw_payment(day: _PaymentsDay) -> tuple[str, dict[str, Any]] | None:
    """One payment, person to person or to a merchant's QR code, as the request (route and
    body) that pays it; a dynamic code's order is made just before. None when the merchant's
    till could not make the order."""
    rng = day.rng
    payer = rng.choice(day.customers)
    factors = 2 if rng.random() < 0.85 else 1
    # Now and then a payer uses a phone the risk engine has not seen.
    device = payer.device if rng.random() < 0.97 else f"{payer.device}-new{rng.randrange(99)}"
    kind = rng.choices(("p2p", "big_p2p", "static", "dynamic"), (40, 2, 30, 28))[0]
    # The checkout backend pays as the operator for this payer, stating the factors of the
    # session the payer authenticated with (what the daily caps of P2 read).
    body: dict[str, Any] = {
        "payment_id": day.next_id("demo-pay"),
        "payer_id": payer.party_id,
        "device_id": device,
        "payer_auth_factors": factors,
    }
    if kind in ("p2p", "big_p2p"):
        payee = rng.choice([c for c in day.customers if c is not payer])
        # A large transfer from a one-factor session is over P2's daily cap: step-up.
        amount = (
            rng.randrange(1_200, 2_500) * 100 if kind == "big_p2p" else rng.randrange(200, 15_000)
        )
        if kind == "big_p2p":
            body["payer_auth_factors"] = 1
        return "", body | {"payee_id": payee.party_id, "amount": amount, "currency": "CNY"}
    merchant_id, name = rng.choice(day.merchants)
    if kind == "static":
        amount = rng.randrange(300, 8_000)
        return "/qr", body | {"payload": day.static_codes[merchant_id], "amount": amount}
    order = {
        "reference": day.next_id("order"),
        "amount": rng.randrange(1_000, 40_000),
        "merchant_name": name,
    }
    try:
        created = day.api.call("POST", "/merchants/{party_id}/orders", order, party_id=merchant_id)
    except _Refused as refused:
        day.refused[refused.code] += 1
        return None
    return "/qr", body | {"payload": created["payload"]}


def _pay_round(day: _PaymentsDay, count: int) -> None:
    """One moment of the day: earlier step-ups resumed, new payments, a refund, a withdrawal."""
    rng, api = day.rng, day.api
    # About two thirds of the payers asked for a second factor provide it.
    for payment_id in day.awaiting_step_up:
        if rng.random() < 0.67:
            try:
                # The operator's session counts as two factors: the payer's stepped-up one.
                outcome = _outcome_of(
                    api.call("POST", "/{payment_id}/resume", payment_id=payment_id)
                )
            except _Refused as refused:
                day.resumed[refused.code] += 1
                continue
            day.final[payment_id] = outcome
            day.resumed[
                outcome.status if outcome.decline_code is None else outcome.decline_code
            ] += 1
        else:
            day.resumed["abandoned"] += 1
    day.awaiting_step_up = []
    sent = 0
    while sent < count:
        drawn = _draw_payment(day)
        if drawn is None:
            continue
        sent += 1
        route, body = drawn
        # Payments arrive one after another over the moment, not all at the same instant,
        # so the risk engine sees a payer's pace as it would be.
        day.clock.advance(PAYMENT_SPACING_S * SECOND_NS)
        try:
            answer = _outcome_of(api.call("POST", route, body))
        except _Refused as refused:
            day.refused[refused.code] += 1
            continue
        day.first[answer.payment_id] = day.final[answer.payment_id] = answer
        if answer.status == "step_up_required":
            day.awaiting_step_up.append(answer.payment_id)
    if rng.random() < 0.25:
        merchant_paid = [
            o for o in day.final.values() if o.kind == "merchant" and o.status == "completed"
        ]
        if merchant_paid:
            paid = rng.choice(merchant_paid)
            amount = paid.amount if rng.random() < 0.5 else max(1, paid.amount // 3)
            try:
                # The merchant refunds (the operator acting for it).
                api.call(
                    "POST",
                    "/{payment_id}/refunds",
                    {"refund_id": day.next_id("demo-refund"), "amount": amount},
                    payment_id=paid.payment_id,
                )
                day.refunds["refunded"] += 1
                day.refunded_minor += amount
            except _Refused as refused:
                day.refunds[refused.code] += 1
    if rng.random() < 0.35:
        customer = rng.choice(day.customers)
        amount = rng.randrange(100, 1_500) * 100
        day.rail("withdrawal", customer, amount, day.next_id("demo-withdrawal"))


def _run_payments_day(
    services: Services,
    clock: DemoClock,
    world: _IdentityWorld,
    seed: int,
    out: Console,
) -> bool:
    """Seed, fund and run the payments day, settle T+1, reconcile, safeguard; print it all.

    Wallets, merchants, top-ups, payments, step-up resumes, refunds and withdrawals, and the
    credit morning's checkouts on credit, go through the HTTP API in this process; the
    operator's batch jobs (the clearing house's callbacks, settlement, reconciliation, the
    safeguarding check, AML) and the summary's reads call the service, whose reports carry
    more than their operator routes answer with. Returns whether client money is safeguarded
    at the end (the reserve equals every wallet and merchant payable).
    """
    # Imported here so that `tianping --help` and the other commands do not load the risk
    # model's LightGBM and NumPy.
    from tianping.payments.runtime import build_payments

    settings, ledger = services.settings, services.ledger
    rulebook = cached_rulebook(settings.rulebook, tuple(settings.rulebook_overlays))
    clearing = SimulatedClearingHouse(lambda: clock() // SECOND_NS, seed, DEMO_RAIL_BEHAVIOUR)
    # The service as `Services.payments` builds it (the configured rulebook, the default risk
    # engine trained on synthetic data), but on a clearing house that misbehaves on purpose;
    # installed in the demo's services, it is the one the HTTP API serves.
    service = build_payments(ledger, rulebook, clock=clock, clearing=clearing, risk=True)
    services.install_payments(service)
    rng = random.Random(seed)  # noqa: S311 - a reproducible demo, not cryptography
    with _payments_api(services) as api:
        day = _PaymentsDay(service, api, clock, rng)
        # Customers join at the end of the ledger's day; their payments day is the China
        # calendar day after the next, so their wallets are no longer brand new to the risk
        # engine.
        _payments_population(day, ledger, world)
        day_start = china_midnight(clock()) + 2 * DAY_NS
        clock.now = max(clock.now, day_start + 300 * SECOND_NS)
        _top_up_everyone(day)
        opens = day_start + _DAY_OPENS_S * SECOND_NS
        step = (_DAY_CLOSES_S - _DAY_OPENS_S) * SECOND_NS // PAYMENT_ROUNDS
        per_round = -(-PAYMENTS_PER_DAY // PAYMENT_ROUNDS)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=progress_console(),
        ) as progress:
            task = progress.add_task("a day of payments", total=PAYMENTS_PER_DAY)
            done = 0
            for number in range(PAYMENT_ROUNDS):
                clock.now = max(clock.now, opens + number * step)
                day.callbacks()
                count = min(per_round, PAYMENTS_PER_DAY - done)
                _pay_round(day, count)
                done += count
                progress.advance(task, count)
                if number == PAYMENT_ROUNDS // 2:
                    day.rail("withdrawal", day.customers[0], 200_00, _LATE_WITHDRAWAL)
                _await_rails(day)
        # The late success arrives an hour after its timeout; settlement runs the next morning.
        settle_at = day_start + DAY_NS + 9 * 3600 * SECOND_NS
        clock.now = max(clock.now, settle_at)
        day.callbacks()
        business_date = local_date(day_start + _DAY_OPENS_S * SECOND_NS).isoformat()
        settlement = service.settle_merchants(business_date)
        reconciliation = service.reconcile(business_date)
        # The compliance officer's morning: the day's large-value reports (A1, thresholds as
        # dated in the rulebook) and a scan of the week's payments for laundering patterns,
        # each alert opening a case in the audited queue.
        aml = AmlService(service)
        large_values = aml.large_value_reports(business_date)
        scan = aml.scan(business_date, days=AML_SCAN_DAYS)
        cases = aml.cases(limit=AML_CASES_READ)
        credit = _credit_morning(ledger, clock, rulebook, day, world)
    safeguarding = service.safeguarding_check("CNY")
    _print_payments_day(day, business_date, settlement, reconciliation, safeguarding, out)
    api.print_summary(out)
    _print_aml(business_date, large_values, scan, cases, out)
    _print_credit_morning(credit, out)
    return safeguarding.in_balance


@dataclass
class _CreditMorning:
    """What the morning's credit applications came to, for the summary."""

    outcomes: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    declines: Counter[str] = field(default_factory=Counter)
    line_outcomes: Counter[str] = field(default_factory=Counter)
    credit_checkouts: Counter[str] = field(default_factory=Counter)
    lines: int = 0
    drawn: int = 0
    statements: int = 0
    billed: int = 0
    minimum_due: int = 0
    portfolio: dict[str, Any] = field(default_factory=dict)
    loan_ids: list[str] = field(default_factory=list)
    disbursed: int = 0
    accrued: int = 0
    repaid: int = 0
    book: tuple[int, int, int] = (0, 0, 0)


def _credit_morning(
    ledger: Ledger, clock: DemoClock, rulebook: Any, day: _PaymentsDay, world: _IdentityWorld
) -> _CreditMorning:
    """The month after the payments day, in credit.

    A third of the customers apply for an instalment loan; every other applicant has given the
    two credit consents, so its score reads its payments and the bureau, while the others are
    scored on the application alone (the fallback card). Approved offers are taken up and paid
    into the wallets, a day's interest accrues and a few borrowers repay at once. Some of the
    consenting customers open a credit line and pay a merchant on it, which they must choose
    at checkout each time (L6); the line's first statement is issued on its statement day. A
    month on, the classification run finds the borrowers who have not paid their first
    instalment, and the portfolio shows the book by class with its expected-loss provision.
    """
    # Imported here: training loads scikit-learn, optbinning and LightGBM (see bootstrap).
    from tianping.lending.synthetic import platform_scorecard

    lending = build_lending(
        ledger,
        rulebook,
        consent=world.privacy,
        scorer=platform_scorecard(),
        profile=day.service.payer_profile,
    )
    # Checkouts on credit draw on the lines through this port (in the payment's transaction),
    # and the AML reports see the money lending moves through the other.
    day.service.credit_line = lending
    day.service.wallet_movements = lending
    morning = _CreditMorning()
    rng = day.rng
    third = len(day.customers) // 3
    for index, customer in enumerate(day.customers[: 2 * third]):
        if index % 2 == 0:
            for text_id, _, _ in _CREDIT_CONSENT_TEXTS:
                world.privacy.grant_consent(
                    customer.party_id, text_id, 1, f"demo-{text_id}-{index:03d}"
                )
    for index, customer in enumerate(day.customers[:third]):
        application = Application(
            application_id=f"demo-app-{index:03d}",
            party_id=customer.party_id,
            amount=rng.choice((3_000_00, 8_000_00, 20_000_00, 60_000_00)),
            term_months=rng.choice((3, 6, 12)),
            annual_income=rng.randint(30_000_00, 250_000_00),
            is_student=index % 7 == 3,
            # Every other loan is co-lent with the partner bank (70%; the platform keeps 30%).
            partner_bank_id=world.bank if index % 2 else None,
        )
        outcome = lending.apply(application)
        morning.outcomes[outcome.outcome] += 1
        morning.sources[" + ".join(outcome.sources)] += 1
        if outcome.outcome != "approved":
            for rule_id in outcome.rule_ids:
                morning.declines[f"rule {rule_id}"] += 1
            if not outcome.rule_ids:
                reason = outcome.reasons[0]["reason_id"] if outcome.reasons else "score"
                morning.declines[f"score ({reason})"] += 1
            continue
        loan = lending.accept(application.application_id, f"demo-loan-{index:03d}")
        morning.loan_ids.append(loan.loan_id)
        morning.disbursed += loan.principal
    clock.advance(DAY_NS)
    morning.accrued = lending.accrue(local_date(clock())).interest
    for loan_id in morning.loan_ids[::3]:
        try:
            repaid = lending.repay(loan_id, f"demo-repay-{loan_id}", 1_000_00)
        except LendingRefusal:
            continue
        morning.repaid += sum(repaid.allocation.values())
    _credit_lines(lending, clock, day, morning, day.customers[third : 2 * third : 2])
    _month_end(lending, clock, morning)
    with LendingStore.reading(ledger) as store:
        morning.book = store.book_totals("CNY")
    return morning


def _credit_lines(
    lending: LendingService,
    clock: DemoClock,
    day: _PaymentsDay,
    morning: _CreditMorning,
    holders: Sequence[_Customer],
) -> None:
    """Consenting customers open credit lines (billed two days from now, or on the 1st), pay a
    merchant on them by choosing the line at checkout, and get their first statement."""
    statement_on = local_date(clock()) + timedelta(days=2)
    if statement_on.day > LINE_STATEMENT_DAY_MAX:
        statement_on = (statement_on.replace(day=1) + timedelta(days=31)).replace(day=1)
    merchant = day.merchants[0][0]
    for index, customer in enumerate(holders):
        application_id = f"demo-line-app-{index:03d}"
        outcome = lending.apply(
            Application(
                application_id=application_id,
                party_id=customer.party_id,
                amount=day.rng.choice((2_000_00, 5_000_00, 10_000_00)),
                term_months=12,
                annual_income=day.rng.randint(60_000_00, 250_000_00),
                product="credit_line",
            )
        )
        morning.line_outcomes[outcome.outcome] += 1
        if outcome.outcome != "approved":
            continue
        line_id = f"demo-line-{index:03d}"
        lending.open_line(application_id, line_id, statement_on.day)
        morning.lines += 1
        amount = day.rng.choice((88_00, 268_00, 1_299_00))
        checkout = {
            "payment_id": f"demo-credit-checkout-{index:03d}",
            "payer_id": customer.party_id,
            "payee_id": merchant,
            "amount": amount,
            "currency": "CNY",
            "kind": "merchant",
            # The payer chose the line for this payment; nothing ever chooses it for them.
            "funding_source": "credit_line",
            "payer_auth_factors": 2,
            "device_id": customer.device,
        }
        try:
            paid = _outcome_of(day.api.call("POST", "", checkout))
        except _Refused as refused:
            morning.credit_checkouts[refused.code] += 1
            continue
        morning.credit_checkouts[paid.status] += 1
        if paid.status == "completed":
            morning.drawn += amount
    while local_date(clock()) < statement_on:
        clock.advance(DAY_NS)
    morning.statements = lending.issue_statements(statement_on).issued
    for index in range(len(holders)):
        try:
            bill = lending.line_statement(f"demo-line-{index:03d}", statement_on)
        except LendingRefusal:
            continue
        morning.billed += bill.new_balance
        morning.minimum_due += bill.minimum_payment


def _month_end(lending: LendingService, clock: DemoClock, morning: _CreditMorning) -> None:
    """Some weeks on (accrued day by day), classify the book: loans whose first instalment
    is unpaid are past due and leave the normal class; the portfolio shows the provision."""
    since = local_date(clock())
    clock.advance(MONTH_END_DAYS * DAY_NS)
    until = local_date(clock())
    morning.accrued += sum(report.interest for report in lending.accrue_through(until, since))
    # Two borrowers in three pay their first instalment (40% of the principal covers it for
    # every term the demo offers); the others are past due when the book is classified.
    for index, loan_id in enumerate(morning.loan_ids):
        if index % 3 == 2:
            continue
        due = lending.loan(loan_id).principal * 2 // 5
        with contextlib.suppress(LendingRefusal):
            repaid = lending.repay(loan_id, f"demo-instalment-{loan_id}", due)
            morning.repaid += sum(repaid.allocation.values())
    lending.classify(until)
    morning.portfolio = lending.portfolio("CNY")


def _print_credit_morning(morning: _CreditMorning, out: Console) -> None:
    out.print(_count_table("Credit applications", "outcome", morning.outcomes))
    out.print(_count_table("Data the scores could use (by consent)", "sources", morning.sources))
    if morning.declines:
        out.print(_count_table("Declines by rule or score reason", "reason", morning.declines))
    out.print(
        f"credit lines: {dict(morning.line_outcomes)} applications, {morning.lines} opened; "
        f"checkouts on credit (chosen by the payer): {dict(morning.credit_checkouts)}, "
        f"{format_amount(morning.drawn, 'CNY')} CNY drawn; {morning.statements} statement(s) "
        f"issued, {format_amount(morning.billed, 'CNY')} CNY billed, "
        f"{format_amount(morning.minimum_due, 'CNY')} CNY minimum due",
        markup=False,
    )
    if morning.portfolio:
        classes = Table(title=f"Loan book {MONTH_END_DAYS} days later, by five-tier class")
        for column in ("class", "loans", "exposure"):
            classes.add_column(column, justify="left" if column == "class" else "right")
        for tier, totals in morning.portfolio["by_tier"].items():
            classes.add_row(
                cell(tier), cell(totals["loans"]), cell(format_amount(totals["exposure"], "CNY"))
            )
        out.print(classes)
        out.print(
            f"expected-loss provision: {format_amount(morning.portfolio['ecl_total'], 'CNY')} CNY",
            markup=False,
        )
        losses = morning.portfolio["credit_losses"]
        total = losses["total"]
        # A month in, no loan is near the write-off threshold, so the figures are zero; the
        # line shows where they appear and that the ledger check ran.
        out.print(
            f"credit losses to date: {format_amount(total['written_off'], 'CNY')} CNY written "
            f"off, {format_amount(total['recovered'], 'CNY')} CNY recovered, net charge-off "
            f"{format_amount(total['net_charge_off'], 'CNY')} CNY; against the ledger: "
            + ("agrees" if losses["ledger_agrees"] else "DISAGREES"),
            markup=False,
        )
    loans, outstanding, interest = morning.book
    out.print(
        f"loan book: {loans} active loans, {format_amount(outstanding, 'CNY')} CNY outstanding, "
        f"{format_amount(interest, 'CNY')} CNY interest accrued; "
        f"{format_amount(morning.disbursed, 'CNY')} CNY disbursed, "
        f"{format_amount(morning.repaid, 'CNY')} CNY repaid",
        markup=False,
    )


def _print_aml(
    business_date: str,
    large_values: Sequence[LargeValueReport],
    scan: ScanReport,
    cases: Sequence[CaseRow],
    out: Console,
) -> None:
    reports: Counter[str] = Counter(
        f"{report.customer_kind} {report.direction} {report.category}" for report in large_values
    )
    if reports:
        out.print(_count_table(f"Large-value reports of {business_date} (A1)", "kind", reports))
    else:
        out.print(
            f"large-value reports of {business_date}: none (no customer reached an A1 threshold)",
            markup=False,
        )
    by_pattern: Counter[str] = Counter(case.kind for case in cases)
    out.print(_count_table("AML cases open, by pattern", "pattern", by_pattern))
    # The strongest case of each pattern: one detector's many strong alerts (a busy merchant
    # is a fan-in by nature) must not hide the others.
    strongest: dict[str, CaseRow] = {}
    for case in cases:
        best = strongest.get(case.kind)
        if best is None or int(case.alert.get("score", 0)) > int(best.alert.get("score", 0)):
            strongest[case.kind] = case
    table = Table(
        title=f"AML scan {scan.first_day} to {scan.last_day}: the strongest case of each pattern"
    )
    for name in ("case", "pattern", "score", "why (counts and ratios, never names)"):
        table.add_column(name)
    for _, case in sorted(strongest.items()):
        table.add_row(
            cell(case.case_id),
            cell(case.kind),
            cell(case.alert.get("score", "-")),
            cell(case.alert.get("reason", "-")),
        )
    out.print(table)
    left = (
        f"; {scan.alerts_not_opened} more over the per-scan limit, found again by the next scan"
        if scan.alerts_not_opened
        else ""
    )
    out.print(
        f"AML scan: {scan.transfers} payments, {scan.alerts} alert(s), "
        f"{len(scan.cases_opened)} case(s) opened for review{left}",
        markup=False,
    )


def _count_table(title: str, header: str, counts: Counter[str]) -> Table:
    table = Table(title=title)
    table.add_column(header)
    table.add_column("count", justify="right")
    for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(cell(name), cell(count))
    return table


def _print_payments_day(
    day: _PaymentsDay,
    business_date: str,
    settlement: SettlementReport,
    reconciliation: ReconciliationReport,
    safeguarding: SafeguardingReport,
    out: Console,
) -> None:
    service = day.service
    volume = Table(title=f"Payments on {business_date}: volume")
    for name in ("kind", "channel", "status", "decline code"):
        volume.add_column(name)
    for name in ("count", "amount"):
        volume.add_column(name, justify="right", no_wrap=True)
    for kind, channel, status, code, count, amount in service.day_summary(business_date):
        volume.add_row(
            cell(kind), cell(channel), cell(status, "green" if status == "completed" else "yellow"),
            cell(code or "-"), cell(count), cell(format_amount(amount, "CNY")),
        )  # fmt: skip
    out.print(volume)

    declines: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    for outcome in day.first.values():
        if outcome.status == "declined":
            if outcome.decline_code == "rule_denied":
                declines.update(f"rule {reason}" for reason in outcome.reasons)
            else:
                declines[str(outcome.decline_code)] += 1
        elif outcome.status == "step_up_required":
            if outcome.risk_action == "challenge":
                steps["risk challenge: second factor asked"] += 1
            else:
                steps.update(f"step-up asked by rule {reason}" for reason in outcome.reasons)
        if outcome.risk_action == "challenge" and outcome.status == "completed":
            steps["risk challenge: met by the session's second factor"] += 1
        if outcome.risk_action == "deny":
            steps["risk denial"] += 1
    for code, count in day.refused.items():
        declines[f"refused before deciding: {code}"] += count
    for status, count in day.resumed.items():
        steps[f"after step-up: {status}"] += count
    out.print(_count_table("Declines by rule or reason", "rule or reason", declines))
    out.print(_count_table("Step-ups, resumes and risk challenges", "what", steps))

    rails: Counter[str] = Counter(day.rail_refused)
    for request_id in day.rails:
        rail = service.rail_request(request_id)
        note = f" ({rail.outcome_code})" if rail.outcome_code else ""
        rails[f"{rail.direction}: {rail.state}{note}"] += 1
    for disposition, count in day.dispositions.items():
        rails[f"callback {disposition}"] += count
    for status, count in day.refunds.items():
        rails[f"refund: {status}"] += count
    out.print(_count_table("Bank rails and refunds", "what", rails))

    names = dict(day.merchants)
    table = Table(title=f"Merchant settlement T+1 of {business_date}")
    table.add_column("merchant")
    for name in ("payments", "gross", "refunds", "fee", "net paid out"):
        table.add_column(name, justify="right", no_wrap=True)
    totals = [0, 0, 0, 0, 0]
    order = {merchant_id: index for index, (merchant_id, _) in enumerate(day.merchants)}
    # In the demo's own merchant order: the service lists them by (random) party id.
    for row in sorted(settlement.settlements, key=lambda row: order.get(row.merchant_id, 0)):
        values = [row.payments, row.gross, row.refunds, row.fee, row.net]
        totals = [total + value for total, value in zip(totals, values, strict=True)]
        table.add_row(
            cell(names.get(row.merchant_id, row.merchant_id)),
            cell(row.payments),
            *(cell(format_amount(value, row.currency)) for value in values[1:]),
        )
    table.add_row(
        cell("total", "bold"),
        cell(totals[0], "bold"),
        *(cell(format_amount(value, "CNY"), "bold") for value in totals[1:]),
    )
    out.print(table)

    table = Table(title=f"Reconciliation of the clearing file of {business_date}")
    for name in ("break", "request", "settled", "ledger"):
        table.add_column(name)
    for item in reconciliation.breaks:
        table.add_row(
            cell(item.kind, "yellow"),
            cell(item.request_id),
            cell(
                "-"
                if item.settlement is None
                else format_amount(item.settlement.amount_minor, "CNY")
            ),
            cell(
                "-"
                if item.ledger is None
                else f"{item.ledger.state} {format_amount(item.ledger.amount_minor, 'CNY')}"
            ),
        )
    out.print(table)
    out.print(
        f"reconciliation: {reconciliation.settlement_record_count} settled items against "
        f"{reconciliation.ledger_entry_count} ledger entries, {len(reconciliation.breaks)} "
        "break(s) for an operator",
        markup=False,
    )
    completed = [o for o in day.final.values() if o.status == "completed"]
    step_ups = sum(1 for o in day.first.values() if o.status == "step_up_required")
    challenges = sum(
        1
        for o in day.first.values()
        if o.risk_action == "challenge" and o.status == "step_up_required"
    )
    out.print(
        f"payments day {business_date}: {len(day.first)} payments, {len(completed)} completed "
        f"({format_amount(sum(o.amount for o in completed), 'CNY')} CNY), "
        f"{sum(1 for o in day.final.values() if o.status == 'declined')} declined, "
        f"{step_ups} step-ups ({day.resumed['completed']} resumed and completed), "
        f"{challenges} risk challenges",
        markup=False,
    )
    verdict = "in balance" if safeguarding.in_balance else "BREAK"
    out.print(
        f"safeguarding: {verdict} (reserve {format_amount(safeguarding.reserve, 'CNY')}, "
        f"client money {format_amount(safeguarding.client_liabilities, 'CNY')}, "
        f"difference {format_amount(abs(safeguarding.difference), 'CNY')})",
        markup=False,
        style=None if safeguarding.in_balance else "red",
    )


def run_demo(
    state: CliState, data_dir: Path, transfers: int, seed: int, out: Console
) -> tuple[bool, str]:
    """Build and check the demo ledger; returns (check and verify passed, database URL)."""
    database = _fresh_database(data_dir)
    url = f"sqlite:///{database.resolve()}"
    settings = state.settings(database_url=url, data_dir=data_dir)
    # Four China calendar days back: the ledger's day, a quiet day, the payments day and the
    # morning after (settlement T+1) all lie in the past, so later writes on the real clock come
    # after them.
    clock = DemoClock(china_midnight(time.time_ns(), days_back=4))
    services = build_services(settings, migrate=True, clock=clock, pool_size=2)
    try:
        ledger = services.ledger
        accounts = chart_of_accounts()
        out.print(f"demo database: {url} (fresh)", markup=False)
        out.print(_chart_table(accounts))
        results = ledger.create_accounts(
            [
                NewAccount(id=a.id, currency=a.currency, code=a.code, flags=a.flags, owner=a.owner)
                for a in accounts
            ]
        )
        if any(result is not CreateAccountResult.ok for result in results):
            raise CliError(f"could not create the chart of accounts: {set(results)}", EXIT_FAILED)
        rng = random.Random(seed)  # noqa: S311 - a reproducible demo, not cryptography
        run = _Run(ledger, clock, _Generator(rng, _Model(accounts)))
        clock.advance(SECOND_NS)
        funding = run.generator.funding()
        run.submit(funding)
        posted = _post_the_day(run, transfers, progress_console())
        _scenarios(run)
        world = _identity_population(ledger, clock, out)
        safeguarded = _run_payments_day(services, clock, world, seed, out)
        out.print(
            f"posted {len(funding)} opening top-ups, {posted} generated transfers "
            f"(seed {seed}) and {len(run.scenarios)} scenario steps",
            markup=False,
        )
        out.print(results_table(run.results, title="Result codes of every submitted transfer"))
        scenario_table = Table(title="Scenarios")
        for name in ("scenario", "transfer id(s)", "result(s)"):
            scenario_table.add_column(name)
        for title, ids, outcome in run.scenarios:
            good = all(
                part.strip() in ("ok", "exists") or "voided" in part for part in outcome.split(",")
            )
            scenario_table.add_row(
                cell(title), cell(ids), cell(outcome, "green" if good else "yellow")
            )
        out.print(scenario_table)
        out.print(_balances_table(ledger, accounts))
        checked = run_check(ledger, out)
        verified = print_report(verify(ledger, progress_console())[0], out)
    finally:
        services.close()
    return checked and verified and safeguarded, url


def demo_command(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            help="Where demo.db is (re)created; defaults to the global data directory.",
        ),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="Serve the API on the demo database afterwards."),
    ] = True,
    transfers: Annotated[
        int,
        typer.Option(
            "--transfers", metavar="N", min=0, max=1_000_000, help="Generated transfers to post."
        ),
    ] = 3000,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="Seed of the random generator.")
    ] = 7,
    host: Annotated[str, typer.Option("--host", help="Interface for the API.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port for the API.")] = 8000,
) -> None:
    """Run the end-to-end demo on a fresh SQLite ledger, then serve the API."""
    state = state_of(ctx)
    if state.database_url is not None:
        raise CliError(
            "the demo always uses its own SQLite file DIR/demo.db; "
            "drop --database-url and use --data-dir"
        )
    directory = data_dir if data_dir is not None else state.settings().data_dir
    out = console()
    started = time.perf_counter()
    passed, url = run_demo(state, directory, transfers, seed, out)
    out.print(f"demo finished in {time.perf_counter() - started:.1f} s", markup=False)
    if not passed:
        raise CliError("the demo ledger failed its checks", EXIT_FAILED)
    program = sys.argv[0] if Path(sys.argv[0]).name == "tianping" else "tianping"
    out.print("explore it:", markup=False)
    for command in (
        f"ledger statement {WALLETS_CNY[0]}",
        f"ledger history {MERCHANTS[0]}",
        f"ledger accounts show {RESERVE_CNY} {FX_LIQUIDITY_USD}",
        "audit head",
    ):
        out.print(f"  {program} --database-url {url} {command}", markup=False)
    if serve:
        run_server(
            state.settings(database_url=url, data_dir=directory),
            host=host,
            port=port,
            workers=1,
            allow_remote=False,
            config=str(state.config) if state.config is not None else None,
        )
