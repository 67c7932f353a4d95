"""Child process for test_crash_recovery.py: post deterministic batches until killed.

Usage: python crash_child.py URL ACK_FILE FIRST_BATCH STOP_BATCH

Builds its own connection pool and ledger on URL, prints "ready", then posts batches
FIRST_BATCH .. STOP_BATCH-1 (see `batch_events`). After each batch commits it appends the batch
number to ACK_FILE and fsyncs it, so a line in the file means "this batch was acknowledged".
A batch that committed before a crash but was never acknowledged is posted again on restart and
must then answer `exists` for every event: a mix of `ok` and `exists` would mean a partial
commit, and the child exits with status 3.

The parent test imports `batch_events`, `transfer_ids` and the account ids from this file.
"""

from __future__ import annotations

import os
import sys

from tianping.db.pool import ConnectionPool
from tianping.ledger.model import NewTransfer, TransferFlags
from tianping.ledger.results import CreateTransferResult
from tianping.ledger.service import Ledger

FUND = 1
ACCOUNTS = (2**127 + 1, 2**127 + 2, 2**127 + 3, 2**64 + 4)
PLAIN, POSTED_HOLDS, EXPIRING_HOLDS = 40, 5, 2
EVENTS_PER_BATCH = PLAIN + 2 * POSTED_HOLDS + EXPIRING_HOLDS


def transfer_id(batch: int, index: int) -> int:
    return 1_000_000 * (batch + 1) + index


def transfer_ids(batch: int) -> list[int]:
    return [transfer_id(batch, index) for index in range(EVENTS_PER_BATCH)]


def batch_events(batch: int) -> list[NewTransfer]:
    """The events of one batch: plain transfers, holds posted in the same batch, and holds
    that are left to expire (their expiry is written by some later batch)."""
    events = []
    for j in range(PLAIN):
        events.append(
            NewTransfer(
                transfer_id(batch, j),
                FUND,
                ACCOUNTS[(batch + j) % 4],
                (batch * 31 + j) % 97 + 1,
                "USD",
                1,
            )
        )
    for k in range(POSTED_HOLDS):
        events.append(
            NewTransfer(
                transfer_id(batch, PLAIN + k),
                FUND,
                ACCOUNTS[k % 4],
                10,
                "USD",
                2,
                TransferFlags.PENDING,
            )
        )
    for k in range(POSTED_HOLDS):
        events.append(
            NewTransfer(
                transfer_id(batch, PLAIN + POSTED_HOLDS + k),
                flags=TransferFlags.POST_PENDING,
                pending_id=transfer_id(batch, PLAIN + k),
                amount=5,
            )
        )
    for k in range(EXPIRING_HOLDS):
        events.append(
            NewTransfer(
                transfer_id(batch, PLAIN + 2 * POSTED_HOLDS + k),
                FUND,
                ACCOUNTS[(batch + k) % 4],
                3,
                "USD",
                3,
                TransferFlags.PENDING,
                timeout=1,
            )
        )
    assert len(events) == EVENTS_PER_BATCH
    return events


def main(url: str, ack_path: str, first: int, stop: int) -> int:
    ledger = Ledger(ConnectionPool(url, size=1))
    ledger.lookup_accounts([FUND])  # connected
    print("ready", flush=True)
    ok, exists = CreateTransferResult.ok, CreateTransferResult.exists
    with open(ack_path, "a", encoding="ascii") as acks:
        for batch in range(first, stop):
            results = set(ledger.create_transfers(batch_events(batch)))
            if results not in ({ok}, {exists}):
                print(f"batch {batch}: results {sorted(results)}", file=sys.stderr, flush=True)
                return 3
            acks.write(f"{batch}\n")
            acks.flush()
            os.fsync(acks.fileno())
    ledger.pool.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
