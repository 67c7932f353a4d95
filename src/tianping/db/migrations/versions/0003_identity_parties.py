"""Parties, identity verifications, payment-account classes, bound cards and the blocklist.

No column holds personal data: names, ID and card numbers, phone numbers, addresses and dates of
birth live in the encrypted vault. These tables keep what the decisions need: a party's kind,
its account class, the channels and times of its verifications, its payment accounts, keyed
card fingerprints with the last four digits, blocklist listings and, for a person registered
while under 14, the 14th birthday (`minor_until`) derived from the date of birth.

`request_digest` lets a retried registration be told from a conflicting one without storing the
request: for a person it is an HMAC under the fingerprint key (a plain hash of a date of birth
could be reversed by trying every date).

Guarantees in the database itself, on both backends:
* verifications and blocklist listings are append-only (UPDATE, DELETE and, on PostgreSQL,
  TRUNCATE are refused, as for the ledger's journal);
* parties and payment accounts are never deleted, and only their account class (and a party's
  `minor_until`, which erasure may clear) may change;
* one Class III account per person per institution (a partial unique index), one binding per
  card fingerprint, one merchant per registration number.

Revision ID: 0003_identity_parties
Revises: 0002_rules
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0003_identity_parties"
down_revision = "0002_rules"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("identity_verifications", "identity_blocklist")

_TABLES = """
CREATE TABLE identity_parties (
    party_id                   TEXT PRIMARY KEY CHECK (length(party_id) = 30),
    request_id                 TEXT NOT NULL UNIQUE CHECK (length(request_id) BETWEEN 1 AND 64),
    request_digest             {blob} NOT NULL CHECK (length(request_digest) = 32),
    kind                       TEXT NOT NULL CHECK (kind IN ('person', 'merchant',
                                   'institution', 'platform_operator', 'supervisor', 'auditor')),
    institution_kind           TEXT CHECK (institution_kind IN ('partner_bank', 'fund_manager',
                                   'insurer', 'credit_bureau', 'clearing_house')),
    registration_number        TEXT UNIQUE CHECK (length(registration_number) = 18),
    account_class              TEXT CHECK (account_class IN ('I', 'II', 'III')),
    minor_until                TEXT CHECK (length(minor_until) = 10),
    guardian_party_id          TEXT REFERENCES identity_parties (party_id),
    guardian_consent_reference TEXT CHECK (length(guardian_consent_reference) BETWEEN 1 AND 64),
    registered_at              BIGINT NOT NULL,
    seq                        BIGINT NOT NULL,
    CHECK ((kind = 'institution') = (institution_kind IS NOT NULL)),
    CHECK ((kind = 'merchant') = (registration_number IS NOT NULL)),
    CHECK (kind = 'person' OR (account_class IS NULL AND minor_until IS NULL
                               AND guardian_party_id IS NULL)),
    CHECK ((guardian_party_id IS NULL) = (guardian_consent_reference IS NULL))
);
CREATE TABLE identity_verifications (
    verification_id TEXT PRIMARY KEY CHECK (length(verification_id) BETWEEN 1 AND 64),
    party_id        TEXT NOT NULL REFERENCES identity_parties (party_id),
    channel         TEXT NOT NULL CHECK (channel IN ('id_document_name_check',
                        'bank_card_element_check', 'face_match', 'mobile_carrier_check',
                        'in_person')),
    source          TEXT NOT NULL CHECK (length(source) BETWEEN 1 AND 64),
    verified_at     BIGINT NOT NULL CHECK (verified_at > 0),
    recorded_at     BIGINT NOT NULL,
    seq             BIGINT NOT NULL
);
CREATE INDEX identity_verifications_by_party ON identity_verifications (party_id, recorded_at);
CREATE TABLE identity_payment_accounts (
    account_id                 TEXT PRIMARY KEY CHECK (length(account_id) = 30),
    request_id                 TEXT NOT NULL UNIQUE CHECK (length(request_id) BETWEEN 1 AND 64),
    party_id                   TEXT NOT NULL REFERENCES identity_parties (party_id),
    institution_id             TEXT NOT NULL REFERENCES identity_parties (party_id),
    account_class              TEXT NOT NULL CHECK (account_class IN ('I', 'II', 'III')),
    requested_class            TEXT CHECK (requested_class IN ('I', 'II', 'III')),
    guardian_consent_reference TEXT CHECK (length(guardian_consent_reference) BETWEEN 1 AND 64),
    opened_on                  TEXT NOT NULL CHECK (length(opened_on) = 10),
    opened_at                  BIGINT NOT NULL,
    seq                        BIGINT NOT NULL
);
CREATE INDEX identity_payment_accounts_by_party
    ON identity_payment_accounts (party_id, institution_id);
CREATE UNIQUE INDEX identity_one_class_iii_per_institution
    ON identity_payment_accounts (party_id, institution_id) WHERE account_class = 'III';
CREATE TABLE identity_card_bindings (
    binding_id  TEXT PRIMARY KEY CHECK (length(binding_id) BETWEEN 1 AND 64),
    party_id    TEXT NOT NULL REFERENCES identity_parties (party_id),
    fingerprint TEXT NOT NULL UNIQUE CHECK (length(fingerprint) = 64),
    last_four   TEXT NOT NULL CHECK (length(last_four) = 4),
    bound_at    BIGINT NOT NULL,
    seq         BIGINT NOT NULL
);
CREATE INDEX identity_card_bindings_by_party ON identity_card_bindings (party_id);
CREATE TABLE identity_blocklist (
    party_id       TEXT NOT NULL REFERENCES identity_parties (party_id),
    case_reference TEXT NOT NULL CHECK (length(case_reference) BETWEEN 1 AND 64),
    listed_on      TEXT NOT NULL CHECK (length(listed_on) = 10),
    reason         TEXT NOT NULL CHECK (reason IN ('account_renting', 'account_lending',
                       'account_selling', 'account_buying')),
    recorded_at    BIGINT NOT NULL,
    seq            BIGINT NOT NULL,
    PRIMARY KEY (party_id, case_reference)
)
"""

# Columns of the mutable tables that never change once written.
_PARTY_FIXED = (
    "party_id",
    "request_id",
    "request_digest",
    "kind",
    "institution_kind",
    "registration_number",
    "guardian_party_id",
    "guardian_consent_reference",
    "registered_at",
    "seq",
)
_ACCOUNT_FIXED = (
    "account_id",
    "request_id",
    "party_id",
    "institution_id",
    "requested_class",
    "guardian_consent_reference",
    "opened_on",
    "opened_at",
    "seq",
)
_GUARDED = {
    "identity_parties": (_PARTY_FIXED, "only the account class and minor_until may change"),
    "identity_payment_accounts": (_ACCOUNT_FIXED, "only the account class may change"),
}


def _statements(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";\n") if statement.strip()]


def _sqlite_triggers() -> list[str]:
    statements = []
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table}: rows are append-only'); END"
            )
    for table, (fixed, message) in _GUARDED.items():
        statements.append(
            f"CREATE TRIGGER {table}_fields_immutable BEFORE UPDATE OF {', '.join(fixed)} "
            f"ON {table} BEGIN SELECT RAISE(ABORT, '{table}: {message}'); END"
        )
        statements.append(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table}: rows are never deleted'); END"
        )
    return statements


def _postgres_triggers() -> list[str]:
    # `tianping_refuse_journal_change()` comes from 0001; the guards compare every fixed column
    # with IS DISTINCT FROM, because several of them may be NULL.
    statements = []
    for table in APPEND_ONLY_TABLES:
        statements.append(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION tianping_refuse_journal_change()"
        )
        statements.append(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION tianping_refuse_journal_change()"
        )
    for table, (fixed, message) in _GUARDED.items():
        changed = " OR ".join(f"NEW.{column} IS DISTINCT FROM OLD.{column}" for column in fixed)
        statements.append(
            f"""CREATE FUNCTION tianping_guard_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    RAISE EXCEPTION '{table}: rows are never deleted'
                        USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                IF {changed} THEN
                    RAISE EXCEPTION '{table}: {message}'
                        USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                RETURN NEW;
            END $$"""
        )
        statements.append(
            f"CREATE TRIGGER {table}_guard BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION tianping_guard_{table}()"
        )
        statements.append(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION tianping_refuse_journal_change()"
        )
    return statements


def upgrade() -> None:
    backend = op.get_bind().dialect.name
    blob = "BLOB" if backend == "sqlite" else "BYTEA"
    for statement in _statements(_TABLES.format(blob=blob)):
        op.execute(statement)
    triggers = _sqlite_triggers() if backend == "sqlite" else _postgres_triggers()
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    # Dropping parties would orphan every pseudonymous id in the ledger and the audit chain, and
    # the blocklist is evidence; restore from a backup instead.
    raise RuntimeError("identity tables cannot be downgraded; restore from a backup")
