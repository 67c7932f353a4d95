"""The tamper-evident journal: a canonical encoding of ledger rows and the hash chain over it.

Every committed write appends one chain record. A record covers a contiguous range of ledger
timestamps, `[first_timestamp, last_timestamp]`; the range of each record starts right after the
previous record's, so every journal row belongs to exactly one record and a row slipped in behind
the application's back either breaks its record's body hash or lies past the last record.

    body_hash = SHA-256(canonical encoding of the journal rows in the range)
    hash      = SHA-256(previous hash || "seq|kind|first|last|" || body_hash)

For `ledger.batch` records the body is not stored: `tianping audit verify` rebuilds it from the
rows themselves (accounts, account events, transfers, pending resolutions), so changing any stored
field of any of those rows is detected. Other contexts append records of their own kinds (rule
decisions, for example) whose canonical body is stored inline with the record; the record type is
open for that reason.

The encoding is a line per row, fields separated by "|" and rows ordered by (timestamp, kind). Only
the last field of a line may contain "|" (metadata, written length-prefixed), and no field may
contain a newline (owners are restricted to a safe alphabet and metadata is compact JSON whose
newlines are escaped), so the encoding is injective: different rows never encode alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tianping.ledger.model import Account, AccountFlags

GENESIS_HASH = bytes(32)
LEDGER_BATCH_KIND = "ledger.batch"

# Rows that share a timestamp (a post and the resolution it causes) are ordered by this rank.
ACCOUNT_RANK, ACCOUNT_EVENT_RANK, TRANSFER_RANK, RESOLUTION_RANK, SNAPSHOT_RANK = 0, 1, 2, 3, 4


def account_line(account: Account) -> str:
    """Encode an account's immutable fields (the closed bit is journaled as account events)."""
    flags = account.flags & ~AccountFlags.CLOSED
    return (
        f"A|{account.timestamp}|{account.id.to_bytes(16, 'big').hex()}|{account.currency}|"
        f"{account.code}|{flags}|{account.owner}\n"
    )


def account_event_line(timestamp: int, account_id: bytes, kind: str) -> str:
    return f"E|{timestamp}|{account_id.hex()}|{kind}\n"


def transfer_row_line(row: tuple[Any, ...]) -> str:
    """Encode a transfer from its stored row, in `TRANSFER_COLUMNS` order.

    Working from the row (ids already as 16-byte strings) rather than from a `Transfer` lets the
    write path encode each transfer once for both the INSERT and the hash, and lets
    verification hash rows exactly as the database returns them.
    """
    (
        timestamp,
        transfer_id,
        debit,
        credit,
        amount,
        currency,
        code,
        flags,
        pending,
        reverses,
        timeout,
        metadata,
    ) = row
    return (
        f"T|{timestamp}|{transfer_id.hex()}|{debit.hex()}|{credit.hex()}|{amount}|{currency}|"
        f"{code}|{flags}|{pending.hex() if pending else '-'}|"
        f"{reverses.hex() if reverses else '-'}|{timeout}|"
        f"{'-' if metadata is None else f'{len(metadata)}:{metadata}'}\n"
    )


def resolution_line(pending_id: bytes, kind: str, timestamp: int) -> str:
    return f"R|{timestamp}|{pending_id.hex()}|{kind}\n"


def snapshot_line(row: tuple[Any, ...]) -> str:
    """Encode a balance-history row (account id bytes, timestamp, four balances).

    History rows are derived data, but `balance_at` serves them to auditors as fact, so they
    are chained like the journal: editing one breaks its record's body hash.
    """
    account_id, timestamp, debits_pending, debits_posted, credits_pending, credits_posted = row
    return (
        f"B|{timestamp}|{account_id.hex()}|{debits_pending}|{debits_posted}|"
        f"{credits_pending}|{credits_posted}\n"
    )


def body_hash(lines: list[str]) -> bytes:
    """Hash the encoded rows of one record, already in (timestamp, rank) order."""
    return hashlib.sha256("".join(lines).encode()).digest()


def inline_body_hash(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def link_hash(
    previous: bytes,
    seq: int,
    kind: str,
    first_timestamp: int,
    last_timestamp: int,
    body_digest: bytes,
) -> bytes:
    """Chain one record to the previous one."""
    header = f"{seq}|{kind}|{first_timestamp}|{last_timestamp}|".encode()
    return hashlib.sha256(previous + header + body_digest).digest()


@dataclass(slots=True, frozen=True)
class ChainRecord:
    """One link of the hash chain as stored in `audit_chain`."""

    seq: int
    kind: str
    first_timestamp: int
    last_timestamp: int
    body: bytes | None
    body_hash: bytes
    previous_hash: bytes
    hash: bytes


@dataclass(slots=True, frozen=True)
class ChainHead:
    """The end of the chain and the last ledger timestamp, read under the write lock."""

    last_timestamp: int
    seq: int
    hash: bytes


def next_record(
    head: ChainHead,
    kind: str,
    first_timestamp: int,
    last_timestamp: int,
    digest: bytes,
    body: bytes | None = None,
) -> ChainRecord:
    """Build the record that follows `head`; its range starts right after the head's."""
    assert first_timestamp == head.last_timestamp + 1, "chain ranges must be contiguous"
    assert last_timestamp >= first_timestamp
    seq = head.seq + 1
    return ChainRecord(
        seq,
        kind,
        first_timestamp,
        last_timestamp,
        body,
        digest,
        head.hash,
        link_hash(head.hash, seq, kind, first_timestamp, last_timestamp, digest),
    )


@dataclass(slots=True, frozen=True)
class ChainBreak:
    """The first place where the stored chain and the recomputed chain disagree."""

    seq: int
    reason: str


def ordered_lines(
    accounts: Iterable[Account] = (),
    account_events: Iterable[tuple[int, bytes, str]] = (),
    transfer_rows: Iterable[tuple[Any, ...]] = (),
    resolution_rows: Iterable[tuple[bytes, str, int]] = (),
    snapshot_rows: Iterable[tuple[Any, ...]] = (),
) -> list[tuple[int, str]]:
    """Encode journal rows as (timestamp, line) in chain order: by timestamp, then by kind of
    row, then by the line itself (two history rows can share a timestamp)."""
    keyed: list[tuple[int, int, str]] = []
    keyed.extend((a.timestamp, ACCOUNT_RANK, account_line(a)) for a in accounts)
    keyed.extend(
        (ts, ACCOUNT_EVENT_RANK, account_event_line(ts, account, kind))
        for ts, account, kind in account_events
    )
    keyed.extend((row[0], TRANSFER_RANK, transfer_row_line(row)) for row in transfer_rows)
    keyed.extend(
        (ts, RESOLUTION_RANK, resolution_line(pending, kind, ts))
        for pending, kind, ts in resolution_rows
    )
    keyed.extend((row[1], SNAPSHOT_RANK, snapshot_line(row)) for row in snapshot_rows)
    keyed.sort()
    return [(timestamp, line) for timestamp, _, line in keyed]


def transfer_plan_lines(
    transfer_rows: list[tuple[Any, ...]],
    resolution_rows: list[tuple[bytes, str, int]],
    snapshot_rows: list[tuple[Any, ...]],
) -> list[str]:
    """Encode what a transfer batch writes, in the order verification will rebuild it."""
    if not resolution_rows and not snapshot_rows:
        # Transfers are created in timestamp order, so alone they need no sort: the common
        # case of a batch of plain transfers stays a single pass.
        return [transfer_row_line(row) for row in transfer_rows]
    return [
        line
        for _, line in ordered_lines(
            transfer_rows=transfer_rows,
            resolution_rows=resolution_rows,
            snapshot_rows=snapshot_rows,
        )
    ]
