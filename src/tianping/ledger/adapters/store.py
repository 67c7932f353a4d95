"""SQL for the ledger on SQLite and PostgreSQL: the only module that knows the ledger's tables.

The two backends share the schema and almost all statements; they differ in placeholders, in how
a list of ids is passed (`IN (?, ...)` against `= ANY(%s)`), in how the write lock is taken
(`BEGIN IMMEDIATE` against a transaction-scoped advisory lock) and in bulk writes (PostgreSQL
receives a batch's transfers through COPY and its balance updates as one set-based UPDATE over
`unnest`, so a batch costs a handful of round trips instead of several per transfer).

Every statement is parameterised; the only text ever formatted into SQL is placeholder lists
built here from counts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from psycopg.pq import TransactionStatus

from tianping.ledger.journal import GENESIS_HASH, ChainHead, ChainRecord
from tianping.ledger.model import Account, AccountBalance, Balances, Transfer

_ZERO_ID = b""

TRANSFER_COLUMNS = (
    "timestamp, id, debit_account_id, credit_account_id, amount, currency, code, "
    "flags, pending_id, reverses_id, timeout, metadata"
)
ACCOUNT_COLUMNS = (
    "id, currency, code, flags, owner, timestamp, debits_pending, debits_posted, "
    "credits_pending, credits_posted"
)
ACCOUNT_FIELDS_BUT_ID = ACCOUNT_COLUMNS.removeprefix("id, ")
BALANCE_COLUMNS = "debits_pending, debits_posted, credits_pending, credits_posted"
CHAIN_COLUMNS = "seq, kind, first_timestamp, last_timestamp, body, body_hash, previous_hash, hash"

# The PostgreSQL advisory lock that serialises ledger writers ("tp-ledgr" in ASCII).
LEDGER_WRITE_LOCK_KEY = 0x7470_2D6C_6564_6772

# SQLite's default limit on host parameters is 32,766; a lookup never binds more than this many.
_SQLITE_PARAMETERS_MAX = 30_000


def _to_bytes(value: int) -> bytes:
    return value.to_bytes(16, "big")


def _from_bytes(value: bytes | None) -> int:
    return int.from_bytes(value, "big") if value else 0


def transfer_from_row(row: Sequence[Any]) -> Transfer:
    return Transfer(
        _from_bytes(row[1]),
        _from_bytes(row[2]),
        _from_bytes(row[3]),
        row[4],
        row[5],
        row[6],
        row[7],
        _from_bytes(row[8]),
        _from_bytes(row[9]),
        row[10],
        row[11],
        row[0],
    )


def transfer_to_row(transfer: Transfer) -> tuple[Any, ...]:
    """The stored row of a transfer, in `TRANSFER_COLUMNS` order (ids as 16-byte strings)."""
    pending_id = transfer.pending_id
    reverses_id = transfer.reverses_id
    return (
        transfer.timestamp,
        transfer.id.to_bytes(16, "big"),
        transfer.debit_account_id.to_bytes(16, "big"),
        transfer.credit_account_id.to_bytes(16, "big"),
        transfer.amount,
        transfer.currency,
        transfer.code,
        transfer.flags,
        pending_id.to_bytes(16, "big") if pending_id else None,
        reverses_id.to_bytes(16, "big") if reverses_id else None,
        transfer.timeout,
        transfer.metadata,
    )


def _plain_row(row: Sequence[Any]) -> tuple[Any, ...]:
    """A transfer row with its byte columns as `bytes` (PostgreSQL may hand back memoryview)."""
    return (
        row[0],
        bytes(row[1]),
        bytes(row[2]),
        bytes(row[3]),
        row[4],
        row[5],
        row[6],
        row[7],
        bytes(row[8]) if row[8] is not None else None,
        bytes(row[9]) if row[9] is not None else None,
        row[10],
        row[11],
    )


def account_from_row(row: Sequence[Any]) -> Account:
    return Account(
        _from_bytes(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9]
    )


def chain_record_from_row(row: Sequence[Any]) -> ChainRecord:
    return ChainRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        bytes(row[4]) if row[4] is not None else None,
        bytes(row[5]),
        bytes(row[6]),
        bytes(row[7]),
    )


class LedgerStore(ABC):
    """Statements over one open connection. Subclasses supply the backend's differences."""

    backend = ""
    placeholder = "?"
    _select_one_account = ""
    _select_balances = ""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    # -- plumbing ---------------------------------------------------------------------------

    def _execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        # Both drivers offer `Connection.execute`, returning a cursor.
        return self.connection.execute(sql, parameters)

    @abstractmethod
    def _id_filter(self, column: str, ids: Sequence[bytes]) -> tuple[str, list[Any]]:
        """A WHERE fragment matching `column` against a list of encoded ids."""

    def _chunks(self, ids: Iterable[int]) -> Iterator[list[bytes]]:
        encoded = [_to_bytes(value) for value in ids]
        for start in range(0, len(encoded), _SQLITE_PARAMETERS_MAX):
            yield encoded[start : start + _SQLITE_PARAMETERS_MAX]

    @abstractmethod
    def begin_read(self) -> None:
        """Start a read-only transaction that sees one consistent snapshot."""

    @abstractmethod
    def begin_write(self) -> tuple[ChainHead, int]:
        """Take the ledger's write lock; return the chain head and a hint for expiries.

        The hint is the earliest expiry among open holds (0 if none), read in the same
        statement as the head so that a write with nothing due costs no extra query.
        """

    @abstractmethod
    def commit(self) -> None:
        """Commit the transaction begun by `begin_write` (or end a read)."""

    @abstractmethod
    def rollback(self) -> None:
        """Discard the current transaction, if any."""

    def _read_head(self) -> tuple[ChainHead, int]:
        # The head of the chain is its last record: keeping it in a row of its own would cost
        # every commit one more page write.
        row = self._execute(
            "SELECT seq, hash, last_timestamp, (SELECT MIN(expires_at) FROM pending_open "
            "WHERE expires_at > 0) FROM audit_chain ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            return ChainHead(row[2], row[0], bytes(row[1])), int(row[3] or 0)
        next_expiry = self._execute(
            "SELECT MIN(expires_at) FROM pending_open WHERE expires_at > 0"
        ).fetchone()[0]
        return ChainHead(0, 0, GENESIS_HASH), int(next_expiry or 0)

    def read_head(self) -> ChainHead:
        return self._read_head()[0]

    # -- lookups used by the write path -----------------------------------------------------

    def fetch_transfers(self, ids: Iterable[int]) -> dict[int, Transfer]:
        found: dict[int, Transfer] = {}
        for chunk in self._chunks(ids):
            where, parameters = self._id_filter("id", chunk)
            for row in self._execute(
                f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE {where}", parameters
            ):
                transfer = transfer_from_row(row)
                found[transfer.id] = transfer
        return found

    def fetch_account(self, account_id: int) -> Account | None:
        """One account by id: the point read behind balance lookups, kept to one statement."""
        return self.fetch_account_on(self.connection, account_id)

    @classmethod
    def fetch_account_on(cls, connection: Any, account_id: int) -> Account | None:
        """`fetch_account` on a bare connection, for the service's hot read path, which would
        otherwise spend a tenth of a read building a store object."""
        row = connection.execute(
            cls._select_one_account, (account_id.to_bytes(16, "big"),)
        ).fetchone()
        if row is None:
            return None
        # The id is the one asked for, so it is neither selected nor decoded.
        return Account(account_id, *row)

    @classmethod
    def fetch_balances_on(cls, connection: Any, account_id: int) -> Balances | None:
        """One account's current balances on a bare connection: the wallet's balance read.
        Selecting four integers instead of the whole row saves a fifth of the read's time."""
        row = connection.execute(cls._select_balances, (account_id.to_bytes(16, "big"),)).fetchone()
        return None if row is None else Balances(*row)

    def fetch_accounts(self, ids: Iterable[int]) -> dict[int, Account]:
        found: dict[int, Account] = {}
        for chunk in self._chunks(ids):
            where, parameters = self._id_filter("id", chunk)
            for row in self._execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {where}", parameters
            ):
                account = account_from_row(row)
                found[account.id] = account
        return found

    def fetch_resolutions(self, pending_ids: Iterable[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for chunk in self._chunks(pending_ids):
            where, parameters = self._id_filter("pending_id", chunk)
            for pending_id, kind in self._execute(
                f"SELECT pending_id, kind FROM pending_resolutions WHERE {where}",
                parameters,
            ):
                found[_from_bytes(pending_id)] = kind
        return found

    def fetch_reversed_amounts(self, original_ids: Iterable[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for chunk in self._chunks(original_ids):
            where, parameters = self._id_filter("reverses_id", chunk)
            for original_id, total in self._execute(
                f"SELECT reverses_id, SUM(amount) FROM transfers WHERE {where} "
                "GROUP BY reverses_id",
                parameters,
            ):
                found[_from_bytes(original_id)] = int(total)
        return found

    def due_pending_ids(self, now: int, limit: int) -> list[int]:
        p = self.placeholder
        rows = self._execute(
            "SELECT pending_id FROM pending_open WHERE expires_at > 0 AND expires_at <= "
            f"{p} ORDER BY expires_at, pending_id LIMIT {p}",
            (now, limit),
        ).fetchall()
        return [_from_bytes(row[0]) for row in rows]

    # -- writes -----------------------------------------------------------------------------

    def insert_accounts(self, accounts: Sequence[Account]) -> None:
        p = self.placeholder
        self._executemany(
            f"INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ({', '.join([p] * 10)})",
            [
                (
                    _to_bytes(a.id),
                    a.currency,
                    a.code,
                    a.flags,
                    a.owner,
                    a.timestamp,
                    a.debits_pending,
                    a.debits_posted,
                    a.credits_pending,
                    a.credits_posted,
                )
                for a in accounts
            ],
        )

    def insert_transfers(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert transfers given as stored rows (see `transfer_to_row`)."""
        p = self.placeholder
        self._executemany(
            f"INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES ({', '.join([p] * 12)})", rows
        )

    def insert_resolutions(self, rows: Sequence[tuple[bytes, str, int]]) -> None:
        """Insert (pending id as bytes, kind, timestamp) rows."""
        p = self.placeholder
        self._executemany(
            f"INSERT INTO pending_resolutions (pending_id, kind, timestamp) VALUES ({p}, {p}, {p})",
            rows,
        )

    def open_pending(self, pending: Sequence[tuple[int, int]]) -> None:
        p = self.placeholder
        self._executemany(
            f"INSERT INTO pending_open (pending_id, expires_at) VALUES ({p}, {p})",
            [(_to_bytes(pending_id), expires_at) for pending_id, expires_at in pending],
        )

    def close_pending(self, pending_ids: Sequence[int]) -> None:
        p = self.placeholder
        self._executemany(
            f"DELETE FROM pending_open WHERE pending_id = {p}",
            [(_to_bytes(pending_id),) for pending_id in pending_ids],
        )

    def update_balances(self, accounts: Iterable[Account]) -> None:
        p = self.placeholder
        self._executemany(
            f"UPDATE accounts SET debits_pending = {p}, debits_posted = {p}, "
            f"credits_pending = {p}, credits_posted = {p} WHERE id = {p}",
            [
                (
                    a.debits_pending,
                    a.debits_posted,
                    a.credits_pending,
                    a.credits_posted,
                    _to_bytes(a.id),
                )
                for a in accounts
            ],
        )

    def insert_snapshots(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert balance-history rows (account id bytes, timestamp, four balances)."""
        p = self.placeholder
        self._executemany(
            "INSERT INTO account_balances (account_id, timestamp, debits_pending, debits_posted, "
            f"credits_pending, credits_posted) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
            rows,
        )

    def set_account_flags(self, account_id: int, flags: int) -> None:
        p = self.placeholder
        self._execute(
            f"UPDATE accounts SET flags = {p} WHERE id = {p}", (flags, _to_bytes(account_id))
        )

    def insert_account_event(self, timestamp: int, account_id: int, kind: str) -> None:
        p = self.placeholder
        self._execute(
            f"INSERT INTO account_events (timestamp, account_id, kind) VALUES ({p}, {p}, {p})",
            (timestamp, _to_bytes(account_id), kind),
        )

    def append_chain(self, record: ChainRecord) -> None:
        self.append_chains([record])

    def append_chains(self, records: Sequence[ChainRecord]) -> None:
        p = self.placeholder
        self._executemany(
            f"INSERT INTO audit_chain ({CHAIN_COLUMNS}) VALUES ({', '.join([p] * 8)})",
            [
                (
                    record.seq,
                    record.kind,
                    record.first_timestamp,
                    record.last_timestamp,
                    record.body,
                    record.body_hash,
                    record.previous_hash,
                    record.hash,
                )
                for record in records
            ],
        )

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.connection.executemany(sql, rows)

    # -- queries ----------------------------------------------------------------------------

    def account_transfers(
        self,
        account_id: int,
        timestamp_min: int,
        timestamp_max: int,
        limit: int,
        newest_first: bool,
        debits: bool,
        credits: bool,
    ) -> list[Transfer]:
        p = self.placeholder
        order = "DESC" if newest_first else "ASC"
        key = _to_bytes(account_id)
        parts: list[str] = []
        parameters: list[Any] = []
        for wanted, column in ((debits, "debit_account_id"), (credits, "credit_account_id")):
            if wanted:
                parts.append(
                    f"SELECT * FROM (SELECT {TRANSFER_COLUMNS} FROM transfers "
                    f"WHERE {column} = {p} AND timestamp >= {p} AND timestamp <= {p} "
                    f"ORDER BY timestamp {order} LIMIT {p}) AS {column}_side"
                )
                parameters += [key, timestamp_min, timestamp_max, limit]
        if not parts:
            return []
        sql = " UNION ALL ".join(parts) + f" ORDER BY timestamp {order} LIMIT {p}"
        rows = self._execute(sql, [*parameters, limit]).fetchall()
        return [transfer_from_row(row) for row in rows]

    def account_balances(
        self,
        account_id: int,
        timestamp_min: int,
        timestamp_max: int,
        limit: int,
        newest_first: bool,
    ) -> list[AccountBalance]:
        p = self.placeholder
        order = "DESC" if newest_first else "ASC"
        rows = self._execute(
            "SELECT timestamp, debits_pending, debits_posted, credits_pending, credits_posted "
            f"FROM account_balances WHERE account_id = {p} AND timestamp >= {p} "
            f"AND timestamp <= {p} ORDER BY timestamp {order} LIMIT {p}",
            (_to_bytes(account_id), timestamp_min, timestamp_max, limit),
        ).fetchall()
        return [AccountBalance(*row) for row in rows]

    def posted_totals_before(self, account_id: int, timestamp: int) -> tuple[int, int]:
        """(debits posted, credits posted) of the account over rows strictly before `timestamp`.

        Posted effect rows are all transfers except holds and voids (flags 2 and 8)."""
        p = self.placeholder
        key = _to_bytes(account_id)
        row = self._execute(
            "SELECT "
            f"(SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE debit_account_id = {p} "
            f"AND timestamp < {p} AND (flags & 10) = 0), "
            f"(SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE credit_account_id = {p} "
            f"AND timestamp < {p} AND (flags & 10) = 0)",
            (key, timestamp, key, timestamp),
        ).fetchone()
        return int(row[0]), int(row[1])

    def posted_totals_by_code(
        self, currency: str, codes: Sequence[int]
    ) -> dict[int, tuple[int, int]]:
        """(debits posted, credits posted) summed over every account of each code in a currency."""
        p = self.placeholder
        placeholders = ", ".join([p] * len(codes))
        rows = self._execute(
            "SELECT code, SUM(debits_posted), SUM(credits_posted) FROM accounts "
            f"WHERE currency = {p} AND code IN ({placeholders}) GROUP BY code",
            (currency, *codes),
        ).fetchall()
        totals = {code: (0, 0) for code in codes}
        totals.update({int(row[0]): (int(row[1]), int(row[2])) for row in rows})
        return totals

    # -- whole-ledger scans for `ledger check` and `audit verify` ------------------------------

    def balance_totals(self) -> list[tuple[str, int, int, int, int]]:
        rows = self._execute(
            "SELECT currency, SUM(debits_pending), SUM(credits_pending), SUM(debits_posted), "
            "SUM(credits_posted) FROM accounts GROUP BY currency ORDER BY currency"
        ).fetchall()
        return [(row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in rows]

    def posted_mismatches(self, limit: int) -> list[tuple[int, int, int, int, int]]:
        """Accounts whose stored posted balances differ from the sum of their journal rows:
        (account id, stored debits, journal debits, stored credits, journal credits)."""
        p = self.placeholder
        rows = self._execute(
            "SELECT a.id, a.debits_posted, COALESCE(d.total, 0), a.credits_posted, "
            "COALESCE(c.total, 0) FROM accounts a "
            "LEFT JOIN (SELECT debit_account_id AS id, SUM(amount) AS total FROM transfers "
            "           WHERE (flags & 10) = 0 GROUP BY debit_account_id) d ON d.id = a.id "
            "LEFT JOIN (SELECT credit_account_id AS id, SUM(amount) AS total FROM transfers "
            "           WHERE (flags & 10) = 0 GROUP BY credit_account_id) c ON c.id = a.id "
            "WHERE a.debits_posted <> COALESCE(d.total, 0) "
            f"   OR a.credits_posted <> COALESCE(c.total, 0) LIMIT {p}",
            (limit,),
        ).fetchall()
        return [(_from_bytes(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]

    def pending_mismatches(self, limit: int) -> list[tuple[int, int, int, int, int]]:
        """Accounts whose pending balances differ from the sum of their open holds."""
        p = self.placeholder
        rows = self._execute(
            "SELECT a.id, a.debits_pending, COALESCE(d.total, 0), a.credits_pending, "
            "COALESCE(c.total, 0) FROM accounts a "
            "LEFT JOIN (SELECT t.debit_account_id AS id, SUM(t.amount) AS total "
            "           FROM pending_open o JOIN transfers t ON t.id = o.pending_id "
            "           GROUP BY t.debit_account_id) d ON d.id = a.id "
            "LEFT JOIN (SELECT t.credit_account_id AS id, SUM(t.amount) AS total "
            "           FROM pending_open o JOIN transfers t ON t.id = o.pending_id "
            "           GROUP BY t.credit_account_id) c ON c.id = a.id "
            "WHERE a.debits_pending <> COALESCE(d.total, 0) "
            f"   OR a.credits_pending <> COALESCE(c.total, 0) LIMIT {p}",
            (limit,),
        ).fetchall()
        return [(_from_bytes(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]

    def transfers_with_unknown_accounts(self) -> int:
        """Transfers naming an account that does not exist (SQLite has no foreign key here)."""
        row = self._execute(
            "SELECT COUNT(*) FROM transfers t WHERE "
            "NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = t.debit_account_id) "
            "OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = t.credit_account_id)"
        ).fetchone()
        return int(row[0])

    def closed_flags_without_events(self) -> list[int]:
        """Accounts whose closed bit disagrees with their last journaled close/reopen event.

        The bit is the one column of an account the ledger may change, so the database
        cannot refuse the change; the journal says what it must be."""
        rows = self._execute(
            "SELECT a.id FROM accounts a WHERE ((a.flags & 16) <> 0) <> COALESCE(("
            "  SELECT e.kind = 'closed' FROM account_events e WHERE e.account_id = a.id "
            "  ORDER BY e.timestamp DESC LIMIT 1), FALSE)"
        ).fetchall()
        return [_from_bytes(row[0]) for row in rows]

    def wrong_expiries(self) -> int:
        """Open holds whose stored expiry is not their timestamp plus their timeout."""
        row = self._execute(
            "SELECT COUNT(*) FROM pending_open o JOIN transfers t ON t.id = o.pending_id "
            "WHERE o.expires_at <> CASE WHEN t.timeout > 0 "
            "THEN t.timestamp + CAST(t.timeout AS BIGINT) * 1000000000 ELSE 0 END"
        ).fetchone()
        return int(row[0])

    def open_pending_inconsistencies(self) -> tuple[int, int]:
        """(holds neither resolved nor open, holds both resolved and open)."""
        lost = self._execute(
            "SELECT COUNT(*) FROM transfers t WHERE (t.flags & 2) <> 0 "
            "AND NOT EXISTS (SELECT 1 FROM pending_open o WHERE o.pending_id = t.id) "
            "AND NOT EXISTS (SELECT 1 FROM pending_resolutions r WHERE r.pending_id = t.id)"
        ).fetchone()[0]
        doubled = self._execute(
            "SELECT COUNT(*) FROM pending_open o JOIN pending_resolutions r "
            "ON r.pending_id = o.pending_id"
        ).fetchone()[0]
        return int(lost), int(doubled)

    def chain_records(self, seq_after: int, limit: int) -> list[ChainRecord]:
        p = self.placeholder
        rows = self._execute(
            f"SELECT {CHAIN_COLUMNS} FROM audit_chain WHERE seq > {p} ORDER BY seq LIMIT {p}",
            (seq_after, limit),
        ).fetchall()
        return [chain_record_from_row(row) for row in rows]

    def journal_rows(self, timestamp_min: int, timestamp_max: int) -> dict[str, list[Any]]:
        """Every journal row with a timestamp in the range, by table, in timestamp order."""
        p = self.placeholder
        bounds = (timestamp_min, timestamp_max)
        return {
            "accounts": [
                account_from_row(row)
                for row in self._execute(
                    f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE timestamp >= {p} "
                    f"AND timestamp <= {p} ORDER BY timestamp",
                    bounds,
                )
            ],
            "account_events": [
                (row[0], bytes(row[1]), row[2])
                for row in self._execute(
                    "SELECT timestamp, account_id, kind FROM account_events "
                    f"WHERE timestamp >= {p} AND timestamp <= {p} ORDER BY timestamp",
                    bounds,
                )
            ],
            "transfers": [
                _plain_row(row)
                for row in self._execute(
                    f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE timestamp >= {p} "
                    f"AND timestamp <= {p} ORDER BY timestamp",
                    bounds,
                )
            ],
            "resolutions": [
                (bytes(row[0]), row[1], row[2])
                for row in self._execute(
                    "SELECT pending_id, kind, timestamp FROM pending_resolutions "
                    f"WHERE timestamp >= {p} AND timestamp <= {p} ORDER BY timestamp",
                    bounds,
                )
            ],
            "snapshots": [
                (bytes(row[0]), *row[1:])
                for row in self._execute(
                    "SELECT account_id, timestamp, debits_pending, debits_posted, credits_pending, "
                    f"credits_posted FROM account_balances WHERE timestamp >= {p} "
                    f"AND timestamp <= {p} ORDER BY timestamp",
                    bounds,
                )
            ],
        }

    def latest_journal_timestamp(self) -> int:
        row = self._execute(
            "SELECT MAX(m) FROM (SELECT MAX(timestamp) AS m FROM accounts "
            "UNION ALL SELECT MAX(timestamp) FROM account_events "
            "UNION ALL SELECT MAX(timestamp) FROM transfers "
            "UNION ALL SELECT MAX(timestamp) FROM pending_resolutions "
            "UNION ALL SELECT MAX(timestamp) FROM account_balances) AS maxima"
        ).fetchone()
        return int(row[0] or 0)


class SqliteLedgerStore(LedgerStore):
    backend = "sqlite"
    placeholder = "?"
    _select_one_account = f"SELECT {ACCOUNT_FIELDS_BUT_ID} FROM accounts WHERE id = ?"
    _select_balances = f"SELECT {BALANCE_COLUMNS} FROM accounts WHERE id = ?"

    def _id_filter(self, column: str, ids: Sequence[bytes]) -> tuple[str, list[Any]]:
        if len(ids) == 1:
            return f"{column} = ?", list(ids)
        return f"{column} IN ({', '.join('?' * len(ids))})", list(ids)

    def begin_read(self) -> None:
        # In WAL mode a deferred transaction reads one snapshot from its first SELECT on.
        self.connection.execute("BEGIN")

    def begin_write(self) -> tuple[ChainHead, int]:
        # IMMEDIATE takes the database's single write lock now, so two writers never both read
        # the head and then collide at commit; the busy timeout makes the second one wait.
        self.connection.execute("BEGIN IMMEDIATE")
        return self._read_head()

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")


class PostgresLedgerStore(LedgerStore):
    backend = "postgresql"
    placeholder = "%s"
    _select_one_account = f"SELECT {ACCOUNT_FIELDS_BUT_ID} FROM accounts WHERE id = %s"
    _select_balances = f"SELECT {BALANCE_COLUMNS} FROM accounts WHERE id = %s"

    def _id_filter(self, column: str, ids: Sequence[bytes]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(ids)]

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.connection.cursor() as cursor:
                cursor.executemany(sql, rows)

    def begin_read(self) -> None:
        self.connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        if self.connection.info.transaction_status != TransactionStatus.IDLE:
            self.connection.execute("ROLLBACK")

    def begin_write(self) -> tuple[ChainHead, int]:
        # The pool's connections are in autocommit mode; the write opens its own transaction.
        self.connection.execute("BEGIN")
        # Every writer takes one transaction-scoped advisory lock first. That single lock
        # orders all writers, so there is no deadlock between them, and READ COMMITTED then
        # lets each statement of the batch see everything committed before it was granted.
        self._execute("SELECT pg_advisory_xact_lock(%s)", (LEDGER_WRITE_LOCK_KEY,))
        return self._read_head()

    def insert_transfers(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with (
            self.connection.cursor() as cursor,
            cursor.copy(f"COPY transfers ({TRANSFER_COLUMNS}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def insert_snapshots(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with (
            self.connection.cursor() as cursor,
            cursor.copy(
                "COPY account_balances (account_id, timestamp, debits_pending, debits_posted, "
                "credits_pending, credits_posted) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def update_balances(self, accounts: Iterable[Account]) -> None:
        changed = list(accounts)
        if not changed:
            return
        self._execute(
            "UPDATE accounts AS a SET debits_pending = v.dp, debits_posted = v.dpo, "
            "credits_pending = v.cp, credits_posted = v.cpo "
            "FROM unnest(%s::bytea[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) "
            "AS v(id, dp, dpo, cp, cpo) WHERE a.id = v.id",
            (
                [_to_bytes(a.id) for a in changed],
                [a.debits_pending for a in changed],
                [a.debits_posted for a in changed],
                [a.credits_pending for a in changed],
                [a.credits_posted for a in changed],
            ),
        )


def store_for(backend: str, connection: Any) -> LedgerStore:
    if backend == "sqlite":
        return SqliteLedgerStore(connection)
    if backend == "postgresql":
        return PostgresLedgerStore(connection)
    raise ValueError(f"unknown backend {backend!r}")
