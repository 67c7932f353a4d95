"""Problem details (RFC 9457): the one place where errors become HTTP responses.

Every error the API answers with is an `application/problem+json` document with the standard
members `type`, `title`, `status`, `detail` and `instance`, plus the extension member `code`: a
stable snake_case name that clients branch on. `PROBLEMS` below is the whole vocabulary: each
code appears there once, with the one HTTP status it is always sent with. Route handlers never
build error responses themselves; they let the ledger raise its own errors (or raise `ApiProblem`
for the few conditions only the API knows about) and the handlers registered by
`install_problem_handlers` translate.

Problem documents never repeat what the client sent: a validation error names the field and
what is wrong with it, not the value, because request bodies may carry personal data and error
responses end up in client logs and support tickets.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple, cast

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tianping.identity.errors import IdentityError
from tianping.ledger.errors import LedgerError
from tianping.ledger.ids import InvalidId
from tianping.ledger.money import MoneyError
from tianping.lending.service import LendingRefusal
from tianping.payments.aml.errors import AmlError
from tianping.payments.clearing import ClearingError
from tianping.payments.model import PaymentError
from tianping.payments.qr import QrError
from tianping.rules.errors import RulesError

__all__ = [
    "PROBLEMS",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_BASE",
    "REQUEST_BODY_BYTES_MAX",
    "ApiProblem",
    "ProblemKind",
    "RequestBodyLimit",
    "install_problem_handlers",
    "problem_response",
    "problem_type",
]

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
PROBLEM_TYPE_BASE: Final = "https://tianping.dev/problems/"

# The largest request body the API reads. The largest legitimate request, a full batch of
# 8189 transfers with ids as strings and a little metadata, stays below it; anything larger is
# refused before a byte of it is parsed, so a hostile client cannot make the server hold or
# decode an arbitrarily large document.
REQUEST_BODY_BYTES_MAX: Final = 2 * 1024 * 1024


class ProblemKind(NamedTuple):
    """The fixed HTTP status and human-readable title of one problem code."""

    status: int
    title: str


# The table: every problem code the API can send, and the status it is always sent with. A code
# is part of the public contract once released: it is never renamed or given another status.
PROBLEMS: Final[Mapping[str, ProblemKind]] = {
    # The request itself is malformed.
    "malformed_request": ProblemKind(400, "The request could not be read"),
    "id_invalid": ProblemKind(400, "An id is not valid"),
    "invalid_query": ProblemKind(400, "The query is not valid"),
    "invalid_request": ProblemKind(422, "The request is not valid"),
    "amount_invalid": ProblemKind(422, "An amount is not valid"),
    "batch_too_large": ProblemKind(413, "The batch holds too many events"),
    "payload_too_large": ProblemKind(413, "The request body is too large"),
    # Who is asking.
    "unauthenticated": ProblemKind(401, "Authentication is required"),
    "forbidden": ProblemKind(403, "The credentials do not allow this operation"),
    # What is asked for.
    "not_found": ProblemKind(404, "There is nothing at this address"),
    "account_not_found": ProblemKind(404, "No account has this id"),
    "transfer_not_found": ProblemKind(404, "No transfer has this id"),
    "method_not_allowed": ProblemKind(405, "This method is not allowed here"),
    "history_not_enabled": ProblemKind(409, "The account keeps no balance history"),
    # The rules context (tianping.rules): its errors carry these codes.
    "rule_not_found": ProblemKind(404, "No rule has this id"),
    "enforcement_point_not_found": ProblemKind(404, "No enforcement point has this name"),
    "decision_not_found": ProblemKind(404, "No rule decision has this id"),
    "overlay_not_found": ProblemKind(404, "The rulebook has no overlay of this name"),
    "fact_missing": ProblemKind(422, "A rule needs a fact the request did not give"),
    "fact_invalid": ProblemKind(422, "A fact is not valid"),
    # The identity context (tianping.identity): its errors carry these codes.
    "identity_input_invalid": ProblemKind(422, "An identity field is not valid"),
    "party_id_invalid": ProblemKind(400, "A party id is not valid"),
    "party_not_found": ProblemKind(404, "No party has this id"),
    "party_kind_not_allowed": ProblemKind(422, "The party is not of a kind allowed here"),
    "request_conflict": ProblemKind(409, "The request id was used for a different request"),
    "date_of_birth_invalid": ProblemKind(422, "The date of birth is not valid"),
    "guardian_consent_required": ProblemKind(422, "A person under 14 needs a guardian's consent"),
    "guardian_invalid": ProblemKind(422, "The guardian is not a registered adult person"),
    "new_accounts_barred": ProblemKind(403, "The party may not open new accounts"),
    "payment_services_suspended": ProblemKind(403, "The party's payment services are suspended"),
    "login_name_taken": ProblemKind(409, "The login name is taken"),
    "password_rejected": ProblemKind(422, "The password does not meet the policy"),
    "invalid_credentials": ProblemKind(401, "The credentials are not valid"),
    "credential_locked": ProblemKind(423, "The credential is locked after repeated failures"),
    "rate_limited": ProblemKind(429, "Too many attempts"),
    "session_invalid": ProblemKind(401, "The session has ended"),
    "refresh_token_invalid": ProblemKind(401, "The refresh token is not valid"),
    "refresh_token_reused": ProblemKind(401, "The refresh token was already used"),
    "credential_not_found": ProblemKind(404, "The party has no credential"),
    "totp_not_enrolled": ProblemKind(409, "The party has no TOTP enrolment"),
    "totp_code_invalid": ProblemKind(422, "The TOTP code is not valid"),
    "identity_limit_reached": ProblemKind(409, "An identity limit is reached"),
    "registration_number_taken": ProblemKind(409, "The business registration number is taken"),
    "account_class_not_verified": ProblemKind(
        422, "The verifications do not support this account class"
    ),
    "class_iii_limit_reached": ProblemKind(409, "The person has a Class III account here"),
    "payment_account_not_found": ProblemKind(404, "No payment account has this id"),
    "payment_account_id_invalid": ProblemKind(400, "A payment-account id is not valid"),
    "card_holder_mismatch": ProblemKind(422, "The card is not held in the person's own name"),
    "card_already_bound": ProblemKind(409, "The card is already bound"),
    "fingerprint_key_unavailable": ProblemKind(503, "The card fingerprint key is not configured"),
    # privacy: consent, the vault, data-subject requests
    "consent_text_not_found": ProblemKind(404, "No consent text has this id and version"),
    "consent_text_conflict": ProblemKind(
        409, "This consent text version was published differently"
    ),
    "consent_text_bundles_separate_purpose": ProblemKind(
        422, "A purpose that needs separate consent is bundled with others"
    ),
    "consent_not_live": ProblemKind(409, "There is no live consent to this text"),
    "personal_field_prohibited": ProblemKind(422, "This category of personal data is prohibited"),
    "personal_field_unknown": ProblemKind(422, "The vault holds no field of this name"),
    "personal_data_access_refused": ProblemKind(
        403, "Reading this personal data for this purpose has no lawful basis"
    ),
    "person_erased": ProblemKind(410, "The person's personal data was erased"),
    "person_not_found": ProblemKind(404, "The vault holds no personal data for this party"),
    "data_subject_request_not_found": ProblemKind(404, "No data-subject request has this id"),
    "data_subject_request_transition_invalid": ProblemKind(
        409, "The data-subject request cannot move to that state"
    ),
    "master_key_unavailable": ProblemKind(503, "The vault's master key is not available"),
    "master_key_invalid": ProblemKind(503, "The vault's master key is not valid"),
    "vault_decryption_failed": ProblemKind(500, "Stored personal data could not be decrypted"),
    # payments
    "payment_input_invalid": ProblemKind(422, "A payment field is not valid"),
    "currency_invalid": ProblemKind(422, "The currency is not valid here"),
    "payment_to_self": ProblemKind(422, "The payer and the payee are the same"),
    "wallet_not_found": ProblemKind(404, "The party has no wallet in this currency"),
    "merchant_not_found": ProblemKind(404, "No merchant is registered with this id"),
    "payee_not_merchant": ProblemKind(422, "The party is not a merchant"),
    "payment_not_found": ProblemKind(404, "No payment has this id"),
    "refund_not_allowed": ProblemKind(409, "This payment cannot be refunded"),
    "refund_exceeds_payment": ProblemKind(409, "Refunds would exceed the payment"),
    "merchant_funds_insufficient": ProblemKind(409, "The merchant's takings do not cover it"),
    "ledger_refused": ProblemKind(409, "The ledger refused the transfer"),
    "insufficient_funds": ProblemKind(409, "The wallet does not hold the amount"),
    "card_not_bound": ProblemKind(422, "The card is not bound to this person"),
    "rail_request_not_found": ProblemKind(404, "No top-up or withdrawal has this id"),
    "payout_account_exists": ProblemKind(409, "The merchant has another payout account"),
    "payout_account_taken": ProblemKind(409, "The account is another merchant's payout account"),
    "payout_account_holder_mismatch": ProblemKind(
        422, "The account is not held by the registered business itself"
    ),
    "payout_account_not_registered": ProblemKind(404, "The merchant has no payout account"),
    "payout_exceeds_free_balance": ProblemKind(
        409, "The settlement account's free balance does not cover the payout"
    ),
    "payout_not_found": ProblemKind(404, "The merchant has no payout of this id"),
    "takings_already_settled": ProblemKind(409, "The day's takings were already settled"),
    "release_exceeds_takings": ProblemKind(409, "The day's takings cannot cover the release"),
    "takings_release_not_found": ProblemKind(404, "No takings release has this id"),
    "qr_order_missing": ProblemKind(404, "The QR code's order does not exist"),
    "qr_order_paid": ProblemKind(409, "The order is already paid"),
    "qr_expired": ProblemKind(410, "The QR code has expired"),
    "qr_malformed": ProblemKind(422, "The QR payload is malformed"),
    "qr_checksum_mismatch": ProblemKind(422, "The QR payload's checksum is wrong"),
    "qr_unsupported_currency": ProblemKind(422, "The QR code's currency is not supported"),
    "qr_field_too_long": ProblemKind(422, "A QR field is too long"),
    "qr_payload_too_long": ProblemKind(422, "The QR payload is too long"),
    "qr_invalid_field": ProblemKind(422, "A QR field is not valid"),
    "qr_foreign_scheme": ProblemKind(422, "The QR code belongs to another payment scheme"),
    "decision_exists_with_different_fields": ProblemKind(
        409, "The decision id was used for another command"
    ),
    "aml_case_not_found": ProblemKind(404, "No AML case has this id"),
    # lending
    "lending_unavailable": ProblemKind(503, "Lending is not configured on this server"),
    "term_invalid": ProblemKind(422, "The term is not valid"),
    "application_not_found": ProblemKind(404, "No credit application has this id"),
    "application_not_approved": ProblemKind(409, "Only an approved offer can be taken up"),
    "offer_taken": ProblemKind(409, "The offer was already taken up"),
    "loan_not_found": ProblemKind(404, "No loan has this id"),
    "loan_not_active": ProblemKind(409, "The loan is not active"),
    "applicant_not_merchant": ProblemKind(422, "Only a merchant applies for an SME loan"),
    "applicant_not_person": ProblemKind(422, "Only a person applies for a consumer loan"),
    "disbursement_target_invalid": ProblemKind(
        422, "An SME loan is paid into the settlement account, not to a card"
    ),
    "repayment_method_invalid": ProblemKind(
        422, "The repayment method is equal_instalment or equal_principal (loans only)"
    ),
    "sme_consent_required": ProblemKind(
        409, "An SME loan needs the merchant's live credit-assessment consent"
    ),
    "amount_above_receipts_cap": ProblemKind(
        422, "The amount is above what the merchant's receipts support"
    ),
    "accrual_range_invalid": ProblemKind(422, "The accrual range is not valid"),
    "window_invalid": ProblemKind(422, "The date window ends before it starts"),
    "sweep_invalid": ProblemKind(422, "The sweep of takings is not valid for this loan"),
    "accrual_inconsistent": ProblemKind(500, "The loan book changed during the accrual"),
    "payoff_date_invalid": ProblemKind(422, "A payoff cannot be quoted for this date"),
    "write_off_not_allowed": ProblemKind(
        409, "The loan is neither in the loss class nor past the write-off threshold"
    ),
    "write_off_exists_with_different_fields": ProblemKind(
        409, "The write-off id was already used with other fields"
    ),
    "write_off_date_invalid": ProblemKind(422, "A write-off cannot be dated before disbursement"),
    "reason_invalid": ProblemKind(422, "The reason is empty or too long"),
    "loan_not_written_off": ProblemKind(409, "Only a written-off loan takes recoveries"),
    "recovery_exists_with_different_fields": ProblemKind(
        409, "The recovery id was already used with other fields"
    ),
    "nothing_to_recover": ProblemKind(409, "Nothing remains written off on the loan or line"),
    "partner_not_registered": ProblemKind(404, "The bank has no registered co-lending figures"),
    "partner_figures_inconsistent": ProblemKind(
        409, "The bank's registered figures are inconsistent with its co-lending balances"
    ),
    "application_not_credit_line": ProblemKind(409, "The offer is not a credit line"),
    "application_is_credit_line": ProblemKind(409, "A credit-line offer is opened as a line"),
    "credit_reporting_consent_required": ProblemKind(
        403, "A credit line needs a live consent to credit-bureau reporting"
    ),
    "credit_line_exists": ProblemKind(409, "The person already has a credit line"),
    "credit_line_not_found": ProblemKind(404, "No credit line has this id"),
    "credit_line_not_active": ProblemKind(409, "The credit line is not active"),
    "credit_line_not_repaid": ProblemKind(409, "The credit line is not repaid"),
    "credit_line_unavailable": ProblemKind(503, "Credit lines are not offered here"),
    "line_status_invalid": ProblemKind(422, "A line is frozen, active or closed"),
    "statement_day_invalid": ProblemKind(422, "The statement day is not valid"),
    "line_statement_not_found": ProblemKind(404, "The credit line has no such statement"),
    "statement_not_convertible": ProblemKind(409, "The bill cannot be turned into instalments"),
    "months_invalid": ProblemKind(422, "Instalments are not offered over this many months"),
    "instalment_price_refused": ProblemKind(409, "The instalment price is above the cap"),
    "page_size_invalid": ProblemKind(422, "The page size is not valid"),
    "cursor_invalid": ProblemKind(422, "The page cursor is not valid"),
    "statement_past_due": ProblemKind(409, "The bill is past its due date"),
    "credit_line_past_due": ProblemKind(409, "The credit line is past due"),
    "credit_line_written_off": ProblemKind(409, "The credit line is written off"),
    "line_not_written_off": ProblemKind(409, "Only a written-off credit line takes recoveries"),
    "payment_codes_unavailable": ProblemKind(503, "Payment codes are not configured"),
    "payee_lookup_unavailable": ProblemKind(503, "Payee lookup is not configured"),
    "payee_not_found": ProblemKind(404, "No customer has this phone number"),
    "payee_name_mismatch": ProblemKind(422, "The payee's name is not the one given"),
    "payment_codes_exhausted": ProblemKind(503, "No payment-code slot is free"),
    "payment_code_used": ProblemKind(409, "The payment code was already used"),
    "payment_code_malformed": ProblemKind(422, "This is not a payment code"),
    "payment_code_invalid": ProblemKind(422, "The payment code is not valid"),
    "payment_code_expired": ProblemKind(410, "The payment code has expired"),
    "invalid_transaction": ProblemKind(422, "A transaction is not valid for AML reporting"),
    "invalid_thresholds": ProblemKind(500, "The AML thresholds are not valid"),
    "threshold_missing": ProblemKind(422, "No AML threshold is set for this currency"),
    "invalid_calendar": ProblemKind(500, "The working-day calendar is not valid"),
    "too_many_transactions": ProblemKind(413, "Too many transactions for one AML run"),
    "invalid_detector_parameter": ProblemKind(500, "An AML detector parameter is not valid"),
    "invalid_case": ProblemKind(422, "An AML case field is not valid"),
    "case_closed": ProblemKind(409, "The AML case is closed"),
    "case_not_assigned": ProblemKind(409, "The AML case must be assigned first"),
    "disposition_required": ProblemKind(422, "Closing a case needs a disposition"),
    "invalid_disposition": ProblemKind(422, "The disposition is not one of the allowed ones"),
    "invalid_actor": ProblemKind(422, "The actor is not valid"),
    "note_too_long": ProblemKind(422, "The note is too long"),
    "too_many_notes": ProblemKind(409, "The case holds too many notes"),
    "too_many_alerts": ProblemKind(413, "Too many alerts for one case"),
    "invalid_dataset": ProblemKind(422, "The dataset is not valid"),
    "invalid_rail_input": ProblemKind(422, "A top-up or withdrawal field is not valid"),
    "invalid_rail_transition": ProblemKind(409, "The top-up or withdrawal cannot change so"),
    "rail_callback_mismatch": ProblemKind(409, "The callback does not match its request"),
    "capacity_exceeded": ProblemKind(503, "The clearing house is at capacity"),
    "settlement_file_rejected": ProblemKind(422, "The settlement file is not valid"),
    "settlement_file_too_large": ProblemKind(413, "The settlement file is too large"),
    "settlement_file_malformed": ProblemKind(422, "The settlement file is malformed"),
    "settlement_header_invalid": ProblemKind(422, "The settlement file's header is not valid"),
    "settlement_trailer_missing": ProblemKind(422, "The settlement file has no trailer"),
    "settlement_record_invalid": ProblemKind(422, "A settlement record is not valid"),
    "settlement_line_count_mismatch": ProblemKind(422, "The settlement file's count is wrong"),
    "settlement_total_mismatch": ProblemKind(422, "The settlement file's total is wrong"),
    "settlement_checksum_mismatch": ProblemKind(422, "The settlement file's checksum is wrong"),
    "clearing_simulator_invalid": ProblemKind(500, "The simulated clearing house is misconfigured"),
    "reconciliation_duplicate_ledger_entry": ProblemKind(
        500, "The ledger holds two entries for one rail request"
    ),
    "reconciliation_input_too_large": ProblemKind(413, "Too many records to reconcile at once"),
    "client_exists": ProblemKind(409, "A machine client with this id exists"),
    "device_conflict": ProblemKind(409, "The device is registered differently"),
    "insufficient_scope": ProblemKind(403, "The credentials lack a scope this needs"),
    "invalid_client": ProblemKind(401, "The client credentials are not valid"),
    "token_invalid": ProblemKind(401, "The access token is not valid"),
    "token_expired": ProblemKind(401, "The access token has expired"),
    "token_not_yet_valid": ProblemKind(401, "The access token is not valid yet"),
    "token_revoked": ProblemKind(401, "The access token was revoked"),
    "signing_key_unavailable": ProblemKind(503, "The token signing key is not configured"),
    "secrets_key_unavailable": ProblemKind(503, "The secrets key is not configured"),
    "secret_unreadable": ProblemKind(500, "A stored secret could not be read"),
    "revocation_state_stale": ProblemKind(503, "Token revocations could not be refreshed"),
    # The server.
    "internal_error": ProblemKind(500, "Internal error"),
    # The configured rulebook is the server's, never the client's: if it does not load, the
    # server is misconfigured.
    "rulebook_invalid": ProblemKind(500, "The configured rulebook is invalid"),
    "service_unavailable": ProblemKind(503, "The service is temporarily unavailable"),
}

# Status codes that Starlette itself raises (routing, body decoding) and the code each becomes.
_STARLETTE_STATUS_CODES: Final[Mapping[int, str]] = {
    400: "malformed_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}

# Location names FastAPI puts first in a validation error's `loc`.
_LOCATION_NAMES: Final = frozenset({"body", "query", "path", "header", "cookie"})

# How long a client should wait before retrying after `service_unavailable`, in seconds.
_RETRY_AFTER_S: Final = 1


def problem_type(code: str) -> str:
    """The stable URI that identifies a problem code."""
    return PROBLEM_TYPE_BASE + code


class ApiProblem(Exception):
    """Raised inside the API for a condition only the API knows about (authentication, say).

    The ledger's own conditions are never wrapped in this: the ledger raises its errors and
    `install_problem_handlers` maps them by their `code`.
    """

    def __init__(self, code: str, detail: str, headers: Mapping[str, str] | None = None) -> None:
        if code not in PROBLEMS:
            raise ValueError(f"{code!r} is not a problem code listed in PROBLEMS")
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    code: str,
    detail: str,
    instance: str,
    *,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    """Build the problem+json response for `code` (which must be listed in PROBLEMS)."""
    kind = PROBLEMS[code]
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }
    if extensions:
        body.update(extensions)
    return ProblemResponse(body, status_code=kind.status, headers=dict(headers or {}))


# -- request validation ---------------------------------------------------------------------


def _error_cause(error: Mapping[str, Any]) -> object:
    """The exception a validator raised for this error, if a validator raised one."""
    context = error.get("ctx")
    return context.get("error") if isinstance(context, Mapping) else None


def _validation_code(errors: Sequence[Mapping[str, Any]]) -> str:
    """The most specific problem code that describes every one of the validation errors.

    A request whose only faults are malformed ids gets `id_invalid` and one whose only faults are
    bad amounts gets `amount_invalid`, the same codes those faults get wherever else they are
    found, so a client can branch on the code without parsing messages; a query string with
    out-of-range parameters gets `invalid_query`, like the ledger's own query checks. A request
    with faults of several kinds gets the general `invalid_request`.
    """
    if not errors:
        return "invalid_request"
    causes = [_error_cause(error) for error in errors]
    if all(isinstance(cause, InvalidId) for cause in causes):
        return "id_invalid"
    if all(isinstance(cause, MoneyError) for cause in causes):
        return "amount_invalid"
    if all(tuple(error.get("loc", ()))[:1] == ("query",) for error in errors):
        return "invalid_query"
    return "invalid_request"


def _public_location(location: Sequence[Any], field_names: frozenset[str]) -> list[str | int]:
    """The error's location with every client-chosen name (a metadata key, say) masked.

    Positions in lists and the names of our own fields are kept; any other name came from the
    client's document and may be personal data, so it is replaced by "*".
    """
    public: list[str | int] = []
    for part in location:
        known = isinstance(part, str) and (part in field_names or part in _LOCATION_NAMES)
        public.append(part if isinstance(part, int) or known else "*")
    return public


def _collect_field_names(app: FastAPI) -> frozenset[str]:
    """Every parameter and request-model field name the app declares, for `_public_location`."""
    names: set[str] = set()
    schema = app.openapi()
    for component in schema.get("components", {}).get("schemas", {}).values():
        names.update(component.get("properties", {}).keys())
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict):
                names.update(parameter["name"] for parameter in operation.get("parameters", ()))
    return frozenset(names)


# -- the handlers ---------------------------------------------------------------------------


def install_problem_handlers(app: FastAPI) -> None:
    """Register the exception handlers that turn every error into a problem response.

    Starlette calls each handler only with exceptions of the class it was registered for, which
    is what the `cast`s below rely on.
    """
    field_names: frozenset[str] | None = None

    def known_field_names() -> frozenset[str]:
        # Computed on first use, when every route has been added to the app.
        nonlocal field_names
        if field_names is None:
            field_names = _collect_field_names(app)
        return field_names

    def validation_failed(request: Request, exc: Exception) -> ProblemResponse:
        errors = list(cast(RequestValidationError, exc).errors())
        code = _validation_code(errors)
        names = known_field_names()
        listed = [
            {
                "location": _public_location(error.get("loc", ()), names),
                "message": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
            for error in errors
        ]
        noun = "problem" if len(listed) == 1 else "problems"
        return problem_response(
            code,
            f"the request has {len(listed)} {noun}; see `errors`",
            request.url.path,
            extensions={"errors": listed},
        )

    def ledger_refused(request: Request, exc: Exception) -> ProblemResponse:
        exc = cast(LedgerError, exc)
        if exc.code not in PROBLEMS:
            # A ledger error without a mapping is a programming error here, not the client's.
            logger.error("ledger error code %r has no problem mapping", exc.code, exc_info=exc)
            return _internal_error(request)
        return problem_response(exc.code, exc.message, request.url.path)

    def identity_refused(request: Request, exc: Exception) -> ProblemResponse:
        exc = cast(IdentityError, exc)
        if exc.code not in PROBLEMS:
            logger.error("identity error code %r has no problem mapping", exc.code)
            return _internal_error(request)
        # Identity messages never carry personal data (see tianping.identity.errors).
        headers: dict[str, str] = {}
        wait_ns = getattr(exc, "retry_after_ns", None)
        if isinstance(wait_ns, int) and wait_ns > 0:
            headers["Retry-After"] = str(max(1, -(-wait_ns // 1_000_000_000)))
        return problem_response(exc.code, exc.message, request.url.path, headers=headers)

    def coded_refusal(request: Request, exc: Exception) -> ProblemResponse:
        # Payments' refusals (and those of its QR, clearing and AML parts) carry a stable `code`
        # and a message without personal data, like the identity context's.
        code = str(getattr(exc, "code", ""))
        if code not in PROBLEMS:
            logger.error("refusal code %r has no problem mapping", code)
            return _internal_error(request)
        return problem_response(code, str(exc), request.url.path)

    def id_refused(request: Request, exc: Exception) -> ProblemResponse:
        return problem_response("id_invalid", str(exc), request.url.path)

    def amount_refused(request: Request, exc: Exception) -> ProblemResponse:
        return problem_response("amount_invalid", str(exc), request.url.path)

    def api_problem(request: Request, exc: Exception) -> ProblemResponse:
        exc = cast(ApiProblem, exc)
        return problem_response(exc.code, exc.detail, request.url.path, headers=exc.headers)

    def starlette_error(request: Request, exc: Exception) -> ProblemResponse:
        exc = cast(StarletteHTTPException, exc)
        code = _STARLETTE_STATUS_CODES.get(exc.status_code)
        if code is None:
            logger.error(
                "HTTP status %d raised by the framework has no problem mapping", exc.status_code
            )
            return _internal_error(request)
        return problem_response(code, str(exc.detail), request.url.path, headers=exc.headers)

    def timed_out(request: Request, exc: Exception) -> ProblemResponse:
        # Raised when no database connection frees up in time or the group committer does not
        # answer in time. A write may still commit afterwards, so the advice is to retry with the
        # same ids: the ledger answers a replay of a committed event with `exists`.
        logger.warning("timed out answering %s %s: %s", request.method, request.url.path, exc)
        return problem_response(
            "service_unavailable",
            "the ledger did not answer in time; retry later with the same ids (a write that did "
            "commit is then answered with `exists`)",
            request.url.path,
            headers={"Retry-After": str(_RETRY_AFTER_S)},
        )

    def database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
        # The database refused or dropped the connection, or SQLite stayed locked past its busy
        # timeout. Nothing was committed by this request (the transaction rolled back), so a
        # retry is safe; the cause goes to the operators' log, not to the client.
        logger.error(
            "database unavailable answering %s %s: %s", request.method, request.url.path, exc
        )
        return problem_response(
            "service_unavailable",
            "the ledger's database is unavailable; retry later with the same ids",
            request.url.path,
            headers={"Retry-After": str(_RETRY_AFTER_S)},
        )

    def unexpected(request: Request, exc: Exception) -> ProblemResponse:
        # The traceback goes to the log for the operators; the request body never does, and the
        # client learns nothing about the server's internals.
        logger.error(
            "unexpected error answering %s %s", request.method, request.url.path, exc_info=exc
        )
        return _internal_error(request)

    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(LedgerError, ledger_refused)
    app.add_exception_handler(IdentityError, identity_refused)
    for refusal in (PaymentError, QrError, ClearingError, AmlError, RulesError, LendingRefusal):
        app.add_exception_handler(refusal, coded_refusal)
    app.add_exception_handler(InvalidId, id_refused)
    app.add_exception_handler(MoneyError, amount_refused)
    app.add_exception_handler(ApiProblem, api_problem)
    app.add_exception_handler(StarletteHTTPException, starlette_error)
    app.add_exception_handler(TimeoutError, timed_out)
    app.add_exception_handler(sqlite3.OperationalError, database_unavailable)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(Exception, unexpected)


def _internal_error(request: Request) -> ProblemResponse:
    return problem_response(
        "internal_error",
        "the server could not answer this request; the error has been logged",
        request.url.path,
    )


# -- the request body limit -----------------------------------------------------------------


class RequestBodyLimit:
    """ASGI middleware that refuses a request body over `max_bytes` before anything parses it.

    A declared Content-Length over the limit is refused at once, without reading the body. A body
    without a declared length (chunked transfer encoding) is read up to the limit and refused as
    soon as it passes it. A body within the limit is buffered and handed to the application
    whole, which costs nothing extra because FastAPI reads the whole body before parsing anyway.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = REQUEST_BODY_BYTES_MAX) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # The client has gone; there is nobody to answer.
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            # After the body, the application only waits for the client to disconnect.
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            "payload_too_large",
            f"a request body holds at most {self.max_bytes} bytes",
            str(scope.get("path", "")),
            # The unread rest of the body makes the connection unusable for another request.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            # The HTTP server has already refused a malformed Content-Length; a value that is
            # still not a number is left to the streaming count.
            return int(value) if value.isdigit() else None
    return None
