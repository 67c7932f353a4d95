"""SQL for consents, the vault, the data-access log and data-subject requests, on both backends.

The only module that knows the privacy tables (migration 0005). It runs on the connection of a
ledger unit of work or read, so a privacy write commits atomically with whatever else the caller
does in that transaction. The backends differ only in placeholders (`?` against `%s`) and in
how byte strings come back (PostgreSQL may hand back `memoryview`), which `bytes()` smooths.

Every statement is parameterised; the only text formatted into SQL is the driver's placeholder
and fixed column lists defined here, which is why S608 (SQL built from strings) is silenced for
the whole module.
"""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tianping.db.statements import Statements
from tianping.identity.consent import (
    ConsentEvent,
    ConsentEventKind,
    ConsentText,
    DataSubjectRequestKind,
    DataSubjectRequestState,
    Field,
    Purpose,
)
from tianping.identity.vault import Scope, Sealed, WrappedKey

__all__ = [
    "AccessEntry",
    "DataSubjectRequest",
    "DataSubjectRequestEvent",
    "PrivacyStore",
    "StoredRequest",
]

_KEY_COLUMNS = "party_id, scope, key_version, master_key_id, nonce, wrapped_key"
_TEXT_COLUMNS = "text_id, version, purposes, fields, language, recipient, text_hash"
_EVENT_COLUMNS = "request_id, party_id, kind, text_id, version, at, seq"
_ACCESS_COLUMNS = (
    "seq, at, accessor, party_id, fields, purpose, recipient, outcome, basis, refusal, "
    "consent_text_id, consent_version, reason"
)
_DSR_COLUMNS = (
    "request_id, party_id, kind, decision_reference, state, received_at, respond_by, "
    "has_statement, has_answer, updated_at"
)


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A privacy write already done under a client request id (for replays)."""

    request_id: str
    kind: str
    party_id: str
    subject: str
    digest: bytes
    key_version: int | None
    result: str


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One entry of the data-access log: never the values read."""

    seq: int
    at: int
    accessor: str
    party_id: str
    fields: tuple[str, ...]
    purpose: str
    recipient: str | None
    outcome: str
    basis: str | None
    refusal: str | None
    consent_text_id: str | None
    consent_version: int | None
    reason: str

    def document(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__} | {
            "fields": list(self.fields)
        }


@dataclass(frozen=True, slots=True)
class DataSubjectRequest:
    request_id: str
    party_id: str
    kind: DataSubjectRequestKind
    decision_reference: str
    state: DataSubjectRequestState
    received_at: int
    respond_by: str
    has_statement: bool
    has_answer: bool
    updated_at: int


@dataclass(frozen=True, slots=True)
class DataSubjectRequestEvent:
    seq: int
    request_id: str
    state: DataSubjectRequestState
    actor: str
    at: int


def _joined(values: Sequence[str]) -> str:
    return ",".join(values)


def _split(value: str) -> tuple[str, ...]:
    return tuple(value.split(",")) if value else ()


def _text_from_row(row: Sequence[Any]) -> ConsentText:
    return ConsentText(
        text_id=row[0],
        version=row[1],
        purposes=tuple(Purpose(p) for p in _split(row[2])),
        fields=tuple(Field(f) for f in _split(row[3])),
        language=row[4],
        text_hash=bytes(row[6]),
        recipient=row[5],
    )


def _event_from_row(row: Sequence[Any]) -> ConsentEvent:
    return ConsentEvent(row[0], row[1], ConsentEventKind(row[2]), row[3], row[4], row[5], row[6])


def _key_from_row(row: Sequence[Any]) -> WrappedKey:
    return WrappedKey(row[0], Scope(row[1]), row[2], row[3], bytes(row[4]), bytes(row[5]))


def _access_from_row(row: Sequence[Any]) -> AccessEntry:
    return AccessEntry(
        row[0],
        row[1],
        row[2],
        row[3],
        _split(row[4]),
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
    )


def _dsr_from_row(row: Sequence[Any]) -> DataSubjectRequest:
    return DataSubjectRequest(
        row[0],
        row[1],
        DataSubjectRequestKind(row[2]),
        row[3],
        DataSubjectRequestState(row[4]),
        row[5],
        row[6],
        bool(row[7]),
        bool(row[8]),
        row[9],
    )


class PrivacyStore(Statements):
    """Statements over one open connection (sqlite3 or psycopg) of the given backend."""

    # -- idempotency ------------------------------------------------------------------------

    def request(self, request_id: str) -> StoredRequest | None:
        row = self._execute(
            "SELECT request_id, kind, party_id, subject, digest, key_version, result "
            f"FROM privacy_requests WHERE request_id = {self.p}",
            (request_id,),
        ).fetchone()
        if row is None:
            return None
        return StoredRequest(row[0], row[1], row[2], row[3], bytes(row[4]), row[5], row[6])

    def insert_request(self, request: StoredRequest, at: int) -> None:
        self._execute(
            "INSERT INTO privacy_requests (request_id, kind, party_id, subject, digest, "
            f"key_version, result, at) VALUES ({self._values(8)})",
            (
                request.request_id,
                request.kind,
                request.party_id,
                request.subject,
                request.digest,
                request.key_version,
                request.result,
                at,
            ),
        )

    # -- consent texts and events -----------------------------------------------------------

    def consent_text(self, text_id: str, version: int) -> tuple[ConsentText, str] | None:
        """A text and its body, or None."""
        row = self._execute(
            f"SELECT {_TEXT_COLUMNS}, body FROM consent_texts "
            f"WHERE text_id = {self.p} AND version = {self.p}",
            (text_id, version),
        ).fetchone()
        return None if row is None else (_text_from_row(row), row[7])

    def consent_texts_for(self, party_id: str) -> dict[tuple[str, int], ConsentText]:
        """Every text this party has granted, by (id, version)."""
        rows = self._execute(
            f"SELECT {', '.join('t.' + c.strip() for c in _TEXT_COLUMNS.split(','))} "
            "FROM consent_texts t WHERE EXISTS (SELECT 1 FROM consent_events e "
            f"WHERE e.party_id = {self.p} AND e.text_id = t.text_id AND e.version = t.version)",
            (party_id,),
        ).fetchall()
        texts = [_text_from_row(row) for row in rows]
        return {(text.text_id, text.version): text for text in texts}

    def insert_consent_text(
        self, text: ConsentText, body: str, published_at: int, seq: int
    ) -> None:
        self._execute(
            f"INSERT INTO consent_texts ({_TEXT_COLUMNS}, body, published_at, seq) "
            f"VALUES ({self._values(10)})",
            (
                text.text_id,
                text.version,
                _joined([p.value for p in text.purposes]),
                _joined([f.value for f in text.fields]),
                text.language,
                text.recipient,
                text.text_hash,
                body,
                published_at,
                seq,
            ),
        )

    def consent_events(self, party_id: str, limit: int) -> list[ConsentEvent]:
        rows = self._execute(
            f"SELECT {_EVENT_COLUMNS} FROM consent_events WHERE party_id = {self.p} "
            f"ORDER BY at, seq LIMIT {self.p}",
            (party_id, limit),
        ).fetchall()
        return [_event_from_row(row) for row in rows]

    def count_consent_events(self, party_id: str) -> int:
        row = self._execute(
            f"SELECT COUNT(*) FROM consent_events WHERE party_id = {self.p}", (party_id,)
        ).fetchone()
        return int(row[0])

    def consent_event(self, request_id: str) -> ConsentEvent | None:
        row = self._execute(
            f"SELECT {_EVENT_COLUMNS} FROM consent_events WHERE request_id = {self.p}",
            (request_id,),
        ).fetchone()
        return None if row is None else _event_from_row(row)

    def insert_consent_event(self, event: ConsentEvent) -> None:
        self._execute(
            f"INSERT INTO consent_events ({_EVENT_COLUMNS}) VALUES ({self._values(7)})",
            (
                event.request_id,
                event.party_id,
                event.kind.value,
                event.text_id,
                event.version,
                event.at,
                event.seq,
            ),
        )

    # -- keys -------------------------------------------------------------------------------

    def key(self, party_id: str, scope: Scope) -> WrappedKey | None:
        row = self._execute(
            f"SELECT {_KEY_COLUMNS} FROM vault_keys WHERE party_id = {self.p} AND scope = {self.p}",
            (party_id, scope.value),
        ).fetchone()
        return None if row is None else _key_from_row(row)

    def retain_until(self, party_id: str) -> str | None:
        row = self._execute(
            f"SELECT retain_until FROM vault_keys WHERE party_id = {self.p} AND scope = {self.p}",
            (party_id, Scope.AML_RETENTION.value),
        ).fetchone()
        return None if row is None else str(row[0])

    def insert_key(self, key: WrappedKey, at: int, retain_until: str | None = None) -> None:
        self._execute(
            f"INSERT INTO vault_keys ({_KEY_COLUMNS}, created_at, retain_until) "
            f"VALUES ({self._values(8)})",
            (
                key.party_id,
                key.scope.value,
                key.key_version,
                key.master_key_id,
                key.nonce,
                key.wrapped,
                at,
                retain_until,
            ),
        )

    def replace_key(self, key: WrappedKey) -> None:
        """Store a re-wrapped or rotated key in place of the person's key of that scope."""
        self._execute(
            f"UPDATE vault_keys SET key_version = {self.p}, master_key_id = {self.p}, "
            f"nonce = {self.p}, wrapped_key = {self.p} "
            f"WHERE party_id = {self.p} AND scope = {self.p}",
            (
                key.key_version,
                key.master_key_id,
                key.nonce,
                key.wrapped,
                key.party_id,
                key.scope.value,
            ),
        )

    def phone_owner(self, digest: bytes) -> str | None:
        row = self._execute(
            f"SELECT party_id FROM identity_phone_index WHERE digest = {self.p}", (digest,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_phone_index(self, party_id: str, digest: bytes | None) -> None:
        """The person's phone digest (None: no phone any more), replacing an earlier one."""
        self._execute(f"DELETE FROM identity_phone_index WHERE party_id = {self.p}", (party_id,))
        if digest is not None:
            self._execute(
                f"INSERT INTO identity_phone_index (digest, party_id) VALUES ({self._values(2)})",
                (digest, party_id),
            )

    def delete_key(self, party_id: str, scope: Scope) -> int:
        """Destroy a wrapped data key (crypto-shredding); its field rows must be gone first."""
        cursor = self._execute(
            f"DELETE FROM vault_keys WHERE party_id = {self.p} AND scope = {self.p}",
            (party_id, scope.value),
        )
        return int(cursor.rowcount)

    def keys_not_under(
        self, master_key_id: str, after: tuple[str, str], limit: int
    ) -> list[WrappedKey]:
        """Keys wrapped under any master key but `master_key_id`, in key order after `after`."""
        rows = self._execute(
            f"SELECT {_KEY_COLUMNS} FROM vault_keys WHERE master_key_id <> {self.p} "
            f"AND (party_id > {self.p} OR (party_id = {self.p} AND scope > {self.p})) "
            f"ORDER BY party_id, scope LIMIT {self.p}",
            (master_key_id, after[0], after[0], after[1], limit),
        ).fetchall()
        return [_key_from_row(row) for row in rows]

    def expired_retention(self, on: str, limit: int) -> list[str]:
        """Party ids whose AML retention period ended before the ISO date `on`."""
        rows = self._execute(
            f"SELECT party_id FROM vault_keys WHERE retain_until < {self.p} "
            f"ORDER BY retain_until, party_id LIMIT {self.p}",
            (on, limit),
        ).fetchall()
        return [row[0] for row in rows]

    # -- fields -----------------------------------------------------------------------------

    def fields(self, party_id: str, scope: Scope) -> dict[str, Sealed]:
        rows = self._execute(
            "SELECT field, key_version, nonce, ciphertext FROM vault_fields "
            f"WHERE party_id = {self.p} AND scope = {self.p}",
            (party_id, scope.value),
        ).fetchall()
        return {row[0]: Sealed(row[1], bytes(row[2]), bytes(row[3])) for row in rows}

    def put_field(self, party_id: str, scope: Scope, name: str, sealed: Sealed, at: int) -> None:
        self._execute(
            "INSERT INTO vault_fields (party_id, scope, field, key_version, nonce, ciphertext, "
            f"updated_at) VALUES ({self._values(7)}) "
            "ON CONFLICT (party_id, scope, field) DO UPDATE SET key_version = "
            "excluded.key_version, nonce = excluded.nonce, ciphertext = excluded.ciphertext, "
            "updated_at = excluded.updated_at",
            (party_id, scope.value, name, sealed.key_version, sealed.nonce, sealed.ciphertext, at),
        )

    def delete_field(self, party_id: str, scope: Scope, name: str) -> int:
        cursor = self._execute(
            f"DELETE FROM vault_fields WHERE party_id = {self.p} AND scope = {self.p} "
            f"AND field = {self.p}",
            (party_id, scope.value, name),
        )
        return int(cursor.rowcount)

    def delete_fields(self, party_id: str, scope: Scope) -> int:
        cursor = self._execute(
            f"DELETE FROM vault_fields WHERE party_id = {self.p} AND scope = {self.p}",
            (party_id, scope.value),
        )
        return int(cursor.rowcount)

    # -- the data-access log ----------------------------------------------------------------

    def insert_access(self, entry: AccessEntry) -> None:
        self._execute(
            f"INSERT INTO data_access_log ({_ACCESS_COLUMNS}) VALUES ({self._values(13)})",
            (
                entry.seq,
                entry.at,
                entry.accessor,
                entry.party_id,
                _joined(entry.fields),
                entry.purpose,
                entry.recipient,
                entry.outcome,
                entry.basis,
                entry.refusal,
                entry.consent_text_id,
                entry.consent_version,
                entry.reason,
            ),
        )

    def access_log(self, party_id: str, limit: int) -> list[AccessEntry]:
        """The party's latest `limit` entries, oldest first."""
        rows = self._execute(
            f"SELECT {_ACCESS_COLUMNS} FROM data_access_log WHERE party_id = {self.p} "
            f"ORDER BY seq DESC LIMIT {self.p}",
            (party_id, limit),
        ).fetchall()
        return [_access_from_row(row) for row in reversed(rows)]

    def count_access(self, party_id: str) -> int:
        row = self._execute(
            f"SELECT COUNT(*) FROM data_access_log WHERE party_id = {self.p}", (party_id,)
        ).fetchone()
        return int(row[0])

    # -- erasures ---------------------------------------------------------------------------

    def erasure(self, party_id: str) -> tuple[str, str] | None:
        """The request id and receipt (JSON) of the party's erasure, or None."""
        row = self._execute(
            f"SELECT request_id, receipt FROM erasures WHERE party_id = {self.p}", (party_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def insert_erasure(
        self, party_id: str, request_id: str, seq: int, at: int, receipt: str
    ) -> None:
        self._execute(
            "INSERT INTO erasures (party_id, request_id, seq, erased_at, receipt) "
            f"VALUES ({self._values(5)})",
            (party_id, request_id, seq, at, receipt),
        )

    # -- data-subject requests --------------------------------------------------------------

    def insert_subject_request(self, request: DataSubjectRequest) -> None:
        self._execute(
            f"INSERT INTO data_subject_requests ({_DSR_COLUMNS}) VALUES ({self._values(10)})",
            (
                request.request_id,
                request.party_id,
                request.kind.value,
                request.decision_reference,
                request.state.value,
                request.received_at,
                request.respond_by,
                int(request.has_statement),
                int(request.has_answer),
                request.updated_at,
            ),
        )

    def subject_request(self, request_id: str) -> DataSubjectRequest | None:
        row = self._execute(
            f"SELECT {_DSR_COLUMNS} FROM data_subject_requests WHERE request_id = {self.p}",
            (request_id,),
        ).fetchone()
        return None if row is None else _dsr_from_row(row)

    def subject_requests(self, party_id: str, limit: int) -> list[DataSubjectRequest]:
        rows = self._execute(
            f"SELECT {_DSR_COLUMNS} FROM data_subject_requests WHERE party_id = {self.p} "
            f"ORDER BY received_at, request_id LIMIT {self.p}",
            (party_id, limit),
        ).fetchall()
        return [_dsr_from_row(row) for row in rows]

    def count_subject_requests(self, party_id: str) -> int:
        row = self._execute(
            f"SELECT COUNT(*) FROM data_subject_requests WHERE party_id = {self.p}", (party_id,)
        ).fetchone()
        return int(row[0])

    def update_subject_request(
        self, request_id: str, state: DataSubjectRequestState, has_answer: bool, at: int
    ) -> None:
        self._execute(
            f"UPDATE data_subject_requests SET state = {self.p}, has_answer = {self.p}, "
            f"updated_at = {self.p} WHERE request_id = {self.p}",
            (state.value, int(has_answer), at, request_id),
        )

    def insert_subject_request_event(self, event: DataSubjectRequestEvent) -> None:
        self._execute(
            "INSERT INTO data_subject_request_events (seq, request_id, state, actor, at) "
            f"VALUES ({self._values(5)})",
            (event.seq, event.request_id, event.state.value, event.actor, event.at),
        )

    def subject_request_events(self, request_id: str) -> list[DataSubjectRequestEvent]:
        rows = self._execute(
            "SELECT seq, request_id, state, actor, at FROM data_subject_request_events "
            f"WHERE request_id = {self.p} ORDER BY seq",
            (request_id,),
        ).fetchall()
        return [
            DataSubjectRequestEvent(row[0], row[1], DataSubjectRequestState(row[2]), row[3], row[4])
            for row in rows
        ]
