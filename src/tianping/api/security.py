"""Who is asking (authentication) and what they may do (authorisation), each in one place.

Authentication is one dependency, `authenticate`, which asks the app's `Authenticator` to turn
the request's bearer credentials into a `Principal`. The identity context will bring real
principals (users, services, their roles); it slots in by providing another `Authenticator`,
without touching a route. Until then there are two:

* `BearerTokenAuthenticator`: when the environment variable `TIANPING_API_TOKEN` is set, every
  request must carry `Authorization: Bearer <that token>`, and is then the operator.
* `DevelopmentAuthenticator`: when it is not set, every request is the operator. The app logs a
  warning at startup, because this mode must never reach production.

Authorisation is one dependency factory, `require(scope)`, which every route declares in its
`dependencies`; the route then runs only for a principal holding that scope. Routes that need no
credentials at all are listed in `PUBLIC_PATHS`, and a test fails when any other route declares no
scope, so a route cannot be added without deciding who may call it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Final, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tianping.api.problems import ApiProblem
from tianping.identity.tokens import AccessClaims, TokenInvalid

__all__ = [
    "API_TOKEN_ENV_VAR",
    "API_TOKEN_LENGTH_MIN",
    "OPERATOR",
    "PUBLIC_PATHS",
    "ROLE_SCOPES",
    "SCOPES",
    "Authenticator",
    "BearerTokenAuthenticator",
    "DevelopmentAuthenticator",
    "IdentityTokenAuthenticator",
    "Principal",
    "RouteDeclaration",
    "ScopeRequirement",
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
    "ledger:write": "create accounts and transfers, close and reopen accounts",
    "ledger:audit": "check the ledger's invariants and verify its audit chain",
    "rules:read": "list, show and check rules, explain rule decisions, diff overlays",
    "identity:read": "read one's own identity (the token's principal)",
    "identity:self:write": "manage one's own credentials and sessions (TOTP, step-up, logout)",
    "identity:admin:write": "register persons, record verifications, set passwords, blocklist",
    "identity:admin:read": "read a party's blocklist standing (the operator)",
}

# The scopes an identity access token carries for each role: the one table that says which
# role may call which route (routes declare scopes, roles hold them). Customers, merchants and
# partners hold no ledger scope until the ledger routes learn ownership rules ("a customer reads
# an account only if it owns it"): without them a ledger scope would expose every account.
_SELF: Final = frozenset({"identity:read", "identity:self:write"})
ROLE_SCOPES: Final[Mapping[str, frozenset[str]]] = {
    "customer": _SELF,
    "merchant": _SELF,
    "partner": _SELF,
    "operator": frozenset(SCOPES),
    "supervisor": _SELF | {"rules:read"},
    "auditor": _SELF | {"ledger:read", "ledger:audit", "rules:read"},
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


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The one authentication dependency: the request's principal, or a 401 problem."""
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.authenticate(credentials.credentials if credentials else None)
    if principal is None:
        raise ApiProblem(
            "unauthenticated",
            "send a valid API token as `Authorization: Bearer <token>`",
            headers={"WWW-Authenticate": 'Bearer realm="tianping"'},
        )
    return principal


class ScopeRequirement:
    """A route dependency that admits only principals holding `scope`. Made by `require`."""

    def __init__(self, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; the scopes are {sorted(SCOPES)}")
        self.scope = scope

    def __call__(self, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if self.scope not in principal.scopes:
            raise ApiProblem("forbidden", f"this operation needs the scope {self.scope!r}")
        return principal

    def __repr__(self) -> str:
        return f"require({self.scope!r})"


@cache
def require(scope: str) -> ScopeRequirement:
    """The dependency a route declares to say which scope it needs.

    Use as `dependencies=[Depends(require("ledger:read"))]`. One instance per scope, so FastAPI's
    per-request dependency cache authenticates a request once however the routes are composed.
    """
    return ScopeRequirement(scope)


@dataclass(frozen=True, slots=True)
class RouteDeclaration:
    """One route the app serves and the scopes it requires through `require`."""

    path: str
    methods: frozenset[str]
    scopes: tuple[str, ...]


def route_declarations(app: FastAPI) -> list[RouteDeclaration]:
    """Every route the app serves with its declared scopes, for the route-declaration test.

    Routers are walked through FastAPI's `iter_route_contexts`, because included routers are
    not flattened into `app.routes`; each route's dependencies there include those of the
    routers it was included through, so a scope declared on a router counts as well.
    """
    declarations = []
    for route in iter_route_contexts(app.routes):
        dependencies = getattr(route, "dependencies", None) or ()
        scopes = tuple(
            dependency.dependency.scope
            for dependency in dependencies
            if isinstance(dependency.dependency, ScopeRequirement)
        )
        declarations.append(
            RouteDeclaration(
                path=str(route.path), methods=frozenset(route.methods or ()), scopes=scopes
            )
        )
    return declarations
