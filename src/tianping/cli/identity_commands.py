"""`tianping identity`: parties, verifications, the blocklist, consent, the vault and keys.

    tianping identity party register-person --date-of-birth YYYY-MM-DD [--guardian ID ...]
    tianping identity party register-merchant --registration-number N
    tianping identity party show PARTY
    tianping identity verify PARTY --channel C --source S
    tianping identity blocklist add PARTY --reason R --case REF [--listed-on DATE]
    tianping identity blocklist status PARTY [--on DATE]
    tianping identity consent publish TEXT --version N --purpose P --field F --language L --body B
    tianping identity consent grant|withdraw PARTY --text TEXT [--version N]
    tianping identity consent list PARTY
    tianping identity data put PARTY FIELD=VALUE ...
    tianping identity data read PARTY --purpose P --field F --accessor A --reason R
    tianping identity data export PARTY
    tianping identity data erase PARTY
    tianping identity keys generate [--algorithm RS256|EdDSA]

Keys come from the environment as the identity README says (`TIANPING_MASTER_KEY` or
`TIANPING_MASTER_KEY_FILE` for the vault, `TIANPING_CARD_FINGERPRINT_KEY` for person
registration digests). `keys generate` prints fresh keys on stdout for an operator to store
in a secret manager; it never writes a file. Every answer is one JSON document on stdout; every
refusal is one `error:` line with exit code 2 (refused or bad input) or 3 (not found).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, TypeVar

import typer

from tianping.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    emit_json,
    jsonable,
    state_of,
)
from tianping.identity import party_service
from tianping.identity.errors import IdentityError, PartyNotFound
from tianping.identity.party_service import CARD_FINGERPRINT_KEY_ENV, FingerprintKey
from tianping.identity.privacy_service import PrivacyService
from tianping.identity.tokens import ALGORITHMS, DEFAULT_ALGORITHM, SIGNING_KEY_ENV_VAR, SigningKey
from tianping.identity.totp import SECRETS_KEY_ENV_VAR
from tianping.identity.vault import MASTER_KEY_ENV, MasterKeyInvalid, Vault, load_master_key
from tianping.ledger.service import Ledger

app = typer.Typer(
    name="identity",
    help="Parties, identity verifications, the blocklist, consent and the personal-data vault.",
    no_args_is_help=True,
)
party_app = typer.Typer(name="party", help="Register and show parties.", no_args_is_help=True)
blocklist_app = typer.Typer(name="blocklist", help="The P12 blocklist.", no_args_is_help=True)
consent_app = typer.Typer(name="consent", help="Consent texts and consents.", no_args_is_help=True)
data_app = typer.Typer(name="data", help="The personal-data vault.", no_args_is_help=True)
keys_app = typer.Typer(name="keys", help="Key material for operators.", no_args_is_help=True)
for _sub in (party_app, blocklist_app, consent_app, data_app, keys_app):
    app.add_typer(_sub)

T = TypeVar("T")


def _run(action: Callable[[], T]) -> T:
    """Run one identity operation, turning its refusals into the CLI's one-line errors."""
    try:
        return action()
    except PartyNotFound as exc:
        raise CliError(f"{exc.code}: {exc.message}", EXIT_NOT_FOUND) from None
    except (IdentityError, MasterKeyInvalid) as exc:
        code = getattr(exc, "code", "identity_error")
        raise CliError(f"{code}: {exc}", EXIT_USAGE) from None


def _ledger(ctx: typer.Context) -> Ledger:
    return state_of(ctx).services().ledger


def _privacy(ctx: typer.Context) -> PrivacyService:
    master = _run(load_master_key)
    return PrivacyService(_ledger(ctx), Vault(master))


def _request_id(value: str | None) -> str:
    return value if value is not None else f"cli-{uuid.uuid4().hex}"


def _today() -> date:
    return datetime.now(UTC).date()


RequestId = Annotated[
    str | None,
    typer.Option("--request-id", help="Idempotency key (default: a fresh random one)."),
]

# -- parties ---------------------------------------------------------------------------------


@party_app.command("register-person")
def register_person(
    ctx: typer.Context,
    date_of_birth: Annotated[
        datetime, typer.Option("--date-of-birth", formats=["%Y-%m-%d"], help="YYYY-MM-DD.")
    ],
    guardian: Annotated[
        str | None, typer.Option("--guardian", help="Guardian party id (under 14).")
    ] = None,
    guardian_consent: Annotated[
        str | None, typer.Option("--guardian-consent", help="Guardian consent reference.")
    ] = None,
    request_id: RequestId = None,
) -> None:
    """Register a natural person; prints the new pseudonymous party id."""
    ledger = _ledger(ctx)
    key = _run(FingerprintKey.from_env)
    party_id = _run(
        lambda: party_service.register_person(
            ledger,
            _request_id(request_id),
            date_of_birth=date_of_birth.date(),
            guardian_party_id=guardian,
            guardian_consent_reference=guardian_consent,
            key=key,
        )
    )
    emit_json({"party_id": party_id})


@party_app.command("register-merchant")
def register_merchant(
    ctx: typer.Context,
    registration_number: Annotated[str, typer.Option("--registration-number")],
    request_id: RequestId = None,
) -> None:
    """Register a merchant by its business registration number."""
    ledger = _ledger(ctx)
    party_id = _run(
        lambda: party_service.register_merchant(
            ledger, _request_id(request_id), registration_number=registration_number
        )
    )
    emit_json({"party_id": party_id})


@party_app.command("show")
def show_party(ctx: typer.Context, party_id: str) -> None:
    """A party with its verifications and account class (no personal data)."""
    ledger = _ledger(ctx)
    emit_json(jsonable(_run(lambda: party_service.get_party(ledger, party_id))))


# -- verifications and the blocklist ---------------------------------------------------------


@app.command("verify")
def verify(
    ctx: typer.Context,
    party_id: str,
    channel: Annotated[str, typer.Option("--channel", help="e.g. id_document_name_check.")],
    source: Annotated[str, typer.Option("--source", help='e.g. "nciic", "bank:icbc".')],
    verification_id: Annotated[str | None, typer.Option("--verification-id")] = None,
) -> None:
    """Record a passed identity verification; prints the resulting account class."""
    ledger = _ledger(ctx)
    result = _run(
        lambda: party_service.record_verification(
            ledger,
            _request_id(verification_id),
            party_id,
            channel=channel,
            source=source,
            verified_at=ledger.clock(),
        )
    )
    emit_json(jsonable(result))


@blocklist_app.command("add")
def blocklist_add(
    ctx: typer.Context,
    party_id: str,
    reason: Annotated[str, typer.Option("--reason", help="e.g. account_renting.")],
    case: Annotated[str, typer.Option("--case", help="The police case reference.")],
    listed_on: Annotated[datetime | None, typer.Option("--listed-on", formats=["%Y-%m-%d"])] = None,
) -> None:
    """List a party confirmed as renting, lending, selling or buying accounts (P12)."""
    ledger = _ledger(ctx)
    on = listed_on.date() if listed_on is not None else _today()
    entry = _run(
        lambda: party_service.add_to_blocklist(
            ledger, party_id, listed_on=on, reason_code=reason, case_reference=case
        )
    )
    emit_json(jsonable(entry))


@blocklist_app.command("status")
def blocklist_status(
    ctx: typer.Context,
    party_id: str,
    on: Annotated[datetime | None, typer.Option("--on", formats=["%Y-%m-%d"])] = None,
) -> None:
    """Whether the party's payment services are suspended and new accounts barred."""
    ledger = _ledger(ctx)
    day = on.date() if on is not None else _today()
    emit_json(jsonable(_run(lambda: party_service.blocklist_status(ledger, party_id, day))))


# -- consent ---------------------------------------------------------------------------------


@consent_app.command("publish")
def consent_publish(
    ctx: typer.Context,
    text_id: str,
    version: Annotated[int, typer.Option("--version")],
    purpose: Annotated[list[str], typer.Option("--purpose")],
    field: Annotated[list[str], typer.Option("--field")],
    language: Annotated[str, typer.Option("--language")],
    body: Annotated[str, typer.Option("--body")],
    recipient: Annotated[str | None, typer.Option("--recipient")] = None,
) -> None:
    """Publish one version of a consent text (publishing the same text again is a no-op)."""
    privacy = _privacy(ctx)
    text = _run(
        lambda: privacy.publish_consent_text(
            text_id, version, purpose, field, language, body, recipient=recipient
        )
    )
    emit_json(jsonable(text))


@consent_app.command("grant")
def consent_grant(
    ctx: typer.Context,
    party_id: str,
    text: Annotated[str, typer.Option("--text")],
    version: Annotated[int, typer.Option("--version")] = 1,
    request_id: RequestId = None,
) -> None:
    """Record the person's consent to one version of a text."""
    privacy = _privacy(ctx)
    event = _run(lambda: privacy.grant_consent(party_id, text, version, _request_id(request_id)))
    emit_json(jsonable(event))


@consent_app.command("withdraw")
def consent_withdraw(
    ctx: typer.Context,
    party_id: str,
    text: Annotated[str, typer.Option("--text")],
    request_id: RequestId = None,
) -> None:
    """Withdraw the person's consent to a text, effective now."""
    privacy = _privacy(ctx)
    event = _run(lambda: privacy.withdraw_consent(party_id, text, _request_id(request_id)))
    emit_json(jsonable(event))


@consent_app.command("list")
def consent_list(ctx: typer.Context, party_id: str) -> None:
    """Every text the person has granted, and whether the consent is live."""
    privacy = _privacy(ctx)
    emit_json(jsonable(_run(lambda: privacy.consents(party_id))))


# -- the vault -------------------------------------------------------------------------------


def _field_values(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError("personal data is given as FIELD=VALUE")
        values[name] = value
    return values


@data_app.command("put")
def data_put(
    ctx: typer.Context,
    party_id: str,
    fields: Annotated[list[str], typer.Argument(help="FIELD=VALUE pairs.")],
    request_id: RequestId = None,
) -> None:
    """Encrypt and store personal fields for the person."""
    values = _field_values(fields)
    privacy = _privacy(ctx)
    written = _run(lambda: privacy.put_personal_data(party_id, values, _request_id(request_id)))
    emit_json(jsonable(written))


@data_app.command("read")
def data_read(
    ctx: typer.Context,
    party_id: str,
    purpose: Annotated[str, typer.Option("--purpose", help="e.g. payment_service.")],
    field: Annotated[list[str], typer.Option("--field")],
    accessor: Annotated[str, typer.Option("--accessor")] = "cli-operator",
    reason: Annotated[str, typer.Option("--reason")] = "operator read from the CLI",
) -> None:
    """Read the person's fields for a purpose (checked against consent and logged)."""
    privacy = _privacy(ctx)
    emit_json(_run(lambda: privacy.read_personal_data(party_id, field, purpose, accessor, reason)))


@data_app.command("export")
def data_export(ctx: typer.Context, party_id: str) -> None:
    """Everything held about the person, as one JSON document."""
    privacy = _privacy(ctx)
    emit_json(jsonable(_run(lambda: privacy.export_personal_data(party_id))))


@data_app.command("erase")
def data_erase(ctx: typer.Context, party_id: str, request_id: RequestId = None) -> None:
    """Erase the person's personal data by destroying their data key (crypto-shredding)."""
    privacy = _privacy(ctx)
    emit_json(jsonable(_run(lambda: privacy.erase_person(party_id, _request_id(request_id)))))


# -- keys ------------------------------------------------------------------------------------


@keys_app.command("generate")
def keys_generate(
    algorithm: Annotated[
        str, typer.Option("--algorithm", help=f"Token signing algorithm: {', '.join(ALGORITHMS)}.")
    ] = DEFAULT_ALGORITHM,
) -> None:
    """Print fresh keys as environment assignments, for an operator to store. Writes no file."""
    if algorithm not in ALGORITHMS:
        raise CliError(f"--algorithm is one of {', '.join(ALGORITHMS)}")
    signing = SigningKey.generate(algorithm)
    pem = signing.to_pem().decode("ascii").strip()
    typer.echo(f"{MASTER_KEY_ENV}={base64.b64encode(secrets.token_bytes(32)).decode()}")
    typer.echo(f"{CARD_FINGERPRINT_KEY_ENV}={secrets.token_hex(32)}")
    typer.echo(f"{SECRETS_KEY_ENV_VAR}={base64.b64encode(secrets.token_bytes(32)).decode()}")
    typer.echo(f"{SIGNING_KEY_ENV_VAR}='{pem}'")
