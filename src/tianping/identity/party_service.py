"""Parties and KYC as use cases over the ledger's unit of work.

Every write runs in a `LedgerWrite` (its own, or the caller's `uow` so that another context can
commit its rows in the same transaction), appends a chain record of kind `identity.*` with a
canonical body of pseudonymous facts, and is idempotent by a client-supplied id: the same id with
the same fields returns what the first request made, the same id with different fields raises
`RequestConflict` (`request_conflict`). Writers are serialised by the ledger's write lock, so
the checks below (one Class III account per institution, a card bound once) cannot race; the
database's unique indexes are the second line.

Personal data stays out. `register_person` takes the date of birth because the guardian rule
(D3) is decided on it, uses it for that decision and forgets it: the tables keep only, for a
person registered while under 14, the 14th birthday. The card number never reaches this module:
the caller computes its keyed fingerprint with `FingerprintKey.card` and passes the fingerprint
and the last four digits. The vault (`tianping.identity.vault`) holds the fields themselves.

The fingerprint key is 32 or more random bytes, hex-encoded, in `TIANPING_CARD_FINGERPRINT_KEY`
(or passed as a `FingerprintKey`). It keys card fingerprints and the digests that recognise a
retried person registration, under separate labels; a plain hash would not do for either, since
card numbers and dates of birth are few enough to hash them all.

Dates are Beijing-time dates of the injected clock (`parties.event_date`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from tianping.identity.errors import (
    AccountClassNotVerified,
    CardAlreadyBound,
    CardHolderMismatch,
    ClassIIILimitReached,
    FingerprintKeyUnavailable,
    GuardianConsentRequired,
    GuardianInvalid,
    InvalidInput,
    LimitReached,
    NewAccountsBarred,
    PartyKindNotAllowed,
    PartyNotFound,
    PaymentAccountNotFound,
    PaymentServicesSuspended,
    RegistrationNumberTaken,
    RequestConflict,
)
from tianping.identity.ids import (
    PartyId,
    new_party_id,
    new_payment_account_id,
    parse_party_id,
    parse_payment_account_id,
)
from tianping.identity.parties import (
    ACCOUNT_ISSUER_INSTITUTION_KINDS,
    ACCOUNT_ISSUER_KINDS,
    BLOCKLIST_ENTRIES_PER_PARTY_MAX,
    CARDS_PER_PARTY_MAX,
    PAYMENT_ACCOUNTS_PER_PARTY_MAX,
    VERIFICATIONS_PER_PARTY_MAX,
    AccountClass,
    BlocklistEntry,
    BlocklistReason,
    BlocklistStatus,
    CardBinding,
    Channel,
    InstitutionKind,
    Party,
    PartyKind,
    PaymentAccount,
    Verification,
    account_class_for,
    bank_account_fingerprint,
    blocklist_status_of,
    canonical_json,
    card_fingerprint,
    check_date_of_birth,
    check_reference,
    check_registration_number,
    check_source,
    event_date,
    fourteenth_birthday,
    normalise_bank_account_number,
    normalise_card_number,
)
from tianping.identity.party_store import PartyStore
from tianping.ledger.service import Ledger, LedgerWrite

__all__ = [
    "CARD_FINGERPRINT_KEY_ENV",
    "CHAIN_KINDS",
    "CardFingerprint",
    "FingerprintKey",
    "VerificationResult",
    "add_to_blocklist",
    "bind_bank_card",
    "blocklist_status",
    "blocklist_statuses",
    "get_party",
    "list_card_bindings",
    "list_payment_accounts",
    "open_payment_account",
    "record_verification",
    "register_institution",
    "register_merchant",
    "register_party",
    "register_person",
    "upgrade_payment_account",
]

Clock = Callable[[], int]

CARD_FINGERPRINT_KEY_ENV = "TIANPING_CARD_FINGERPRINT_KEY"
_KEY_BYTES_MIN = 32
_REQUEST_LABEL = b"tianping.party-request.v1\x00"
_PHONE_LABEL = b"tianping.phone-index.v1\x00"

PARTY_KIND = "identity.party"
VERIFICATION_KIND = "identity.verification"
ACCOUNT_KIND = "identity.payment_account"
ACCOUNT_CLASS_KIND = "identity.account_class"
CARD_KIND = "identity.card_binding"
BLOCKLIST_KIND = "identity.blocklist"
CHAIN_KINDS = (
    PARTY_KIND,
    VERIFICATION_KIND,
    ACCOUNT_KIND,
    ACCOUNT_CLASS_KIND,
    CARD_KIND,
    BLOCKLIST_KIND,
)

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_LAST_FOUR = re.compile(r"[0-9]{4}")
# Kinds registered by `register_party`: the ones with no attributes of their own.
_PLAIN_KINDS = frozenset(
    {PartyKind.PLATFORM_OPERATOR, PartyKind.SUPERVISOR, PartyKind.AUDITOR},
)


# -- the fingerprint key ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardFingerprint:
    """What may be kept of a card number: its keyed fingerprint and its last four digits."""

    fingerprint: str
    last_four: str

    @property
    def masked(self) -> str:
        return f"**** **** **** {self.last_four}"


class FingerprintKey:
    """The secret behind card fingerprints and person-request digests. Its repr hides it."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < _KEY_BYTES_MIN:
            raise FingerprintKeyUnavailable(
                f"the fingerprint key must be at least {_KEY_BYTES_MIN} random bytes"
            )
        self._secret = secret

    def __repr__(self) -> str:
        return "FingerprintKey(<hidden>)"

    @classmethod
    def from_hex(cls, text: str) -> FingerprintKey:
        try:
            secret = bytes.fromhex(text.strip())
        except ValueError:
            raise FingerprintKeyUnavailable(
                f"{CARD_FINGERPRINT_KEY_ENV} must be hex-encoded (e.g. `openssl rand -hex 32`)"
            ) from None
        return cls(secret)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FingerprintKey:
        """The key in `TIANPING_CARD_FINGERPRINT_KEY`; `FingerprintKeyUnavailable` without it."""
        value = (os.environ if environ is None else environ).get(CARD_FINGERPRINT_KEY_ENV, "")
        if not value.strip():
            raise FingerprintKeyUnavailable(
                f"{CARD_FINGERPRINT_KEY_ENV} is not set: card fingerprints and person "
                "registrations need it (at least 32 random bytes, hex-encoded)"
            )
        return cls.from_hex(value)

    def card(self, card_number: str) -> CardFingerprint:
        """The fingerprint and last four digits of a card number; the number is not kept."""
        digits = normalise_card_number(card_number)
        return CardFingerprint(card_fingerprint(self._secret, digits), digits[-4:])

    def bank_account(self, account_number: str) -> CardFingerprint:
        """The fingerprint and last four digits of a bank account number (a merchant's
        settlement account), under the same key as cards; the number is not kept."""
        digits = normalise_bank_account_number(account_number)
        return CardFingerprint(bank_account_fingerprint(self._secret, digits), digits[-4:])

    def phone(self, phone: str) -> bytes:
        """The keyed digest of a normalised phone number, for the phone index."""
        return hmac.new(self._secret, _PHONE_LABEL + phone.encode(), "sha256").digest()

    def request_digest(self, document: Mapping[str, Any]) -> bytes:
        return hmac.new(self._secret, _REQUEST_LABEL + canonical_json(document), "sha256").digest()


def _key(key: FingerprintKey | None) -> FingerprintKey:
    return key if key is not None else FingerprintKey.from_env()


# -- plumbing --------------------------------------------------------------------------------


def _now(ledger: Ledger, clock: Clock | None) -> int:
    return (clock or ledger.clock)()


def _chain(uow: LedgerWrite, kind: str, document: dict[str, Any]) -> tuple[int, int]:
    """Append the event's chain record; returns its (ledger timestamp, seq)."""
    record = uow.append_record(kind, canonical_json(document))
    return record.last_timestamp, record.seq


def _party_id(field: str, value: object) -> PartyId:
    try:
        return parse_party_id(value)
    except ValueError:
        raise InvalidInput(field, f"{field} is not a party id") from None


def _require_party(store: PartyStore, party_id: str, role: str = "party") -> Party:
    row = store.party_row(party_id)
    if row is None:
        raise PartyNotFound(f"no {role} has the id {party_id}")
    return row.party


def _require_person(store: PartyStore, party_id: str) -> Party:
    party = _require_party(store, party_id)
    if party.kind is not PartyKind.PERSON:
        raise PartyKindNotAllowed(
            f"only a person can do this; party {party_id} is a {party.kind.value}"
        )
    return party


# SQLite allows 32,766 bound parameters per statement; a batch of payments names at most 2,000.
BLOCKLIST_QUERY_PARTIES_MAX = 4_096


def _blocklist(store: PartyStore, party_id: str, on: date) -> BlocklistStatus:
    return blocklist_status_of(
        store.blocklist_entries(party_id, BLOCKLIST_ENTRIES_PER_PARTY_MAX), on
    )


# -- registration ----------------------------------------------------------------------------


def _register(
    ledger: Ledger,
    request_id: str,
    party: Party,
    digest: bytes,
    uow: LedgerWrite | None,
    check: Callable[[PartyStore], Party] | None = None,
) -> PartyId:
    """Store a new party made by `request_id`, or return the one that request already made.

    `check` runs only for a new request (a retry is answered from what the first one stored,
    even if the world has changed since) and may return the party adjusted.
    """
    with PartyStore.writing(ledger, uow) as (write, store):
        existing = store.party_row_by_request(request_id)
        if existing is not None:
            if not hmac.compare_digest(existing.request_digest, digest):
                raise RequestConflict(
                    "this request id was already used to register a party with different fields"
                )
            return PartyId(existing.party.party_id)
        if check is not None:
            party = check(store)
        timestamp, seq = _chain(
            write,
            PARTY_KIND,
            {
                "event": "party_registered",
                "party_id": party.party_id,
                "kind": party.kind.value,
                "institution_kind": party.institution_kind.value
                if party.institution_kind
                else None,
                "registration_number": party.registration_number,
                "guardian_party_id": party.guardian_party_id,
                "guardian_consent_reference": party.guardian_consent_reference,
            },
        )
        store.insert_party(replace(party, registered_at=timestamp), request_id, digest, seq)
        return PartyId(party.party_id)


def _plain_digest(document: Mapping[str, Any]) -> bytes:
    # Only non-personal fields go into an unkeyed digest.
    return hashlib.sha256(_REQUEST_LABEL + canonical_json(document)).digest()


def _new_party(now: int, kind: PartyKind, **fields: Any) -> Party:
    values: dict[str, Any] = {
        "institution_kind": None,
        "registration_number": None,
        "account_class": None,
        "minor_until": None,
        "guardian_party_id": None,
        "guardian_consent_reference": None,
    }
    values.update(fields)
    return Party(
        party_id=new_party_id(now),
        kind=kind,
        registered_at=now,
        verifications=(),
        **values,
    )


def register_person(
    ledger: Ledger,
    request_id: str,
    *,
    date_of_birth: date,
    guardian_party_id: str | None = None,
    guardian_consent_reference: str | None = None,
    clock: Clock | None = None,
    key: FingerprintKey | None = None,
    uow: LedgerWrite | None = None,
) -> PartyId:
    """Register a natural person; returns their new pseudonymous party id.

    A person under 14 on the registration date needs a guardian (a registered person aged 14 or
    over) and a reference to the guardian's consent record (D3); a person of 14 or over is
    registered without one. The date of birth is checked against the date (`DateOfBirthInvalid`
    for a future date or one over 130 years back) and is not stored.
    """
    check_reference("request_id", request_id)
    if type(date_of_birth) is not date:
        raise InvalidInput("date_of_birth", "a date of birth is a calendar date")
    guardian: PartyId | None = None
    if guardian_party_id is not None:
        guardian = _party_id("guardian_party_id", guardian_party_id)
    if guardian_consent_reference is not None:
        check_reference("guardian_consent_reference", guardian_consent_reference)
    digest = _key(key).request_digest(
        {
            "operation": "register_person",
            "date_of_birth": date_of_birth.isoformat(),
            "guardian_party_id": guardian,
            "guardian_consent_reference": guardian_consent_reference,
        }
    )
    now = _now(ledger, clock)
    on = event_date(now)

    def check(store: PartyStore) -> Party:
        check_date_of_birth(date_of_birth, on)
        minor_until = fourteenth_birthday(date_of_birth)
        if on >= minor_until:
            if guardian is not None or guardian_consent_reference is not None:
                raise InvalidInput(
                    "guardian_party_id",
                    "only a person under 14 on the registration date is registered with a guardian",
                )
            return _new_party(now, PartyKind.PERSON)
        if guardian is None or guardian_consent_reference is None:
            raise GuardianConsentRequired(
                "a person under 14 is registered only with a guardian's party id and a "
                "reference to the guardian's consent"
            )
        guardian_party = store.party_row(guardian)
        if guardian_party is None:
            raise GuardianInvalid(f"no party has the id {guardian}")
        if guardian_party.party.kind is not PartyKind.PERSON:
            raise GuardianInvalid("a guardian is a person")
        if guardian_party.party.is_minor_on(on):
            raise GuardianInvalid("a guardian is not under 14 themselves")
        return _new_party(
            now,
            PartyKind.PERSON,
            minor_until=minor_until,
            guardian_party_id=guardian,
            guardian_consent_reference=guardian_consent_reference,
        )

    placeholder = _new_party(now, PartyKind.PERSON)
    return _register(ledger, request_id, placeholder, digest, uow, check)


def register_merchant(
    ledger: Ledger,
    request_id: str,
    *,
    registration_number: str,
    clock: Clock | None = None,
    uow: LedgerWrite | None = None,
) -> PartyId:
    """Register a merchant by its business registration number (unified social credit code);
    one merchant per number (`RegistrationNumberTaken`)."""
    check_reference("request_id", request_id)
    check_registration_number(registration_number)
    digest = _plain_digest(
        {"operation": "register_merchant", "registration_number": registration_number}
    )
    now = _now(ledger, clock)
    party = _new_party(now, PartyKind.MERCHANT, registration_number=registration_number)

    def check(store: PartyStore) -> Party:
        if store.merchant_with_registration_number(registration_number) is not None:
            raise RegistrationNumberTaken(
                "a merchant with this business registration number is already registered"
            )
        return party

    return _register(ledger, request_id, party, digest, uow, check)


def register_institution(
    ledger: Ledger,
    request_id: str,
    *,
    institution_kind: InstitutionKind | str,
    clock: Clock | None = None,
    uow: LedgerWrite | None = None,
) -> PartyId:
    """Register a partner bank, fund manager, insurer, credit bureau or clearing house."""
    check_reference("request_id", request_id)
    try:
        kind = InstitutionKind(institution_kind)
    except ValueError:
        raise InvalidInput(
            "institution_kind",
            "an institution kind is one of " + ", ".join(k.value for k in InstitutionKind),
        ) from None
    digest = _plain_digest({"operation": "register_institution", "institution_kind": kind.value})
    party = _new_party(_now(ledger, clock), PartyKind.INSTITUTION, institution_kind=kind)
    return _register(ledger, request_id, party, digest, uow)


def register_party(
    ledger: Ledger,
    request_id: str,
    *,
    kind: PartyKind | str,
    clock: Clock | None = None,
    uow: LedgerWrite | None = None,
) -> PartyId:
    """Register the platform operator, a supervisor or an auditor."""
    check_reference("request_id", request_id)
    party_kind = next((plain for plain in _PLAIN_KINDS if plain.value == kind), None)
    if party_kind is None:
        raise InvalidInput(
            "kind",
            "register_party registers a platform_operator, supervisor or auditor; persons, "
            "merchants and institutions have their own registration",
        )
    digest = _plain_digest({"operation": "register_party", "kind": party_kind.value})
    party = _new_party(_now(ledger, clock), party_kind)
    return _register(ledger, request_id, party, digest, uow)


# -- verifications ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The person's account class after a verification, and whether this one raised it."""

    verification_id: str
    party_id: str
    account_class: AccountClass | None
    upgraded: bool
    replayed: bool


def record_verification(
    ledger: Ledger,
    verification_id: str,
    party_id: str,
    *,
    channel: Channel | str,
    source: str,
    verified_at: int,
    clock: Clock | None = None,
    uow: LedgerWrite | None = None,
) -> VerificationResult:
    """Record a confirmation of a person's identity and recompute their account class (P1).

    `source` names the outside source that confirmed it ("nciic", "bank:icbc", a branch for an
    in-person check); see `parties` for how channels are counted. `verified_at` is when the
    check happened (nanoseconds), not after now. Only passed checks are recorded: a failed
    check is no evidence of identity.
    """
    check_reference("verification_id", verification_id)
    pid = _party_id("party_id", party_id)
    try:
        verification_channel = Channel(channel)
    except ValueError:
        raise InvalidInput(
            "channel", "a channel is one of " + ", ".join(c.value for c in Channel)
        ) from None
    check_source(source)
    now = _now(ledger, clock)
    if type(verified_at) is not int or not 0 < verified_at <= now:
        raise InvalidInput("verified_at", "verified_at is a time in nanoseconds, not after now")
    verification = Verification(verification_id, verification_channel, source, verified_at)
    with PartyStore.writing(ledger, uow) as (write, store):
        existing = store.verification(verification_id)
        if existing is not None:
            if existing != (pid, verification):
                raise RequestConflict("this verification id was already used with different fields")
            party = _require_party(store, pid)
            return VerificationResult(verification_id, pid, party.account_class, False, True)
        party = _require_person(store, pid)
        known = store.verifications(pid, VERIFICATIONS_PER_PARTY_MAX)
        if len(known) >= VERIFICATIONS_PER_PARTY_MAX:
            raise LimitReached(
                f"a person has at most {VERIFICATIONS_PER_PARTY_MAX} recorded verifications"
            )
        new_class = account_class_for([*known, verification])
        timestamp, seq = _chain(
            write,
            VERIFICATION_KIND,
            {
                "event": "identity_verified",
                "verification_id": verification_id,
                "party_id": pid,
                "channel": verification_channel.value,
                "source": source,
                "verified_at": verified_at,
                "account_class": new_class.label if new_class else None,
            },
        )
        store.insert_verification(pid, verification, timestamp, seq)
        upgraded = new_class != party.account_class
        if upgraded:
            store.set_party_class(pid, new_class)
        return VerificationResult(verification_id, pid, new_class, upgraded, False)


# -- payment accounts ------------------------------------------------------------------------


def _check_issuer(store: PartyStore, institution_id: str) -> None:
    issuer = _require_party(store, institution_id, "institution")
    if issuer.kind not in ACCOUNT_ISSUER_KINDS and (
        issuer.institution_kind not in ACCOUNT_ISSUER_INSTITUTION_KINDS
    ):
        raise PartyKindNotAllowed(
            "payment accounts are issued by the platform operator or a partner bank only"
        )


def _check_class_allowed(
    store: PartyStore, person: Party, institution_id: str, wanted: AccountClass
) -> None:
    if person.account_class is None:
        raise AccountClassNotVerified(
            "the person has no identity verification yet; a payment account needs at least one"
        )
    if wanted > person.account_class:
        raise AccountClassNotVerified(
            f"the person's verifications support Class {person.account_class.label}, not "
            f"Class {wanted.label}"
        )
    if wanted is AccountClass.III and store.class_iii_account_at(person.party_id, institution_id):
        raise ClassIIILimitReached(
            "the person already holds a Class III payment account at this institution"
        )


def open_payment_account(
    ledger: Ledger,
    request_id: str,
    party_id: str,
    institution_id: str,
    *,
    account_class: AccountClass | str | None = None,
    guardian_consent_reference: str | None = None,
    clock: Clock | None = None,
    uow: LedgerWrite | None = None,
) -> PaymentAccount:
    """Open a person's payment account at an institution, of the class asked for or, by
    default, the highest class their verifications support.

    Refused: a person without verifications or asking above their class
    (`account_class_not_verified`), a second Class III at the same institution
    (`class_iii_limit_reached`), a blocklisted person within the 3-year bar
    (`new_accounts_barred`), and a person under 14 without a guardian's consent reference for
    this account (`guardian_consent_required`).
    """
    check_reference("request_id", request_id)
    pid = _party_id("party_id", party_id)
    iid = _party_id("institution_id", institution_id)
    wanted: AccountClass | None = None
    if account_class is not None:
        wanted = (
            account_class
            if isinstance(account_class, AccountClass)
            else AccountClass.from_label(account_class)
        )
    if guardian_consent_reference is not None:
        check_reference("guardian_consent_reference", guardian_consent_reference)
    now = _now(ledger, clock)
    on = event_date(now)
    with PartyStore.writing(ledger, uow) as (write, store):
        replayed = store.account_by_request(request_id)
        if replayed is not None:
            account, consent, requested = replayed
            same = (
                account.party_id == pid
                and account.institution_id == iid
                and consent == guardian_consent_reference
                and requested == wanted
            )
            if not same:
                raise RequestConflict(
                    "this request id was already used to open a different account"
                )
            return account
        person = _require_person(store, pid)
        _check_issuer(store, iid)
        status = _blocklist(store, pid, on)
        if status.new_accounts_barred:
            raise NewAccountsBarred(
                f"the person may open no new payment account until after {status.barred_through}"
            )
        target = wanted or person.account_class
        if target is None:
            target = AccountClass.I  # refused just below, with the reason
        _check_class_allowed(store, person, iid, target)
        if person.is_minor_on(on):
            if guardian_consent_reference is None:
                raise GuardianConsentRequired(
                    "a payment account for a person under 14 needs a reference to their "
                    "guardian's consent"
                )
        elif guardian_consent_reference is not None:
            raise InvalidInput(
                "guardian_consent_reference",
                "a guardian's consent is given only for a person under 14",
            )
        if store.count_accounts_of(pid) >= PAYMENT_ACCOUNTS_PER_PARTY_MAX:
            raise LimitReached(
                f"a person holds at most {PAYMENT_ACCOUNTS_PER_PARTY_MAX} payment accounts"
            )
        account_id = new_payment_account_id(now)
        timestamp, seq = _chain(
            write,
            ACCOUNT_KIND,
            {
                "event": "payment_account_opened",
                "account_id": account_id,
                "party_id": pid,
                "institution_id": iid,
                "account_class": target.label,
                "opened_on": on.isoformat(),
                "guardian_consent_reference": guardian_consent_reference,
            },
        )
        account = PaymentAccount(account_id, pid, iid, target, on, timestamp)
        store.insert_account(account, request_id, wanted, guardian_consent_reference, seq)
        return account


def upgrade_payment_account(
    ledger: Ledger,
    account_id: str,
    account_class: AccountClass | str,
    *,
    clock: Clock | None = None,
    uow: LedgerWrite | None = None,
) -> PaymentAccount:
    """Raise an account's class to one the holder's verifications support.

    Asking for the class the account already has is a no-op (a retry); a lower class is
    refused, since the law has no downgrade and a lower class would only hide a cap. A Class III
    upgrade respects one Class III per institution, and a suspended party is refused.
    """
    aid = parse_payment_account_id(account_id)
    wanted = (
        account_class
        if isinstance(account_class, AccountClass)
        else AccountClass.from_label(account_class)
    )
    on = event_date(_now(ledger, clock))
    with PartyStore.writing(ledger, uow) as (write, store):
        account = store.account(aid)
        if account is None:
            raise PaymentAccountNotFound(f"no payment account has the id {aid}")
        if wanted == account.account_class:
            return account
        if wanted < account.account_class:
            raise InvalidInput("account_class", "an account's class is raised, never lowered")
        person = _require_person(store, account.party_id)
        status = _blocklist(store, account.party_id, on)
        if status.payment_services_suspended:
            raise PaymentServicesSuspended(
                f"payment services are suspended until after {status.suspended_through}"
            )
        _check_class_allowed(store, person, account.institution_id, wanted)
        _chain(
            write,
            ACCOUNT_CLASS_KIND,
            {
                "event": "payment_account_upgraded",
                "account_id": aid,
                "from": account.account_class.label,
                "to": wanted.label,
            },
        )
        store.set_account_class(aid, wanted)
        return replace(account, account_class=wanted)


# -- bank cards ------------------------------------------------------------------------------


def bind_bank_card(
    ledger: Ledger,
    binding_id: str,
    party_id: str,
    *,
    card_holder_name_matches: bool,
    card_fingerprint: str,
    card_last_four: str,
    clock: Clock | None = None,
    uow: LedgerWrite | None = None,
) -> CardBinding:
    """Bind a bank card to a person, only if the card is held in the person's own name (P4).

    The caller compares the card holder's name with the person's (both in the vault) and
    passes the result, and passes the card's `FingerprintKey.card` fingerprint and last four
    digits: the number itself never reaches this service. Refused: a holder who is not the
    person (`card_holder_mismatch`), a card already bound (`card_already_bound`), a party whose
    payment services are suspended (`payment_services_suspended`).
    """
    check_reference("binding_id", binding_id)
    pid = _party_id("party_id", party_id)
    if type(card_holder_name_matches) is not bool:
        raise InvalidInput("card_holder_name_matches", "card_holder_name_matches is true or false")
    if not isinstance(card_fingerprint, str) or not _FINGERPRINT.fullmatch(card_fingerprint):
        raise InvalidInput("card_fingerprint", "a card fingerprint is 64 lower-case hex characters")
    if not isinstance(card_last_four, str) or not _LAST_FOUR.fullmatch(card_last_four):
        raise InvalidInput("card_last_four", "the last four digits of a card are four digits")
    now = _now(ledger, clock)
    on = event_date(now)
    with PartyStore.writing(ledger, uow) as (write, store):
        existing = store.binding(binding_id)
        if existing is not None:
            if (existing.party_id, existing.fingerprint, existing.last_four) != (
                pid,
                card_fingerprint,
                card_last_four,
            ):
                raise RequestConflict("this binding id was already used for a different card")
            return existing
        _require_person(store, pid)
        if not card_holder_name_matches:
            raise CardHolderMismatch(
                "a bank card is bound only when it is held in the person's own name"
            )
        status = _blocklist(store, pid, on)
        if status.payment_services_suspended:
            raise PaymentServicesSuspended(
                f"payment services are suspended until after {status.suspended_through}"
            )
        if store.binding_by_fingerprint(card_fingerprint) is not None:
            raise CardAlreadyBound("this bank card is already bound")
        if store.count_bindings_of(pid) >= CARDS_PER_PARTY_MAX:
            raise LimitReached(f"a person binds at most {CARDS_PER_PARTY_MAX} bank cards")
        # Neither the fingerprint nor the last four digits go into the chain: the chain is
        # never erased, and the binding's row can be.
        timestamp, seq = _chain(
            write,
            CARD_KIND,
            {"event": "card_bound", "binding_id": binding_id, "party_id": pid},
        )
        binding = CardBinding(binding_id, pid, card_fingerprint, card_last_four, timestamp)
        store.insert_binding(binding, seq)
        return binding


# -- the blocklist ---------------------------------------------------------------------------


def add_to_blocklist(
    ledger: Ledger,
    party_id: str,
    *,
    listed_on: date,
    reason_code: BlocklistReason | str,
    case_reference: str,
    clock: Clock | None = None,
    uow: LedgerWrite | None = None,
) -> BlocklistEntry:
    """List a person or merchant confirmed by the police as renting, lending, selling or buying
    accounts (P12), from `listed_on` (the confirmation date, not after today).

    Idempotent by (party, case reference): the same case again with the same date and reason is
    a retry; with another date or reason it is a `request_conflict`.
    """
    pid = _party_id("party_id", party_id)
    check_reference("case_reference", case_reference)
    try:
        reason = BlocklistReason(reason_code)
    except ValueError:
        raise InvalidInput(
            "reason_code",
            "a reason code is one of " + ", ".join(r.value for r in BlocklistReason),
        ) from None
    if type(listed_on) is not date:
        raise InvalidInput("listed_on", "listed_on is a calendar date")
    on = event_date(_now(ledger, clock))
    if listed_on > on:
        raise InvalidInput("listed_on", "a listing's date is not after today")
    entry = BlocklistEntry(pid, case_reference, listed_on, reason)
    with PartyStore.writing(ledger, uow) as (write, store):
        party = _require_party(store, pid)
        if party.kind not in (PartyKind.PERSON, PartyKind.MERCHANT):
            raise PartyKindNotAllowed("only persons and merchants are blocklisted")
        entries = store.blocklist_entries(pid, BLOCKLIST_ENTRIES_PER_PARTY_MAX)
        for known in entries:
            if known.case_reference == case_reference:
                if known != entry:
                    raise RequestConflict(
                        "this case is already listed for the party with different fields"
                    )
                return known
        if len(entries) >= BLOCKLIST_ENTRIES_PER_PARTY_MAX:
            raise LimitReached(
                f"a party has at most {BLOCKLIST_ENTRIES_PER_PARTY_MAX} blocklist listings"
            )
        timestamp, seq = _chain(
            write,
            BLOCKLIST_KIND,
            {
                "event": "blocklisted",
                "party_id": pid,
                "case_reference": case_reference,
                "listed_on": listed_on.isoformat(),
                "reason": reason.value,
            },
        )
        store.insert_blocklist_entry(entry, timestamp, seq)
        return entry


def blocklist_status(
    ledger: Ledger, party_id: str, on: date, *, uow: LedgerWrite | None = None
) -> BlocklistStatus:
    """Whether the party's payment services are suspended (5 years) and new accounts barred
    (3 years) on `on`, from its listings (P12)."""
    pid = _party_id("party_id", party_id)
    if type(on) is not date:
        raise InvalidInput("on", "on is a calendar date")
    with PartyStore.reading(ledger, uow) as store:
        _require_party(store, pid)
        return _blocklist(store, pid, on)


def blocklist_statuses(
    ledger: Ledger, party_ids: Sequence[str], on: date, *, uow: LedgerWrite | None = None
) -> dict[str, BlocklistStatus]:
    """`blocklist_status` of many parties in two statements (a batch of payments asks for
    every payer and payee at once); an unknown party is `PartyNotFound`, as one by one."""
    ids = sorted({_party_id("party_id", party_id) for party_id in party_ids})
    if len(ids) > BLOCKLIST_QUERY_PARTIES_MAX:
        raise InvalidInput(
            "party_ids", f"at most {BLOCKLIST_QUERY_PARTIES_MAX} parties in one query"
        )
    if type(on) is not date:
        raise InvalidInput("on", "on is a calendar date")
    with PartyStore.reading(ledger, uow) as store:
        missing = set(ids) - store.known_party_ids(ids)
        if missing:
            raise PartyNotFound(f"no party has the id {min(missing)}")
        entries = store.blocklist_entries_of(ids)
    # Most parties were never listed; they share one (immutable) standing instead of one
    # object each, since a batch of payments asks for a thousand parties at a time.
    never_listed = blocklist_status_of((), on)
    return {
        party_id: blocklist_status_of(listings[:BLOCKLIST_ENTRIES_PER_PARTY_MAX], on)
        if (listings := entries.get(party_id))
        else never_listed
        for party_id in ids
    }


# -- queries ---------------------------------------------------------------------------------


def get_party(ledger: Ledger, party_id: str, *, uow: LedgerWrite | None = None) -> Party:
    """A party with its verifications; no personal data (that is in the vault)."""
    pid = _party_id("party_id", party_id)
    with PartyStore.reading(ledger, uow) as store:
        party = store.party(pid, VERIFICATIONS_PER_PARTY_MAX)
    if party is None:
        raise PartyNotFound(f"no party has the id {pid}")
    return party


def list_payment_accounts(
    ledger: Ledger, party_id: str, *, uow: LedgerWrite | None = None
) -> list[PaymentAccount]:
    """A person's payment accounts, oldest first."""
    pid = _party_id("party_id", party_id)
    with PartyStore.reading(ledger, uow) as store:
        _require_party(store, pid)
        return store.accounts_of(pid, PAYMENT_ACCOUNTS_PER_PARTY_MAX)


def list_card_bindings(
    ledger: Ledger, party_id: str, *, uow: LedgerWrite | None = None
) -> list[CardBinding]:
    """A person's bound cards (fingerprints and last four digits), oldest first."""
    pid = _party_id("party_id", party_id)
    with PartyStore.reading(ledger, uow) as store:
        _require_party(store, pid)
        return store.bindings_of(pid, CARDS_PER_PARTY_MAX)
