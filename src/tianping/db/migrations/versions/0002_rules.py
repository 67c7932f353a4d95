"""Rule decisions: every decision the rules engine made at an enforcement point, as evidence.

One row per decision, written in the same transaction as the `rules.decision` chain record
that chains its canonical body (see `tianping.rules.service`); `seq` names that record. JSON
columns hold canonical JSON (sorted keys, no spaces), so the chained body can be rebuilt from
the row byte for byte and an edited row breaks the chain.

The table is append-only like the ledger's journal: triggers refuse UPDATE and DELETE (and
TRUNCATE on PostgreSQL), reusing 0001's trigger function there.

Revision ID: 0002_rules
Revises: 0001_ledger
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002_rules"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

# The largest canonical JSON of a decision's command or facts, in characters. The service
# refuses larger ones before writing; the CHECK is the database's own guard.
DOCUMENT_LENGTH_MAX = 16384

_TABLE = """
CREATE TABLE rule_decisions (
    decision_id   {blob} PRIMARY KEY CHECK (length(decision_id) = 16),
    seq           BIGINT NOT NULL UNIQUE,
    timestamp     BIGINT NOT NULL,
    point         TEXT NOT NULL CHECK (length(point) BETWEEN 1 AND 64),
    decided_on    TEXT NOT NULL CHECK (length(decided_on) = 10),
    outcome       TEXT NOT NULL
                  CHECK (outcome IN ('allow', 'report', 'confirm', 'step_up', 'deny')),
    rule_ids      TEXT NOT NULL,
    evaluated     TEXT NOT NULL,
    findings      TEXT NOT NULL,
    parameters    TEXT NOT NULL,
    messages_en   TEXT NOT NULL,
    messages_zh   TEXT NOT NULL,
    rulebook      TEXT NOT NULL CHECK (length(rulebook) BETWEEN 1 AND 512),
    rulebook_hash TEXT NOT NULL CHECK (length(rulebook_hash) = 64),
    facts         TEXT NOT NULL CHECK (length(facts) <= {document_max}),
    command       TEXT NOT NULL CHECK (length(command) <= {document_max})
);
CREATE INDEX rule_decisions_by_day ON rule_decisions (decided_on, point)
"""


def upgrade() -> None:
    backend = op.get_bind().dialect.name
    blob = "BLOB" if backend == "sqlite" else "BYTEA"
    script = _TABLE.format(blob=blob, document_max=DOCUMENT_LENGTH_MAX)
    for statement in (part.strip() for part in script.split(";\n")):
        if statement:
            op.execute(statement)
    if backend == "sqlite":
        op.execute(
            "CREATE TRIGGER rule_decisions_no_update BEFORE UPDATE ON rule_decisions "
            "BEGIN SELECT RAISE(ABORT, 'rule_decisions: decision records are append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER rule_decisions_no_delete BEFORE DELETE ON rule_decisions "
            "BEGIN SELECT RAISE(ABORT, 'rule_decisions: decision records are append-only'); END"
        )
    else:
        op.execute(
            "CREATE TRIGGER rule_decisions_append_only BEFORE UPDATE OR DELETE ON rule_decisions "
            "FOR EACH ROW EXECUTE FUNCTION tianping_refuse_journal_change()"
        )
        op.execute(
            "CREATE TRIGGER rule_decisions_no_truncate BEFORE TRUNCATE ON rule_decisions "
            "FOR EACH STATEMENT EXECUTE FUNCTION tianping_refuse_journal_change()"
        )


def downgrade() -> None:
    # Dropping the decisions would destroy the evidence their chain records point at, and the
    # chain would then fail verification; restore from a backup instead.
    raise RuntimeError("the rule decisions cannot be downgraded; restore from a backup")
