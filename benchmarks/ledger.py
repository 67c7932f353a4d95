"""Ledger throughput on the shared peer workload, through Tianping's own service layer.

The workload is the one `../shared/bench/peers` runs for every peer: one equity account and 1,000
asset accounts in EUR, each asset account seeded with 1,000,000 minor units from equity (1,000
single transfers, timed separately), then 20,000 random transfers between distinct asset accounts
with amounts of 1 to 10,000 minor units drawn from `random.Random(42)`, then one balance read per
asset account. Every check is on: asset accounts carry `credits_must_not_exceed_debits`, each
transfer is validated, idempotency-checked and hash-chained, and the run ends by comparing every
balance with an in-Python model, running `ledger check` and verifying the audit chain.

Modes:
  batch   up to --batch-size transfers per call (and per durable commit)
  single  one call, one durable commit per transfer
  group   --threads threads each submitting single transfers through the group committer

With --baseline single, each round also runs Tianping in single mode (the baseline for group
commit). With --shape (batch and single modes), each round also runs the storage-only bound:
the statements that store what Tianping stores (its schema, its migrations, its store's own
INSERT and UPDATE statements, one chain row per commit), in the same commits, with none of the
engine's checks, reads or encoding. It answers a different question from the floor: not "how
fast is plain SQL" but "how fast can any implementation of this schema be", so the ratio of
Tianping to the bound is what the Python around the statements costs, and the bound's ratio to
the floor is what the schema's indexes and chain cost (`ledger_bounds.py` measures the same
bound in plain SQL, without Tianping's store).

With --baseline floor, each round also runs the peers' plain-SQL floor (`bench_floor.py`) on
the same backend, mode and N, so the ratio is taken within one round; the JSON line reports
medians over --runs rounds. Prints one JSON line on stdout; progress goes to
stderr.

    python benchmarks/ledger.py --backend sqlite --mode batch --runs 3 --baseline floor
    python benchmarks/ledger.py --backend postgresql --url postgresql://u@127.0.0.1:5432/db
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tianping.db.checkpointer import CHECKPOINT_INTERVAL_S
from tianping.db.migrate import upgrade
from tianping.db.pool import ConnectionPool
from tianping.ledger import journal
from tianping.ledger.adapters.store import store_for
from tianping.ledger.audit import verify_chain
from tianping.ledger.group_commit import GroupCommitter
from tianping.ledger.limits import TRANSFERS_PER_BATCH_MAX
from tianping.ledger.model import Account, AccountFlags, NewAccount, NewTransfer
from tianping.ledger.service import Ledger

PEERS_DIR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "peers"
EQUITY_ID = 1
ASSET_ID_BASE = 1_000_000
TRANSFER_ID_BASE = 10_000_000_000
SEED_TRANSFER_ID_BASE = 5_000_000_000
CURRENCY = "EUR"
ASSET_CODE, EQUITY_CODE, TRANSFER_CODE = 1, 3, 1


def make_workload(n: int, accounts: int, seed: int) -> list[tuple[int, int, int]]:
    """(from index, to index, amount) triples; the same sequence the peer scripts draw."""
    rng = random.Random(seed)
    work = []
    for _ in range(n):
        source = rng.randrange(accounts)
        target = rng.randrange(accounts - 1)
        if target >= source:
            target += 1
        work.append((source, target, rng.randint(1, 10000)))
    return work


def expected_balances(accounts: int, opening: int, work: list[tuple[int, int, int]]) -> list[int]:
    balances = [opening] * accounts
    for source, target, amount in work:
        balances[source] -= amount
        balances[target] += amount
    return balances


def fresh_database(backend: str, url: str | None, scratch: Path, name: str) -> str:
    if backend == "sqlite":
        path = scratch / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    assert url is not None, "--url is required for PostgreSQL"
    import psycopg

    base, _, _ = url.rpartition("/")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def create_accounts(args: argparse.Namespace, ledger: Ledger) -> list[int]:
    """The equity account and the asset accounts; returns the asset accounts' ids."""
    asset_ids = [ASSET_ID_BASE + index for index in range(args.accounts)]
    accounts = [NewAccount(EQUITY_ID, CURRENCY, EQUITY_CODE)] + [
        NewAccount(account_id, CURRENCY, ASSET_CODE, AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
        for account_id in asset_ids
    ]
    for start in range(0, len(accounts), TRANSFERS_PER_BATCH_MAX):
        assert not any(ledger.create_accounts(accounts[start : start + TRANSFERS_PER_BATCH_MAX]))
    return asset_ids


def seed_accounts(args: argparse.Namespace, ledger: Ledger, asset_ids: list[int]) -> None:
    """Fund every asset account from equity, one transfer per commit as the peers do."""
    for index, account_id in enumerate(asset_ids):
        result = ledger.create_transfers(
            [
                NewTransfer(
                    SEED_TRANSFER_ID_BASE + index,
                    account_id,
                    EQUITY_ID,
                    args.opening,
                    CURRENCY,
                    TRANSFER_CODE,
                )
            ]
        )
        assert not any(result), result


def run_tianping(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    upgrade(database_url)
    pool = ConnectionPool(
        database_url,
        size=max(4, args.threads + 2),
        sqlite_synchronous=args.sqlite_sync,
        sqlite_checkpoint_interval_s=args.checkpoint_interval,
    )
    ledger = Ledger(pool)
    work = make_workload(args.n, args.accounts, args.seed)
    expected = expected_balances(args.accounts, args.opening, work)

    started = time.perf_counter()
    asset_ids = create_accounts(args, ledger)
    accounts_s = time.perf_counter() - started
    started = time.perf_counter()
    seed_accounts(args, ledger, asset_ids)
    seed_s = time.perf_counter() - started

    failures = 0
    commits = 0
    started = time.perf_counter()
    if args.mode == "batch":
        for start in range(0, args.n, args.batch_size):
            events = [
                NewTransfer(
                    TRANSFER_ID_BASE + start + offset,
                    asset_ids[target],
                    asset_ids[source],
                    amount,
                    CURRENCY,
                    TRANSFER_CODE,
                )
                for offset, (source, target, amount) in enumerate(
                    work[start : start + args.batch_size]
                )
            ]
            failures += sum(1 for code in ledger.create_transfers(events) if code)
            commits += 1
    elif args.mode == "single":
        for index, (source, target, amount) in enumerate(work):
            result = ledger.create_transfers(
                [
                    NewTransfer(
                        TRANSFER_ID_BASE + index,
                        asset_ids[target],
                        asset_ids[source],
                        amount,
                        CURRENCY,
                        TRANSFER_CODE,
                    )
                ]
            )
            failures += 1 if result[0] else 0
            commits += 1
    else:
        committer = GroupCommitter(ledger)
        failed = [0] * args.threads
        # Each thread owns a slice of the sequence; with the constraint flag on, a different
        # interleaving could in principle change which transfers fail, so the run checks the
        # final balances against the model only when no transfer failed.

        def worker(slot: int) -> None:
            for index in range(slot, args.n, args.threads):
                source, target, amount = work[index]
                result = committer.create_transfers(
                    [
                        NewTransfer(
                            TRANSFER_ID_BASE + index,
                            asset_ids[target],
                            asset_ids[source],
                            amount,
                            CURRENCY,
                            TRANSFER_CODE,
                        )
                    ]
                )
                if result[0]:
                    failed[slot] += 1

        threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        committer.close()
        failures = sum(failed)
        commits = committer.commits
    transfers_s = time.perf_counter() - started

    # The balance reads go through `lookup_balances`, the read a wallet's balance uses, and run
    # first, so that they do not profit from anything the second loop warms. The whole-account
    # read (`lookup_account`) is timed after them for comparison with earlier results.
    started = time.perf_counter()
    balances = []
    for account_id in asset_ids:
        current = ledger.lookup_balances(account_id)
        assert current is not None
        balances.append(current.debits_posted - current.credits_posted)
    reads_s = time.perf_counter() - started
    started = time.perf_counter()
    for account_id in asset_ids:
        assert ledger.lookup_account(account_id) is not None
    account_reads_s = time.perf_counter() - started

    findings = ledger.check()
    with ledger.read(snapshot=True) as store:
        chain = verify_chain(store)
    pool.close()
    checks = {
        "no_transfer_failed": failures == 0,
        "balances_match_model": balances == expected,
        "ledger_check_clean": not findings,
        "audit_chain_verified": chain.ok,
    }
    return {
        "transfers_per_s": round(args.n / transfers_s, 1),
        "balance_reads_per_s": round(args.accounts / reads_s, 1),
        "account_reads_per_s": round(args.accounts / account_reads_s, 1),
        "transfers_s": round(transfers_s, 4),
        "reads_s": round(reads_s, 4),
        "accounts_s": round(accounts_s, 4),
        "seed_s": round(seed_s, 4),
        "commits": commits,
        "chain_records": chain.records,
        "invariant_ok": all(checks.values()),
        "checks": checks,
    }


def run_shape(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    """The storage-only bound: Tianping's rows through Tianping's store, without the engine.

    Each commit takes the write lock and reads the chain's head as every ledger write does, then
    inserts the transfer rows, updates each changed account once and appends one chain record,
    all with the store's own statements. What it leaves out is everything the engine does per
    transfer: the reads of the accounts and ids it checks, the checks, building `Transfer`
    objects, the canonical encoding and its hash (the chain row carries a zero digest, so the
    chain does not verify; `ledger check` still must, and is run).
    """
    upgrade(database_url)
    pool = ConnectionPool(
        database_url,
        size=2,
        sqlite_synchronous=args.sqlite_sync,
        sqlite_checkpoint_interval_s=args.checkpoint_interval,
    )
    ledger = Ledger(pool)
    asset_ids = create_accounts(args, ledger)
    seed_accounts(args, ledger, asset_ids)
    work = make_workload(args.n, args.accounts, args.seed)
    expected = expected_balances(args.accounts, args.opening, work)
    accounts = {account.id: account for account in ledger.lookup_accounts(asset_ids)}
    balances = {
        account.id: [
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        ]
        for account in accounts.values()
    }
    encoded = [account_id.to_bytes(16, "big") for account_id in asset_ids]
    step = args.batch_size if args.mode == "batch" else 1
    commits = 0
    with pool.connection() as connection:
        store = store_for(pool.backend, connection)
        started = time.perf_counter()
        for start in range(0, args.n, step):
            head, _ = store.begin_write()
            timestamp = head.last_timestamp
            rows = []
            changed = set()
            for offset, (source, target, amount) in enumerate(work[start : start + step]):
                timestamp += 1
                rows.append(
                    (
                        timestamp,
                        (TRANSFER_ID_BASE + start + offset).to_bytes(16, "big"),
                        encoded[target],
                        encoded[source],
                        amount,
                        CURRENCY,
                        TRANSFER_CODE,
                        0,
                        None,
                        None,
                        0,
                        None,
                    )
                )
                debit, credit = asset_ids[target], asset_ids[source]
                balances[debit][1] += amount
                balances[credit][3] += amount
                changed.add(debit)
                changed.add(credit)
            store.insert_transfers(rows)
            store.update_balances(
                Account(*fields_of(accounts[account_id])[:6], *balances[account_id])
                for account_id in changed
            )
            store.append_chain(
                journal.next_record(
                    head,
                    journal.LEDGER_BATCH_KIND,
                    head.last_timestamp + 1,
                    timestamp,
                    bytes(32),
                )
            )
            store.commit()
            commits += 1
        transfers_s = time.perf_counter() - started
    stored = []
    for account_id in asset_ids:
        current = ledger.lookup_balances(account_id)
        assert current is not None
        stored.append(current.debits_posted - current.credits_posted)
    findings = ledger.check()
    pool.close()
    checks = {"balances_match_model": stored == expected, "ledger_check_clean": not findings}
    return {
        "transfers_per_s": round(args.n / transfers_s, 1),
        "transfers_s": round(transfers_s, 4),
        "commits": commits,
        "invariant_ok": all(checks.values()),
        "checks": checks,
    }


def fields_of(account: Account) -> tuple[Any, ...]:
    """An account's fields in constructor order."""
    return tuple(getattr(account, field.name) for field in dataclasses.fields(account))


def run_floor(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    """Run the peers' plain-SQL floor in a subprocess and read its RESULT line."""
    script = PEERS_DIR / "bench_floor.py"
    if not script.exists():
        raise SystemExit(f"baseline script not found: {script}")
    floor_url = database_url
    command = [
        sys.executable,
        str(script),
        "--n",
        str(args.n),
        "--accounts",
        str(args.accounts),
        "--db",
        floor_url,
        "--mode",
        "single" if args.mode != "batch" else "batch",
        "--batch-size",
        str(min(args.batch_size, 8000)),
        "--sqlite-sync",
        args.sqlite_sync,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
    if output.returncode != 0 or not lines:
        raise SystemExit(f"floor baseline failed: {output.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--mode", choices=["batch", "single", "group"], default="batch")
    parser.add_argument("--url", help="PostgreSQL server URL (a scratch database is created)")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--opening", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=TRANSFERS_PER_BATCH_MAX)
    parser.add_argument("--threads", type=int, default=32, help="client threads in group mode")
    parser.add_argument("--sqlite-sync", default="FULL", choices=["OFF", "NORMAL", "FULL"])
    parser.add_argument(
        "--checkpoint-interval",
        type=lambda text: None if text == "none" else float(text),
        default=CHECKPOINT_INTERVAL_S,
        help="seconds between the pool's WAL checkpoints on SQLite, or 'none' to leave them "
        "to the writers (default: the pool's own)",
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--shape",
        action="store_true",
        help="also run the storage-only bound in each round (batch and single modes)",
    )
    parser.add_argument(
        "--baseline",
        choices=["none", "floor", "single"],
        default="none",
        help="floor: the peers' plain-SQL floor; single: Tianping itself in "
        "single mode (the baseline for group commit)",
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="tianping-bench-"))
    rounds: list[dict[str, Any]] = []
    try:
        for round_number in range(1, args.runs + 1):
            row: dict[str, Any] = {"round": round_number}
            if args.baseline == "single":
                single_args = argparse.Namespace(**{**vars(args), "mode": "single"})
                single_url = fresh_database(args.backend, args.url, scratch, "tp_bench_single")
                row["single"] = run_tianping(single_args, single_url)
            if args.baseline == "floor":
                if args.backend == "sqlite":
                    floor_url = f"sqlite:///{scratch}/floor.db"
                else:
                    floor_url = fresh_database("postgresql", args.url, scratch, "tp_bench_floor")
                row["floor"] = run_floor(args, floor_url)
            if args.shape and args.mode != "group":
                shape_url = fresh_database(args.backend, args.url, scratch, "tp_bench_shape")
                row["shape"] = run_shape(args, shape_url)
            url = fresh_database(args.backend, args.url, scratch, "tp_bench_ledger")
            row["tianping"] = run_tianping(args, url)
            print(f"round {round_number}: {json.dumps(row)}", file=sys.stderr)
            rounds.append(row)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def median(path: tuple[str, str]) -> float:
        return statistics.median(row[path[0]][path[1]] for row in rounds)

    summary: dict[str, Any] = {
        "benchmark": "ledger",
        "backend": args.backend,
        "mode": args.mode,
        "n": args.n,
        "accounts": args.accounts,
        "runs": args.runs,
        "batch_size": args.batch_size if args.mode == "batch" else 1,
        "threads": args.threads if args.mode == "group" else 1,
        "sqlite_synchronous": args.sqlite_sync if args.backend == "sqlite" else None,
        "checkpoint_interval_s": args.checkpoint_interval if args.backend == "sqlite" else None,
        "transfers_per_s": median(("tianping", "transfers_per_s")),
        "balance_reads_per_s": median(("tianping", "balance_reads_per_s")),
        "account_reads_per_s": median(("tianping", "account_reads_per_s")),
        "invariant_ok": all(row["tianping"]["invariant_ok"] for row in rounds),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "rounds": rounds,
    }
    if args.baseline == "floor":
        summary["floor_transfers_per_s"] = median(("floor", "transfers_per_s"))
        summary["floor_reads_per_s"] = median(("floor", "reads_per_s"))
        summary["ratio_transfers_vs_floor"] = round(
            statistics.median(
                row["tianping"]["transfers_per_s"] / row["floor"]["transfers_per_s"]
                for row in rounds
            ),
            3,
        )
        for read, key in (
            ("balance", "ratio_reads_vs_floor"),
            ("account", "ratio_account_reads_vs_floor"),
        ):
            summary[key] = round(
                statistics.median(
                    row["tianping"][f"{read}_reads_per_s"] / row["floor"]["reads_per_s"]
                    for row in rounds
                ),
                3,
            )
    if "shape" in rounds[0]:
        summary["shape_transfers_per_s"] = median(("shape", "transfers_per_s"))
        summary["shape_invariant_ok"] = all(row["shape"]["invariant_ok"] for row in rounds)
        summary["ratio_transfers_vs_shape"] = round(
            statistics.median(
                row["tianping"]["transfers_per_s"] / row["shape"]["transfers_per_s"]
                for row in rounds
            ),
            3,
        )
        if args.baseline == "floor":
            summary["ratio_shape_vs_floor"] = round(
                statistics.median(
                    row["shape"]["transfers_per_s"] / row["floor"]["transfers_per_s"]
                    for row in rounds
                ),
                3,
            )
    if args.baseline == "single":
        summary["single_transfers_per_s"] = median(("single", "transfers_per_s"))
        summary["ratio_transfers_vs_single"] = round(
            statistics.median(
                row["tianping"]["transfers_per_s"] / row["single"]["transfers_per_s"]
                for row in rounds
            ),
            3,
        )
    print(json.dumps(summary))
    return 0 if summary["invariant_ok"] and summary.get("shape_invariant_ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
