"""`tianping demo`: one simulated day of a small payments platform on a fresh SQLite ledger.

The demo builds its own database, ``DIR/demo.db`` under ``--data-dir`` (removing only that file
and its ``-wal``/``-shm`` companions from an earlier run), opens a chart of accounts, posts a few
thousand transfers drawn from a seeded random generator, walks through the ledger's features one
scenario at a time, prints the main balances, runs `ledger check` and `audit verify`, and then
serves the API on the demo database unless ``--no-serve`` is given.

Ledger time comes from a clock the demo controls: it starts 24 hours before the wall clock and
moves forward as the day is replayed, so a hold's timeout can pass without sleeping, and every
later write (by the API, on the real clock) lands after the demo's day.

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

import os
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tianping.bootstrap import build_services
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

DEMO_DATABASE = "demo.db"
BATCH_SIZE = 500
DAY_NS = 24 * 3600 * 1_000_000_000
SECOND_NS = 1_000_000_000

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


def _identity_keys() -> tuple[FingerprintKey, MasterKey, bool]:
    """The configured identity keys, or throwaway in-memory keys for this run (never stored)."""
    configured = bool(os.environ.get(CARD_FINGERPRINT_KEY_ENV)) and bool(
        os.environ.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_FILE_ENV)
    )
    if configured:
        return FingerprintKey.from_env(), load_master_key(), False
    return FingerprintKey(secrets.token_bytes(32)), MasterKey.generate(), True


def _identity_population(ledger: Ledger, clock: DemoClock, out: Console) -> None:
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
    for index, registration in enumerate(_DEMO_MERCHANTS):
        merchant = party_service.register_merchant(
            ledger, f"demo-merchant-{index}", registration_number=registration, clock=clock
        )
        table.add_row(
            cell(merchant), cell("merchant"), cell("-"), cell("-"), cell("-"),
            cell("registered", "green"),
        )  # fmt: skip
    out.print(table)


def run_demo(
    state: CliState, data_dir: Path, transfers: int, seed: int, out: Console
) -> tuple[bool, str]:
    """Build and check the demo ledger; returns (check and verify passed, database URL)."""
    database = _fresh_database(data_dir)
    url = f"sqlite:///{database.resolve()}"
    settings = state.settings(database_url=url, data_dir=data_dir)
    clock = DemoClock((time.time_ns() - DAY_NS) // SECOND_NS * SECOND_NS)
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
        _identity_population(ledger, clock, out)
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
    return checked and verified, url


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
