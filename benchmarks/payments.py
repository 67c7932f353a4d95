"""Payments throughput in-process, with the rules engine, the risk engine and the audit chain on.

Set-up (not timed): a fresh SQLite database (`synchronous=FULL`, so every commit is durable) or
PostgreSQL, `--customers` people registered through the identity context's service functions
(three verifications, so Class II; a payment account; a bound card; a wallet), each funded by a
top-up through the simulated clearing house (hold, callback, post). The risk engine is the
default one (LightGBM trained on the synthetic stream). Each customer gets its own device id, and
the clock starts a month after the accounts were opened, so the risk rules for brand-new
accounts and shared devices do not stop every payment.

Timed: `--n` P2P payments between random distinct customers, amounts 1.00 to 50.00 CNY from
`random.Random(42)`, each session with two factors. Every payment: its payer's counters are read
and written, the rules engine decides `payment.authorize` and the decision is stored with its
audit-chain record, the risk engine computes the online features and scores them (model and
explicit rules), a ledger transfer is written with its own chain record.

Modes (each run in the same process, on the same database, one after the other):
  batch   `PaymentsService.pay` with --batch-size commands per call (one transaction each);
          the default is the largest batch one call takes (`COMMANDS_PER_BATCH_MAX`), which is
          what `PaymentBatcher` forms under load; results up to 2026-11-28 used 500
  group   --threads threads each submitting single payments through `PaymentBatcher`
The same-run baseline is the ledger alone: the same number of plain P2P transfers between the
same wallets through `Ledger.create_transfers` in batches of --batch-size, which is what the
payments layer adds its checks to.

At the end the ledger's invariants, the audit chain and the safeguarding check must hold.
Prints one JSON line on stdout; progress goes to stderr.

    python benchmarks/payments.py --customers 500 --n 20000 --runs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tianping.bootstrap import freeze_long_lived_heap
from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.identity import party_service
from tianping.identity.party_service import FingerprintKey
from tianping.ledger.audit import verify_chain
from tianping.ledger.model import NewTransfer
from tianping.ledger.service import Ledger
from tianping.payments import chart
from tianping.payments.clearing_sim import SimulatedClearingHouse
from tianping.payments.model import COMMANDS_PER_BATCH_MAX, PaymentCommand, PaymentOutcome
from tianping.payments.runtime import PaymentBatcher, build_payments, default_risk_engine
from tianping.rules.config import cached_rulebook

NS = 1_000_000_000
TARGET_PER_S = 5_000
DAY_NS = 86_400 * NS


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BenchClock:
    """Wall time shifted by an offset the set-up moves forward (a month after opening)."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset


def setup(
    url: str, customers: int, clock: BenchClock, age_days: int = 30
) -> tuple[Ledger, Any, list[str]]:
    """Customers onboarded, funded and (for the risk engine's sake) `age_days` old."""
    upgrade(url)
    ledger = Ledger(ConnectionPool(url, size=8), clock=clock)
    clearing = SimulatedClearingHouse(lambda: clock() // NS, seed=1)
    service = build_payments(
        ledger, cached_rulebook("cn"), clock=clock, clearing=clearing, risk=default_risk_engine()
    )
    key = FingerprintKey(secrets.token_bytes(32))
    bank = party_service.register_institution(
        ledger, "bench-bank", institution_kind="partner_bank", clock=clock
    )
    people = []
    channels = ("id_document_name_check", "bank_card_element_check", "mobile_carrier_check")
    for index in range(customers):
        party = party_service.register_person(
            ledger,
            f"bench-{index}",
            date_of_birth=dt.date(1990, 1, 1),
            clock=clock,
            key=key,
        )
        for number, channel in enumerate(channels):
            party_service.record_verification(
                ledger,
                f"v-{index}-{number}",
                party,
                channel=channel,
                source="bench",
                verified_at=clock() - NS,
                clock=clock,
            )
        account = party_service.open_payment_account(ledger, f"a-{index}", party, bank, clock=clock)
        service.open_wallet(party, account.account_id)
        card = key.card(f"6222020200{index:09d}")
        party_service.bind_bank_card(
            ledger,
            f"c-{index}",
            party,
            card_holder_name_matches=True,
            card_fingerprint=card.fingerprint,
            card_last_four=card.last_four,
            clock=clock,
        )
        service.request_rail(f"fund-{index}", "top_up", party, card.fingerprint, 50_000_00)
        people.append(party)
        if index % 100 == 99:
            log(f"  {index + 1} customers")
    clock.offset += 40 * NS
    service.process_callbacks(limit=1_000)
    while service.process_callbacks(limit=1_000):
        pass
    clock.offset += age_days * DAY_NS
    return ledger, service, people


def scratch_postgres(server_url: str) -> tuple[str, Any]:
    """A fresh database on the PostgreSQL server at `server_url`, and how to drop it."""
    import psycopg

    name = f"tianping_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return server_url.rsplit("/", 1)[0] + "/" + name, drop


def workload(people: list[str], n: int, seed: int, prefix: str) -> list[PaymentCommand]:
    rng = random.Random(seed)
    commands = []
    for index in range(n):
        payer, payee = rng.sample(people, 2)
        commands.append(
            PaymentCommand(
                f"{prefix}-{index}",
                payer,
                payee,
                rng.randint(100, 5_000),
                "CNY",
                auth_factors=2,
                device_id=f"dev-{payer[-8:]}",
            )
        )
    return commands


def run_batch(
    service: Any, commands: list[PaymentCommand], batch_size: int, clock: BenchClock
) -> tuple[float, dict[str, int]]:
    statuses: dict[str, int] = {}
    started = time.perf_counter()
    for start in range(0, len(commands), batch_size):
        # Simulated time runs faster than the benchmark: a batch is what the whole population
        # pays in ten minutes, so no customer pays at machine speed and trips the velocity rule.
        clock.offset += 600 * NS
        for answer in service.pay(commands[start : start + batch_size]):
            key = answer.status if isinstance(answer, PaymentOutcome) else answer.code
            statuses[key] = statuses.get(key, 0) + 1
    return len(commands) / (time.perf_counter() - started), statuses


def run_group(
    service: Any, commands: list[PaymentCommand], threads: int, clock: BenchClock
) -> tuple[float, dict[str, int]]:
    batcher = PaymentBatcher(service)
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    shares = [commands[i::threads] for i in range(threads)]

    def work(share: list[PaymentCommand]) -> None:
        local: dict[str, int] = {}
        for command in share:
            # As in batch mode: each payment moves simulated time on (by 1.2 s; a lost update
            # between threads only slows it a little).
            clock.offset += 1_200_000_000
            try:
                answer = batcher.pay(command)
                key = answer.status
            except Exception as error:
                key = getattr(error, "code", type(error).__name__)
            local[key] = local.get(key, 0) + 1
        with lock:
            for key, count in local.items():
                statuses[key] = statuses.get(key, 0) + count

    workers = [threading.Thread(target=work, args=(share,)) for share in shares]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rate = len(commands) / (time.perf_counter() - started)
    batcher.close()
    return rate, statuses


def run_ledger_floor(
    ledger: Ledger, people: list[str], n: int, batch_size: int, seed: int
) -> float:
    rng = random.Random(seed)
    accounts = [chart.wallet_account(person, "CNY") for person in people]
    transfers = []
    base = 9 * 10**30 + seed * 10**9
    for index in range(n):
        payer, payee = rng.sample(accounts, 2)
        transfers.append(NewTransfer(base + index, payer, payee, rng.randint(1, 50), "CNY", 101))
    started = time.perf_counter()
    for start in range(0, n, batch_size):
        ledger.create_transfers(transfers[start : start + batch_size])
    return n / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", help="a PostgreSQL server URL (a scratch database is made); default SQLite"
    )
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=COMMANDS_PER_BATCH_MAX)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="tianping-payments-bench-"))
    drop = None
    url = f"sqlite:///{scratch / 'bench.db'}"
    if args.url:
        url, drop = scratch_postgres(args.url)
    try:
        clock = BenchClock()
        log(f"setting up {args.customers} customers on {url.split(':')[0]}")
        ledger, service, people = setup(url, args.customers, clock)
        # What `Services.payments` does once it has built the service in a serving process:
        # the set-up's objects (the model, the rulebook, the customers' risk state) are kept
        # out of the collector's full scans, which otherwise took about a tenth of the time.
        freeze_long_lived_heap()
        rounds = []
        for round_number in range(args.runs):
            log(f"round {round_number + 1}: ledger floor, batch, group")
            floor = run_ledger_floor(ledger, people, args.n, args.batch_size, round_number)
            batch_rate, batch_statuses = run_batch(
                service,
                workload(people, args.n, 42 + round_number, f"b{round_number}"),
                args.batch_size,
                clock,
            )
            group_rate, group_statuses = run_group(
                service,
                workload(people, args.n // 2, 99 + round_number, f"g{round_number}"),
                args.threads,
                clock,
            )
            rounds.append(
                {
                    "ledger_floor_per_s": round(floor),
                    "batch_per_s": round(batch_rate),
                    "group_per_s": round(group_rate),
                    "batch_statuses": batch_statuses,
                    "group_statuses": group_statuses,
                }
            )
            log(f"  {rounds[-1]}")
        findings = ledger.check()
        with ledger.read(snapshot=True) as store:
            chain = verify_chain(store)
        safeguarding = service.safeguarding_check()
        batch = statistics.median(r["batch_per_s"] for r in rounds)
        group = statistics.median(r["group_per_s"] for r in rounds)
        floor = statistics.median(r["ledger_floor_per_s"] for r in rounds)
        result = {
            "benchmark": "payments",
            "backend": url.split(":")[0],
            "customers": args.customers,
            "payments_per_round": args.n,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "runs": args.runs,
            "batch_payments_per_s": batch,
            "group_payments_per_s": group,
            "ledger_floor_transfers_per_s": floor,
            "batch_to_ledger_ratio": round(batch / floor, 3),
            "rounds": rounds,
            "target_per_s": TARGET_PER_S,
            "met": {"batch": batch >= TARGET_PER_S, "group": group >= TARGET_PER_S},
            "ledger_check_findings": len(findings),
            "audit_chain_ok": chain.ok,
            "safeguarding_in_balance": safeguarding.in_balance,
            "python": platform.python_version(),
        }
        print(json.dumps(result))
        return 0 if not findings and chain.ok and safeguarding.in_balance else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if drop is not None:
            drop()


if __name__ == "__main__":
    raise SystemExit(main())
