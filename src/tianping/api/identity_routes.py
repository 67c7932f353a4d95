"""The identity context's HTTP routes, under /v1/identity.

Registration and credentials (the operator), login with rotating refresh tokens, TOTP and
step-up, logout, and the caller's own principal. Each handler calls one use case of
`tianping.identity` and renders the outcome; refusals travel as the identity context's errors
(each with a stable `code`) and become problem documents in `problems.py`.

The identity context is optional: when the process has no identity keys configured (see
`tianping.bootstrap.IDENTITY_KEY_ENV_VARS`), every route here answers `service_unavailable`.

Login and refresh are public (they are how a caller gets credentials) and listed in
`PUBLIC_PATHS`; they are rate limited by the authentication service, per identifier and per
client address, and a refusal answers `rate_limited` with `Retry-After`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tianping.api.problems import ApiProblem
from tianping.api.schemas import PROBLEM_RESPONSES
from tianping.api.security import Principal, authenticate, require
from tianping.bootstrap import IdentityServices, Services
from tianping.identity import party_service
from tianping.identity.auth_service import AuthSession
from tianping.identity.parties import BlocklistReason, BlocklistStatus, Channel, event_date
from tianping.identity.tokens import ROLES

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/identity",
    tags=["identity"],
    responses=PROBLEM_RESPONSES,
)

_ADMIN: Final = [Depends(require("identity:admin:write"))]
_ADMIN_READ: Final = [Depends(require("identity:admin:read"))]
_SELF_READ: Final = [Depends(require("identity:read"))]
_SELF_WRITE: Final = [Depends(require("identity:self:write"))]
# The principal a route acts for; its scope is checked by the route's declared requirement,
# which authenticates through the same cached dependency.
Caller = Annotated[Principal, Depends(authenticate)]

_PARTY_ID_PATTERN: Final = r"^pty_[0-7][0-9a-hjkmnp-tv-z]{25}$"
PartyIdText = Annotated[str, StringConstraints(pattern=_PARTY_ID_PATTERN, max_length=30)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=64)]
PartyIdPath = Annotated[str, Path(pattern=_PARTY_ID_PATTERN, max_length=30)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=128)]
TotpCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,8}$", max_length=8)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]
RefreshTokenText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Role = Literal["customer", "merchant", "operator", "partner", "supervisor", "auditor"]
assert set(get_args(Role)) == set(ROLES)  # noqa: S101 - the literal must follow the roles


def get_identity(request: Request) -> IdentityServices:
    """The identity services, or `service_unavailable` when the process has none configured."""
    services: Services | None = request.app.state.services
    identity = services.identity if services is not None else None
    if identity is None:
        raise ApiProblem(
            "service_unavailable", "the identity service is not configured on this server"
        )
    return identity


IdentityDependency = Annotated[IdentityServices, Depends(get_identity)]


def _session_principal(principal: Principal) -> str:
    """The session id of a principal that authenticated with an identity access token."""
    if principal.session_id is None:
        raise ApiProblem("forbidden", "this operation needs a party's session (an access token)")
    return principal.session_id


# -- models --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterPersonRequest(_Strict):
    request_id: Reference
    date_of_birth: dt.date
    guardian_party_id: PartyIdText | None = None
    guardian_consent_reference: Reference | None = None


class PartyCreated(BaseModel):
    party_id: str


class SetPasswordRequest(_Strict):
    password: Secret
    role: Role | None = None
    login_name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


class VerificationRequest(_Strict):
    verification_id: Reference
    channel: Channel
    source: Reference
    verified_at: Annotated[int, Field(ge=0, le=2**63 - 1)]


class VerificationOut(BaseModel):
    verification_id: str
    party_id: str
    account_class: str | None
    upgraded: bool
    replayed: bool


class BlocklistRequest(_Strict):
    listed_on: dt.date
    reason_code: BlocklistReason
    case_reference: Reference


class BlocklistStatusOut(BaseModel):
    on: dt.date
    listed: bool
    latest_listed_on: dt.date | None
    payment_services_suspended: bool
    suspended_through: dt.date | None
    new_accounts_barred: bool
    barred_through: dt.date | None


class TotpEnrolment(BaseModel):
    provisioning_uri: str


class TotpConfirmRequest(_Strict):
    code: TotpCode


class LoginRequest(_Strict):
    identifier: Identifier
    password: Secret
    totp_code: TotpCode | None = None


class StepUpRequest(_Strict):
    totp_code: TotpCode


class RefreshRequest(_Strict):
    refresh_token: RefreshTokenText


class SessionTokens(BaseModel):
    """A session's tokens. Times are nanoseconds since the epoch."""

    session_id: str
    subject: str
    role: str
    scopes: list[str]
    factors: list[str]
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a token kind, not a secret
    access_token: str
    access_expires_at: int
    refresh_token: str | None
    refresh_expires_at: int | None


class PrincipalOut(BaseModel):
    subject: str
    role: str
    scopes: list[str]
    factors: list[str]
    session_id: str | None


def _tokens(session: AuthSession) -> SessionTokens:
    return SessionTokens(
        session_id=session.session_id,
        subject=session.subject,
        role=session.role,
        scopes=sorted(session.scopes),
        factors=list(session.factors),
        access_token=session.access_token,
        access_expires_at=session.access_expires_at,
        refresh_token=session.refresh_token,
        refresh_expires_at=session.refresh_expires_at,
    )


# -- registration and credentials (the operator) --------------------------------------------


@router.post("/persons", status_code=201, dependencies=_ADMIN)
def register_person(body: RegisterPersonRequest, identity: IdentityDependency) -> PartyCreated:
    """Register a natural person; a person under 14 needs a guardian and their consent."""
    auth = identity.auth
    party_id = party_service.register_person(
        auth.ledger,
        body.request_id,
        date_of_birth=body.date_of_birth,
        guardian_party_id=body.guardian_party_id,
        guardian_consent_reference=body.guardian_consent_reference,
        clock=auth.clock,
        key=identity.fingerprint_key,
    )
    return PartyCreated(party_id=str(party_id))


@router.put("/parties/{party_id}/password", status_code=204, dependencies=_ADMIN)
def set_password(
    party_id: PartyIdPath,
    body: SetPasswordRequest,
    identity: IdentityDependency,
) -> Response:
    """Create or change a party's password, role and login name."""
    identity.auth.set_password(party_id, body.password, role=body.role, login_name=body.login_name)
    return Response(status_code=204)


@router.post("/parties/{party_id}/verifications", dependencies=_ADMIN)
def record_verification(
    party_id: PartyIdPath, body: VerificationRequest, identity: IdentityDependency
) -> VerificationOut:
    """Record a passed identity check and recompute the person's account class."""
    auth = identity.auth
    result = party_service.record_verification(
        auth.ledger,
        body.verification_id,
        party_id,
        channel=body.channel,
        source=body.source,
        verified_at=body.verified_at,
        clock=auth.clock,
    )
    return VerificationOut(
        verification_id=result.verification_id,
        party_id=str(result.party_id),
        account_class=None if result.account_class is None else result.account_class.label,
        upgraded=result.upgraded,
        replayed=result.replayed,
    )


def _status_out(status: BlocklistStatus) -> BlocklistStatusOut:
    return BlocklistStatusOut(
        on=status.on,
        listed=status.listed,
        latest_listed_on=status.latest_listed_on,
        payment_services_suspended=status.payment_services_suspended,
        suspended_through=status.suspended_through,
        new_accounts_barred=status.new_accounts_barred,
        barred_through=status.barred_through,
    )


@router.post("/parties/{party_id}/blocklist", dependencies=_ADMIN)
def add_to_blocklist(
    party_id: PartyIdPath, body: BlocklistRequest, identity: IdentityDependency
) -> BlocklistStatusOut:
    """List a party the police confirmed as trading accounts; answers its standing today."""
    auth = identity.auth
    party_service.add_to_blocklist(
        auth.ledger,
        party_id,
        listed_on=body.listed_on,
        reason_code=body.reason_code,
        case_reference=body.case_reference,
        clock=auth.clock,
    )
    today = event_date(auth.clock())
    return _status_out(party_service.blocklist_status(auth.ledger, party_id, today))


@router.get("/parties/{party_id}/blocklist", dependencies=_ADMIN_READ)
def blocklist_status(
    party_id: PartyIdPath,
    identity: IdentityDependency,
    on: Annotated[
        dt.date | None, Query(description="The day asked about; today if omitted.")
    ] = None,
) -> BlocklistStatusOut:
    """Whether the party's payment services are suspended and new accounts barred."""
    auth = identity.auth
    day = on if on is not None else event_date(auth.clock())
    return _status_out(party_service.blocklist_status(auth.ledger, party_id, day))


# -- sessions ------------------------------------------------------------------------------


@router.post("/login")
def login(body: LoginRequest, request: Request, identity: IdentityDependency) -> SessionTokens:
    """Open a session: an access token and a refresh token. Five failures lock the credential."""
    address = request.client.host if request.client is not None else None
    session = identity.auth.login(
        body.identifier, body.password, body.totp_code, client_address=address
    )
    return _tokens(session)


@router.post("/refresh")
def refresh(body: RefreshRequest, identity: IdentityDependency) -> SessionTokens:
    """Rotate a refresh token; a reused one ends its whole session."""
    return _tokens(identity.auth.refresh(body.refresh_token))


@router.post("/logout", status_code=204, dependencies=_SELF_WRITE)
def logout(identity: IdentityDependency, principal: Caller) -> Response:
    """End the caller's session: its access and refresh tokens stop working."""
    identity.auth.revoke_session(_session_principal(principal), "logout")
    return Response(status_code=204)


@router.post("/step-up", dependencies=_SELF_WRITE)
def step_up(
    body: StepUpRequest,
    identity: IdentityDependency,
    principal: Caller,
) -> SessionTokens:
    """Raise the caller's session strength with a TOTP code; a new access token."""
    return _tokens(identity.auth.step_up(_session_principal(principal), body.totp_code))


@router.post("/totp/enrol", dependencies=_SELF_WRITE)
def enrol_totp(identity: IdentityDependency, principal: Caller) -> TotpEnrolment:
    """Start TOTP enrolment for the caller; the provisioning URI is shown once."""
    _session_principal(principal)
    return TotpEnrolment(provisioning_uri=identity.auth.enroll_totp(principal.subject))


@router.post("/totp/confirm", status_code=204, dependencies=_SELF_WRITE)
def confirm_totp(
    body: TotpConfirmRequest,
    identity: IdentityDependency,
    principal: Caller,
) -> Response:
    """Activate the caller's TOTP enrolment with a current code."""
    _session_principal(principal)
    identity.auth.confirm_totp(principal.subject, body.code)
    return Response(status_code=204)


@router.get("/me", dependencies=_SELF_READ)
def me(principal: Caller) -> PrincipalOut:
    """The caller's principal: who the credentials say they are, and what they may do."""
    return PrincipalOut(
        subject=principal.subject,
        role=principal.role,
        scopes=sorted(principal.scopes),
        factors=list(principal.factors),
        session_id=principal.session_id,
    )
