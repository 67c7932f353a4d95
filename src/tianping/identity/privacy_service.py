"""Consent, the personal-data vault and data-subject rights, as use cases over the ledger's unit
of work.

`PrivacyService` is what the API, the CLI and other contexts call. Every write runs inside
`ledger.write()` (or a unit of work the caller passes as `uow`, so that it commits with the
caller's own rows), is idempotent by a client-supplied request id, and chains a record into the
ledger's tamper-evident audit chain. Chain records and every table outside the vault carry the
pseudonymous party id, field names, purposes and codes, never a personal value.

Reads of personal data are writes too: `read_personal_data` decides the read's lawful basis
(`consent.decide_access`), writes an entry to the append-only data-access log and chains it, in
one transaction, and only then returns the values. Refused reads are logged as well, with the
refusal's code, and committed before `AccessRefused` is raised: a pattern of refused reads is
what an audit looks for. Requests too malformed to name a person, a known purpose and known
fields are refused before anything is logged, since there is nothing meaningful to record (and
a malformed field name could be anything). A caller composing a read into its own `uow` must
commit that unit of work for the refusal entry to persist.

Time: `at` for every event is the injected clock, but never earlier than the ledger's last
timestamp plus one, so consent events and reads are strictly ordered and a read right after a
withdrawal always sees it. Dates (retention periods, response deadlines) are Beijing dates.

Logs name parties by pseudonymous id and fields by name, never values; exception messages do the
same (the e2e log-scan test checks both).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, TypeVar

from tianping.identity.consent import (
    AML_IDENTITY_FIELDS,
    POLICIES,
    AccessDecision,
    AccessRefused,
    Basis,
    ConsentEvent,
    ConsentEventKind,
    ConsentNotLive,
    ConsentText,
    ConsentTextConflict,
    ConsentTextNotFound,
    DataSubjectRequestKind,
    DataSubjectRequestNotFound,
    DataSubjectRequestState,
    DataSubjectTransitionInvalid,
    Field,
    PersonErased,
    PersonNotFound,
    Purpose,
    ServiceCheck,
    aml_retention_rule,
    check_consent_text,
    check_field_names,
    check_field_value,
    check_purpose,
    check_recipient,
    decide_access,
    live_consents,
    respond_by,
    service_check,
    transition_allowed,
)
from tianping.identity.errors import InvalidInput, LimitReached, RequestConflict
from tianping.identity.ids import parse_party_id
from tianping.identity.parties import add_years, canonical_json, check_reference, event_date
from tianping.identity.party_service import FingerprintKey
from tianping.identity.privacy_store import (
    AccessEntry,
    DataSubjectRequest,
    DataSubjectRequestEvent,
    PrivacyStore,
    StoredRequest,
)
from tianping.identity.vault import DataKey, Scope, Vault, seal, unseal
from tianping.ledger.service import Ledger, LedgerWrite

__all__ = [
    "ACCESS_LOG_EXPORT_MAX",
    "CONSENT_EVENTS_PER_PARTY_MAX",
    "SUBJECT_REQUESTS_PER_PARTY_MAX",
    "ConsentState",
    "ErasureReceipt",
    "PrivacyService",
    "RewrapReport",
    "VaultWrite",
]

_log = logging.getLogger(__name__)

Clock = Callable[[], int]

# Bounds on what one person accumulates, far above honest use; reads stay bounded by them.
CONSENT_EVENTS_PER_PARTY_MAX = 1_000
SUBJECT_REQUESTS_PER_PARTY_MAX = 200
# An export carries at most this many (the latest) access-log entries and says when it cut.
ACCESS_LOG_EXPORT_MAX = 10_000
REWRAP_BATCH_MAX = 1_000
STATEMENT_LENGTH_MAX = 4_000
ANSWER_LENGTH_MAX = 8_000
EXPORT_FORMAT = "tianping.personal-data-export/v1"

RECORD_CONSENT_TEXT = "identity.privacy.consent_text"
RECORD_CONSENT = "identity.privacy.consent"
RECORD_ACCESS = "identity.privacy.access"
RECORD_VAULT_WRITE = "identity.privacy.vault_write"
RECORD_ERASURE = "identity.privacy.erasure"
RECORD_SUBJECT_REQUEST = "identity.privacy.subject_request"
RECORD_KEY_ROTATION = "identity.privacy.key_rotation"
RECORD_RETENTION_PURGE = "identity.privacy.retention_purge"

# The accessor recorded when the person exercises their own rights.
DATA_SUBJECT_ACCESSOR = "data_subject"

# A reason is a short case or ticket reference, not a narrative: it sits in an append-only log
# that erasure cannot touch, so it must not invite personal details.
_REASON = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/#-]{0,127}")
_TEXT_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_FIELD_NAMES = frozenset(name.value for name in Field)


@dataclass(frozen=True, slots=True)
class VaultWrite:
    """The outcome of a put or a correction: which fields were written (never their values)."""

    party_id: str
    request_id: str
    fields: tuple[str, ...]
    removed: tuple[str, ...]
    key_version: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ConsentState:
    """One consent text the person has granted, and whether that consent is live now."""

    text_id: str
    version: int
    purposes: tuple[str, ...]
    fields: tuple[str, ...]
    language: str
    recipient: str | None
    text_hash: str
    granted_at: int
    withdrawn_at: int | None
    live: bool


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """What an erasure destroyed and what it kept, under which rule; `document` is the JSON."""

    party_id: str
    request_id: str
    erased_at: int
    document: dict[str, Any]
    replayed: bool = False


@dataclass(slots=True)
class RewrapReport:
    """The outcome of moving data keys to the current master key."""

    master_key_id: str
    rewrapped: int = 0
    unavailable: int = 0
    unavailable_key_ids: set[str] = field(default_factory=set)


def _check_reason(value: object) -> str:
    if not isinstance(value, str) or _REASON.fullmatch(value) is None:
        raise InvalidInput(
            "reason",
            "a reason is a case or ticket reference of 1 to 128 letters, digits, spaces and "
            ". _ : / # -",
        )
    return value


def _check_text(name: str, value: object, length_max: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > length_max:
        raise InvalidInput(name, f"{name} is a text of 1 to {length_max} characters")
    if _TEXT_CONTROL.search(value):
        raise InvalidInput(name, f"{name} has control characters")
    return value


def _digest(document: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(canonical_json(document)).digest()


T = TypeVar("T")


def _present(value: T | None, what: str) -> T:
    """A row that an earlier row promises exists; its absence is a broken database."""
    if value is None:
        raise RuntimeError(f"{what} is missing: the privacy tables are inconsistent")
    return value


def _statement_field(request_id: str) -> str:
    return f"request/{request_id}/statement"


def _answer_field(request_id: str) -> str:
    return f"request/{request_id}/answer"


class PrivacyService:
    """Consent, the vault, the data-access log and data-subject rights over one ledger."""

    def __init__(
        self,
        ledger: Ledger,
        vault: Vault,
        clock: Clock | None = None,
        index_key: FingerprintKey | None = None,
    ) -> None:
        self.ledger = ledger
        self.vault = vault
        self.clock: Clock = clock if clock is not None else ledger.clock
        # Keys the phone index (pay a phone number); without it phones are not indexed.
        self.index_key = index_key

    # -- plumbing ---------------------------------------------------------------------------

    def _write(
        self, uow: LedgerWrite | None
    ) -> AbstractContextManager[tuple[LedgerWrite, PrivacyStore]]:
        return PrivacyStore.writing(self.ledger, uow)

    def _read(self) -> AbstractContextManager[PrivacyStore]:
        return PrivacyStore.reading(self.ledger)

    def _now(self, uow: LedgerWrite) -> int:
        return max(self.clock(), uow.head.last_timestamp + 1)

    @staticmethod
    def _chain(uow: LedgerWrite, kind: str, document: Mapping[str, Any]) -> int:
        return uow.append_record(kind, canonical_json(document)).seq

    @staticmethod
    def _replayed(
        store: PrivacyStore, request_id: str, kind: str, party_id: str, subject: str
    ) -> StoredRequest | None:
        stored = store.request(request_id)
        if stored is None:
            return None
        if (stored.kind, stored.party_id, stored.subject) != (kind, party_id, subject):
            raise RequestConflict(f"request id {request_id!r} was used for another request")
        return stored

    @staticmethod
    def _check_digest(stored: StoredRequest, digest: bytes, request_id: str) -> None:
        if stored.digest != digest:
            raise RequestConflict(f"request id {request_id!r} was used for another request")

    def _live_key(self, store: PrivacyStore, party_id: str) -> DataKey | None:
        wrapped = store.key(party_id, Scope.LIVE)
        return None if wrapped is None else self.vault.unwrap(wrapped)

    def _live_key_or_create(self, store: PrivacyStore, party_id: str, at: int) -> DataKey:
        data_key = self._live_key(store, party_id)
        if data_key is not None:
            return data_key
        data_key, wrapped = self.vault.new_data_key(party_id, Scope.LIVE)
        store.insert_key(wrapped, at)
        return data_key

    @staticmethod
    def _refuse_if_erased(store: PrivacyStore, party_id: str) -> None:
        if store.erasure(party_id) is not None:
            raise PersonErased("the person's personal data was erased; the id cannot be reused")

    # -- consent texts ----------------------------------------------------------------------

    def publish_consent_text(
        self,
        text_id: str,
        version: int,
        purposes: Sequence[str],
        fields: Sequence[str],
        language: str,
        body: str,
        recipient: str | None = None,
        uow: LedgerWrite | None = None,
    ) -> ConsentText:
        """Publish one version of a consent text; publishing the same text again is a no-op."""
        if not isinstance(purposes, Sequence) or isinstance(purposes, str) or len(purposes) > 9:
            raise InvalidInput("purposes", "purposes is a list of up to 9 purposes")
        if not isinstance(fields, Sequence) or isinstance(fields, str):
            raise InvalidInput("fields", "fields is a list of field names")
        body = _check_text("body", body, 20_000)
        text = check_consent_text(
            ConsentText(
                text_id=text_id,
                version=version,
                purposes=tuple(sorted(check_purpose(p) for p in purposes)),
                fields=tuple(sorted(check_field_names(fields))),
                language=language,
                text_hash=hashlib.sha256(body.encode()).digest(),
                recipient=recipient,
            )
        )
        with self._write(uow) as (write, store):
            existing = store.consent_text(text.text_id, text.version)
            if existing is not None:
                if existing[0] != text or existing[1] != body:
                    raise ConsentTextConflict(
                        f"consent text {text.text_id} version {text.version} is already "
                        "published with other contents"
                    )
                return existing[0]
            at = self._now(write)
            seq = self._chain(
                write,
                RECORD_CONSENT_TEXT,
                {
                    "text_id": text.text_id,
                    "version": text.version,
                    "purposes": [p.value for p in text.purposes],
                    "fields": [f.value for f in text.fields],
                    "language": text.language,
                    "recipient": text.recipient,
                    "text_hash": text.text_hash.hex(),
                    "at": at,
                },
            )
            store.insert_consent_text(text, body, at, seq)
        _log.info("consent text %s v%d published", text.text_id, text.version)
        return text

    def consent_text(self, text_id: str, version: int) -> tuple[ConsentText, str]:
        """A published text and its body."""
        with self._read() as store:
            found = store.consent_text(text_id, version)
        if found is None:
            raise ConsentTextNotFound(f"no consent text {text_id!r} version {version}")
        return found

    # -- consent ----------------------------------------------------------------------------

    def grant_consent(
        self,
        party_id: str,
        text_id: str,
        version: int,
        request_id: str,
        uow: LedgerWrite | None = None,
    ) -> ConsentEvent:
        """Record the person's consent to one version of a text, live from now."""
        party = parse_party_id(party_id)
        request = check_reference("request_id", request_id)
        if type(version) is not int:
            raise InvalidInput("version", "a consent text version is an integer")
        subject = f"{text_id}:{version}"
        with self._write(uow) as (write, store):
            if self._replayed(store, request, "grant", party, subject) is not None:
                return _present(store.consent_event(request), "a recorded grant's event")
            self._refuse_if_erased(store, party)
            if store.consent_text(text_id, version) is None:
                raise ConsentTextNotFound(f"no consent text {text_id!r} version {version}")
            if store.count_consent_events(party) >= CONSENT_EVENTS_PER_PARTY_MAX:
                raise LimitReached("the person's consent history is full")
            event = self._record_consent_event(
                write, store, party, request, ConsentEventKind.GRANT, text_id, version, subject
            )
        _log.info("consent granted: party %s text %s v%d", party, text_id, version)
        return event

    def withdraw_consent(
        self, party_id: str, text_id: str, request_id: str, uow: LedgerWrite | None = None
    ) -> ConsentEvent:
        """Withdraw the person's consent to a text (every version), effective from now.

        One call, like the grant: nothing else is asked of the person (D1).
        """
        party = parse_party_id(party_id)
        request = check_reference("request_id", request_id)
        with self._write(uow) as (write, store):
            if self._replayed(store, request, "withdraw", party, text_id) is not None:
                return _present(store.consent_event(request), "a recorded withdrawal's event")
            at = self._now(write)
            events = store.consent_events(party, CONSENT_EVENTS_PER_PARTY_MAX)
            texts = store.consent_texts_for(party)
            if not any(c.text.text_id == text_id for c in live_consents(events, texts, at)):
                raise ConsentNotLive(f"the person has no live consent to text {text_id!r}")
            if len(events) >= CONSENT_EVENTS_PER_PARTY_MAX:
                raise LimitReached("the person's consent history is full")
            event = self._record_consent_event(
                write, store, party, request, ConsentEventKind.WITHDRAW, text_id, None, text_id
            )
        _log.info("consent withdrawn: party %s text %s", party, text_id)
        return event

    def _record_consent_event(
        self,
        write: LedgerWrite,
        store: PrivacyStore,
        party: str,
        request: str,
        kind: ConsentEventKind,
        text_id: str,
        version: int | None,
        subject: str,
    ) -> ConsentEvent:
        at = self._now(write)
        document = {
            "request_id": request,
            "party_id": party,
            "kind": kind.value,
            "text_id": text_id,
            "version": version,
            "at": at,
        }
        seq = self._chain(write, RECORD_CONSENT, document)
        event = ConsentEvent(request, party, kind, text_id, version, at, seq)
        store.insert_consent_event(event)
        store.insert_request(
            StoredRequest(request, kind.value, party, subject, _digest(document), None, "{}"), at
        )
        return event

    def consents(self, party_id: str) -> list[ConsentState]:
        """Every text the person has granted, with its grant, withdrawal and whether it is live."""
        party = parse_party_id(party_id)
        with self._read() as store:
            events = store.consent_events(party, CONSENT_EVENTS_PER_PARTY_MAX)
            texts = store.consent_texts_for(party)
        return _consent_states(events, texts, self._read_time(events))

    def service_available(
        self, party_id: str, service: str, uow: LedgerWrite | None = None
    ) -> ServiceCheck:
        """Whether the person's consents let `service` run now (refused consents it does not
        need never matter, D1). With `uow`, read in that unit of work, so that a write in
        another context (a draw on a credit line) judges the consent inside its own
        transaction instead of holding a second connection."""
        party = parse_party_id(party_id)
        with PrivacyStore.reading(self.ledger, uow) as store:
            events = store.consent_events(party, CONSENT_EVENTS_PER_PARTY_MAX)
            texts = store.consent_texts_for(party)
        return service_check(service, events, texts, self._read_time(events))

    def _read_time(self, events: Sequence[ConsentEvent]) -> int:
        """The moment at which to judge consents: the clock, but never before a recorded event.

        Writes are stamped with ledger time, which runs ahead of the clock when writes come
        faster than its resolution; judging a grant made a moment ago by a clock that has not
        reached its stamp yet would call it not live.
        """
        return max([self.clock(), *(event.at for event in events)])

    # -- the vault: writes ------------------------------------------------------------------

    def put_personal_data(
        self,
        party_id: str,
        fields: Mapping[str, str],
        request_id: str,
        uow: LedgerWrite | None = None,
    ) -> VaultWrite:
        """Encrypt and store personal fields for the person (creating their data key if new).

        Prohibited fields (C1) are refused with `personal_field_prohibited` before anything
        else is looked at, unknown ones with `personal_field_unknown`.
        """
        return self._write_fields(party_id, fields, request_id, "put", uow)

    def correct_personal_data(
        self,
        party_id: str,
        changes: Mapping[str, str | None],
        request_id: str,
        uow: LedgerWrite | None = None,
    ) -> VaultWrite:
        """Correct the person's fields (PIPL Art. 46); a value of None deletes that field."""
        return self._write_fields(party_id, changes, request_id, "correct", uow)

    def _write_fields(
        self,
        party_id: str,
        fields: Mapping[str, str | None],
        request_id: str,
        kind: str,
        uow: LedgerWrite | None,
    ) -> VaultWrite:
        # Prohibited fields are refused before anything else is looked at (C1).
        if not isinstance(fields, Mapping):
            raise InvalidInput("fields", "fields map field names to values")
        names = check_field_names(fields.keys())
        party = parse_party_id(party_id)
        request = check_reference("request_id", request_id)
        on = event_date(self.clock())
        values: dict[Field, str | None] = {}
        for name in names:
            value = fields[name.value]
            if value is None and kind == "correct":
                values[name] = None
            else:
                values[name] = check_field_value(name, value, on)
        subject = ",".join(sorted(name.value for name in names))
        with self._write(uow) as (write, store):
            at = self._now(write)
            stored = self._replayed(store, request, kind, party, subject)
            self._refuse_if_erased(store, party)
            data_key = (
                self._live_key_or_create(store, party, at)
                if kind == "put"
                else self._live_key(store, party)
            )
            if data_key is None:
                raise PersonNotFound("the vault holds nothing about this party to correct")
            document = {name.value: value for name, value in values.items()}
            digest = data_key.fingerprint(canonical_json({"kind": kind, "fields": document}))
            written = tuple(sorted(n.value for n, v in values.items() if v is not None))
            removed = tuple(sorted(n.value for n, v in values.items() if v is None))
            if stored is not None:
                # A rotated data key cannot reproduce the original tag; the field names still
                # had to match above.
                if stored.key_version == data_key.version:
                    self._check_digest(stored, digest, request)
                return VaultWrite(party, request, written, removed, data_key.version, True)
            for name, value in values.items():
                if value is None:
                    store.delete_field(party, Scope.LIVE, name.value)
                else:
                    sealed = seal(data_key, party, Scope.LIVE, name.value, value)
                    store.put_field(party, Scope.LIVE, name.value, sealed, at)
            if Field.PHONE in values and self.index_key is not None:
                self._index_phone(self.index_key, store, party, values[Field.PHONE])
            self._chain(
                write,
                RECORD_VAULT_WRITE,
                {
                    "request_id": request,
                    "party_id": party,
                    "kind": kind,
                    "fields": list(written),
                    "removed": list(removed),
                    "key_version": data_key.version,
                    "at": at,
                },
            )
            store.insert_request(
                StoredRequest(request, kind, party, subject, digest, data_key.version, "{}"), at
            )
        _log.info("vault %s: party %s fields %s", kind, party, ",".join(written + removed))
        return VaultWrite(party, request, written, removed, data_key.version)

    @staticmethod
    def _index_phone(
        key: FingerprintKey, store: PrivacyStore, party: str, phone: str | None
    ) -> None:
        digest = None if phone is None else key.phone(phone)
        if digest is not None and store.phone_owner(digest) not in (None, party):
            # One number, one person: a phone a payer types must name exactly one payee.
            raise InvalidInput("phone", "the phone number is registered to another person")
        store.set_phone_index(party, digest)

    def party_by_phone(self, phone: str) -> str | None:
        """The person whose phone number this is, or None (the number is never stored here)."""
        if self.index_key is None:
            raise InvalidInput("phone", "paying a phone number is not configured here")
        value = check_field_value(Field.PHONE, phone, event_date(self.clock()))
        with self._read() as store:
            return store.phone_owner(self.index_key.phone(value))

    def masked_name(self, party_id: str, accessor: str, uow: LedgerWrite | None = None) -> str:
        """The person's name with all but its last character masked ("**明"), as a payer sees
        it to confirm a payee; read for the payment service (contract necessity) and logged."""
        name = self.read_personal_data(
            party_id, ["name"], "payment_service", accessor, "payee confirmation", uow=uow
        ).get("name")
        if not name:
            raise PersonNotFound("the payee has no name on record")
        return "*" * (len(name) - 1) + name[-1]

    # -- the vault: reads -------------------------------------------------------------------

    def read_personal_data(
        self,
        party_id: str,
        fields: Sequence[str],
        purpose: str,
        accessor: str,
        reason: str,
        recipient: str | None = None,
        uow: LedgerWrite | None = None,
    ) -> dict[str, str]:
        """The person's values of `fields`, read for `purpose` by `accessor` for `reason`.

        Lawful only on live consent or another basis (`consent.decide_access`); every decided
        read, allowed or refused, is written to the data-access log first. Fields the vault
        does not hold are left out of the result.
        """
        party = parse_party_id(party_id)
        if isinstance(fields, str) or not isinstance(fields, Sequence):
            raise InvalidInput("fields", "fields is a list of field names")
        names = check_field_names(fields)
        chosen = check_purpose(purpose)
        who = check_reference("accessor", accessor)
        why = _check_reason(reason)
        to = None if recipient is None else check_recipient(recipient)
        values: dict[str, str] = {}
        with self._write(uow) as (write, store):
            at = self._now(write)
            decision, scope = self._decide(store, party, names, chosen, to, at)
            if decision.allowed:
                values = self._open_fields(store, party, scope, names)
            self._log_access(write, store, at, who, party, names, chosen, to, decision, why)
        if decision.refusal is not None:
            _log.info(
                "personal data read refused: party %s purpose %s code %s",
                party,
                chosen.value,
                decision.refusal,
            )
            raise AccessRefused(
                decision.refusal,
                f"reading {', '.join(n.value for n in names)} for {chosen.value} was refused: "
                f"{decision.refusal}",
            )
        _log.info(
            "personal data read: party %s fields %s purpose %s basis %s",
            party,
            ",".join(n.value for n in names),
            chosen.value,
            decision.basis,
        )
        return values

    def _decide(
        self,
        store: PrivacyStore,
        party: str,
        names: Sequence[Field],
        purpose: Purpose,
        recipient: str | None,
        at: int,
    ) -> tuple[AccessDecision, Scope]:
        citation = POLICIES[purpose].citation
        if store.erasure(party) is not None:
            # After erasure only the AML identity record is left, for the AML purpose alone,
            # until its retention period ends.
            retained = store.retain_until(party)
            today = event_date(at).isoformat()
            if purpose is Purpose.AML_COMPLIANCE and retained is not None and today <= retained:
                return decide_access(purpose, names, at, (), {}, recipient), Scope.AML_RETENTION
            return AccessDecision.refuse("person_erased", citation), Scope.LIVE
        if store.key(party, Scope.LIVE) is None:
            return AccessDecision.refuse("person_not_found", citation), Scope.LIVE
        events = store.consent_events(party, CONSENT_EVENTS_PER_PARTY_MAX)
        texts = store.consent_texts_for(party)
        return decide_access(purpose, names, at, events, texts, recipient), Scope.LIVE

    def _open_fields(
        self, store: PrivacyStore, party: str, scope: Scope, names: Sequence[Field]
    ) -> dict[str, str]:
        wrapped = store.key(party, scope)
        if wrapped is None:
            return {}
        data_key = self.vault.unwrap(wrapped)
        sealed = store.fields(party, scope)
        return {
            name.value: unseal(data_key, party, scope, name.value, sealed[name.value])
            for name in names
            if name.value in sealed
        }

    def _log_access(
        self,
        write: LedgerWrite,
        store: PrivacyStore,
        at: int,
        accessor: str,
        party: str,
        names: Sequence[Field | str],
        purpose: Purpose,
        recipient: str | None,
        decision: AccessDecision,
        reason: str,
    ) -> AccessEntry:
        document: dict[str, Any] = {
            "at": at,
            "accessor": accessor,
            "party_id": party,
            "fields": [str(name) for name in names],
            "purpose": purpose.value,
            "recipient": recipient,
            "outcome": "allowed" if decision.allowed else "refused",
            "basis": None if decision.basis is None else decision.basis.value,
            "refusal": decision.refusal,
            "consent_text_id": decision.consent_text_id,
            "consent_version": decision.consent_version,
            "reason": reason,
        }
        seq = self._chain(write, RECORD_ACCESS, document)
        entry = AccessEntry(
            seq=seq,
            at=at,
            accessor=accessor,
            party_id=party,
            fields=tuple(document["fields"]),
            purpose=purpose.value,
            recipient=recipient,
            outcome=document["outcome"],
            basis=document["basis"],
            refusal=decision.refusal,
            consent_text_id=decision.consent_text_id,
            consent_version=decision.consent_version,
            reason=reason,
        )
        store.insert_access(entry)
        return entry

    def access_log(self, party_id: str, limit: int = 100) -> list[AccessEntry]:
        """The person's latest `limit` access-log entries (1 to 10,000), oldest first."""
        party = parse_party_id(party_id)
        if type(limit) is not int or not 1 <= limit <= ACCESS_LOG_EXPORT_MAX:
            raise InvalidInput("limit", f"limit is 1 to {ACCESS_LOG_EXPORT_MAX}")
        with self._read() as store:
            return store.access_log(party, limit)

    # -- key rotation -----------------------------------------------------------------------

    def rotate_data_key(
        self, party_id: str, request_id: str, uow: LedgerWrite | None = None
    ) -> VaultWrite:
        """Give the person a new data key and re-encrypt every one of their values under it."""
        party = parse_party_id(party_id)
        request = check_reference("request_id", request_id)
        with self._write(uow) as (write, store):
            at = self._now(write)
            stored = self._replayed(store, request, "rotate_data_key", party, party)
            self._refuse_if_erased(store, party)
            wrapped = store.key(party, Scope.LIVE)
            if wrapped is None:
                raise PersonNotFound("the vault holds nothing about this party")
            if stored is not None:
                names = tuple(sorted(store.fields(party, Scope.LIVE)))
                return VaultWrite(party, request, names, (), wrapped.key_version, True)
            old_key = self.vault.unwrap(wrapped)
            new_key = DataKey.generate(old_key.version + 1)
            sealed = store.fields(party, Scope.LIVE)
            for name, value in sealed.items():
                plaintext = unseal(old_key, party, Scope.LIVE, name, value)
                resealed = seal(new_key, party, Scope.LIVE, name, plaintext)
                store.put_field(party, Scope.LIVE, name, resealed, at)
            store.replace_key(self.vault.wrap(party, Scope.LIVE, new_key))
            document = {
                "request_id": request,
                "party_id": party,
                "kind": "rotate_data_key",
                "fields": sorted(sealed),
                "key_version": new_key.version,
                "at": at,
            }
            self._chain(write, RECORD_VAULT_WRITE, document)
            store.insert_request(
                StoredRequest(
                    request, "rotate_data_key", party, party, _digest(document), None, "{}"
                ),
                at,
            )
        _log.info("data key of party %s rotated to version %d", party, new_key.version)
        return VaultWrite(party, request, tuple(sorted(sealed)), (), new_key.version)

    def rewrap_keys(self, batch_size: int = 500) -> RewrapReport:
        """Move every data key onto the vault's current master key, batch by batch.

        Ciphertexts are not touched. Keys under a master key the vault does not hold are counted
        as unavailable and left as they are. Run with the vault holding the new key as `current`
        and the old one as `retired`; afterwards the old master key can be destroyed, which is
        what makes erased persons' data unreadable in backups taken before their erasure.
        """
        if type(batch_size) is not int or not 1 <= batch_size <= REWRAP_BATCH_MAX:
            raise InvalidInput("batch_size", f"batch_size is 1 to {REWRAP_BATCH_MAX}")
        current = self.vault.current.key_id
        report = RewrapReport(current)
        after = ("", "")
        while True:
            with self._write(None) as (write, store):
                batch = store.keys_not_under(current, after, batch_size)
                moved = 0
                for wrapped in batch:
                    if wrapped.master_key_id not in self.vault.key_ids:
                        report.unavailable += 1
                        report.unavailable_key_ids.add(wrapped.master_key_id)
                        continue
                    store.replace_key(self.vault.rewrap(wrapped))
                    moved += 1
                if moved:
                    self._chain(
                        write,
                        RECORD_KEY_ROTATION,
                        {"master_key_id": current, "rewrapped": moved, "at": self._now(write)},
                    )
            report.rewrapped += moved
            if len(batch) < batch_size:
                break
            after = (batch[-1].party_id, batch[-1].scope.value)
        _log.info(
            "data keys rewrapped under master key %s: %d moved, %d unavailable",
            current,
            report.rewrapped,
            report.unavailable,
        )
        return report

    # -- erasure ----------------------------------------------------------------------------

    def erase_person(
        self, party_id: str, request_id: str, uow: LedgerWrite | None = None
    ) -> ErasureReceipt:
        """Erase the person's personal data by destroying their data key (crypto-shredding).

        What the AML law requires to be kept (the customer identity record, A4/A5) is first
        re-encrypted under a separate retention key that is destroyed when the retention period
        ends (`purge_expired_retention`). The receipt says what was destroyed and what is kept
        under which rule.
        """
        party = parse_party_id(party_id)
        request = check_reference("request_id", request_id)
        with self._write(uow) as (write, store):
            at = self._now(write)
            if self._replayed(store, request, "erase", party, party) is not None:
                found = _present(store.erasure(party), "a recorded erasure's receipt")
                return ErasureReceipt(party, request, at, json.loads(found[1]), True)
            self._refuse_if_erased(store, party)
            document = self._erase(write, store, party, request, at)
            receipt = json.dumps(document, sort_keys=True, ensure_ascii=False)
            seq = self._chain(write, RECORD_ERASURE, document)
            store.insert_erasure(party, request, seq, at, receipt)
            store.insert_request(
                StoredRequest(request, "erase", party, party, _digest(document), None, "{}"), at
            )
        _log.info("party %s erased", party)
        return ErasureReceipt(party, request, at, document)

    def _erase(
        self, write: LedgerWrite, store: PrivacyStore, party: str, request: str, at: int
    ) -> dict[str, Any]:
        on = event_date(at)
        rule = aml_retention_rule(on)
        retain_until = add_years(on, rule.years)
        wrapped = store.key(party, Scope.LIVE)
        destroyed: list[dict[str, Any]] = []
        retained: list[dict[str, Any]] = []
        master_key_id = None
        if wrapped is not None:
            master_key_id = wrapped.master_key_id
            data_key = self.vault.unwrap(wrapped)
            sealed = store.fields(party, Scope.LIVE)
            kept = {
                name: unseal(data_key, party, Scope.LIVE, name, value)
                for name, value in sealed.items()
                if name in AML_IDENTITY_FIELDS
            }
            if kept:
                retention_key, retention_wrapped = self.vault.new_data_key(
                    party, Scope.AML_RETENTION
                )
                store.insert_key(retention_wrapped, at, retain_until.isoformat())
                for name, value in kept.items():
                    resealed = seal(retention_key, party, Scope.AML_RETENTION, name, value)
                    store.put_field(party, Scope.AML_RETENTION, name, resealed, at)
                retained.append(
                    {
                        "record": "aml_customer_identity_record",
                        "fields": sorted(kept),
                        "basis": Basis.LEGAL_DUTY.value,
                        "rule": rule.name,
                        "years": rule.years,
                        "retain_until": retain_until.isoformat(),
                        "citation": rule.citation,
                        "readable_for": [Purpose.AML_COMPLIANCE.value],
                        "detail": "kept encrypted under a separate retention key, readable "
                        "only for AML compliance and logged; the key is destroyed when the "
                        "period ends",
                    }
                )
            personal = sorted(name for name in sealed if name in _FIELD_NAMES)
            documents = len(sealed) - len(personal)
            store.delete_fields(party, Scope.LIVE)
            store.delete_key(party, Scope.LIVE)
            store.set_phone_index(party, None)
            destroyed.append(
                {
                    "record": "personal_data_key",
                    "key_version": wrapped.key_version,
                    "detail": "the person's data key was destroyed: every value encrypted "
                    "under it, in this database or in any copy of its value rows, can no "
                    "longer be decrypted",
                }
            )
            destroyed.append(
                {
                    "record": "personal_fields",
                    "fields": personal,
                    "detail": "the encrypted values were deleted from the live database",
                }
            )
            if documents:
                destroyed.append(
                    {
                        "record": "data_subject_request_texts",
                        "count": documents,
                        "detail": "the person's statements and the answers given to them",
                    }
                )
        retained.extend(
            [
                {
                    "record": "ledger_entries_and_audit_chain",
                    "basis": Basis.LEGAL_DUTY.value,
                    "citation": "AML Law (2024 revision): transaction records kept at least "
                    "10 years (A4, A5)",
                    "detail": "transfers and the hash chain stay valid and unchanged; they "
                    "name the person only by the pseudonymous party id",
                },
                {
                    "record": "consent_events",
                    "count": store.count_consent_events(party),
                    "citation": "PIPL Arts. 13-15: proof of the consents relied on",
                    "detail": "text ids, versions and times only, on the pseudonymous id",
                },
                {
                    "record": "data_access_log",
                    "count": store.count_access(party),
                    "citation": "PIPL Arts. 51 and 54: accountability and compliance audits",
                    "detail": "who read which fields for which purpose; never the values",
                },
                {
                    "record": "data_subject_requests",
                    "count": store.count_subject_requests(party),
                    "citation": "PIPL Art. 50: handling of the person's requests",
                    "detail": "kinds, decision references and states; their texts were "
                    "destroyed with the data key",
                },
            ]
        )
        backups = {
            "master_key_id": master_key_id,
            "detail": "copies of value rows taken before this erasure are unreadable now. A full "
            "copy of the database taken before it still holds the data key wrapped under "
            "this master key; it becomes unreadable when this master key is retired "
            "(rewrap_keys under a new master key, then destroy this one)",
        }
        return {
            "party_id": party,
            "request_id": request,
            "erased_at": at,
            "erased_on": on.isoformat(),
            "destroyed": destroyed,
            "retained": retained,
            "backups": backups,
        }

    def erasure_receipt(self, party_id: str) -> dict[str, Any] | None:
        party = parse_party_id(party_id)
        with self._read() as store:
            found = store.erasure(party)
        return None if found is None else dict(json.loads(found[1]))

    def purge_expired_retention(self, on: date | None = None, limit: int = 500) -> list[str]:
        """Destroy AML retention records whose period ended before `on` (default: today)."""
        if type(limit) is not int or not 1 <= limit <= REWRAP_BATCH_MAX:
            raise InvalidInput("limit", f"limit is 1 to {REWRAP_BATCH_MAX}")
        with self._write(None) as (write, store):
            day = (on or event_date(self._now(write))).isoformat()
            parties = store.expired_retention(day, limit)
            for party in parties:
                store.delete_fields(party, Scope.AML_RETENTION)
                store.delete_key(party, Scope.AML_RETENTION)
            if parties:
                self._chain(
                    write,
                    RECORD_RETENTION_PURGE,
                    {"parties": parties, "on": day, "at": self._now(write)},
                )
        for party in parties:
            _log.info("AML retention record of party %s destroyed", party)
        return parties

    # -- data-subject requests --------------------------------------------------------------

    def request_explanation(
        self,
        party_id: str,
        decision_reference: str,
        request_id: str,
        uow: LedgerWrite | None = None,
    ) -> DataSubjectRequest:
        """Open the person's request for an explanation of an automated decision (D4, G5)."""
        return self._open_request(
            party_id, decision_reference, None, request_id, DataSubjectRequestKind.EXPLANATION, uow
        )

    def request_human_review(
        self,
        party_id: str,
        decision_reference: str,
        statement: str,
        request_id: str,
        uow: LedgerWrite | None = None,
    ) -> DataSubjectRequest:
        """Open the person's request for human review of a decision, with their view (G5).

        The statement is personal data: it is encrypted under the person's data key like a
        field, so erasure destroys it too.
        """
        text = _check_text("statement", statement, STATEMENT_LENGTH_MAX)
        return self._open_request(
            party_id, decision_reference, text, request_id, DataSubjectRequestKind.HUMAN_REVIEW, uow
        )

    def _open_request(
        self,
        party_id: str,
        decision_reference: str,
        statement: str | None,
        request_id: str,
        kind: DataSubjectRequestKind,
        uow: LedgerWrite | None,
    ) -> DataSubjectRequest:
        party = parse_party_id(party_id)
        request = check_reference("request_id", request_id)
        reference = check_reference("decision_reference", decision_reference)
        with self._write(uow) as (write, store):
            at = self._now(write)
            stored = self._replayed(store, request, kind.value, party, reference)
            self._refuse_if_erased(store, party)
            if stored is not None:
                existing = _present(store.subject_request(request), "a recorded request's row")
                if statement is not None:
                    data_key = self._live_key(store, party)
                    if data_key is not None and stored.key_version == data_key.version:
                        self._check_digest(
                            stored, data_key.fingerprint(statement.encode()), request
                        )
                return existing
            if store.count_subject_requests(party) >= SUBJECT_REQUESTS_PER_PARTY_MAX:
                raise LimitReached("the person's list of requests is full")
            digest = _digest({"kind": kind.value, "reference": reference})
            key_version = None
            if statement is not None:
                data_key = self._live_key_or_create(store, party, at)
                name = _statement_field(request)
                store.put_field(
                    party, Scope.LIVE, name, seal(data_key, party, Scope.LIVE, name, statement), at
                )
                digest = data_key.fingerprint(statement.encode())
                key_version = data_key.version
            created = DataSubjectRequest(
                request_id=request,
                party_id=party,
                kind=kind,
                decision_reference=reference,
                state=DataSubjectRequestState.OPEN,
                received_at=at,
                respond_by=respond_by(event_date(at)).isoformat(),
                has_statement=statement is not None,
                has_answer=False,
                updated_at=at,
            )
            store.insert_subject_request(created)
            self._record_request_state(write, store, created, DATA_SUBJECT_ACCESSOR, at)
            store.insert_request(
                StoredRequest(request, kind.value, party, reference, digest, key_version, "{}"),
                at,
            )
        _log.info("data-subject request %s (%s) opened for party %s", request, kind.value, party)
        return created

    def _record_request_state(
        self,
        write: LedgerWrite,
        store: PrivacyStore,
        request: DataSubjectRequest,
        actor: str,
        at: int,
    ) -> None:
        seq = self._chain(
            write,
            RECORD_SUBJECT_REQUEST,
            {
                "request_id": request.request_id,
                "party_id": request.party_id,
                "kind": request.kind.value,
                "decision_reference": request.decision_reference,
                "state": request.state.value,
                "actor": actor,
                "at": at,
            },
        )
        store.insert_subject_request_event(
            DataSubjectRequestEvent(seq, request.request_id, request.state, actor, at)
        )

    def start_review(
        self, request_id: str, actor: str, uow: LedgerWrite | None = None
    ) -> DataSubjectRequest:
        """Move an open request to `in_review`; doing it again is a no-op."""
        return self._advance(request_id, DataSubjectRequestState.IN_REVIEW, actor, None, uow)

    def answer_request(
        self, request_id: str, actor: str, answer: str, uow: LedgerWrite | None = None
    ) -> DataSubjectRequest:
        """Answer a request (the explanation, or the outcome of the review); it is then final.

        The answer is about the person and is encrypted under their data key. Answering an
        answered request again changes nothing.
        """
        text = _check_text("answer", answer, ANSWER_LENGTH_MAX)
        return self._advance(request_id, DataSubjectRequestState.ANSWERED, actor, text, uow)

    def _advance(
        self,
        request_id: str,
        state: DataSubjectRequestState,
        actor: str,
        answer: str | None,
        uow: LedgerWrite | None,
    ) -> DataSubjectRequest:
        request = check_reference("request_id", request_id)
        who = check_reference("actor", actor)
        with self._write(uow) as (write, store):
            current = store.subject_request(request)
            if current is None:
                raise DataSubjectRequestNotFound(f"no data-subject request {request!r}")
            if current.state is state:
                return current
            if not transition_allowed(current.state, state):
                raise DataSubjectTransitionInvalid(
                    f"a request in state {current.state.value} cannot become {state.value}"
                )
            at = self._now(write)
            has_answer = current.has_answer
            if answer is not None:
                self._refuse_if_erased(store, current.party_id)
                data_key = self._live_key_or_create(store, current.party_id, at)
                name = _answer_field(request)
                sealed = seal(data_key, current.party_id, Scope.LIVE, name, answer)
                store.put_field(current.party_id, Scope.LIVE, name, sealed, at)
                has_answer = True
            store.update_subject_request(request, state, has_answer, at)
            updated = DataSubjectRequest(
                current.request_id,
                current.party_id,
                current.kind,
                current.decision_reference,
                state,
                current.received_at,
                current.respond_by,
                current.has_statement,
                has_answer,
                at,
            )
            self._record_request_state(write, store, updated, who, at)
        _log.info("data-subject request %s is now %s", request, state.value)
        return updated

    def subject_request(self, request_id: str) -> DataSubjectRequest:
        request = check_reference("request_id", request_id)
        with self._read() as store:
            found = store.subject_request(request)
        if found is None:
            raise DataSubjectRequestNotFound(f"no data-subject request {request!r}")
        return found

    def subject_requests(self, party_id: str) -> list[DataSubjectRequest]:
        party = parse_party_id(party_id)
        with self._read() as store:
            return store.subject_requests(party, SUBJECT_REQUESTS_PER_PARTY_MAX)

    def review_material(
        self, request_id: str, accessor: str, reason: str, uow: LedgerWrite | None = None
    ) -> dict[str, str | None]:
        """The person's statement and the answer so far, for the reviewer; logged as a read."""
        request = check_reference("request_id", request_id)
        who = check_reference("accessor", accessor)
        why = _check_reason(reason)
        with self._write(uow) as (write, store):
            current = store.subject_request(request)
            if current is None:
                raise DataSubjectRequestNotFound(f"no data-subject request {request!r}")
            party = current.party_id
            at = self._now(write)
            material: dict[str, str | None] = {"statement": None, "answer": None}
            wrapped = store.key(party, Scope.LIVE)
            if wrapped is not None:
                data_key = self.vault.unwrap(wrapped)
                sealed = store.fields(party, Scope.LIVE)
                for label, name in (
                    ("statement", _statement_field(request)),
                    ("answer", _answer_field(request)),
                ):
                    if name in sealed:
                        material[label] = unseal(data_key, party, Scope.LIVE, name, sealed[name])
            decision = AccessDecision(
                True, Basis.DATA_SUBJECT_RIGHT, None, None, None, "PIPL Arts. 24, 50 (D4, D6)"
            )
            self._log_access(
                write,
                store,
                at,
                who,
                party,
                ["request_statement", "request_answer"],
                Purpose.DATA_SUBJECT_REQUEST,
                None,
                decision,
                why,
            )
        return material

    # -- export -----------------------------------------------------------------------------

    def export_personal_data(
        self, party_id: str, accessor: str = DATA_SUBJECT_ACCESSOR, reason: str = "export"
    ) -> dict[str, Any]:
        """Everything held about the person, as JSON-ready data (PIPL Arts. 45 and 47, D6).

        Personal values, consents with the texts granted, the data-access log (this export's
        own entry included), data-subject requests with their texts and histories, and the
        erasure receipt if there is one. Nothing about any other person: every query is keyed
        by this party id.
        """
        party = parse_party_id(party_id)
        who = check_reference("accessor", accessor)
        why = _check_reason(reason)
        with self._write(None) as (write, store):
            at = self._now(write)
            personal: dict[str, str] = {}
            documents: dict[str, str] = {}
            wrapped = store.key(party, Scope.LIVE)
            if wrapped is not None:
                data_key = self.vault.unwrap(wrapped)
                for name, sealed in store.fields(party, Scope.LIVE).items():
                    value = unseal(data_key, party, Scope.LIVE, name, sealed)
                    if name in _FIELD_NAMES:
                        personal[name] = value
                    else:
                        documents[name] = value
            decision = AccessDecision(
                True, Basis.DATA_SUBJECT_RIGHT, None, None, None, "PIPL Art. 45 (D6)"
            )
            exported = sorted(personal) or ["none_held"]
            self._log_access(
                write,
                store,
                at,
                who,
                party,
                exported,
                Purpose.DATA_SUBJECT_REQUEST,
                None,
                decision,
                why,
            )
            events = store.consent_events(party, CONSENT_EVENTS_PER_PARTY_MAX)
            texts = store.consent_texts_for(party)
            log_total = store.count_access(party)
            log = store.access_log(party, ACCESS_LOG_EXPORT_MAX)
            requests = store.subject_requests(party, SUBJECT_REQUESTS_PER_PARTY_MAX)
            histories = {r.request_id: store.subject_request_events(r.request_id) for r in requests}
            erasure = store.erasure(party)
        _log.info("personal data of party %s exported", party)
        return {
            "format": EXPORT_FORMAT,
            "party_id": party,
            "exported_at": at,
            "personal_data": dict(sorted(personal.items())),
            "consents": [
                {
                    "request_id": event.request_id,
                    "kind": event.kind.value,
                    "text_id": event.text_id,
                    "version": event.version,
                    "at": event.at,
                }
                for event in events
            ],
            "consent_states": [_state_document(s) for s in _consent_states(events, texts, at)],
            "access_log": [entry.document() for entry in log],
            "access_log_total": log_total,
            "access_log_truncated": log_total > len(log),
            "data_subject_requests": [
                {
                    "request_id": r.request_id,
                    "kind": r.kind.value,
                    "decision_reference": r.decision_reference,
                    "state": r.state.value,
                    "received_at": r.received_at,
                    "respond_by": r.respond_by,
                    "statement": documents.get(_statement_field(r.request_id)),
                    "answer": documents.get(_answer_field(r.request_id)),
                    "history": [
                        {"state": e.state.value, "actor": e.actor, "at": e.at}
                        for e in histories[r.request_id]
                    ],
                }
                for r in requests
            ],
            "erasure": None if erasure is None else json.loads(erasure[1]),
        }


def _consent_states(
    events: Sequence[ConsentEvent], texts: Mapping[tuple[str, int], ConsentText], at: int
) -> list[ConsentState]:
    live = {c.text.text_id: c for c in live_consents(events, texts, at)}
    states: list[ConsentState] = []
    for event in sorted(events, key=lambda e: (e.at, e.seq)):
        if event.kind is ConsentEventKind.GRANT:
            text = None if event.version is None else texts.get((event.text_id, event.version))
            if text is None:
                continue
            states.append(
                ConsentState(
                    text.text_id,
                    text.version,
                    tuple(p.value for p in text.purposes),
                    tuple(f.value for f in text.fields),
                    text.language,
                    text.recipient,
                    text.text_hash.hex(),
                    event.at,
                    None,
                    False,
                )
            )
        else:
            for index, state in enumerate(states):
                if state.text_id == event.text_id and state.withdrawn_at is None:
                    states[index] = replace(state, withdrawn_at=event.at)
    result = []
    for state in states:
        current = live.get(state.text_id)
        is_live = (
            current is not None
            and current.granted_at == state.granted_at
            and current.text.version == state.version
        )
        result.append(replace(state, live=is_live))
    return result


def _state_document(state: ConsentState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in state.__slots__} | {
        "purposes": list(state.purposes),
        "fields": list(state.fields),
    }
