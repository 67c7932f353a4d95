"""The ledger: accounts, transfers, pending resolutions, balance history and the hash chain.

The DDL is written as SQL rather than with `op.create_table` because most of it is backend-specific
on purpose: SQLite tables use `WITHOUT ROWID` or an integer rowid key where that halves the work of
an insert, PostgreSQL gets PL/pgSQL trigger functions, and the immutability triggers differ in
syntax. Both backends end up with the same tables, columns, keys and guarantees.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

# Journal tables are append-only: the database itself refuses UPDATE and DELETE on them, so a bug
# or an operator with SQL access cannot edit history without first dropping a trigger (which
# `tianping audit verify` then catches through the hash chain).
APPEND_ONLY_TABLES = (
    "transfers",
    "pending_resolutions",
    "account_events",
    "account_balances",
    "audit_chain",
)

_COMMON_TABLES = """
CREATE TABLE accounts (
    id              {blob} PRIMARY KEY CHECK (length(id) = 16),
    currency        TEXT NOT NULL CHECK (length(currency) = 3),
    code            INTEGER NOT NULL CHECK (code BETWEEN 1 AND 65535),
    flags           INTEGER NOT NULL CHECK (flags >= 0),
    owner           TEXT NOT NULL CHECK (length(owner) <= 64),
    timestamp       BIGINT NOT NULL UNIQUE,
    debits_pending  BIGINT NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    debits_posted   BIGINT NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_pending BIGINT NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    credits_posted  BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0)
){without_rowid};
CREATE INDEX accounts_by_owner ON accounts (owner, id);
CREATE TABLE transfers (
    timestamp         {timestamp_key},
    id                {blob} NOT NULL UNIQUE CHECK (length(id) = 16),
    debit_account_id  {blob} NOT NULL{account_reference},
    credit_account_id {blob} NOT NULL{account_reference},
    amount            BIGINT NOT NULL CHECK (amount > 0),
    currency          TEXT NOT NULL,
    code              INTEGER NOT NULL,
    flags             INTEGER NOT NULL,
    pending_id        {blob},
    reverses_id       {blob},
    timeout           INTEGER NOT NULL,
    metadata          TEXT,
    CHECK (debit_account_id <> credit_account_id)
);
CREATE INDEX transfers_by_debit_account ON transfers (debit_account_id, timestamp);
CREATE INDEX transfers_by_credit_account ON transfers (credit_account_id, timestamp);
CREATE INDEX transfers_by_reversed ON transfers (reverses_id) WHERE reverses_id IS NOT NULL;
CREATE TABLE pending_resolutions (
    pending_id  {blob} PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('posted', 'voided', 'expired')),
    timestamp   BIGINT NOT NULL
){without_rowid};
CREATE INDEX pending_resolutions_by_time ON pending_resolutions (timestamp);
CREATE TABLE pending_open (
    pending_id  {blob} PRIMARY KEY,
    expires_at  BIGINT NOT NULL
){without_rowid};
CREATE INDEX pending_open_by_expiry ON pending_open (expires_at) WHERE expires_at > 0;
CREATE TABLE account_events (
    timestamp   {timestamp_key},
    account_id  {blob} NOT NULL REFERENCES accounts (id),
    kind        TEXT NOT NULL CHECK (kind IN ('closed', 'reopened'))
);
CREATE TABLE account_balances (
    account_id      {blob} NOT NULL,
    timestamp       BIGINT NOT NULL,
    debits_pending  BIGINT NOT NULL,
    debits_posted   BIGINT NOT NULL,
    credits_pending BIGINT NOT NULL,
    credits_posted  BIGINT NOT NULL,
    PRIMARY KEY (account_id, timestamp)
){without_rowid};
CREATE INDEX account_balances_by_time ON account_balances (timestamp);
CREATE TABLE audit_chain (
    seq             BIGINT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    first_timestamp BIGINT NOT NULL,
    last_timestamp  BIGINT NOT NULL,
    body            {blob},
    body_hash       {blob} NOT NULL,
    previous_hash   {blob} NOT NULL,
    hash            {blob} NOT NULL,
    CHECK (last_timestamp >= first_timestamp)
);
"""

_SQLITE_ACCOUNT_TRIGGERS = (
    """CREATE TRIGGER accounts_fields_immutable
    BEFORE UPDATE OF id, currency, code, owner, timestamp ON accounts
    BEGIN SELECT RAISE(ABORT, 'accounts: only balances and the closed flag may change'); END""",
    """CREATE TRIGGER accounts_flags_immutable
    BEFORE UPDATE OF flags ON accounts WHEN (NEW.flags | 16) <> (OLD.flags | 16)
    BEGIN SELECT RAISE(ABORT, 'accounts: only balances and the closed flag may change'); END""",
    """CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
    BEGIN SELECT RAISE(ABORT, 'accounts are never deleted'); END""",
)

_POSTGRES_FUNCTIONS = (
    """CREATE FUNCTION tianping_refuse_journal_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '%: journal rows are append-only (% refused)', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    """CREATE FUNCTION tianping_guard_account_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'accounts are never deleted'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.id <> OLD.id OR NEW.currency <> OLD.currency OR NEW.code <> OLD.code
           OR NEW.owner <> OLD.owner OR NEW.timestamp <> OLD.timestamp
           OR (NEW.flags | 16) <> (OLD.flags | 16) THEN
            RAISE EXCEPTION 'accounts: only balances and the closed flag may change'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER accounts_guard BEFORE UPDATE OR DELETE ON accounts
        FOR EACH ROW EXECUTE FUNCTION tianping_guard_account_update()""",
    """CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
        FOR EACH STATEMENT EXECUTE FUNCTION tianping_refuse_journal_change()""",
)


def _statements(script: str) -> list[str]:
    """Split a script of plain DDL (no procedural bodies) into statements."""
    return [statement.strip() for statement in script.split(";\n") if statement.strip()]


def upgrade() -> None:
    backend = op.get_bind().dialect.name
    if backend == "sqlite":
        tables = _COMMON_TABLES.format(
            blob="BLOB",
            without_rowid=" WITHOUT ROWID",
            # An INTEGER PRIMARY KEY is SQLite's rowid: ledger timestamps only grow, so every
            # journal insert appends at the right-hand edge of the table's B-tree.
            timestamp_key="INTEGER PRIMARY KEY",
            # SQLite checks a foreign key with a lookup per row that doubles the cost of a
            # transfer insert. The engine reads both accounts under the write lock before it
            # writes a transfer, accounts are never deleted (a trigger refuses it) and
            # `tianping ledger check` verifies every transfer's accounts, so on the embedded
            # backend the constraint is left to those three guards.
            account_reference="",
        )
        for statement in _statements(tables):
            op.execute(statement)
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table}: journal rows are append-only'); END"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table}: journal rows are append-only'); END"
            )
        for statement in _SQLITE_ACCOUNT_TRIGGERS:
            op.execute(statement)
    else:
        tables = _COMMON_TABLES.format(
            blob="BYTEA",
            without_rowid="",
            timestamp_key="BIGINT PRIMARY KEY",
            account_reference=" REFERENCES accounts (id)",
        )
        for statement in _statements(tables):
            op.execute(statement)
        for statement in _POSTGRES_FUNCTIONS:
            op.execute(statement)
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION tianping_refuse_journal_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION tianping_refuse_journal_change()"
            )


def downgrade() -> None:
    # The ledger is never dropped by a migration: a downgrade that destroys the journal would be
    # an audit failure. Restore from a backup instead.
    raise RuntimeError("the ledger schema cannot be downgraded; restore from a backup")
