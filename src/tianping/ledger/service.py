"""The ledger's service layer: use cases over a unit of work, for the edges and other contexts.

`Ledger` is what the API, the CLI and other bounded contexts call. Each write runs in a
`LedgerWrite`, the unit of work: it holds one connection inside one database transaction that owns
the ledger's write lock, prefetches what the pure engine needs, writes the engine's plan and
appends the hash-chain record, all or nothing. Another context that must commit its own rows
atomically with ledger events (a payment and its transfers, a decision and its record) opens
`ledger.write()` itself and does its work on `uow.connection` before the commit.

The clock is injected (a callable returning nanoseconds since the epoch), so tests and the
sandbox can run the ledger on simulated time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from tianping.db.pool import ConnectionPool
from tianping.ledger import engine, journal
from tianping.ledger.adapters.store import LedgerStore, store_for, transfer_to_row
from tianping.ledger.errors import AccountNotFound, BatchTooLarge, HistoryNotEnabled, InvalidQuery
from tianping.ledger.limits import (
    ACCOUNTS_PER_BATCH_MAX,
    ID_MAX,
    ID_MIN,
    IDS_PER_LOOKUP_MAX,
    PAGE_SIZE_MAX,
    TRANSFERS_PER_BATCH_MAX,
)
from tianping.ledger.model import (
    Account,
    AccountBalance,
    AccountFlags,
    Balances,
    NewAccount,
    NewTransfer,
    Transfer,
    TransferFlags,
)
from tianping.ledger.results import (
    AccountStateChangeResult,
    CreateAccountResult,
    CreateTransferResult,
)

Clock = Callable[[], int]
_Read = TypeVar("_Read")

# Expired holds are voided at the start of each write, at most this many at a time, so that a
# backlog of expiries cannot make one client's batch arbitrarily slow; `expire_pending` drains
# the rest.
EXPIRIES_PER_WRITE_MAX = 1024

TIMESTAMP_MAX = 2**63 - 1

# Indexing a list is several times cheaper than calling an IntEnum, and a batch converts
# thousands of codes.
_TRANSFER_RESULTS = list(CreateTransferResult)
_ACCOUNT_RESULTS = list(CreateAccountResult)
assert all(int(code) == index for index, code in enumerate(_TRANSFER_RESULTS))
assert all(int(code) == index for index, code in enumerate(_ACCOUNT_RESULTS))


def _valid_ids(values: Iterator[int] | Sequence[int] | set[int]) -> set[int]:
    return {value for value in values if type(value) is int and ID_MIN <= value <= ID_MAX}


class LedgerWrite:
    """One write transaction on the ledger (the unit of work). Use through `Ledger.write()`."""

    def __init__(
        self, store: LedgerStore, head: journal.ChainHead, next_expiry: int, clock: Clock
    ) -> None:
        self.store = store
        self.connection = store.connection
        self.head = head
        # The earliest expiry among open holds, or 0: a lower bound, never later than the
        # truth, so that a write skips the expiry query only when nothing can be due.
        self.next_expiry = next_expiry
        self._clock = clock
        # Rows other contexts asked to insert at commit, by statement, and deferred chain
        # records: written with one `executemany` each when the unit of work commits.
        self._deferred_rows: dict[str, list[Sequence[Any]]] = {}
        self._deferred_records: list[journal.ChainRecord] = []

    def defer_insert(self, sql: str, row: Sequence[Any]) -> None:
        """Insert `row` with `sql` when the unit of work commits, batched with its kind.

        For a caller that writes many rows of one kind in one transaction and never reads them
        back before the commit (a batch of payments' rule decisions): one `executemany` at the
        end costs far less than one statement per row. A row refused at the flush (a duplicate
        key, say) fails the whole unit of work, as it would have when inserted at once.
        """
        self._deferred_rows.setdefault(sql, []).append(row)

    def flush(self) -> None:
        """Write the deferred chain records and rows; `Ledger.write` calls it before commit."""
        if self._deferred_records:
            self.store.append_chains(self._deferred_records)
            self._deferred_records = []
        for sql, rows in self._deferred_rows.items():
            self.store._executemany(sql, rows)
        self._deferred_rows = {}

    def _next_timestamp(self) -> int:
        # Ledger time never goes backwards, whatever the wall clock does.
        return max(self._clock(), self.head.last_timestamp + 1)

    def _append(
        self, kind: str, last_timestamp: int, digest: bytes, body: bytes | None = None
    ) -> journal.ChainRecord:
        record = journal.next_record(
            self.head, kind, self.head.last_timestamp + 1, last_timestamp, digest, body
        )
        self.store.append_chain(record)
        self.head = journal.ChainHead(record.last_timestamp, record.seq, record.hash)
        return record

    # -- accounts ---------------------------------------------------------------------------

    def create_accounts(
        self, events: Sequence[NewAccount], request_ends: Sequence[int] | None = None
    ) -> list[CreateAccountResult]:
        if len(events) > ACCOUNTS_PER_BATCH_MAX:
            raise BatchTooLarge(
                f"a batch holds at most {ACCOUNTS_PER_BATCH_MAX} accounts, not {len(events)}"
            )
        if not events:
            return []
        existing = self.store.fetch_accounts(_valid_ids([event.id for event in events]))
        plan = engine.plan_accounts(events, existing, self._next_timestamp(), request_ends)
        if plan.accounts:
            self.store.insert_accounts(plan.accounts)
            lines = [journal.account_line(account) for account in plan.accounts]
            self._append(journal.LEDGER_BATCH_KIND, plan.last_timestamp, journal.body_hash(lines))
        return [_ACCOUNT_RESULTS[code] for code in plan.results]

    def set_account_closed(self, account_id: int, closed: bool) -> AccountStateChangeResult:
        """Close an account to new transfers (voids of its holds still pass), or reopen it."""
        if type(account_id) is not int or not ID_MIN <= account_id <= ID_MAX:
            return AccountStateChangeResult.id_invalid
        account = self.store.fetch_accounts([account_id]).get(account_id)
        if account is None:
            return AccountStateChangeResult.account_not_found
        if account.closed == closed:
            return (
                AccountStateChangeResult.already_closed
                if closed
                else AccountStateChangeResult.not_closed
            )
        timestamp = self._next_timestamp()
        kind = "closed" if closed else "reopened"
        flags = (
            account.flags | AccountFlags.CLOSED if closed else account.flags & ~AccountFlags.CLOSED
        )
        self.store.set_account_flags(account_id, flags)
        self.store.insert_account_event(timestamp, account_id, kind)
        line = journal.account_event_line(timestamp, account_id.to_bytes(16, "big"), kind)
        self._append(journal.LEDGER_BATCH_KIND, timestamp, journal.body_hash([line]))
        return AccountStateChangeResult.ok

    # -- transfers --------------------------------------------------------------------------

    def create_transfers(
        self, events: Sequence[NewTransfer], request_ends: Sequence[int] | None = None
    ) -> list[CreateTransferResult]:
        if len(events) > TRANSFERS_PER_BATCH_MAX:
            raise BatchTooLarge(
                f"a batch holds at most {TRANSFERS_PER_BATCH_MAX} transfers, not {len(events)}"
            )
        plan = self._plan_transfers(events, request_ends)
        self._write_transfer_plan(plan)
        return [_TRANSFER_RESULTS[code] for code in plan.results]

    def expire_pending(self) -> int:
        """Void holds whose timeout has passed; returns how many (at most one write's worth)."""
        plan = self._plan_transfers([], None)
        self._write_transfer_plan(plan)
        return len(plan.resolutions)

    def _plan_transfers(
        self, events: Sequence[NewTransfer], request_ends: Sequence[int] | None
    ) -> engine.TransferPlan:
        store = self.store
        first_timestamp = self._next_timestamp()
        due: list[int] = []
        if self.next_expiry and self.next_expiry <= first_timestamp:
            due = store.due_pending_ids(first_timestamp, EXPIRIES_PER_WRITE_MAX)
            # Everything due up to now has been found (or a full page of it), so the next
            # expiry lies after now unless the page was full.
            self.next_expiry = (
                first_timestamp if len(due) == EXPIRIES_PER_WRITE_MAX else first_timestamp + 1
            )

        referenced: set[int] = set(due)
        pending_ids: set[int] = set(due)
        original_ids: set[int] = set()
        account_ids: set[int] = set()
        for event in events:
            referenced.add(event.id)
            if event.pending_id:
                referenced.add(event.pending_id)
                pending_ids.add(event.pending_id)
            if event.reverses_id:
                referenced.add(event.reverses_id)
                original_ids.add(event.reverses_id)
            account_ids.add(event.debit_account_id)
            account_ids.add(event.credit_account_id)
        transfers = store.fetch_transfers(_valid_ids(referenced)) if referenced else {}
        for transfer in transfers.values():
            if transfer.id in pending_ids or transfer.id in original_ids:
                account_ids.add(transfer.debit_account_id)
                account_ids.add(transfer.credit_account_id)
        view = engine.LedgerView(
            accounts=store.fetch_accounts(_valid_ids(account_ids)) if account_ids else {},
            transfers=transfers,
            resolutions=store.fetch_resolutions(_valid_ids(pending_ids)) if pending_ids else {},
            reversed_amounts=(
                store.fetch_reversed_amounts(_valid_ids(original_ids)) if original_ids else {}
            ),
        )
        # A hold can be resolved by a concurrent writer between `due_pending_ids` and the lock;
        # there is no such writer under our lock, so a due hold here is always still open.
        expiring = sorted(
            (transfers[pending_id] for pending_id in due),
            key=lambda transfer: (transfer.expires_at, transfer.id),
        )
        return engine.plan_transfers(events, view, first_timestamp, expiring, request_ends)

    def _write_transfer_plan(self, plan: engine.TransferPlan) -> None:
        if not plan.writes_anything:
            return
        store = self.store
        transfer_rows = [transfer_to_row(transfer) for transfer in plan.transfers]
        resolution_rows = [
            (pending_id.to_bytes(16, "big"), kind, timestamp)
            for pending_id, kind, timestamp in plan.resolutions
        ]
        store.insert_transfers(transfer_rows)
        store.insert_resolutions(resolution_rows)
        closed = set(plan.pending_closed)
        opened = [
            (transfer.id, transfer.expires_at)
            for transfer in plan.pending_opened
            if transfer.id not in closed
        ]
        opened_ids = {transfer.id for transfer in plan.pending_opened}
        store.open_pending(opened)
        for _, expires_at in opened:
            if expires_at and (not self.next_expiry or expires_at < self.next_expiry):
                self.next_expiry = expires_at
        store.close_pending(
            [pending_id for pending_id in plan.pending_closed if pending_id not in opened_ids]
        )
        store.update_balances(plan.accounts_changed.values())
        snapshot_rows = [
            (s[0].to_bytes(16, "big"), s[1], s[2], s[3], s[4], s[5]) for s in plan.snapshots
        ]
        store.insert_snapshots(snapshot_rows)
        lines = journal.transfer_plan_lines(transfer_rows, resolution_rows, snapshot_rows)
        self._append(journal.LEDGER_BATCH_KIND, plan.last_timestamp, journal.body_hash(lines))

    # -- records of other contexts ----------------------------------------------------------

    def append_record(
        self, kind: str, body: bytes, *, deferred: bool = False, store_body: bool = True
    ) -> journal.ChainRecord:
        """Chain a record of another context (a rule decision, say) with its canonical body.

        The record takes one ledger timestamp of its own, so it has a place in ledger time and
        the chain's ranges stay contiguous. With `deferred`, its row is written at commit with
        the other deferred records (see `defer_insert`); its place in the chain is fixed now.
        Without `store_body`, the record keeps only the body's hash: for a kind whose body
        source in `tianping.ledger.audit.BODY_SOURCES` rebuilds the body from the context's
        own rows, a second copy in the chain would double what every such write puts on disk.
        """
        if not kind or len(kind) > 64 or kind == journal.LEDGER_BATCH_KIND:
            raise ValueError("a record kind is 1 to 64 characters and not the ledger's own")
        timestamp = self._next_timestamp()
        kept = body if store_body else None
        if not deferred:
            return self._append(kind, timestamp, journal.inline_body_hash(body), kept)
        record = journal.next_record(
            self.head,
            kind,
            self.head.last_timestamp + 1,
            timestamp,
            journal.inline_body_hash(body),
            kept,
        )
        self._deferred_records.append(record)
        self.head = journal.ChainHead(record.last_timestamp, record.seq, record.hash)
        return record


@dataclass(slots=True, frozen=True)
class Statement:
    """Posted activity of one account over a period, with opening and closing totals.

    Totals are given as posted debits and posted credits, never netted: whether an account's
    balance is debits minus credits (assets) or the reverse (liabilities) is the chart of
    accounts' business, which the ledger does not assume.
    """

    account: Account
    timestamp_min: int
    timestamp_max: int
    opening_debits: int
    opening_credits: int
    entries: list[Transfer]
    closing_debits: int
    closing_credits: int
    complete: bool
    next_timestamp: int | None


class Ledger:
    """The ledger's use cases. One instance per process; it is thread-safe."""

    def __init__(self, pool: ConnectionPool, clock: Clock = time.time_ns) -> None:
        self.pool = pool
        self.backend = pool.backend
        self.clock = clock
        store_class = type(store_for(self.backend, None))
        self._fetch_account_on = store_class.fetch_account_on
        self._fetch_balances_on = store_class.fetch_balances_on

    @contextmanager
    def write(self) -> Iterator[LedgerWrite]:
        """A unit of work: everything done through it commits together or not at all."""
        # The writer's turn is taken before the transaction opens and given back after it
        # ends, so that writers in other processes wait for it in the kernel rather than in
        # SQLite's sleeping busy handler (see `tianping.db.writer_lock`).
        with self.pool.connection() as connection, self.pool.writer_turn():
            store = store_for(self.backend, connection)
            head, next_expiry = store.begin_write()
            try:
                uow = LedgerWrite(store, head, next_expiry, self.clock)
                yield uow
                uow.flush()
            except BaseException:
                store.rollback()
                raise
            store.commit()

    @contextmanager
    def read(self, snapshot: bool = False) -> Iterator[LedgerStore]:
        """A store for queries; with `snapshot`, all its reads see one consistent state."""
        with self.pool.connection() as connection:
            store = store_for(self.backend, connection)
            if snapshot:
                store.begin_read()
            try:
                yield store
            finally:
                store.rollback()

    # -- writes -----------------------------------------------------------------------------

    def create_accounts(self, events: Sequence[NewAccount]) -> list[CreateAccountResult]:
        with self.write() as uow:
            return uow.create_accounts(events)

    def create_transfers(self, events: Sequence[NewTransfer]) -> list[CreateTransferResult]:
        with self.write() as uow:
            return uow.create_transfers(events)

    def close_account(self, account_id: int) -> AccountStateChangeResult:
        with self.write() as uow:
            return uow.set_account_closed(account_id, True)

    def reopen_account(self, account_id: int) -> AccountStateChangeResult:
        with self.write() as uow:
            return uow.set_account_closed(account_id, False)

    def expire_pending(self) -> int:
        """Void every hold whose timeout has passed; returns how many were voided."""
        total = 0
        while True:
            with self.write() as uow:
                count = uow.expire_pending()
            total += count
            if count < EXPIRIES_PER_WRITE_MAX:
                return total

    # -- queries ----------------------------------------------------------------------------

    def posted_totals_by_code(
        self, currency: str, codes: Sequence[int], uow: LedgerWrite | None = None
    ) -> dict[int, tuple[int, int]]:
        """(debits posted, credits posted) over all accounts of each code in `currency`, read in
        `uow` when given (so a caller compares them with other balances of the same moment)."""
        if uow is not None:
            return uow.store.posted_totals_by_code(currency, codes)
        with self.read(snapshot=True) as store:
            return store.posted_totals_by_code(currency, codes)

    def lookup_account(self, account_id: int) -> Account | None:
        """One account with its current balances, or None: the hot read path.

        It skips the generic lookup's batching and snapshot machinery, because a balance read
        is the most frequent query a wallet makes and a single statement is already atomic.
        """
        return self._point_read(self._fetch_account_on, account_id)

    def lookup_balances(self, account_id: int) -> Balances | None:
        """One account's current balances, or None: the read behind a wallet's balance, which
        needs none of the fields an account never changes."""
        return self._point_read(self._fetch_balances_on, account_id)

    def _point_read(self, fetch: Callable[[Any, int], _Read], account_id: int) -> _Read | None:
        if type(account_id) is not int or not ID_MIN <= account_id <= ID_MAX:
            return None
        pool = self.pool
        connection = pool.acquire()
        try:
            found = fetch(connection, account_id)
        except BaseException:
            pool.release(connection, broken=True)
            raise
        pool.release(connection)
        return found

    def lookup_accounts(self, ids: Sequence[int]) -> list[Account]:
        """The accounts with these ids, in the order asked; unknown ids are left out."""
        _check_lookup(ids)
        with self.read() as store:
            found = store.fetch_accounts(_valid_ids(ids))
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    def lookup_transfers(self, ids: Sequence[int]) -> list[Transfer]:
        """The transfers with these ids, in the order asked; unknown ids are left out."""
        _check_lookup(ids)
        with self.read() as store:
            found = store.fetch_transfers(_valid_ids(ids))
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    def get_account(self, account_id: int) -> Account:
        accounts = self.lookup_accounts([account_id])
        if not accounts:
            raise AccountNotFound(f"no account has id {account_id}")
        return accounts[0]

    def get_account_transfers(
        self,
        account_id: int,
        timestamp_min: int = 0,
        timestamp_max: int = 0,
        limit: int = 100,
        newest_first: bool = False,
        debits: bool = True,
        credits: bool = True,
    ) -> list[Transfer]:
        """An account's transfers in ledger-time order, one page at a time.

        Bounds are inclusive ledger timestamps; zero means unbounded. To page on, pass the last
        timestamp seen plus one as `timestamp_min` (or minus one as `timestamp_max` when
        `newest_first`).
        """
        low, high = _bounds(timestamp_min, timestamp_max)
        _check_limit(limit)
        with self.read() as store:
            if not store.fetch_accounts([account_id]):
                raise AccountNotFound(f"no account has id {account_id}")
            return store.account_transfers(
                account_id, low, high, limit, newest_first, debits, credits
            )

    def get_account_balances(
        self,
        account_id: int,
        timestamp_min: int = 0,
        timestamp_max: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[AccountBalance]:
        """The balance history of a `history` account: its balances after each transfer."""
        low, high = _bounds(timestamp_min, timestamp_max)
        _check_limit(limit)
        with self.read(snapshot=True) as store:
            self._history_account(store, account_id)
            return store.account_balances(account_id, low, high, limit, newest_first)

    def balance_at(self, account_id: int, timestamp: int) -> AccountBalance:
        """The balances of a `history` account as they stood at ledger time `timestamp`."""
        if not 0 < timestamp <= TIMESTAMP_MAX:
            raise InvalidQuery("the timestamp must be a positive number of nanoseconds")
        with self.read(snapshot=True) as store:
            account = self._history_account(store, account_id)
            rows = store.account_balances(account_id, 0, timestamp, 1, newest_first=True)
        if rows:
            return rows[0]
        return AccountBalance(min(timestamp, account.timestamp), 0, 0, 0, 0)

    @staticmethod
    def _history_account(store: LedgerStore, account_id: int) -> Account:
        account = store.fetch_accounts([account_id]).get(account_id)
        if account is None:
            raise AccountNotFound(f"no account has id {account_id}")
        if not account.keeps_history:
            raise HistoryNotEnabled(
                f"account {account_id} was created without the history flag; its past balances "
                "are not kept (its posted activity is still available as a statement)"
            )
        return account

    def statement(
        self,
        account_id: int,
        timestamp_min: int = 0,
        timestamp_max: int = 0,
        limit: int = PAGE_SIZE_MAX,
    ) -> Statement:
        """Posted activity over [timestamp_min, timestamp_max] with opening and closing totals.

        Works for every account, history flag or not, because posted balances are sums of
        journal rows. If the period holds more than `limit` entries the statement is cut there,
        `complete` is false and `next_timestamp` says where the next page starts.
        """
        low, high = _bounds(timestamp_min, timestamp_max)
        _check_limit(limit)
        with self.read(snapshot=True) as store:
            account = store.fetch_accounts([account_id]).get(account_id)
            if account is None:
                raise AccountNotFound(f"no account has id {account_id}")
            opening_debits, opening_credits = store.posted_totals_before(account_id, low)
            rows = store.account_transfers(account_id, low, high, limit + 1, False, True, True)
        posted = [row for row in rows[:limit] if row.posts_balance]
        complete = len(rows) <= limit
        debits = opening_debits + sum(t.amount for t in posted if t.debit_account_id == account_id)
        credits = opening_credits + sum(
            t.amount for t in posted if t.credit_account_id == account_id
        )
        return Statement(
            account,
            low,
            high,
            opening_debits,
            opening_credits,
            posted,
            debits,
            credits,
            complete,
            None if complete else rows[limit].timestamp,
        )

    def check(self) -> list[str]:
        """Check the ledger's invariants; returns every finding (an empty list means sound)."""
        from tianping.ledger.audit import check_invariants

        with self.read(snapshot=True) as store:
            return check_invariants(store)


def _check_lookup(ids: Sequence[int]) -> None:
    if len(ids) > IDS_PER_LOOKUP_MAX:
        raise InvalidQuery(f"a lookup names at most {IDS_PER_LOOKUP_MAX} ids, not {len(ids)}")


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidQuery(f"limit must be between 1 and {PAGE_SIZE_MAX}")


def _bounds(timestamp_min: int, timestamp_max: int) -> tuple[int, int]:
    if not 0 <= timestamp_min <= TIMESTAMP_MAX or not 0 <= timestamp_max <= TIMESTAMP_MAX:
        raise InvalidQuery(f"timestamps lie between 0 and {TIMESTAMP_MAX} nanoseconds")
    high = timestamp_max or TIMESTAMP_MAX
    if timestamp_min > high:
        raise InvalidQuery("timestamp_min is after timestamp_max")
    return timestamp_min, high


def transfer_flags_for(*names: str) -> int:
    """Convenience for callers: `transfer_flags_for("pending", "linked")`."""
    word = 0
    for name in names:
        word |= TransferFlags.NAMES[name]
    return word


def as_dict(record: Any) -> dict[str, Any]:
    """Plain-data form of a ledger record for JSON output (ids stay integers)."""
    return {name: getattr(record, name) for name in record.__slots__}
