"""Decisions with evidence: evaluate a command, store the decision, chain it, in one transaction.

`RulesService.decide` is what product code calls at an enforcement point. It evaluates the
rulebook (pure, before any lock is taken), then, in one database transaction, appends a chain
record of kind `rules.decision` whose body is the canonical JSON of the decision and inserts the
decision's row into `rule_decisions`. Callers that move money pass their own unit of work:

    with ledger.write() as uow:
        decision = rules.decide("payment.authorize", facts, on, command, uow=uow)
        if decision.allowed:
            uow.create_transfers(transfers)

so an allowed payment commits with its decision, and a denied one commits only the decision:
no money moves, and the refusal is on record.

Evidence, and how tampering is caught. The chain record stores the body's hash, and
`tianping.ledger.audit.BODY_SOURCES` gets a source for `rules.decision` (registered when this
module is imported) that rebuilds the body from the `rule_decisions` row. `verify_chain` then
hashes the rebuilt body, so an edited row breaks its record; the source also compares the
row's timestamp with the record's, so a row moved to another record breaks it too. Records
written before 2026-11-28 also carry the body inline; the source compares that copy with the
rebuilt body, so an edited inline copy breaks its record as well. New records leave the copy
out: the row holds every byte of it, and a payment writes one decision on its hot path, where
the copy was about a kilobyte of the two a payment put on disk. The body leaves out the row's
`seq` and `timestamp`, because they are the record's own position in the chain, fixed only
when the record is appended.

A decision's id is client-chosen like a ledger id: pass `decision_id`, or a `decision_key`
(the command's own idempotency key) from which it is derived, or neither for a time-ordered id.
Deciding again with an id already stored returns the stored decision (`replayed`) when the point,
date, facts and command are the same, and raises `DecisionConflict` otherwise, so a retried
request never records two decisions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import Any

from tianping.ledger import journal
from tianping.ledger.adapters.store import LedgerStore
from tianping.ledger.audit import BODY_SOURCES
from tianping.ledger.ids import derive_id, id_from_bytes, id_to_bytes, is_valid_id, time_ordered_id
from tianping.ledger.service import Ledger, LedgerWrite
from tianping.rules.decision_store import insert_decision, insert_decision_sql, select_decision
from tianping.rules.documents import UnencodableValue, canonical_json
from tianping.rules.errors import RulesError
from tianping.rules.model import Decision, Outcome
from tianping.rules.rulebook import Rulebook

__all__ = [
    "DECISION_KIND",
    "DOCUMENT_LENGTH_MAX",
    "DecisionConflict",
    "DecisionNotFound",
    "Explanation",
    "InvalidCommand",
    "RuleNote",
    "RulesService",
    "StoredDecision",
    "StoredFinding",
]

DECISION_KIND = "rules.decision"
# Bounds the command and facts a decision stores, in characters of canonical JSON; the same
# bound is a CHECK in migration 0002. Commands are small documents, not payloads.
DOCUMENT_LENGTH_MAX = 16384
_ID_NAMESPACE = "rules.decision"


class DecisionNotFound(RulesError):
    code = "decision_not_found"


class DecisionConflict(RulesError):
    """A decision id already stored for another command (a reused id or key)."""

    code = "decision_exists_with_different_fields"


class InvalidCommand(RulesError):
    """The command or facts cannot be stored as evidence: a float, an object without an exact
    JSON form, or a document over `DOCUMENT_LENGTH_MAX` characters."""

    code = "command_invalid"


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """One rule's finding as stored, with the rule's title and citation at decision time, so
    the record explains itself even after the rulebook has changed."""

    rule_id: str
    outcome: Outcome
    title: str
    citation: str
    message_en: str
    message_zh: str
    parameters: Mapping[str, Any]  # JSON-ready values (Decimal as strings)

    def document(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "outcome": self.outcome.name,
            "title": self.title,
            "citation": self.citation,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A decision as recorded: what was decided, by which rulebook version, about what."""

    decision_id: int
    seq: int
    timestamp: int
    point: str
    on: date
    outcome: Outcome
    findings: tuple[StoredFinding, ...]
    evaluated: tuple[str, ...]
    rulebook: str
    rulebook_hash: str
    facts: Mapping[str, Any]  # JSON-ready
    command: Mapping[str, Any]  # JSON-ready
    replayed: bool = field(default=False, compare=False)

    @property
    def allowed(self) -> bool:
        """Whether the command may go ahead as it stands (allow or report)."""
        return self.outcome <= Outcome.report

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(finding.rule_id for finding in self.findings)

    @property
    def parameters(self) -> dict[str, Any]:
        used: dict[str, Any] = {}
        for finding in self.findings:
            used.update(finding.parameters)
        return used

    @property
    def messages_en(self) -> list[str]:
        return [finding.message_en for finding in self.findings]

    @property
    def messages_zh(self) -> list[str]:
        return [finding.message_zh for finding in self.findings]

    def body_document(self) -> dict[str, Any]:
        """What the chain record's body holds: everything but the record's own position."""
        return {
            "decision_id": str(self.decision_id),
            "point": self.point,
            "date": self.on.isoformat(),
            "outcome": self.outcome.name,
            "rule_ids": list(self.rule_ids),
            "evaluated": list(self.evaluated),
            "findings": [finding.document() for finding in self.findings],
            "parameters": self.parameters,
            "messages_en": self.messages_en,
            "messages_zh": self.messages_zh,
            "rulebook": self.rulebook,
            "rulebook_hash": self.rulebook_hash,
            "facts": dict(self.facts),
            "command": dict(self.command),
        }

    def body(self) -> bytes:
        return _plain_json(self.body_document()).encode()

    def document(self) -> dict[str, Any]:
        """The decision as JSON output shows it: the body plus its place in the chain."""
        document = self.body_document()
        document.update(seq=self.seq, timestamp=self.timestamp, allowed=self.allowed)
        return document


@dataclass(frozen=True, slots=True)
class RuleNote:
    """One evaluated rule in an explanation: its title and citation, and what it said."""

    rule_id: str
    title: str
    citation: str
    outcome: Outcome | None  # None: the rule was asked and said nothing (allowed by silence)
    message_en: str = ""
    message_zh: str = ""


@dataclass(frozen=True, slots=True)
class Explanation:
    """A stored decision with every evaluated rule's title and citation.

    `same_rulebook` tells whether the service's rulebook is the version that decided (equal
    content hash); titles of silent rules come from the service's rulebook, and are empty for a
    rule it no longer has.
    """

    decision: StoredDecision
    rules: tuple[RuleNote, ...]
    same_rulebook: bool

    def document(self) -> dict[str, Any]:
        document = self.decision.document()
        document["decision_id"] = str(self.decision.decision_id)
        document["same_rulebook"] = self.same_rulebook
        document["rules"] = [
            {
                "rule_id": note.rule_id,
                "title": note.title,
                "citation": note.citation,
                "outcome": note.outcome.name if note.outcome is not None else None,
                "message_en": note.message_en,
                "message_zh": note.message_zh,
            }
            for note in self.rules
        ]
        return document


def _placed(pending: StoredDecision, seq: int, timestamp: int) -> StoredDecision:
    """The decision at its place in the chain. Spelled out rather than `dataclasses.replace`,
    which inspects the fields on every call: this runs once per payment."""
    return StoredDecision(
        pending.decision_id,
        seq,
        timestamp,
        pending.point,
        pending.on,
        pending.outcome,
        pending.findings,
        pending.evaluated,
        pending.rulebook,
        pending.rulebook_hash,
        pending.facts,
        pending.command,
    )


_PLAIN_TYPES = frozenset({int, str, bool, type(None)})
_STR_TYPE = frozenset({str})
# One encoder for every call: `json.dumps` with these options builds a new encoder each time.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain_json(value: Any) -> str:
    """The canonical text of data that is already JSON-ready (plain dicts, lists, strings,
    integers): the same text `canonical_json` gives, without walking the value again.

    Everything a stored decision holds went through `canonical_json` once, on the way in
    (`_encoded`, the findings' parameters), so writing its row and its chain body need only
    the encoder; a payment's decision is written on the hot path of every payment.
    """
    return _CANONICAL_ENCODER.encode(value)


def _encoded(value: Mapping[str, Any], what: str) -> tuple[str, dict[str, Any]]:
    """The canonical text of a command or facts, and the JSON-ready value it stands for (what
    reading the text back gives)."""
    if not isinstance(value, Mapping):
        raise InvalidCommand(f"the {what} is a mapping of names to values")
    try:
        # Commands and facts are mostly flat maps of integers and texts, whose canonical text
        # the encoder gives directly and whose JSON-ready value is a copy; anything else goes
        # through `canonical_json`'s checks and is read back from its text.
        plain = set(map(type, value)) <= _STR_TYPE and set(map(type, value.values())) <= (
            _PLAIN_TYPES
        )
        text = _plain_json(value) if plain else canonical_json(value)
    except UnencodableValue as error:
        raise InvalidCommand(f"the {what} cannot be stored exactly: {error}") from None
    if len(text) > DOCUMENT_LENGTH_MAX:
        raise InvalidCommand(
            f"the {what} is {len(text)} characters of JSON; at most {DOCUMENT_LENGTH_MAX}"
        )
    return text, dict(value) if plain else json.loads(text)


def _stored_from_decision(
    rulebook: Rulebook,
    decision: Decision,
    decision_id: int,
    facts: dict[str, Any],
    command: dict[str, Any],
) -> StoredDecision:
    findings = []
    for finding in decision.findings:
        spec = rulebook.rule(finding.rule_id)
        findings.append(
            StoredFinding(
                finding.rule_id,
                finding.outcome,
                spec.title,
                spec.citation,
                finding.message_en,
                finding.message_zh,
                json.loads(canonical_json(finding.parameters)),
            )
        )
    return StoredDecision(
        decision_id=decision_id,
        seq=0,
        timestamp=0,
        point=decision.point,
        on=decision.on,
        outcome=decision.outcome,
        findings=tuple(findings),
        evaluated=decision.evaluated,
        rulebook=decision.rulebook,
        rulebook_hash=decision.rulebook_hash,
        facts=facts,
        command=command,
    )


@lru_cache(maxsize=1024)
def _string_list_json(items: tuple[str, ...]) -> str:
    return _plain_json(list(items))


@lru_cache(maxsize=1024)
def _name_json(name: str) -> str:
    """A point's, rulebook's or hash's text as JSON; a process sees few of them."""
    return _plain_json(name)


def _body_parts(decision: StoredDecision, facts_json: str, command_json: str) -> dict[str, str]:
    """The canonical JSON text of each field of a decision's body (`body_document`), each
    encoded once.

    The facts and the command are already canonical text (`_encoded`); re-encoding them for
    the row and again inside the body would triple the cost of the largest parts of every
    decision, and a payment decides one on its hot path. For the same reason the other parts
    skip the encoder where their text is known: most decisions have no findings, a point's
    list of evaluated rules is the same for every decision there, and the id, the date and
    the outcome's name are digits, dashes and letters that need no escaping. The test
    `test_the_assembled_body_is_the_canonical_body` holds this to `body()` byte for byte.
    """
    findings = decision.findings
    if findings:
        parts = {
            "rule_ids": _string_list_json(decision.rule_ids),
            "findings": _plain_json([finding.document() for finding in findings]),
            "parameters": _plain_json(decision.parameters),
            "messages_en": _plain_json(decision.messages_en),
            "messages_zh": _plain_json(decision.messages_zh),
        }
    else:
        parts = {
            "rule_ids": "[]",
            "findings": "[]",
            "parameters": "{}",
            "messages_en": "[]",
            "messages_zh": "[]",
        }
    parts["decision_id"] = f'"{decision.decision_id}"'
    parts["point"] = _name_json(decision.point)
    parts["date"] = f'"{decision.on.isoformat()}"'
    parts["outcome"] = f'"{decision.outcome.name}"'
    parts["evaluated"] = _string_list_json(decision.evaluated)
    parts["rulebook"] = _name_json(decision.rulebook)
    parts["rulebook_hash"] = _name_json(decision.rulebook_hash)
    parts["facts"] = facts_json
    parts["command"] = command_json
    return parts


def _assembled(parts: dict[str, str]) -> bytes:
    """The body's canonical text from its parts' texts: the same bytes `body()` produces
    (keys sorted, no spaces), built by joining instead of encoding everything again. The keys
    are the body's own plain identifiers, so quoting them needs no encoder."""
    return ("{" + ",".join(f'"{name}":{parts[name]}' for name in sorted(parts)) + "}").encode()


def _row(decision: StoredDecision, parts: dict[str, str]) -> tuple[Any, ...]:
    """The `rule_decisions` row of a decision, in `DECISION_COLUMNS` order, from the texts of
    its body's parts (`_body_parts`)."""
    return (
        id_to_bytes(decision.decision_id),
        decision.seq,
        decision.timestamp,
        decision.point,
        decision.on.isoformat(),
        decision.outcome.name,
        parts["rule_ids"],
        parts["evaluated"],
        parts["findings"],
        parts["parameters"],
        parts["messages_en"],
        parts["messages_zh"],
        decision.rulebook,
        decision.rulebook_hash,
        parts["facts"],
        parts["command"],
    )


def _from_row(row: tuple[Any, ...] | Any) -> StoredDecision:
    """Rebuild a decision from its row. The row's separate message and rule-id columns are
    checked against its findings, so that editing one of them alone is caught as well."""
    findings = tuple(
        StoredFinding(
            item["rule_id"],
            Outcome[item["outcome"]],
            item["title"],
            item["citation"],
            item["message_en"],
            item["message_zh"],
            item["parameters"],
        )
        for item in json.loads(row[8])
    )
    decision = StoredDecision(
        decision_id=id_from_bytes(bytes(row[0])),
        seq=int(row[1]),
        timestamp=int(row[2]),
        point=row[3],
        on=date.fromisoformat(row[4]),
        outcome=Outcome[row[5]],
        findings=findings,
        evaluated=tuple(json.loads(row[7])),
        rulebook=row[12],
        rulebook_hash=row[13],
        facts=json.loads(row[14]),
        command=json.loads(row[15]),
    )
    consistent = (
        json.loads(row[6]) == list(decision.rule_ids)
        and json.loads(row[9]) == decision.parameters
        and json.loads(row[10]) == decision.messages_en
        and json.loads(row[11]) == decision.messages_zh
    )
    if not consistent:
        raise _InconsistentRow(decision.decision_id)
    return decision


class _InconsistentRow(Exception):
    """A row whose summary columns disagree with its findings: it was edited."""


def decision_body_from_row(store: LedgerStore, record: journal.ChainRecord) -> bytes:
    """The body of a `rules.decision` record, rebuilt from its `rule_decisions` row.

    Registered in `BODY_SOURCES`. Whatever disagrees (no row, an edited row, a row that
    belongs to another record, an inline body that differs from the row) yields bytes that
    are not the recorded body, so `verify_chain` reports the record as broken.
    """
    row = select_decision(store, "seq", record.seq)
    if row is None:
        return f"no rule_decisions row for record {record.seq}".encode()
    try:
        decision = _from_row(row)
    except (_InconsistentRow, ValueError, KeyError, TypeError) as error:
        return f"rule_decisions row for record {record.seq} is inconsistent: {error!r}".encode()
    if decision.timestamp != record.last_timestamp:
        return f"rule_decisions row for record {record.seq} has another timestamp".encode()
    body = decision.body()
    if record.body is not None and record.body != body:
        return f"inline body of record {record.seq} differs from its row".encode()
    return body


BODY_SOURCES[DECISION_KIND] = decision_body_from_row


class RulesService:
    """Decide at enforcement points, record the decisions, and explain them later."""

    def __init__(self, ledger: Ledger, rulebook: Rulebook) -> None:
        self.ledger = ledger
        self.rulebook = rulebook

    def _decision_id(self, decision_id: int | None, decision_key: str | None) -> int:
        if decision_id is not None and decision_key is not None:
            raise InvalidCommand("give a decision id or a decision key, not both")
        if decision_id is not None:
            if not is_valid_id(decision_id):
                raise InvalidCommand("a decision id is an integer between 1 and 2**128 - 2")
            return decision_id
        if decision_key is not None:
            if not decision_key or len(decision_key) > 256:
                raise InvalidCommand("a decision key is 1 to 256 characters")
            return derive_id(_ID_NAMESPACE, decision_key)
        return time_ordered_id(self.ledger.clock())

    @contextmanager
    def _unit_of_work(self, uow: LedgerWrite | None) -> Iterator[LedgerWrite]:
        if uow is not None:
            yield uow
            return
        with self.ledger.write() as own:
            yield own

    def decide(
        self,
        point: str,
        facts: Mapping[str, Any],
        on: date,
        command: Mapping[str, Any],
        uow: LedgerWrite | None = None,
        *,
        decision_id: int | None = None,
        decision_key: str | None = None,
        known_new: bool = False,
    ) -> StoredDecision:
        """Evaluate `facts` at `point` on `on`, and record the decision with the `command` it
        guards, in `uow` when given (the caller commits) or in a transaction of its own.

        `known_new`: the caller has established, in `uow`, that no decision with this id can
        be stored yet (its own record of the command, committed with the decision, is absent),
        so the lookup for a replay is skipped. A wrong claim is still caught: the decision's
        primary key refuses a second row and the whole unit of work rolls back.
        """
        facts_json, plain_facts = _encoded(facts, "facts")
        command_json, plain_command = _encoded(command, "command")
        chosen_id = self._decision_id(decision_id, decision_key)
        decision = self.rulebook.evaluate(point, facts, on)
        pending = _stored_from_decision(
            self.rulebook, decision, chosen_id, plain_facts, plain_command
        )
        with self._unit_of_work(uow) as write:
            if not known_new:
                existing = select_decision(write.store, "decision_id", id_to_bytes(chosen_id))
                if existing is not None:
                    return self._replay(_from_row(existing), pending)
            # A decision known to be new is written at commit with the others of its unit of
            # work (one statement for a whole batch of payments), since nothing reads it back
            # before then. The record keeps the body's hash only: `decision_body_from_row`
            # rebuilds the body from the row.
            parts = _body_parts(pending, facts_json, command_json)
            record = write.append_record(
                DECISION_KIND, _assembled(parts), deferred=known_new, store_body=False
            )
            stored = _placed(pending, record.seq, record.last_timestamp)
            row = _row(stored, parts)
            if known_new:
                write.defer_insert(insert_decision_sql(write.store.placeholder), row)
            else:
                insert_decision(write.store, row)
        return stored

    @staticmethod
    def _replay(stored: StoredDecision, pending: StoredDecision) -> StoredDecision:
        same = (
            stored.point == pending.point
            and stored.on == pending.on
            and stored.facts == pending.facts
            and stored.command == pending.command
        )
        if not same:
            raise DecisionConflict(
                f"decision {stored.decision_id} is already recorded for another command"
            )
        return replace(stored, replayed=True)

    def get(self, decision_id: int) -> StoredDecision:
        """The stored decision with this id, or DecisionNotFound."""
        if not is_valid_id(decision_id):
            raise DecisionNotFound(f"no decision has id {decision_id}")
        with self.ledger.read() as store:
            row = select_decision(store, "decision_id", id_to_bytes(decision_id))
        if row is None:
            raise DecisionNotFound(f"no decision has id {decision_id}")
        return _from_row(row)

    def explain(self, decision_id: int) -> Explanation:
        """The stored decision with each evaluated rule's title, citation and finding."""
        decision = self.get(decision_id)
        by_rule = {finding.rule_id: finding for finding in decision.findings}
        known = {spec.id: spec for spec in self.rulebook.rules}
        notes = []
        for rule_id in decision.evaluated:
            finding = by_rule.get(rule_id)
            if finding is not None:
                notes.append(
                    RuleNote(
                        rule_id,
                        finding.title,
                        finding.citation,
                        finding.outcome,
                        finding.message_en,
                        finding.message_zh,
                    )
                )
                continue
            spec = known.get(rule_id)
            notes.append(
                RuleNote(
                    rule_id,
                    spec.title if spec else "",
                    spec.citation if spec else "",
                    None,
                )
            )
        return Explanation(
            decision, tuple(notes), decision.rulebook_hash == self.rulebook.content_hash
        )
