"""Consents, the personal-data vault (encrypted fields, wrapped data keys), the data-access log
and data-subject requests.

Tables (see `tianping.identity.privacy_store` for the statements over them):

* `privacy_requests`: one row per client request id of a privacy write, for idempotency.
* `consent_texts`: versioned consent texts (purposes, fields, language, recipient, SHA-256 of
  the body, the body itself).
* `consent_events`: grants and withdrawals, one row per event, keyed by the audit-chain record
  that chains it.
* `vault_keys`: each person's wrapped data key per scope (`live`, or `aml_retention` with the
  date until which the law requires it), the data-key version and the id of the master key that
  wraps it. Never the master key itself.
* `vault_fields`: ciphertext, nonce and data-key version of each personal field (and of the
  statements and answers of data-subject requests, which are personal too).
* `data_access_log`: every read of personal data, allowed or refused: who, whose, which fields,
  purpose, basis, time, reason. Never the values.
* `data_subject_requests` (with their state) and `data_subject_request_events` (the history of
  each request's states).
* `erasures`: one receipt per erased person; the id can never be used for personal data again.

Append-only tables (the database refuses UPDATE and DELETE, and TRUNCATE on PostgreSQL, with
the same triggers as the ledger's journal): `privacy_requests`, `consent_texts`,
`consent_events`, `data_access_log`, `data_subject_request_events`, `erasures`. The vault's own
tables are not append-only on purpose: erasure deletes rows from them, and key rotation rewrites
them.

Revision ID: 0005_identity_privacy
Revises: 0004_identity_auth
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0005_identity_privacy"
down_revision = "0004_identity_auth"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = (
    "privacy_requests",
    "consent_texts",
    "consent_events",
    "data_access_log",
    "data_subject_request_events",
    "erasures",
)

_FIELDS = (
    "'name', 'id_number', 'phone', 'address', 'date_of_birth', 'income', 'bank_card_number', "
    "'email'"
)

# The personal fields a vault row may hold, besides the statements and answers of data-subject
# requests (`request/<id>/statement`, `request/<id>/answer`).
_FIELD_CHECK = (
    f"field IN ({_FIELDS}) OR field LIKE 'request/%/statement' OR field LIKE 'request/%/answer'"
)

_TABLES = f"""
CREATE TABLE privacy_requests (
    request_id  TEXT PRIMARY KEY CHECK (length(request_id) BETWEEN 1 AND 64),
    kind        TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
    party_id    TEXT NOT NULL CHECK (length(party_id) = 30),
    subject     TEXT NOT NULL CHECK (length(subject) <= 1024),
    digest      {{blob}} NOT NULL CHECK (length(digest) = 32),
    key_version INTEGER,
    result      TEXT NOT NULL CHECK (length(result) <= 65536),
    at          BIGINT NOT NULL
){{without_rowid}};
CREATE TABLE consent_texts (
    text_id      TEXT NOT NULL CHECK (length(text_id) BETWEEN 1 AND 64),
    version      INTEGER NOT NULL CHECK (version >= 1),
    purposes     TEXT NOT NULL CHECK (length(purposes) BETWEEN 1 AND 256),
    fields       TEXT NOT NULL CHECK (length(fields) BETWEEN 1 AND 256),
    language     TEXT NOT NULL CHECK (length(language) BETWEEN 2 AND 35),
    recipient    TEXT CHECK (recipient IS NULL OR length(recipient) BETWEEN 1 AND 128),
    text_hash    {{blob}} NOT NULL CHECK (length(text_hash) = 32),
    body         TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    published_at BIGINT NOT NULL,
    seq          BIGINT NOT NULL UNIQUE,
    PRIMARY KEY (text_id, version)
){{without_rowid}};
CREATE TABLE consent_events (
    seq        BIGINT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE CHECK (length(request_id) BETWEEN 1 AND 64),
    party_id   TEXT NOT NULL CHECK (length(party_id) = 30),
    kind       TEXT NOT NULL CHECK (kind IN ('grant', 'withdraw')),
    text_id    TEXT NOT NULL CHECK (length(text_id) BETWEEN 1 AND 64),
    version    INTEGER,
    at         BIGINT NOT NULL,
    CHECK ((kind = 'grant') = (version IS NOT NULL))
);
CREATE INDEX consent_events_by_party ON consent_events (party_id, at, seq);
CREATE TABLE vault_keys (
    party_id      TEXT NOT NULL CHECK (length(party_id) = 30),
    scope         TEXT NOT NULL CHECK (scope IN ('live', 'aml_retention')),
    key_version   INTEGER NOT NULL CHECK (key_version >= 1),
    master_key_id TEXT NOT NULL CHECK (length(master_key_id) = 16),
    nonce         {{blob}} NOT NULL CHECK (length(nonce) = 12),
    wrapped_key   {{blob}} NOT NULL CHECK (length(wrapped_key) = 48),
    created_at    BIGINT NOT NULL,
    retain_until  TEXT CHECK (retain_until IS NULL OR length(retain_until) = 10),
    PRIMARY KEY (party_id, scope),
    CHECK ((scope = 'aml_retention') = (retain_until IS NOT NULL))
){{without_rowid}};
CREATE INDEX vault_keys_by_master_key ON vault_keys (master_key_id, party_id, scope);
CREATE INDEX vault_keys_by_retention ON vault_keys (retain_until) WHERE retain_until IS NOT NULL;
CREATE TABLE vault_fields (
    party_id    TEXT NOT NULL,
    scope       TEXT NOT NULL,
    field       TEXT NOT NULL CHECK (length(field) BETWEEN 1 AND 96 AND ({_FIELD_CHECK})),
    key_version INTEGER NOT NULL CHECK (key_version >= 1),
    nonce       {{blob}} NOT NULL CHECK (length(nonce) = 12),
    ciphertext  {{blob}} NOT NULL CHECK (length(ciphertext) BETWEEN 16 AND 70000),
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (party_id, scope, field),
    FOREIGN KEY (party_id, scope) REFERENCES vault_keys (party_id, scope)
){{without_rowid}};
CREATE TABLE data_access_log (
    seq             BIGINT PRIMARY KEY,
    at              BIGINT NOT NULL,
    accessor        TEXT NOT NULL CHECK (length(accessor) BETWEEN 1 AND 64),
    party_id        TEXT NOT NULL CHECK (length(party_id) = 30),
    fields          TEXT NOT NULL CHECK (length(fields) BETWEEN 1 AND 256),
    purpose         TEXT NOT NULL CHECK (length(purpose) BETWEEN 1 AND 32),
    recipient       TEXT CHECK (recipient IS NULL OR length(recipient) BETWEEN 1 AND 128),
    outcome         TEXT NOT NULL CHECK (outcome IN ('allowed', 'refused')),
    basis           TEXT CHECK (basis IS NULL OR basis IN
                    ('consent', 'contract_necessity', 'legal_duty', 'data_subject_right')),
    refusal         TEXT CHECK (refusal IS NULL OR length(refusal) BETWEEN 1 AND 64),
    consent_text_id TEXT,
    consent_version INTEGER,
    reason          TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 128),
    CHECK ((outcome = 'allowed') = (basis IS NOT NULL)),
    CHECK ((outcome = 'refused') = (refusal IS NOT NULL))
);
CREATE INDEX data_access_log_by_party ON data_access_log (party_id, seq);
CREATE TABLE data_subject_requests (
    request_id         TEXT PRIMARY KEY CHECK (length(request_id) BETWEEN 1 AND 64),
    party_id           TEXT NOT NULL CHECK (length(party_id) = 30),
    kind               TEXT NOT NULL CHECK (kind IN ('explanation', 'human_review')),
    decision_reference TEXT NOT NULL CHECK (length(decision_reference) BETWEEN 1 AND 64),
    state              TEXT NOT NULL CHECK (state IN ('open', 'in_review', 'answered')),
    received_at        BIGINT NOT NULL,
    respond_by         TEXT NOT NULL CHECK (length(respond_by) = 10),
    has_statement      INTEGER NOT NULL CHECK (has_statement IN (0, 1)),
    has_answer         INTEGER NOT NULL CHECK (has_answer IN (0, 1)),
    updated_at         BIGINT NOT NULL
){{without_rowid}};
CREATE INDEX data_subject_requests_by_party ON data_subject_requests (party_id, received_at);
CREATE INDEX data_subject_requests_by_state ON data_subject_requests (state, respond_by);
CREATE TABLE data_subject_request_events (
    seq        BIGINT PRIMARY KEY,
    request_id TEXT NOT NULL CHECK (length(request_id) BETWEEN 1 AND 64),
    state      TEXT NOT NULL CHECK (state IN ('open', 'in_review', 'answered')),
    actor      TEXT NOT NULL CHECK (length(actor) BETWEEN 1 AND 64),
    at         BIGINT NOT NULL
);
CREATE INDEX data_subject_request_events_by_request
    ON data_subject_request_events (request_id, seq);
CREATE TABLE erasures (
    party_id   TEXT PRIMARY KEY CHECK (length(party_id) = 30),
    request_id TEXT NOT NULL UNIQUE CHECK (length(request_id) BETWEEN 1 AND 64),
    seq        BIGINT NOT NULL UNIQUE,
    erased_at  BIGINT NOT NULL,
    receipt    TEXT NOT NULL CHECK (length(receipt) <= 65536)
){{without_rowid}}
"""


def _statements(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";\n") if statement.strip()]


def upgrade() -> None:
    backend = op.get_bind().dialect.name
    sqlite = backend == "sqlite"
    script = _TABLES.format(
        blob="BLOB" if sqlite else "BYTEA", without_rowid=" WITHOUT ROWID" if sqlite else ""
    )
    for statement in _statements(script):
        op.execute(statement)
    for table in APPEND_ONLY_TABLES:
        if sqlite:
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table}: rows are append-only'); END"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table}: rows are append-only'); END"
            )
        else:
            # 0001 created the trigger function shared by every append-only table.
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION tianping_refuse_journal_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION tianping_refuse_journal_change()"
            )


def downgrade() -> None:
    raise RuntimeError("identity tables cannot be downgraded; restore from a backup")
