"""Who is asking (authentication) and what they may do (authorisation), each in one place.

Authentication is one dependency, `authenticate`, which asks the app's `Authenticator` to turn
the request's bearer credentials into a `Principal`. The identity context will bring real
principals (users, services, their roles); it slots in by providing another `Authenticator`,
without touching a route. Until then there are two:

* `BearerTokenAuthenticator`: when the environment variable `TIANPING_API_TOKEN` is set, every
  request must carry `Authorization: Bearer <that token>`, and is then the operator.
* `DevelopmentAuthenticator`: when it is not set, every request is the operator. The app logs a
  warning at startup, because this mode must never reach production.

Authorisation is one dependency factory, `require(scope, own=..., owner=...)`, which every
route declares in its `dependencies` (or as a parameter, to receive the caller's `Access`). A
principal holding `scope` may act on every resource the route reaches. A principal holding only
the narrower `own` scope may act on the resources it owns: `owner` is the route's declared
`OwnershipRule`, which finds who owns the addressed resource (the party in the path, the owner of
a ledger account, the owners of a transfer's two accounts) before the handler runs, or says that
the handler filters a list through `Access.owns`. A resource that is not the caller's own answers
as if it did not exist where its existence is itself information (ledger accounts and
transfers), and `forbidden` elsewhere. Routes that need no credentials at all are listed in
`PUBLIC_PATHS`, and a test fails when any other route declares no scope, so a route cannot be
added without deciding who may call it; the route x role matrix test checks every declaration.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Final, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tianping.api.problems import ApiProblem
from tianping.identity.tokens import AccessClaims, TokenInvalid

__all__ = [
    "API_TOKEN_ENV_VAR",
    "API_TOKEN_LENGTH_MIN",
    "FILTERED_BY_HANDLER",
    "OPERATOR",
    "PARTY_IN_PATH",
    "PUBLIC_PATHS",
    "ROLE_SCOPES",
    "SCOPES",
    "Access",
    "Authenticator",
    "BearerTokenAuthenticator",
    "DevelopmentAuthenticator",
    "IdentityTokenAuthenticator",
    "OwnershipRule",
    "Principal",
    "RouteDeclaration",
    "ScopeRequirement",
    "acting_party",
    "authenticate",
    "authenticator_from_environment",
    "require",
    "route_declarations",
]

API_TOKEN_ENV_VAR: Final = "TIANPING_API_TOKEN"  # noqa: S105 - a variable name, not a secret

# A shared secret shorter than this could be guessed or mistyped into a working value; 32 hex
# characters (128 bits) is what `python -c "import secrets; print(secrets.token_hex(16))"` makes.
API_TOKEN_LENGTH_MIN: Final = 32

# Every scope a route may require, with what it grants. `require` refuses any other name, so a
# typo in a route declaration fails when the app is built rather than locking everyone out.
SCOPES: Final[Mapping[str, str]] = {
    "ledger:read": "read accounts, transfers, balances and statements",
    "ledger:read:own": "read the caller's own ledger accounts and the transfers touching them",
    "ledger:write": "create accounts and transfers, close and reopen accounts",
    "ledger:audit": "check the ledger's invariants and verify its audit chain",
    "rules:read": "list, show and check rules, explain rule decisions, diff overlays",
    "identity:read": "read one's own identity (the token's principal)",
    "identity:self:write": "manage one's own credentials and sessions (TOTP, step-up, logout)",
    "identity:admin:write": "register persons, record verifications, set passwords, blocklist",
    "identity:admin:read": "read a party's blocklist standing, payment accounts and cards",
    "identity:accounts:own": "open one's own payment accounts and bind one's own bank cards",
    "privacy:self": "one's own consents, personal data, export, erasure and review requests",
    "privacy:admin": "consent texts; any person's consents, personal data (for a purpose), "
    "export, erasure, and answering data-subject requests (the operator)",
    "privacy:case": "read a person's identity record for a named supervisory case, with a "
    "reason, through the data-access log (supervisors)",
    "payments:read": "read any payment, top-up or withdrawal, wallet and the day's aggregates",
    "payments:read:own": "read the payments, top-ups, withdrawals and wallet one is party to",
    "payments:write": "wallets, merchants, paying for anyone, settlement, reconciliation, the "
    "clearing house's callbacks, safeguarding checks (the operator)",
    "payments:pay:own": "open one's wallet, pay from it, resume after step-up, top up, withdraw",
    "payments:merchant:own": "one's own QR codes and orders, refunds of payments made to one",
    "lending:read": "read any credit application and loan (supervisors, auditors)",
    "lending:read:own": "read one's own applications and loans, or the loans one co-funds",
    "lending:apply:own": "apply for credit, take up an offer and repay, for oneself",
    "lending:write": "decide for anyone, run the daily accrual (the operator)",
}

# The scopes an identity access token carries for each role: the one table that says which
# role may call which route (routes declare scopes, roles hold them). Customers, merchants and
# partners hold only "own" scopes: they reach ledger accounts, transfers and personal data that
# are theirs, checked per resource by the routes' ownership rules. Supervisors read the
# pseudonymous ledger (owners are party ids, never names) and reach a person's identity record
# only through a reasoned, logged case access; the operator holds every scope.
_SELF: Final = frozenset({"identity:read", "identity:self:write"})
_OWNER: Final = _SELF | {
    "ledger:read:own",
    "privacy:self",
    "payments:read:own",
    "lending:read:own",
}
ROLE_SCOPES: Final[Mapping[str, frozenset[str]]] = {
    "customer": _OWNER | {"identity:accounts:own", "payments:pay:own", "lending:apply:own"},
    # Merchants apply for SME working-capital loans for themselves.
    "merchant": _OWNER | {"payments:merchant:own", "lending:apply:own"},
    "partner": _OWNER,
    "operator": frozenset(SCOPES),
    "supervisor": _SELF
    | {"ledger:read", "rules:read", "privacy:case", "payments:read", "lending:read"},
    "auditor": _SELF
    | {"ledger:read", "ledger:audit", "rules:read", "payments:read", "lending:read"},
}

# Paths served without any credentials: the health probe, the API's own documentation, and
# the two ways of getting credentials (login and refresh, rate limited by the identity context).
PUBLIC_PATHS: Final = frozenset(
    {
        "/health",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/v1/identity/login",
        "/v1/identity/refresh",
    }
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated party a request acts for."""

    subject: str
    role: str
    scopes: frozenset[str]
    factors: tuple[str, ...] = ()
    session_id: str | None = None


# The operator runs the service; until the identity context exists it is the only principal.
OPERATOR: Final = Principal(subject="operator", role="operator", scopes=frozenset(SCOPES))


class Authenticator(Protocol):
    """Turns a request's bearer token (None when it carries none) into a principal, or None."""

    @property
    def development_mode(self) -> bool:
        """Whether every request is accepted without credentials."""
        ...

    def authenticate(self, bearer_token: str | None) -> Principal | None: ...


class BearerTokenAuthenticator:
    """Accepts exactly one shared bearer token, as the operator."""

    development_mode = False

    def __init__(self, token: str) -> None:
        if len(token) < API_TOKEN_LENGTH_MIN or token != token.strip():
            raise ValueError(
                f"the API token must be at least {API_TOKEN_LENGTH_MIN} characters without "
                "surrounding whitespace"
            )
        self._token = token.encode()

    def authenticate(self, bearer_token: str | None) -> Principal | None:
        if bearer_token is None:
            return None
        # A constant-time comparison, so the time a wrong token takes to refuse does not tell an
        # attacker how many of its leading characters were right.
        if not hmac.compare_digest(bearer_token.encode(), self._token):
            return None
        return OPERATOR


class DevelopmentAuthenticator:
    """Accepts every request as the operator. For a developer's machine only."""

    development_mode = True

    def authenticate(self, bearer_token: str | None) -> Principal | None:
        return OPERATOR


def _looks_like_access_token(bearer_token: str) -> bool:
    """Whether a bearer token has the shape of an identity access token (three dot segments)."""
    return bearer_token.count(".") == 2


class IdentityTokenAuthenticator:
    """Accepts identity access tokens, and otherwise whatever `fallback` accepts.

    A bearer token shaped like an access token is verified (signature, expiry, revocation) by
    the identity context's verifier and, when valid, becomes its party's principal; when invalid
    it is refused, even in development mode, so an expired or revoked token never silently acts
    as the operator (unless it is, character for character, the static operator token). Every
    other request goes to `fallback` (the static operator token or development mode), which
    keeps working exactly as before. `verifier` is asked per request and answers None while the
    identity context is not configured.
    """

    def __init__(
        self,
        fallback: Authenticator,
        verifier: Callable[[], Callable[[str], AccessClaims] | None],
    ) -> None:
        self._fallback = fallback
        self._verifier = verifier

    @property
    def development_mode(self) -> bool:
        return self._fallback.development_mode

    def authenticate(self, bearer_token: str | None) -> Principal | None:
        if bearer_token is not None and _looks_like_access_token(bearer_token):
            verify = self._verifier()
            if verify is not None:
                try:
                    claims = verify(bearer_token)
                except TokenInvalid:
                    # A static operator token may happen to contain two dots: it is still
                    # checked as before. Development mode accepts anything, so it is not asked.
                    if self._fallback.development_mode:
                        return None
                    return self._fallback.authenticate(bearer_token)
                return Principal(
                    subject=claims.subject,
                    role=claims.role,
                    scopes=claims.scopes & frozenset(SCOPES),
                    factors=claims.factors,
                    session_id=claims.session_id,
                )
        return self._fallback.authenticate(bearer_token)


def authenticator_from_environment(environ: Mapping[str, str] = os.environ) -> Authenticator:
    """The authenticator `TIANPING_API_TOKEN` asks for: a bearer token, or development mode.

    A variable that is set but blank is refused rather than read as "unset": someone who set it
    meant to require a token, and silently running without authentication would betray that.
    """
    token = environ.get(API_TOKEN_ENV_VAR)
    if token is None:
        return DevelopmentAuthenticator()
    return BearerTokenAuthenticator(token)


_bearer = HTTPBearer(
    auto_error=False,
    description=f"The API token configured in `{API_TOKEN_ENV_VAR}`.",
)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The one authentication dependency: the request's principal, or a 401 problem.

    A coroutine, so that it runs on the event loop: FastAPI would run a plain function on a
    worker thread, and the hop there and back costs more than the check itself (a constant-time
    comparison, or an access token verified from the verifier's cache and the in-memory
    revocation set; neither reads the database).
    """
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.authenticate(credentials.credentials if credentials else None)
    if principal is None:
        raise ApiProblem(
            "unauthenticated",
            "send a valid API token as `Authorization: Bearer <token>`",
            headers={"WWW-Authenticate": 'Bearer realm="tianping"'},
        )
    return principal


@dataclass(frozen=True, slots=True)
class Access:
    """What a request may reach: everything in its route's scope, or only what `party` owns."""

    principal: Principal
    # None: the principal holds the route's full scope. Otherwise the party id whose resources
    # alone the request may read or change.
    party: str | None

    @property
    def unrestricted(self) -> bool:
        return self.party is None

    def owns(self, *owners: str) -> bool:
        """Whether a resource owned by `owners` (any one of them suffices) is reachable."""
        return self.party is None or self.party in owners


@dataclass(frozen=True, slots=True)
class OwnershipRule:
    """How a route finds who owns the resource it addresses, for callers with an `own` scope.

    `owners(request)` returns the owning party ids (raising the resource's own not-found error
    when there is none); None means the route returns a list and filters it itself through
    `Access.owns`. `refusal` is the problem code a caller who is not an owner gets: the
    resource's not-found code where existence itself is information, else `forbidden`.
    """

    name: str
    owners: Callable[[Request], Collection[str]] | None
    refusal: str = "forbidden"


def _party_in_path(request: Request) -> Collection[str]:
    return (str(request.path_params.get("party_id", "")),)


# The party addressed by the path (`{party_id}`) is the owner: a person's own consents and data.
PARTY_IN_PATH: Final = OwnershipRule("party in path", _party_in_path)
# The route returns a list and keeps only what `Access.owns` admits.
FILTERED_BY_HANDLER: Final = OwnershipRule("filtered by the handler", None)


class ScopeRequirement:
    """A route dependency that admits principals holding `scope`, or `own` for what they own.

    Made by `require`; returns the request's `Access`.
    """

    def __init__(
        self, scope: str, own: str | None = None, owner: OwnershipRule | None = None
    ) -> None:
        for name in (scope, own):
            if name is not None and name not in SCOPES:
                raise ValueError(f"unknown scope {name!r}; the scopes are {sorted(SCOPES)}")
        if (own is None) != (owner is None):
            raise ValueError("an own scope and an ownership rule are declared together")
        self.scope = scope
        self.own = own
        self.owner = owner

    async def __call__(
        self, request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Access:
        # A coroutine, so that checking scopes takes no hop to a worker thread (FastAPI runs
        # plain function dependencies there); only an ownership rule, which reads the
        # database, is sent to one.
        if self.scope in principal.scopes:
            return Access(principal, None)
        if self.own is None or self.own not in principal.scopes:
            raise ApiProblem("forbidden", f"this operation needs the scope {self.scope!r}")
        assert self.owner is not None  # noqa: S101 - checked in __init__
        if self.owner.owners is not None:
            owners = await run_in_threadpool(self.owner.owners, request)
            if principal.subject not in owners:
                raise ApiProblem(self.owner.refusal, "the caller does not own this resource")
        return Access(principal, principal.subject)

    def __repr__(self) -> str:
        if self.own is None:
            return f"require({self.scope!r})"
        assert self.owner is not None  # noqa: S101 - checked in __init__
        return f"require({self.scope!r}, own={self.own!r}, owner={self.owner.name!r})"


@cache
def require(
    scope: str, *, own: str | None = None, owner: OwnershipRule | None = None
) -> ScopeRequirement:
    """The dependency a route declares to say which scope it needs, and for whom.

    Use as `dependencies=[Depends(require("ledger:read"))]`, or as a parameter
    `access: Annotated[Access, Depends(require(...))]` when the handler filters by ownership.
    With `own` and `owner`, principals holding only the `own` scope are admitted for the
    resources `owner` says they own. One instance per declaration, so FastAPI's per-request
    dependency cache authenticates a request once however the routes are composed.
    """
    return ScopeRequirement(scope, own, owner)


@dataclass(frozen=True, slots=True)
class RouteDeclaration:
    """One route the app serves and the scopes it requires through `require`."""

    path: str
    methods: frozenset[str]
    scopes: tuple[str, ...]
    # The narrower scopes that admit a caller for its own resources, and the rule that decides
    # ownership, as declared (empty when the route has none).
    own_scopes: tuple[str, ...] = ()
    ownership: tuple[str, ...] = ()


def route_declarations(app: FastAPI) -> list[RouteDeclaration]:
    """Every route the app serves with its declared scopes, for the route-declaration test.

    Routers are walked through FastAPI's `iter_route_contexts`, because included routers are
    not flattened into `app.routes`; each route's dependencies there include those of the
    routers it was included through, so a scope declared on a router counts as well. A
    requirement declared as a handler parameter (to receive the `Access`) counts too.
    """
    declarations = []
    for route in iter_route_contexts(app.routes):
        requirements = [
            call for call in _dependency_calls(route) if isinstance(call, ScopeRequirement)
        ]
        declarations.append(
            RouteDeclaration(
                path=str(route.path),
                methods=frozenset(route.methods or ()),
                scopes=tuple(requirement.scope for requirement in requirements),
                own_scopes=tuple(r.own for r in requirements if r.own is not None),
                ownership=tuple(r.owner.name for r in requirements if r.owner is not None),
            )
        )
    return declarations


def _dependency_calls(route: RouteContext) -> list[Any]:
    """The callables a route depends on directly: its declared `dependencies` (its routers'
    included) and the `Depends` of its handler's parameters, as FastAPI resolved them."""
    dependant = getattr(route.route, "dependant", None)
    if dependant is None:
        return []
    return [dependency.call for dependency in dependant.dependencies]


def acting_party(access: Access, requested: str | None) -> str:
    """The party a request acts for: the caller itself (an owner may name only itself), or,
    for a principal with the full scope, the party it names."""
    if access.unrestricted:
        if requested is None:
            raise ApiProblem("invalid_request", "name the party this request acts for")
        return requested
    party = access.party
    if party is None or requested not in (None, party):
        raise ApiProblem("forbidden", "a party acts only for itself here")
    return party
