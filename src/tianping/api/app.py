"""The FastAPI application: `create_app` wires routes, security, problems and the services.

Run it with `uvicorn --factory tianping.api.app:create_app`; settings come from the environment
and `tianping.toml` as for every other entry point (see `tianping.config`), and the API token
from `TIANPING_API_TOKEN` (see `tianping.api.security`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.telemetry import TelemetryConfig

from tianping import __version__
from tianping.api.identity_routes import router as identity_router
from tianping.api.ledger_routes import health_router, router
from tianping.api.lending_routes import router as lending_router
from tianping.api.payments_routes import router as payments_router
from tianping.api.privacy_routes import router as privacy_router
from tianping.api.problems import (
    PROBLEM_MEDIA_TYPE,
    REQUEST_BODY_BYTES_MAX,
    RequestBodyLimit,
    install_problem_handlers,
)
from tianping.api.rules_routes import router as rules_router
from tianping.api.security import (
    API_TOKEN_ENV_VAR,
    ROLE_SCOPES,
    Authenticator,
    IdentityTokenAuthenticator,
    authenticator_from_environment,
)
from tianping.bootstrap import (
    Services,
    build_services,
    freeze_long_lived_heap,
    merged_secrets,
)
from tianping.config import load_settings
from tianping.identity.tokens import AccessClaims

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

TITLE: Final = "Tianping Ledger API"
DESCRIPTION: Final = f"""
A double-entry ledger with TigerBeetle's semantics: accounts, transfers, two-phase holds,
linked chains, reversals, balance history and a verifiable audit chain.

* **Ids** are client-chosen 128-bit integers. Responses carry them as decimal strings; requests
  may send strings or JSON integers. Reusing an id is how retries are made safe: a replay of a
  committed event answers `exists`.
* **Amounts** are JSON integers of minor units (fen, cents); responses add a decimal
  `amount_display`.
* **Batches** answer with one result per event (`ok`, `exists`, or the reason it failed), in
  the order sent. `GET /v1/ledger/result-codes` lists every code.
* **Errors** are `application/problem+json` (RFC 9457) with a stable `code` member.
* **Authentication**: `Authorization: Bearer <token>` when the server has `{API_TOKEN_ENV_VAR}`
  set; request bodies are limited to {REQUEST_BODY_BYTES_MAX // (1024 * 1024)} MiB.
"""


# FastAPI's built-in OpenTelemetry support looks up the global providers (through the process
# environment) on every request, about 6% of a payment request's event-loop time, although the
# platform configures no OpenTelemetry provider and so records nothing through it. It is off;
# an operator who adds tracing passes providers here explicitly.
_NO_TELEMETRY: Final[TelemetryConfig] = {"tracing": False, "metrics": False, "logs": False}


def create_app(
    services: Services | None = None, *, authenticator: Authenticator | None = None
) -> FastAPI:
    """Build the API application.

    `services`: the process's services. When omitted they are built from the settings at
    startup (without migrating the database, which is an operator's step) and closed at
    shutdown; services passed in belong to the caller, who closes them.

    `authenticator`: who may call. When omitted it is chosen by `TIANPING_API_TOKEN`, read now
    from the environment or, when unset there, from the settings' secrets file.
    Identity access tokens are accepted in addition whenever the services carry the identity
    context; their roles' scopes come from `security.ROLE_SCOPES`.
    """
    chosen_authenticator = authenticator or authenticator_from_environment(
        merged_secrets(load_settings())
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built: Services | None = None
        if app.state.services is None:
            built = build_services(migrate=False, role_scopes=ROLE_SCOPES)
            app.state.services = built
            built.start_background_work()
            freeze_long_lived_heap()
        if chosen_authenticator.development_mode:
            logger.warning(
                "authentication is OFF: %s is not set, so every request acts as the operator. "
                "Never run like this outside a developer's machine.",
                API_TOKEN_ENV_VAR,
            )
        try:
            yield
        finally:
            if built is not None:
                app.state.services = None
                built.close()

    app = _TianpingAPI(
        title=TITLE,
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
        telemetry=_NO_TELEMETRY,
    )
    app.state.services = services
    # Identity access tokens are accepted whenever the services have the identity context;
    # every other request is authenticated as before (the operator token, or development mode).
    app.state.authenticator = IdentityTokenAuthenticator(
        chosen_authenticator, lambda: _access_token_verifier(app)
    )
    if services is not None:
        # Services passed in belong to the caller (tests drive expiry by hand with their own
        # clock); only the committer, which single-transfer requests need, is started here.
        _ = services.committer
        if services.identity is not None:
            # Token checks fail closed until the revocation set has been loaded once; later
            # refreshes are the caller's (a test revokes, then refreshes by hand).
            services.identity.auth.refresh_revocations()
    install_problem_handlers(app)
    app.add_middleware(RequestBodyLimit, max_bytes=REQUEST_BODY_BYTES_MAX)
    # Routers are matched in the order they are included, every route of a router before the
    # next router, and matching is most of FastAPI's per-request cost: the health probe and
    # payments, the high-volume calls, come first. No path is served by two routers except
    # identity and privacy (one prefix), whose order is kept.
    app.include_router(health_router)
    app.include_router(payments_router)
    app.include_router(router)
    app.include_router(rules_router)
    app.include_router(identity_router)
    app.include_router(privacy_router)
    app.include_router(lending_router)
    return app


def _access_token_verifier(app: FastAPI) -> Callable[[str], AccessClaims] | None:
    """The identity context's access-token check, or None when it is not configured."""
    services: Services | None = app.state.services
    if services is None or services.identity is None:
        return None
    return services.identity.auth.verify_access_token


class _TianpingAPI(FastAPI):
    """FastAPI with an OpenAPI document that describes our errors as they are sent."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title,
                version=self.version,
                description=self.description,
                routes=self.routes,
            )
            _describe_problems(schema)
            self.openapi_schema = schema
        return self.openapi_schema


def _describe_problems(schema: dict[str, Any]) -> None:
    """Make every error response in `schema` the problem+json document it really is.

    FastAPI documents a 422 response with its own validation-error shape on every route that
    takes input, and places response models under application/json. Our handlers answer every
    error, validation included, with `ProblemDetails` as application/problem+json, so the routes'
    "4XX"/"5XX" entries are rewritten to say so and FastAPI's 422 entries, which the "4XX" entry
    covers, are dropped with the schemas only they used.
    """
    problem_schema = {"$ref": "#/components/schemas/ProblemDetails"}
    problem_content = {PROBLEM_MEDIA_TYPE: {"schema": problem_schema}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            for status_range in ("4XX", "5XX"):
                if status_range in responses:
                    responses[status_range]["content"] = problem_content
    schemas = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
