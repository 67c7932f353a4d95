"""Rule decisions as evidence, on SQLite and PostgreSQL: stored with their chain record in the
caller's transaction, idempotent by id, append-only, and tamper-evident through verify_chain.

The `ledger` fixture verifies the chain and the ledger's invariants when each test ends, so every
test here also proves that recording decisions next to transfers leaves both intact; the tamper
tests use `unchecked_ledger` because they break the chain on purpose.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tianping.db.urls import parse_database_url
from tianping.ledger.audit import BODY_SOURCES, verify_chain
from tianping.ledger.ids import derive_id
from tianping.ledger.journal import inline_body_hash
from tianping.ledger.model import NewAccount, NewTransfer
from tianping.ledger.results import CreateAccountResult, CreateTransferResult
from tianping.ledger.service import Ledger
from tianping.rules.model import Outcome
from tianping.rules.rulebook import load_rulebook
from tianping.rules.service import (
    DECISION_KIND,
    DOCUMENT_LENGTH_MAX,
    DecisionConflict,
    DecisionNotFound,
    InvalidCommand,
    RulesService,
)

EUR = "EUR"
RESERVE, ALICE, SHOP = 1, 2, 3
ON = date(2026, 3, 1)
BLOCKED = {"auth_factors": 2, "failed_attempts": 5}
CONTACTLESS = {
    "auth_factors": 1,
    "failed_attempts": 0,
    "sca_exemption": "contactless",
    "channel": "contactless",
    "amount": 4500,
    "sca_cumulative_since_last": 0,
}


class RawSQL:
    """A plain autocommit connection that plays an operator with SQL access."""

    def __init__(self, url: str) -> None:
        parsed = parse_database_url(url)
        self.backend = parsed.backend
        self.connection: Any
        if parsed.backend == "sqlite":
            self.connection = sqlite3.connect(parsed.sqlite_path or "", isolation_level=None)
            self.errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
        else:
            self.connection = psycopg.connect(parsed.dsn or "", autocommit=True)
            self.errors = (psycopg.DatabaseError,)

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "postgresql":
            sql = sql.replace("?", "%s")
        cursor = self.connection.execute(sql, parameters)
        return cursor.fetchall() if cursor.description else []

    def drop_guards(self, table: str) -> None:
        if self.backend == "sqlite":
            self.execute(f"DROP TRIGGER {table}_no_update")
            self.execute(f"DROP TRIGGER {table}_no_delete")
        else:
            self.execute(f"DROP TRIGGER {table}_append_only ON {table}")

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def raw(database_url: str) -> Any:
    connection = RawSQL(database_url)
    yield connection
    connection.close()


def open_accounts(ledger: Ledger) -> None:
    """A reserve funding Alice's wallet with EUR 100, and a shop to pay."""
    assert (
        ledger.create_accounts(
            [NewAccount(RESERVE, EUR, 1), NewAccount(ALICE, EUR, 2, 0), NewAccount(SHOP, EUR, 2)]
        )
        == [CreateAccountResult.ok] * 3
    )
    assert ledger.create_transfers([NewTransfer(100, RESERVE, ALICE, 10000, EUR, 1)]) == [
        CreateTransferResult.ok
    ]


def pay(
    ledger: Ledger, rules: RulesService, facts: dict[str, Any], payment_id: str
) -> tuple[Any, list[CreateTransferResult]]:
    """Authorize and, if allowed, move the money: one unit of work, as product code does it."""
    transfer_id = derive_id("payment", payment_id)
    command = {"payment_id": payment_id, "from": ALICE, "to": SHOP, "amount": 4500}
    with ledger.write() as uow:
        decision = rules.decide(
            "payment.authorize", facts, ON, command, uow=uow, decision_key=payment_id
        )
        results: list[CreateTransferResult] = []
        if decision.allowed:
            results = uow.create_transfers([NewTransfer(transfer_id, ALICE, SHOP, 4500, EUR, 1)])
    return decision, results


def test_a_denied_payment_stores_its_decision_and_moves_no_money(ledger: Ledger) -> None:
    """A refused command commits only its decision and the decision's chain record."""
    open_accounts(ledger)
    rules = RulesService(ledger, load_rulebook("eu"))
    head_before = _head(ledger)
    decision, results = pay(ledger, rules, BLOCKED, "pay-denied")
    assert decision.outcome is Outcome.deny
    assert decision.rule_ids == ("eu.payments.failed_attempts_block",)
    assert results == []
    assert ledger.get_account(ALICE).credits_posted - ledger.get_account(ALICE).debits_posted == (
        10000
    )
    assert ledger.get_account(SHOP).credits_posted == 0
    assert ledger.lookup_transfers([derive_id("payment", "pay-denied")]) == []
    assert _head(ledger) == head_before + 1
    with ledger.read() as store:
        record = store.chain_records(head_before, 1)[0]
    assert record.kind == DECISION_KIND
    assert record.seq == decision.seq
    # The record keeps the body's hash; the body itself is rebuilt from the decision's row.
    assert record.body is None
    assert record.body_hash == inline_body_hash(decision.body())
    stored = rules.get(decision.decision_id)
    assert stored == decision
    assert stored.parameters == {"payments.sca_failed_attempts_max": 5}
    assert stored.messages_zh[0].startswith("已冻结")
    assert stored.command["payment_id"] == "pay-denied"
    assert stored.rulebook == "eu"
    assert stored.rulebook_hash == rules.rulebook.content_hash


def test_an_allowed_payment_commits_with_its_decision(ledger: Ledger) -> None:
    """An allowed command's transfer and its decision commit together, decision first."""
    open_accounts(ledger)
    rules = RulesService(ledger, load_rulebook("eu"))
    head_before = _head(ledger)
    decision, results = pay(ledger, rules, CONTACTLESS, "pay-allowed")
    assert decision.outcome is Outcome.allow
    assert decision.findings == ()
    assert "eu.payments.contactless_exemption" in decision.evaluated
    assert results == [CreateTransferResult.ok]
    assert ledger.get_account(SHOP).credits_posted == 4500
    with ledger.read() as store:
        kinds = [record.kind for record in store.chain_records(head_before, 10)]
    assert kinds == [DECISION_KIND, "ledger.batch"]
    with ledger.read(snapshot=True) as store:
        assert verify_chain(store).ok


def test_a_failed_unit_of_work_keeps_neither_decision_nor_transfer(ledger: Ledger) -> None:
    """When the caller's transaction rolls back, its decision rolls back with it."""
    open_accounts(ledger)
    rules = RulesService(ledger, load_rulebook("eu"))
    head_before = _head(ledger)
    decision_id = 0
    with pytest.raises(RuntimeError, match="the shop's system failed"), ledger.write() as uow:
        decision = rules.decide("payment.authorize", CONTACTLESS, ON, {"p": 1}, uow=uow)
        decision_id = decision.decision_id
        uow.create_transfers([NewTransfer(7, ALICE, SHOP, 4500, EUR, 1)])
        raise RuntimeError("the shop's system failed")
    assert _head(ledger) == head_before
    with pytest.raises(DecisionNotFound):
        rules.get(decision_id)
    assert ledger.get_account(SHOP).credits_posted == 0


def test_deciding_again_with_the_same_id_replays_the_stored_decision(ledger: Ledger) -> None:
    """A retry with the same key returns the recorded decision and records nothing more; the
    same key for another command is refused."""
    rules = RulesService(ledger, load_rulebook("eu"))
    first = rules.decide("payment.authorize", BLOCKED, ON, {"p": 1}, decision_key="k-1")
    head = _head(ledger)
    again = rules.decide("payment.authorize", BLOCKED, ON, {"p": 1}, decision_key="k-1")
    assert again.replayed and not first.replayed
    assert again == first
    assert _head(ledger) == head
    with pytest.raises(DecisionConflict):
        rules.decide("payment.authorize", BLOCKED, ON, {"p": 2}, decision_key="k-1")
    explicit = rules.decide("payment.authorize", BLOCKED, ON, {"p": 3}, decision_id=42)
    assert explicit.decision_id == 42
    assert _head(ledger) == head + 1


def test_commands_that_cannot_be_stored_exactly_are_refused(ledger: Ledger) -> None:
    """A float, or a command larger than the bound, is refused before anything is written."""
    rules = RulesService(ledger, load_rulebook("eu"))
    with pytest.raises(InvalidCommand, match="float"):
        rules.decide("payment.authorize", BLOCKED, ON, {"amount": 45.0})
    with pytest.raises(InvalidCommand, match=f"at most {DOCUMENT_LENGTH_MAX}"):
        rules.decide("payment.authorize", BLOCKED, ON, {"note": "x" * DOCUMENT_LENGTH_MAX})
    with pytest.raises(InvalidCommand, match="not both"):
        rules.decide("payment.authorize", BLOCKED, ON, {}, decision_id=1, decision_key="a")
    assert _head(ledger) == 0


def test_explain_names_every_rule_asked_with_its_citation(ledger: Ledger) -> None:
    """The explanation lists each evaluated rule with title and citation, findings first-hand."""
    rules = RulesService(ledger, load_rulebook("eu"))
    decision = rules.decide("payment.authorize", {**BLOCKED, "auth_factors": 1}, ON, {"p": 1})
    explanation = rules.explain(decision.decision_id)
    assert explanation.same_rulebook
    notes = {note.rule_id: note for note in explanation.rules}
    assert list(notes) == list(decision.evaluated)
    assert notes["eu.payments.failed_attempts_block"].outcome is Outcome.deny
    assert notes["eu.payments.failed_attempts_block"].citation == "RTS (EU) 2018/389 Art. 4(3)(d)"
    assert notes["eu.payments.sca_required"].outcome is Outcome.step_up
    assert notes["eu.payments.tra_exemption"].outcome is None
    assert notes["eu.payments.tra_exemption"].title.startswith("Transaction-risk-analysis")
    document = explanation.document()
    assert document["decision_id"] == str(decision.decision_id)
    assert document["outcome"] == "deny"
    overlaid = RulesService(ledger, load_rulebook("eu", ("attempts-3",)))
    assert not overlaid.explain(decision.decision_id).same_rulebook
    with pytest.raises(DecisionNotFound):
        rules.explain(12345)


def test_decision_rows_are_append_only(ledger: Ledger, raw: RawSQL) -> None:
    """The database itself refuses to change or delete a stored decision."""
    rules = RulesService(ledger, load_rulebook("eu"))
    rules.decide("payment.authorize", BLOCKED, ON, {"p": 1})
    for statement in (
        "UPDATE rule_decisions SET outcome = 'allow'",
        "DELETE FROM rule_decisions",
    ):
        with pytest.raises(raw.errors, match="append-only"):
            raw.execute(statement)
    assert raw.execute("SELECT outcome FROM rule_decisions") == [("deny",)]


@pytest.mark.parametrize(
    "tampering",
    [
        pytest.param("UPDATE rule_decisions SET outcome = 'allow'", id="outcome"),
        pytest.param(
            "UPDATE rule_decisions SET findings = replace(findings, '\"deny\"', '\"allow\"')",
            id="finding",
        ),
        pytest.param(
            "UPDATE rule_decisions SET messages_en = '[\"all fine\"]'", id="summary-column"
        ),
        pytest.param("UPDATE rule_decisions SET command = '{\"p\":2}'", id="command"),
        pytest.param("UPDATE rule_decisions SET timestamp = timestamp + 1", id="timestamp"),
        pytest.param("DELETE FROM rule_decisions", id="deleted"),
    ],
)
def test_tampering_with_a_decision_row_breaks_the_chain(
    unchecked_ledger: Ledger, raw: RawSQL, tampering: str
) -> None:
    """With its trigger dropped, any edit of a decision row is reported by verify_chain at the
    decision's record."""
    rules = RulesService(unchecked_ledger, load_rulebook("eu"))
    rules.decide("payment.authorize", CONTACTLESS, ON, {"p": 0})
    decision = rules.decide("payment.authorize", BLOCKED, ON, {"p": 1})
    with unchecked_ledger.read(snapshot=True) as store:
        assert verify_chain(store).ok
    raw.drop_guards("rule_decisions")
    raw.execute(tampering + " WHERE seq = ?", (decision.seq,))
    with unchecked_ledger.read(snapshot=True) as store:
        report = verify_chain(store)
    assert [broken.seq for broken in report.breaks] == [decision.seq]
    assert "body hash" in report.breaks[0].reason


def test_tampering_with_the_inline_body_breaks_the_chain(
    unchecked_ledger: Ledger, raw: RawSQL
) -> None:
    """An edited copy of the body in the chain record is caught by comparing it with the row."""
    rules = RulesService(unchecked_ledger, load_rulebook("eu"))
    decision = rules.decide("payment.authorize", BLOCKED, ON, {"p": 1})
    raw.drop_guards("audit_chain")
    forged = decision.body().replace(b'"deny"', b'"allow"')
    raw.execute("UPDATE audit_chain SET body = ? WHERE seq = ?", (forged, decision.seq))
    with unchecked_ledger.read(snapshot=True) as store:
        report = verify_chain(store)
    assert [broken.seq for broken in report.breaks] == [decision.seq]


def test_the_decision_body_source_is_registered() -> None:
    """verify_chain rebuilds `rules.decision` bodies from their rows once the service module
    is imported (the CLI and the API import it)."""
    assert DECISION_KIND in BODY_SOURCES


def _head(ledger: Ledger) -> int:
    with ledger.read() as store:
        return store.read_head().seq


def test_the_assembled_body_is_the_canonical_body(ledger: Ledger) -> None:
    """The fast path joins per-field texts; it must give byte for byte what `body()` encodes,
    or the audit chain could not be verified from the stored rows."""
    from tianping.rules.config import cached_rulebook
    from tianping.rules.service import _assembled, _body_parts, _encoded

    rules = RulesService(ledger, cached_rulebook("cn"))
    facts = {
        "amount": 1_500_00,
        "currency": "CNY",
        "account_class": "II",
        "spent_since_opening": 0,
        "spent_this_year": 0,
        "spent_today": 0,
        "auth_factors": 1,
        "daily_total_same_direction": 0,
        "realname_ratio": Decimal("0.97"),
    }
    command = {"payment_id": "p-中文", "amount": 1_500_00}
    stored = rules.decide("payment.authorize", facts, date(2026, 11, 27), command)
    assert stored.rule_ids  # a finding with messages in English and Chinese
    parts = _body_parts(stored, _encoded(facts, "facts")[0], _encoded(command, "command")[0])
    assert _assembled(parts) == stored.body()
    small = {**facts, "amount": 1_00, "realname_ratio": Decimal("1")}
    allowed = rules.decide("payment.authorize", small, date(2026, 11, 27), command)
    assert allowed.findings == ()  # the path that writes the empty parts without the encoder
    parts = _body_parts(allowed, _encoded(small, "facts")[0], _encoded(command, "command")[0])
    assert _assembled(parts) == allowed.body()
    with ledger.read(snapshot=True) as store:
        assert verify_chain(store).ok
