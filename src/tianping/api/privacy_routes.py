"""Consent, personal data and data-subject rights over HTTP, under /v1/identity.

Every route that addresses a person (`/parties/{party_id}/...`) admits the operator for anyone
and the person for themselves: it declares `require(<operator scope>, own=<self scope>,
owner=PARTY_IN_PATH)`, so the one authorisation dependency decides, and a customer who names
someone else's party id is refused before the handler runs. Supervisors reach a person's
identity record only through `case-access`, which names a case and a reason and is written to
the data-access log like every read of personal data.

Personal data travels only in request and response bodies, never in paths or query strings,
because those end up in access logs and proxies' logs. Handlers call one use case of
`tianping.identity` each; refusals are the identity context's errors with stable codes, turned
into problem documents in `problems.py`.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic import Field as PydanticField

from tianping.api.identity_routes import (
    IdentityDependency,
    PartyIdPath,
    PartyIdText,
    Reference,
)
from tianping.api.identity_routes import router as identity_router
from tianping.api.problems import ApiProblem
from tianping.api.security import PARTY_IN_PATH, Access, require
from tianping.identity import onboarding, party_service
from tianping.identity.parties import AccountClass
from tianping.identity.privacy_service import DATA_SUBJECT_ACCESSOR, PrivacyService

__all__ = ["router"]

# The same prefix and documented problem responses as the identity routes it sits beside.
router = APIRouter(
    prefix=identity_router.prefix, tags=["privacy"], responses=identity_router.responses
)

# The person themselves, or the operator for anyone.
PersonOrOperator = Annotated[
    Access, Depends(require("privacy:admin", own="privacy:self", owner=PARTY_IN_PATH))
]
AccountHolderOrOperator = Annotated[
    Access,
    Depends(require("identity:admin:write", own="identity:accounts:own", owner=PARTY_IN_PATH)),
]
AccountHolderOrOperatorReading = Annotated[
    Access,
    Depends(require("identity:admin:read", own="identity:accounts:own", owner=PARTY_IN_PATH)),
]
Operator = Annotated[Access, Depends(require("privacy:admin"))]
CaseSupervisor = Annotated[Access, Depends(require("privacy:case"))]
_OPERATOR: Final = [Depends(require("privacy:admin"))]
_SIGNED_IN: Final = [Depends(require("identity:read"))]

# Bounds on what a request may carry: the vault knows 8 fields, a consent text names at most 9
# purposes, and a body of 20,000 characters is far beyond any real consent text.
_FIELDS_MAX: Final = 8
_PURPOSES_MAX: Final = 9
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=32)]
FieldValue = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=96)]
TextId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Version = Annotated[int, PydanticField(ge=1, le=1_000_000)]


def get_privacy(identity: IdentityDependency) -> PrivacyService:
    """The consent and vault service, or `service_unavailable` without a master key."""
    if identity.privacy is None:
        raise ApiProblem(
            "service_unavailable", "the personal-data vault is not configured on this server"
        )
    return identity.privacy


PrivacyDependency = Annotated[PrivacyService, Depends(get_privacy)]


def _accessor(access: Access) -> str:
    """Who the data-access log names for a read: the person, or the role and party acting."""
    if not access.unrestricted:
        return DATA_SUBJECT_ACCESSOR
    return f"{access.principal.role}:{access.principal.subject}"


def _plain(value: Any) -> dict[str, Any]:
    """A dataclass instance as JSON-ready data (enums become their string values)."""
    assert dataclasses.is_dataclass(value) and not isinstance(value, type)  # noqa: S101
    return {
        name: _enum_text(item) if isinstance(item, Enum) else item
        for name, item in dataclasses.asdict(value).items()
    }


def _enum_text(item: Enum) -> str:
    # Account classes are integers ordered by what they allow; clients see their names (I, II).
    return item.label if isinstance(item, AccountClass) else str(item)


# -- models --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConsentTextRequest(_Strict):
    text_id: TextId
    version: Version
    purposes: Annotated[list[FieldName], PydanticField(min_length=1, max_length=_PURPOSES_MAX)]
    fields: Annotated[list[FieldName], PydanticField(max_length=_FIELDS_MAX)]
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    recipient: PartyIdText | None = None


class ConsentTextOut(BaseModel):
    text_id: str
    version: int
    purposes: list[str]
    fields: list[str]
    language: str
    recipient: str | None
    text_hash: str
    separate: bool
    body: str | None = None


class GrantRequest(_Strict):
    request_id: Reference
    text_id: TextId
    version: Version


class WithdrawRequest(_Strict):
    request_id: Reference


class ConsentEventOut(BaseModel):
    request_id: str
    party_id: str
    kind: str
    text_id: str
    version: int | None
    at: int


class PersonalDataPut(_Strict):
    request_id: Reference
    fields: Annotated[dict[FieldName, FieldValue], PydanticField(min_length=1, max_length=16)]


class PersonalDataCorrection(_Strict):
    request_id: Reference
    changes: Annotated[
        dict[FieldName, FieldValue | None], PydanticField(min_length=1, max_length=16)
    ]


class VaultWriteOut(BaseModel):
    party_id: str
    request_id: str
    fields: list[str]
    removed: list[str]
    key_version: int
    replayed: bool


class PersonalDataRead(_Strict):
    fields: Annotated[list[FieldName], PydanticField(min_length=1, max_length=_FIELDS_MAX)]
    purpose: FieldName
    reason: Reason
    recipient: PartyIdText | None = None


class CaseAccessRequest(_Strict):
    case_reference: Reference
    reason: Reason
    fields: Annotated[list[FieldName], PydanticField(min_length=1, max_length=_FIELDS_MAX)]


class PersonalDataOut(BaseModel):
    party_id: str
    purpose: str
    values: dict[str, str]


class ErasureRequest(_Strict):
    request_id: Reference


class ExplanationRequest(_Strict):
    request_id: Reference
    decision_reference: Reference


class ReviewRequest(_Strict):
    request_id: Reference
    decision_reference: Reference
    statement: Annotated[str, StringConstraints(min_length=1, max_length=4_000)]


class AnswerRequest(_Strict):
    answer: Annotated[str, StringConstraints(min_length=1, max_length=8_000)]


class SubjectRequestOut(BaseModel):
    request_id: str
    party_id: str
    kind: str
    decision_reference: str
    state: str
    received_at: int
    respond_by: str
    has_statement: bool
    has_answer: bool
    updated_at: int


class OpenAccountRequest(_Strict):
    request_id: Reference
    institution_id: PartyIdText
    account_class: Annotated[str, StringConstraints(pattern=r"^(I|II|III)$")] | None = None
    guardian_consent_reference: Reference | None = None


class BindCardRequest(_Strict):
    binding_id: Reference
    card_number: Annotated[str, StringConstraints(min_length=12, max_length=32)]
    holder_name: Annotated[str, StringConstraints(min_length=1, max_length=128)]


def _consent_text_out(text: Any, body: str | None = None) -> ConsentTextOut:
    return ConsentTextOut(
        text_id=text.text_id,
        version=text.version,
        purposes=[str(purpose) for purpose in text.purposes],
        fields=[str(field) for field in text.fields],
        language=text.language,
        recipient=text.recipient,
        text_hash=text.text_hash.hex(),
        separate=text.is_separate,
        body=body,
    )


def _event_out(event: Any) -> ConsentEventOut:
    return ConsentEventOut(
        request_id=event.request_id,
        party_id=event.party_id,
        kind=str(event.kind),
        text_id=event.text_id,
        version=event.version,
        at=event.at,
    )


def _vault_write_out(write: Any) -> VaultWriteOut:
    return VaultWriteOut(**_plain(write))


def _subject_request_out(request: Any) -> SubjectRequestOut:
    return SubjectRequestOut(**_plain(request))


# -- consent texts -------------------------------------------------------------------------


@router.post("/consent-texts", status_code=201, dependencies=_OPERATOR)
def publish_consent_text(body: ConsentTextRequest, privacy: PrivacyDependency) -> ConsentTextOut:
    """Publish one version of a consent text (publishing the same text again is a no-op)."""
    text = privacy.publish_consent_text(
        body.text_id,
        body.version,
        body.purposes,
        body.fields,
        body.language,
        body.body,
        recipient=body.recipient,
    )
    return _consent_text_out(text)


@router.get("/consent-texts/{text_id}/versions/{version}", dependencies=_SIGNED_IN)
def get_consent_text(
    text_id: Annotated[str, TextId], version: Version, privacy: PrivacyDependency
) -> ConsentTextOut:
    """One version of a consent text with its body: what a person reads before granting."""
    text, body = privacy.consent_text(text_id, version)
    return _consent_text_out(text, body)


# -- a person's consents -------------------------------------------------------------------


@router.get("/parties/{party_id}/consents")
def list_consents(
    party_id: PartyIdPath, access: PersonOrOperator, privacy: PrivacyDependency
) -> list[dict[str, Any]]:
    """Every text the person granted, with its grant, withdrawal and whether it is live."""
    return [_plain(state) for state in privacy.consents(party_id)]


@router.post("/parties/{party_id}/consents", status_code=201)
def grant_consent(
    party_id: PartyIdPath, body: GrantRequest, access: PersonOrOperator, privacy: PrivacyDependency
) -> ConsentEventOut:
    """Grant consent to one version of a text, live from now (idempotent by `request_id`)."""
    event = privacy.grant_consent(party_id, body.text_id, body.version, body.request_id)
    return _event_out(event)


@router.post("/parties/{party_id}/consents/{text_id}/withdrawal")
def withdraw_consent(
    party_id: PartyIdPath,
    text_id: Annotated[str, TextId],
    body: WithdrawRequest,
    access: PersonOrOperator,
    privacy: PrivacyDependency,
) -> ConsentEventOut:
    """Withdraw consent to a text (all its versions) from now: one call, as easy as the grant."""
    return _event_out(privacy.withdraw_consent(party_id, text_id, body.request_id))


@router.get("/parties/{party_id}/services/{service}")
def service_availability(
    party_id: PartyIdPath,
    service: Annotated[str, StringConstraints(min_length=1, max_length=64)],
    access: PersonOrOperator,
    privacy: PrivacyDependency,
) -> dict[str, Any]:
    """Whether the person's consents let a service run now; refused optional consents never
    block a service that does not need them (D1)."""
    return _plain(privacy.service_available(party_id, service))


# -- personal data -------------------------------------------------------------------------


@router.put("/parties/{party_id}/personal-data")
def put_personal_data(
    party_id: PartyIdPath,
    body: PersonalDataPut,
    access: PersonOrOperator,
    privacy: PrivacyDependency,
) -> VaultWriteOut:
    """Store personal fields in the vault, encrypted under the person's own data key.

    Prohibited categories (religion, genes, fingerprints, blood type, medical history: C1) are
    refused with `personal_field_prohibited`.
    """
    return _vault_write_out(privacy.put_personal_data(party_id, body.fields, body.request_id))


@router.patch("/parties/{party_id}/personal-data")
def correct_personal_data(
    party_id: PartyIdPath,
    body: PersonalDataCorrection,
    access: PersonOrOperator,
    privacy: PrivacyDependency,
) -> VaultWriteOut:
    """Correct personal fields (PIPL Art. 46); a null value deletes that field."""
    return _vault_write_out(privacy.correct_personal_data(party_id, body.changes, body.request_id))


@router.post("/parties/{party_id}/personal-data/read")
def read_personal_data(
    party_id: PartyIdPath, body: PersonalDataRead, access: Operator, privacy: PrivacyDependency
) -> PersonalDataOut:
    """Read fields for a named purpose and reason (the operator). The vault checks live consent
    or another lawful basis and logs the read, allowed or refused."""
    values = privacy.read_personal_data(
        party_id,
        body.fields,
        body.purpose,
        _accessor(access),
        body.reason,
        recipient=body.recipient,
    )
    return PersonalDataOut(party_id=party_id, purpose=body.purpose, values=values)


@router.post("/parties/{party_id}/case-access")
def supervisory_case_access(
    party_id: PartyIdPath,
    body: CaseAccessRequest,
    access: CaseSupervisor,
    privacy: PrivacyDependency,
) -> PersonalDataOut:
    """A supervisor reads a person's identity record for a named case, with a reason.

    The read is under the AML legal duty (only the identity fields that duty covers), and the
    data-access log names the supervisor, the case and the reason.
    """
    values = privacy.read_personal_data(
        party_id,
        body.fields,
        "aml_compliance",
        _accessor(access),
        f"case {body.case_reference}: {body.reason}",
    )
    return PersonalDataOut(party_id=party_id, purpose="aml_compliance", values=values)


@router.get("/parties/{party_id}/access-log")
def access_log(
    party_id: PartyIdPath,
    access: PersonOrOperator,
    privacy: PrivacyDependency,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> list[dict[str, Any]]:
    """Who read the person's data, for what and why: the latest entries, oldest first."""
    return [_plain(entry) for entry in privacy.access_log(party_id, limit)]


@router.get("/parties/{party_id}/export")
def export_personal_data(
    party_id: PartyIdPath, access: PersonOrOperator, privacy: PrivacyDependency
) -> dict[str, Any]:
    """Everything held about the person, as JSON (PIPL Arts. 45 and 47)."""
    return privacy.export_personal_data(
        party_id, accessor=_accessor(access), reason="data export requested over the API"
    )


@router.post("/parties/{party_id}/erasure")
def erase_person(
    party_id: PartyIdPath,
    body: ErasureRequest,
    access: PersonOrOperator,
    privacy: PrivacyDependency,
) -> dict[str, Any]:
    """Erase the person's personal data by destroying their data key; the receipt says what
    was destroyed, what the AML duty keeps, under which rule and until when."""
    receipt = privacy.erase_person(party_id, body.request_id)
    return {**receipt.document, "replayed": receipt.replayed}


# -- explanations and human review ---------------------------------------------------------


@router.post("/parties/{party_id}/explanation-requests", status_code=201)
def request_explanation(
    party_id: PartyIdPath,
    body: ExplanationRequest,
    access: PersonOrOperator,
    privacy: PrivacyDependency,
) -> SubjectRequestOut:
    """Ask for an explanation of an automated decision (D4, G5)."""
    return _subject_request_out(
        privacy.request_explanation(party_id, body.decision_reference, body.request_id)
    )


@router.post("/parties/{party_id}/review-requests", status_code=201)
def request_human_review(
    party_id: PartyIdPath,
    body: ReviewRequest,
    access: PersonOrOperator,
    privacy: PrivacyDependency,
) -> SubjectRequestOut:
    """Ask for a human review of an automated decision, with the person's own view (G5)."""
    return _subject_request_out(
        privacy.request_human_review(
            party_id, body.decision_reference, body.statement, body.request_id
        )
    )


@router.get("/parties/{party_id}/subject-requests")
def list_subject_requests(
    party_id: PartyIdPath, access: PersonOrOperator, privacy: PrivacyDependency
) -> list[SubjectRequestOut]:
    """The person's explanation and review requests with their state and answer deadline."""
    return [_subject_request_out(item) for item in privacy.subject_requests(party_id)]


@router.post("/subject-requests/{request_id}/answer")
def answer_subject_request(
    request_id: Annotated[str, StringConstraints(min_length=1, max_length=64)],
    body: AnswerRequest,
    access: Operator,
    privacy: PrivacyDependency,
) -> SubjectRequestOut:
    """Answer a request (the explanation, or the review's outcome); it is then final."""
    return _subject_request_out(privacy.answer_request(request_id, _accessor(access), body.answer))


# -- payment accounts and cards ------------------------------------------------------------


@router.post("/parties/{party_id}/payment-accounts", status_code=201)
def open_payment_account(
    party_id: PartyIdPath,
    body: OpenAccountRequest,
    access: AccountHolderOrOperator,
    identity: IdentityDependency,
) -> dict[str, Any]:
    """Open a payment account at an institution, of the class asked for or the highest the
    person's verifications support (P1); one Class III per institution (P12)."""
    account = party_service.open_payment_account(
        identity.auth.ledger,
        body.request_id,
        party_id,
        body.institution_id,
        account_class=body.account_class,
        guardian_consent_reference=body.guardian_consent_reference,
        clock=identity.auth.clock,
    )
    return _plain(account)


@router.get("/parties/{party_id}/payment-accounts")
def list_payment_accounts(
    party_id: PartyIdPath, access: AccountHolderOrOperatorReading, identity: IdentityDependency
) -> list[dict[str, Any]]:
    """The person's payment accounts, oldest first."""
    return [
        _plain(account)
        for account in party_service.list_payment_accounts(identity.auth.ledger, party_id)
    ]


@router.post("/parties/{party_id}/cards", status_code=201)
def bind_card(
    party_id: PartyIdPath,
    body: BindCardRequest,
    access: AccountHolderOrOperator,
    identity: IdentityDependency,
    privacy: PrivacyDependency,
) -> dict[str, Any]:
    """Bind a bank card held in the person's own name (P4). Only the card's keyed fingerprint
    and last four digits are kept; the number is not stored."""
    binding = onboarding.bind_card_in_own_name(
        privacy,
        identity.fingerprint_key,
        body.binding_id,
        party_id,
        body.card_number,
        body.holder_name,
    )
    return _plain(binding)


@router.get("/parties/{party_id}/cards")
def list_cards(
    party_id: PartyIdPath, access: AccountHolderOrOperatorReading, identity: IdentityDependency
) -> list[dict[str, Any]]:
    """The person's bound cards: fingerprints and last four digits only."""
    return [
        _plain(binding)
        for binding in party_service.list_card_bindings(identity.auth.ledger, party_id)
    ]
