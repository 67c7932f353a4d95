"""Lending: the daily interest accrual over a large loan book, on SQLite.

Set-up (not timed): a fresh SQLite database (`synchronous=FULL`) with `--loans` active loans
inserted in bulk into the loan sub-ledger (principal 1,000.00 to 50,000.00 CNY, rates 7.2% to
24%, a third co-lent 70/30 with one of five partner banks), as origination would leave them;
originating a million loans one by one is not what is measured here.

Timed, `--runs` times on consecutive days: `LendingService.accrue(day)`, i.e. the aggregate per
currency and funding split, one UPDATE of every active loan (exact integer interest with the
sub-fen remainder carried), one ledger transfer per currency and funder, the run's record, one
durable commit. Same-run baseline: the cheapest statement that touches every loan row
(`UPDATE loans SET updated_at = updated_at + 1 WHERE status = 'active'`) in its own commit.

Target (issue 6): the daily accrual for 1,000,000 loans within 60 seconds on SQLite.
Prints one JSON line on stdout; progress goes to stderr.

    python benchmarks/lending.py --loans 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.ledger.audit import verify_chain
from tianping.ledger.service import Ledger
from tianping.lending.chart import PLATFORM
from tianping.lending.service import LendingService
from tianping.lending.store import LendingStore, LoanRow

TARGET_S = 60.0
START = date(2026, 1, 1)
CHUNK = 50_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed(ledger: Ledger, count: int, rng: random.Random) -> None:
    banks = [f"bank-{index}" for index in range(5)]
    for start in range(0, count, CHUNK):
        loans = []
        for index in range(start, min(count, start + CHUNK)):
            principal = rng.randint(1_000_00, 50_000_00)
            colent = index % 3 == 0
            loans.append(
                LoanRow(
                    loan_id=f"L{index:09d}",
                    application_id=f"A{index:09d}",
                    party_id=f"pty_{index:026d}",
                    product="instalment",
                    currency="CNY",
                    partner_bank_id=banks[index % 5] if colent else PLATFORM,
                    bank_share_bps=7_000 if colent else 0,
                    rate_bps=rng.randint(720, 2_400),
                    principal=principal,
                    outstanding_principal=principal,
                    accrued_interest=0,
                    accrual_remainder=0,
                    fees_due=0,
                    penalty_due=0,
                    disbursed_on=START.isoformat(),
                    last_accrual_on=START.isoformat(),
                    next_due_on=None,
                    oldest_unpaid_due_on=None,
                    days_past_due=0,
                    tier="normal",
                    stage=1,
                    status="active",
                    created_at=1,
                    updated_at=1,
                )
            )
        with ledger.write() as uow:
            LendingStore(uow.connection, uow.store.backend).insert_loans(loans)
        log(f"  {min(count, start + CHUNK)} loans")


def touch_every_row(ledger: Ledger) -> float:
    started = time.perf_counter()
    with ledger.write() as uow:
        uow.connection.execute(
            "UPDATE loans SET updated_at = updated_at + 1 WHERE status = 'active'"
        )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="tianping-lending-bench-"))
    url = f"sqlite:///{scratch / 'bench.db'}"
    try:
        upgrade(url)
        ledger = Ledger(ConnectionPool(url, size=2))
        log(f"seeding {args.loans} loans")
        seed(ledger, args.loans, random.Random(args.seed))
        service = LendingService(ledger)
        rounds = []
        for run in range(args.runs):
            day = START + timedelta(days=run + 1)
            floor_s = touch_every_row(ledger)
            started = time.perf_counter()
            report = service.accrue(day)
            accrual_s = time.perf_counter() - started
            rounds.append(
                {
                    "day": day.isoformat(),
                    "accrual_s": round(accrual_s, 2),
                    "touch_every_row_s": round(floor_s, 2),
                    "loans": report.loans,
                    "interest_minor": report.interest,
                }
            )
            log(f"  {rounds[-1]}")
        findings = ledger.check()
        with ledger.read(snapshot=True) as store:
            chain = verify_chain(store)
        median = statistics.median(r["accrual_s"] for r in rounds)
        floor = statistics.median(r["touch_every_row_s"] for r in rounds)
        print(
            json.dumps(
                {
                    "benchmark": "lending_accrual",
                    "backend": "sqlite",
                    "loans": args.loans,
                    "runs": args.runs,
                    "accrual_s_median": median,
                    "touch_every_row_s_median": floor,
                    "ratio_to_floor": round(median / floor, 2) if floor else None,
                    "rounds": rounds,
                    "target_s": TARGET_S,
                    "met": median <= TARGET_S,
                    "ledger_check_findings": len(findings),
                    "audit_chain_ok": chain.ok,
                    "python": platform.python_version(),
                }
            )
        )
        return 0 if not findings and chain.ok else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
