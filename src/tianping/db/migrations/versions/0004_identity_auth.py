"""Credentials, second factors, devices, sessions, tokens and lockouts.

What is stored, and why nothing here is a usable secret or a piece of personal data:

* `auth_credentials`: a party's Argon2id password hash, its role, and, when it has a login name,
  an HMAC of that name (login names are often phone numbers, so the name itself is not kept).
* `auth_totp`: the party's TOTP secret sealed with AES-256-GCM (a credential, so encrypted at
  rest), when it was confirmed, and the last time step accepted (so a code is never accepted
  twice).
* `auth_devices`: registered devices; the user's label for a device ("Li's phone") is sealed
  like a secret because it may name a person.
* `auth_sessions`: each session's subject, role, scopes, authentication strength (factors and
  the certificate flag), device, lifetime and revocation.
* `auth_refresh_tokens`: SHA-256 digests of refresh tokens (they are 256-bit random values, so a
  fast digest is enough), with when each was rotated: a rotated token presented again revokes its
  session.
* `auth_lockouts`: consecutive failures per credential (keyed by an HMAC of the credential or of
  an unknown login identifier, so unknown accounts lock exactly like known ones) and the lock.
* `auth_machine_clients`: partner institutions' clients, their scopes and a digest of the secret.
* `auth_events`: an append-only trail of authentication events (logins, failures, locks,
  step-ups, refreshes, revocations), with pseudonymous subjects and stable codes only.
  Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL), as on the ledger's journal.

Times are nanoseconds since the epoch, like the ledger's.

Revision ID: 0004_identity_auth
Revises: 0003_identity_parties
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0004_identity_auth"
down_revision = "0003_identity_parties"
branch_labels = None
depends_on = None

ROLES = ("customer", "merchant", "operator", "partner", "supervisor", "auditor")

_TABLES = """
CREATE TABLE auth_credentials (
    party_id          TEXT PRIMARY KEY CHECK (length(party_id) BETWEEN 1 AND 64),
    role              TEXT NOT NULL CHECK (role IN ({roles})),
    login_name_digest {blob} UNIQUE CHECK (length(login_name_digest) = 32),
    password_hash     TEXT NOT NULL CHECK (length(password_hash) BETWEEN 1 AND 512),
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE TABLE auth_totp (
    party_id       TEXT PRIMARY KEY REFERENCES auth_credentials (party_id),
    secret_sealed  {blob} NOT NULL CHECK (length(secret_sealed) <= 1024),
    enrolled_at    BIGINT NOT NULL,
    confirmed_at   BIGINT,
    last_used_step BIGINT
);
CREATE TABLE auth_devices (
    device_id     TEXT PRIMARY KEY CHECK (length(device_id) BETWEEN 8 AND 64),
    party_id      TEXT NOT NULL REFERENCES auth_credentials (party_id),
    label_sealed  {blob} NOT NULL CHECK (length(label_sealed) <= 1024),
    registered_at BIGINT NOT NULL,
    last_seen_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX auth_devices_by_party ON auth_devices (party_id);
CREATE TABLE auth_sessions (
    session_id         TEXT PRIMARY KEY CHECK (length(session_id) BETWEEN 1 AND 64),
    subject            TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 64),
    subject_kind       TEXT NOT NULL CHECK (subject_kind IN ('party', 'client')),
    role               TEXT NOT NULL CHECK (role IN ({roles})),
    scopes             TEXT NOT NULL CHECK (length(scopes) <= 8192),
    factors            TEXT NOT NULL CHECK (length(factors) BETWEEN 1 AND 64),
    certificate        INTEGER NOT NULL CHECK (certificate IN (0, 1)),
    device_id          TEXT CHECK (length(device_id) <= 64),
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    strength_raised_at BIGINT,
    revoked_at         BIGINT,
    revoked_reason     TEXT CHECK (length(revoked_reason) <= 64),
    CHECK (expires_at > created_at)
);
CREATE INDEX auth_sessions_by_subject ON auth_sessions (subject, created_at);
CREATE INDEX auth_sessions_by_revocation ON auth_sessions (revoked_at)
    WHERE revoked_at IS NOT NULL;
CREATE TABLE auth_refresh_tokens (
    token_hash {blob} PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id TEXT NOT NULL REFERENCES auth_sessions (session_id),
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    CHECK (expires_at > issued_at)
);
CREATE INDEX auth_refresh_tokens_by_session ON auth_refresh_tokens (session_id);
CREATE TABLE auth_lockouts (
    subject_key    {blob} PRIMARY KEY CHECK (length(subject_key) = 32),
    failed_count   INTEGER NOT NULL CHECK (failed_count >= 0),
    last_failed_at BIGINT NOT NULL,
    locked_until   BIGINT NOT NULL
);
CREATE INDEX auth_lockouts_by_time ON auth_lockouts (last_failed_at);
CREATE TABLE auth_machine_clients (
    client_id         TEXT PRIMARY KEY CHECK (length(client_id) BETWEEN 3 AND 64),
    partner_party_id  TEXT NOT NULL CHECK (length(partner_party_id) BETWEEN 1 AND 64),
    scopes            TEXT NOT NULL CHECK (length(scopes) <= 8192),
    secret_hash       {blob} NOT NULL CHECK (length(secret_hash) = 32),
    created_at        BIGINT NOT NULL,
    secret_rotated_at BIGINT,
    disabled_at       BIGINT
);
CREATE TABLE auth_events (
    seq        {sequence_key},
    timestamp  BIGINT NOT NULL,
    kind       TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
    subject    TEXT CHECK (length(subject) <= 64),
    session_id TEXT CHECK (length(session_id) <= 64),
    code       TEXT CHECK (length(code) <= 64)
);
CREATE INDEX auth_events_by_subject ON auth_events (subject, timestamp)
"""


def upgrade() -> None:
    backend = op.get_bind().dialect.name
    roles = ", ".join(f"'{role}'" for role in ROLES)
    if backend == "sqlite":
        script = _TABLES.format(
            blob="BLOB",
            roles=roles,
            # SQLite's rowid alias: an ever-growing integer key assigned on insert.
            sequence_key="INTEGER PRIMARY KEY",
        )
    else:
        script = _TABLES.format(
            blob="BYTEA",
            roles=roles,
            sequence_key="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        )
    for statement in (part.strip() for part in script.split(";\n")):
        if statement:
            op.execute(statement)
    if backend == "sqlite":
        op.execute(
            "CREATE TRIGGER auth_events_no_update BEFORE UPDATE ON auth_events "
            "BEGIN SELECT RAISE(ABORT, 'auth_events: authentication events are append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER auth_events_no_delete BEFORE DELETE ON auth_events "
            "BEGIN SELECT RAISE(ABORT, 'auth_events: authentication events are append-only'); END"
        )
    else:
        # The trigger function comes from 0001_ledger, shared by every append-only table.
        op.execute(
            "CREATE TRIGGER auth_events_append_only BEFORE UPDATE OR DELETE ON auth_events "
            "FOR EACH ROW EXECUTE FUNCTION tianping_refuse_journal_change()"
        )
        op.execute(
            "CREATE TRIGGER auth_events_no_truncate BEFORE TRUNCATE ON auth_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION tianping_refuse_journal_change()"
        )


def downgrade() -> None:
    raise RuntimeError("identity tables cannot be downgraded; restore from a backup")
