"""What any ledger on Tianping's schema could reach on SQLite: plain SQL, beside the floor.

Issue 2 sets the ledger's SQLite targets as ratios to the peers' plain-SQL floor
(`../shared/bench/peers/bench_floor.py`): 0.6 of its batched rate and 0.8 of its rate with one
durable commit per transfer. The floor stores a transfer as one row of four integers with no
index, and checks nothing. This script measures, in the same round as the floor, how fast
plain SQL can go when it stores what Tianping stores and reads what a checking ledger has to
read. No Tianping code runs in the timed loops: the schema comes from Tianping's
migrations, everything else is written out here.

Variants, each on a fresh database file in the same round:

  schema        Tianping's schema (16-byte ids, the transfer row with its unique id index and
                its two per-account indexes that serve account history) and one hash-chain
                row per commit. One transfer per commit uses the floor's INSERT and two
                UPDATEs; batched, the rows go in with one `executemany` and each account the
                batch changed is updated once, the cheapest pattern for this schema and the
                one Tianping's store uses.
  schema_reads  `schema`, plus the reads no checking ledger can skip, set-based, once per
                commit: the accounts the commit touches (flags and balances, for the limits)
                and which of its transfer ids already exist (idempotency).
  floor_reads   the floor's own schema and statements plus the same two reads: what the
                reads cost without the schema.

The ratio of each variant to the floor bounds what an implementation of that variant can reach
here; Tianping runs Python checks on top, so it can only be slower than `schema_reads`.

    python benchmarks/ledger_bounds.py --mode single --runs 5
    python benchmarks/ledger_bounds.py --mode batch --runs 5

Prints one JSON line on stdout (medians over rounds, ratios taken within each round); progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger import expected_balances, make_workload, run_floor

from tianping.db.connect import connect_sqlite
from tianping.db.migrate import upgrade
from tianping.ledger.adapters.store import TRANSFER_COLUMNS

VARIANTS = ("schema", "schema_reads", "floor_reads")
ACCOUNT_ID_BASE = 1_000_000
TRANSFER_ID_BASE = 10_000_000_000
# SQLite's default host-parameter limit is 32,766; an id list is bound in pieces of this size.
PARAMETERS_PER_STATEMENT = 30_000


def _id(value: int) -> bytes:
    return value.to_bytes(16, "big")


def _in_list(count: int) -> str:
    return ", ".join("?" * count)


def _transfer_row(
    timestamp: int, transfer: bytes, debit: bytes, credit: bytes, amount: int
) -> tuple[Any, ...]:
    """A plain transfer as Tianping stores it, in `TRANSFER_COLUMNS` order."""
    return (timestamp, transfer, debit, credit, amount, "EUR", 1, 0, None, None, 0, None)


def _tianping_schema(path: Path, args: argparse.Namespace) -> sqlite3.Connection:
    """A database migrated to Tianping's schema, holding the accounts already funded."""
    upgrade(f"sqlite:///{path}")
    connection = connect_sqlite(str(path), synchronous=args.sqlite_sync)
    connection.execute("BEGIN")
    connection.execute(
        "INSERT INTO accounts (id, currency, code, flags, owner, timestamp, credits_posted) "
        "VALUES (?, 'EUR', 3, 0, '', 1, ?)",
        (_id(1), args.opening * args.accounts),
    )
    connection.executemany(
        "INSERT INTO accounts (id, currency, code, flags, owner, timestamp, debits_posted) "
        "VALUES (?, 'EUR', 1, 4, '', ?, ?)",
        [(_id(ACCOUNT_ID_BASE + index), 2 + index, args.opening) for index in range(args.accounts)],
    )
    connection.execute("COMMIT")
    return connection


def _floor_schema(path: Path, args: argparse.Namespace) -> sqlite3.Connection:
    """The floor's two tables (as `bench_floor.py` creates them), accounts already funded."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {args.sqlite_sync}")  # one of a fixed choice list
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "currency CHAR(3) NOT NULL, debits BIGINT NOT NULL DEFAULT 0, "
        "credits BIGINT NOT NULL DEFAULT 0)"
    )
    connection.execute(
        "CREATE TABLE transfers (id INTEGER PRIMARY KEY, "
        "debit_account_id BIGINT NOT NULL REFERENCES accounts(id), "
        "credit_account_id BIGINT NOT NULL REFERENCES accounts(id), "
        "amount BIGINT NOT NULL CHECK (amount > 0))"
    )
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO accounts (id, name, currency, debits) VALUES (?, ?, 'EUR', ?)",
        [(index + 1, f"Asset {index:04d}", args.opening) for index in range(args.accounts)],
    )
    connection.execute("COMMIT")
    return connection


def run_variant(variant: str, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    work = make_workload(args.n, args.accounts, args.seed)
    step = args.batch_size if args.mode == "batch" else 1
    reads = variant.endswith("_reads")
    if variant.startswith("schema"):
        connection = _tianping_schema(path, args)
        key: Callable[[int], Any] = lambda index: _id(ACCOUNT_ID_BASE + index)  # noqa: E731
        transfer_key: Callable[[int], Any] = lambda number: _id(TRANSFER_ID_BASE + number)  # noqa: E731
        insert = f"INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES ({_in_list(12)})"
        debit = "UPDATE accounts SET debits_posted = debits_posted + ? WHERE id = ?"
        credit = "UPDATE accounts SET credits_posted = credits_posted + ? WHERE id = ?"
        accounts_read = "SELECT id, flags, debits_pending, debits_posted, credits_pending, "
        accounts_read += "credits_posted FROM accounts WHERE id IN ({})"
        ids_read = "SELECT id FROM transfers WHERE id IN ({})"
        chain = "INSERT INTO audit_chain (seq, kind, first_timestamp, last_timestamp, body, "
        chain += "body_hash, previous_hash, hash) VALUES (?, 'ledger', ?, ?, NULL, ?, ?, ?)"
    else:
        connection = _floor_schema(path, args)
        key = lambda index: index + 1  # noqa: E731
        transfer_key = lambda number: number + 1  # noqa: E731
        insert = "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount) "
        insert += "VALUES (?, ?, ?, ?)"
        debit = "UPDATE accounts SET debits = debits + ? WHERE id = ?"
        credit = "UPDATE accounts SET credits = credits + ? WHERE id = ?"
        accounts_read = "SELECT id, debits, credits FROM accounts WHERE id IN ({})"
        ids_read = "SELECT id FROM transfers WHERE id IN ({})"
        chain = ""
    keys = [key(index) for index in range(args.accounts)]
    previous_hash = bytes(32)
    timestamp = 1_000
    commits = 0
    execute = connection.execute
    started = time.perf_counter()
    for start in range(0, args.n, step):
        batch = work[start : start + step]
        execute("BEGIN IMMEDIATE")
        if reads:
            touched = list(
                {keys[index] for source, target, _ in batch for index in (source, target)}
            )
            execute(accounts_read.format(_in_list(len(touched))), touched).fetchall()
            numbers = [transfer_key(start + offset) for offset in range(len(batch))]
            for first in range(0, len(numbers), PARAMETERS_PER_STATEMENT):
                piece = numbers[first : first + PARAMETERS_PER_STATEMENT]
                execute(ids_read.format(_in_list(len(piece))), piece).fetchall()
        first_timestamp = timestamp + 1
        if chain and step > 1:
            # Tianping's schema, batched: the cheapest pattern SQLite offers for it, which is
            # the one Tianping's store uses (one `executemany` for the rows, one UPDATE per
            # account the batch changed).
            rows = []
            debits: dict[Any, int] = {}
            credits: dict[Any, int] = {}
            for offset, (source, target, amount) in enumerate(batch):
                timestamp += 1
                rows.append(
                    _transfer_row(
                        timestamp, transfer_key(start + offset), keys[target], keys[source], amount
                    )
                )
                debits[keys[target]] = debits.get(keys[target], 0) + amount
                credits[keys[source]] = credits.get(keys[source], 0) + amount
            connection.executemany(insert, rows)
            connection.executemany(debit, [(total, account) for account, total in debits.items()])
            connection.executemany(credit, [(total, account) for account, total in credits.items()])
        else:
            # One transfer per commit, or the floor's own pattern: a statement per row.
            for offset, (source, target, amount) in enumerate(batch):
                timestamp += 1
                if chain:
                    row = _transfer_row(
                        timestamp, transfer_key(start + offset), keys[target], keys[source], amount
                    )
                else:
                    row: tuple[Any, ...] = (
                        transfer_key(start + offset),
                        keys[target],
                        keys[source],
                        amount,
                    )
                execute(insert, row)
                execute(debit, (amount, keys[target]))
                execute(credit, (amount, keys[source]))
        if chain:
            body_hash = hashlib.sha256(timestamp.to_bytes(8, "big")).digest()
            link = hashlib.sha256(previous_hash + body_hash).digest()
            execute(
                chain, (commits + 1, first_timestamp, timestamp, body_hash, previous_hash, link)
            )
            previous_hash = link
        execute("COMMIT")
        commits += 1
    elapsed = time.perf_counter() - started
    expected = expected_balances(args.accounts, args.opening, work)
    if chain:
        balance = "SELECT debits_posted - credits_posted FROM accounts WHERE id = ?"
    else:
        balance = "SELECT debits - credits FROM accounts WHERE id = ?"
    stored = [execute(balance, (account,)).fetchone()[0] for account in keys]
    connection.close()
    return {
        "transfers_per_s": round(args.n / elapsed, 1),
        "commits": commits,
        "invariant_ok": stored == expected,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["batch", "single"], default="single")
    parser.add_argument("--n", type=int, help="transfers (default 20,000 batched, 5,000 single)")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--opening", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=8000, help="the floor's batch size")
    parser.add_argument("--sqlite-sync", default="FULL", choices=["OFF", "NORMAL", "FULL"])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.n is None:
        args.n = 20_000 if args.mode == "batch" else 5_000

    scratch = Path(tempfile.mkdtemp(prefix="tianping-bounds-"))
    rounds: list[dict[str, Any]] = []
    try:
        for round_number in range(1, args.runs + 1):
            row: dict[str, Any] = {"round": round_number}
            row["floor"] = run_floor(args, f"sqlite:///{scratch}/floor.db")
            for variant in VARIANTS:
                path = scratch / f"{variant}.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                row[variant] = run_variant(variant, args, path)
            print(f"round {round_number}: {json.dumps(row)}", file=sys.stderr)
            rounds.append(row)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    summary: dict[str, Any] = {
        "benchmark": "ledger_bounds",
        "backend": "sqlite",
        "mode": args.mode,
        "n": args.n,
        "accounts": args.accounts,
        "runs": args.runs,
        "batch_size": args.batch_size if args.mode == "batch" else 1,
        "sqlite_synchronous": args.sqlite_sync,
        "floor_transfers_per_s": statistics.median(r["floor"]["transfers_per_s"] for r in rounds),
    }
    for variant in VARIANTS:
        ratios = [r[variant]["transfers_per_s"] / r["floor"]["transfers_per_s"] for r in rounds]
        summary[f"{variant}_transfers_per_s"] = statistics.median(
            r[variant]["transfers_per_s"] for r in rounds
        )
        summary[f"ratio_{variant}_vs_floor"] = round(statistics.median(ratios), 3)
        summary[f"ratio_{variant}_vs_floor_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    summary["invariant_ok"] = all(
        r[name]["invariant_ok"] for r in rounds for name in ("floor", *VARIANTS)
    )
    summary["python"] = platform.python_version()
    summary["sqlite"] = sqlite3.sqlite_version
    summary["rounds"] = rounds
    print(json.dumps(summary))
    return 0 if summary["invariant_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
