"""Payments over HTTP, under /v1/payments.

A customer pays from their own wallet: the payer of `POST /v1/payments` is the caller (the
operator may name any payer and, acting for one as a checkout backend, state the factors of
the payer's session in `payer_auth_factors`), and the session's authentication strength (its
factors) is what the daily caps of P2 read; after a `step_up_required` answer the customer
proves a second factor at `/v1/identity/step-up` and calls `POST /v1/payments/{id}/resume` with
the stronger session. A merchant makes its own QR codes and orders and refunds payments made
to it, registers the bank account held in its own business name, and pays its free balance (an
SME loan's proceeds, say; settlement pays out takings only) out to it through the clearing
house. A payment is readable by its payer and its payee; supervisors and auditors read
payments and the day's aggregates; the operator runs settlement, reconciliation, the clearing
house's callbacks and the safeguarding check.

Single payments go through the process's `PaymentBatcher`, so concurrent requests share one
transaction and one durable commit. Amounts are integers of minor units with their currency.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Collection
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic import Field as PydanticField
from starlette.concurrency import run_in_threadpool

from tianping.api.identity_routes import PartyIdPath, PartyIdText
from tianping.api.ledger_routes import ServicesDependency, get_services
from tianping.api.problems import ApiProblem
from tianping.api.schemas import DAY_MAX, DAY_MIN, PROBLEM_RESPONSES
from tianping.api.security import (
    FILTERED_BY_HANDLER,
    PARTY_IN_PATH,
    Access,
    OwnershipRule,
    acting_party,
    require,
)
from tianping.payments.aml.large_value import to_csv, to_json
from tianping.payments.aml_service import AmlService
from tianping.payments.model import AMOUNT_MAX, PaymentCommand, PaymentError, PaymentOutcome
from tianping.payments.payment_codes import STEP_SECONDS
from tianping.payments.qr import render_png, render_svg
from tianping.payments.service import PaymentsService

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/payments",
    tags=["payments"],
    responses=PROBLEM_RESPONSES,
)


def _payment_parties(request: Request) -> Collection[str]:
    payment = get_services(request).payments.payment(str(request.path_params["payment_id"]))
    return (payment.payer_id, payment.payee_id)


def _rail_party(request: Request) -> Collection[str]:
    rail = get_services(request).payments.rail_request(str(request.path_params["request_id"]))
    return (rail.party_id,)


def _payee(request: Request) -> Collection[str]:
    payment = get_services(request).payments.payment(str(request.path_params["payment_id"]))
    return (payment.payee_id,)


# Who may see a payment: its payer and its payee. Someone else's payment answers as a missing one.
PAYMENT_IN_PATH: Final = OwnershipRule("payer or payee", _payment_parties, "payment_not_found")
PAYEE_OF_PAYMENT: Final = OwnershipRule("payee of the payment", _payee, "payment_not_found")
RAIL_IN_PATH: Final = OwnershipRule("rail request's party", _rail_party, "rail_request_not_found")

Payer = Annotated[
    Access, Depends(require("payments:write", own="payments:pay:own", owner=FILTERED_BY_HANDLER))
]
PayerOfPayment = Annotated[
    Access, Depends(require("payments:write", own="payments:pay:own", owner=PAYMENT_IN_PATH))
]
WalletHolder = Annotated[
    Access, Depends(require("payments:write", own="payments:pay:own", owner=PARTY_IN_PATH))
]
WalletReader = Annotated[
    Access, Depends(require("payments:read", own="payments:read:own", owner=PARTY_IN_PATH))
]
MerchantItself = Annotated[
    Access, Depends(require("payments:write", own="payments:merchant:own", owner=PARTY_IN_PATH))
]
# A merchant's static code is public (it is printed at the till): readers may fetch any.
MerchantCodeReader = Annotated[
    Access, Depends(require("payments:read", own="payments:merchant:own", owner=PARTY_IN_PATH))
]
PayeeOfPayment = Annotated[
    Access,
    Depends(require("payments:write", own="payments:merchant:own", owner=PAYEE_OF_PAYMENT)),
]
_READ_PAYMENT: Final = [
    Depends(require("payments:read", own="payments:read:own", owner=PAYMENT_IN_PATH))
]
_READ_RAIL: Final = [Depends(require("payments:read", own="payments:read:own", owner=RAIL_IN_PATH))]
_OPERATE: Final = [Depends(require("payments:write"))]
_SUPERVISE: Final = [Depends(require("payments:read"))]

PaymentId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]
PaymentIdPath = Annotated[str, PaymentId]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# Money is a JSON integer of minor units: strict, so that `107.0` or `"107"` is refused rather
# than quietly converted (a client that sends either has a float or a string in its money path).
Amount = Annotated[int, Strict(), PydanticField(ge=1, le=AMOUNT_MAX)]


def _business_day(text: str) -> str:
    """A business date names a day of the calendar that the platform acts on (`schemas.Day`):
    `2024-02-30` and `0000-01-01` have the shape of one but are not, and the services that read
    it as a date would fail on them."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        # Python's own message repeats the text; a problem document never repeats the input.
        raise ValueError("not a calendar date (YYYY-MM-DD)") from None
    if not DAY_MIN <= day <= DAY_MAX:
        raise ValueError(f"a business date lies from {DAY_MIN} to {DAY_MAX}")
    return text


BusinessDate = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$"),
    AfterValidator(_business_day),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "description": f"A day from {DAY_MIN} to {DAY_MAX}.",
        }
    ),
]
DeviceId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MerchantName = Annotated[str, StringConstraints(pattern=r"^[ -~]{1,25}$")]
# The operator's own session counts as this many factors; a payer session it states on a
# payer's behalf has from one factor up to it.
PAYER_AUTH_FACTORS_MAX: Final = 2
PayerAuthFactors = Annotated[int, PydanticField(ge=1, le=PAYER_AUTH_FACTORS_MAX)]


def _service(services: ServicesDependency) -> PaymentsService:
    return services.payments


Payments = Annotated[PaymentsService, Depends(_service)]


def _session(access: Access, stated_factors: int | None = None) -> dict[str, Any]:
    """The payer session's strength, as the rules read it (P2).

    A customer's is their token's, and they may not state another. The operator, when it acts
    for a payer (a checkout backend paying for the customer in front of it), may state the
    factors that customer's session was authenticated with; without it the operator's own
    session counts, as two factors. The operator holds every scope and may already pay as
    two factors for anyone, so what it states can only make the rules stricter, never looser.
    """
    if stated_factors is not None:
        if not access.unrestricted:
            raise ApiProblem(
                "forbidden",
                "payer_auth_factors is for the operator acting for a payer; a customer's "
                "session strength is their token's",
            )
        return {"auth_factors": stated_factors}
    return {"auth_factors": len(access.principal.factors) if access.principal.factors else 2}


# The outcome's fields, read once: its values are flat (text, numbers, a tuple of reason codes),
# so a field-by-field dict is what `dataclasses.asdict` makes, without its deep copy, which was
# a sixth of the HTTP layer's cost of a payment.
_OUTCOME_FIELDS: Final = tuple(field.name for field in dataclasses.fields(PaymentOutcome))


def _outcome(outcome: PaymentOutcome) -> dict[str, Any]:
    document = {name: getattr(outcome, name) for name in _OUTCOME_FIELDS}
    for name in ("decision_id", "transfer_id"):
        if document[name] is not None:
            document[name] = str(document[name])
    document["reasons"] = list(outcome.reasons)
    return document


# -- models --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WalletRequest(_Strict):
    payment_account_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    currency: Currency = "CNY"


class MerchantRequest(_Strict):
    category_code: Annotated[str, StringConstraints(pattern=r"^\d{4}$")]
    discount_bps: Annotated[int, PydanticField(ge=0, le=1_000)]
    currency: Currency = "CNY"


class OrderRequest(_Strict):
    reference: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,24}$")]
    amount: Amount
    merchant_name: MerchantName
    lifetime_s: Annotated[int, PydanticField(ge=30, le=3_600)] = 300


class PayRequest(_Strict):
    payment_id: PaymentId
    payee_id: PartyIdText
    amount: Amount
    currency: Currency = "CNY"
    kind: Literal["p2p", "merchant"] = "p2p"
    payer_id: PartyIdText | None = None
    device_id: DeviceId = "unknown-device"
    # The payee's full name as the payer typed it to confirm (P2P); checked, never stored.
    payee_name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    # Where the money comes from: the wallet unless the payer explicitly chooses their credit
    # line for a merchant payment (L6). The request cannot say the source was pre-selected:
    # what arrives here is always the payer's own choice.
    funding_source: Literal["balance", "credit_line"] = "balance"
    # The payer session's authentication factors, stated only by the operator acting for the
    # payer (a checkout backend); see `_session`.
    payer_auth_factors: PayerAuthFactors | None = None


class PayeeLookup(_Strict):
    phone: Annotated[str, StringConstraints(min_length=5, max_length=20)] | None = None
    party_id: PartyIdText | None = None


class QrPayRequest(_Strict):
    payment_id: PaymentId
    payload: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    amount: Amount | None = None
    payer_id: PartyIdText | None = None
    device_id: DeviceId = "unknown-device"
    # The payer session's authentication factors, stated only by the operator acting for the
    # payer (a checkout backend); see `_session`.
    payer_auth_factors: PayerAuthFactors | None = None


class RefundRequest(_Strict):
    refund_id: PaymentId
    amount: Amount


class RailRequestBody(_Strict):
    request_id: PaymentId
    direction: Literal["top_up", "withdrawal"]
    card_fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    amount: Amount
    currency: Currency = "CNY"


# -- paying --------------------------------------------------------------------------------
# Declared first: routes are matched in declaration order, and paying is the busiest route.


@router.post("")
async def pay(body: PayRequest, access: Payer, services: ServicesDependency) -> dict[str, Any]:
    """Pay a person or a merchant from the caller's wallet, or a merchant on the caller's credit
    line when the request chooses `funding_source: "credit_line"`."""
    command = PaymentCommand(
        body.payment_id,
        acting_party(access, body.payer_id),
        body.payee_id,
        body.amount,
        body.currency,
        kind=body.kind,
        device_id=body.device_id,
        payee_name=body.payee_name,
        funding_source=body.funding_source,
        **_session(access, body.payer_auth_factors),
    )
    if command.funding_source == "credit_line":
        # Paying on credit takes the slower path of its own (the draw on the line runs in the
        # payment's unit of work), so the batched balance payments keep their speed.
        (answer,) = await run_in_threadpool(services.payments.pay, [command])
        if isinstance(answer, PaymentError):
            raise answer
        return _outcome(answer)
    # A coroutine that waits for the batcher on the event loop: a plain handler would hold a
    # worker thread, and pay a hop there and back, for a request that only waits.
    batcher = services.built_payment_batcher
    if batcher is None:
        # The first payment builds the service (and trains the risk model) off the loop.
        batcher = await run_in_threadpool(lambda: services.payment_batcher)
    return _outcome(await batcher.pay_async(command))


# -- wallets and merchants -----------------------------------------------------------------


@router.post("/parties/{party_id}/wallet", status_code=201)
def open_wallet(
    party_id: PartyIdPath, body: WalletRequest, access: WalletHolder, payments: Payments
) -> dict[str, Any]:
    """Open the person's wallet on their payment account (opened through identity)."""
    wallet = payments.open_wallet(party_id, body.payment_account_id, body.currency)
    return dataclasses.asdict(wallet) | {"ledger_account_id": str(wallet.ledger_account_id)}


@router.get("/parties/{party_id}/wallet")
def get_wallet(
    party_id: PartyIdPath,
    access: WalletReader,
    payments: Payments,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "CNY",
) -> dict[str, Any]:
    """The wallet with its available balance."""
    wallet = payments.wallet(party_id, currency)
    return dataclasses.asdict(wallet) | {
        "ledger_account_id": str(wallet.ledger_account_id),
        "available": payments.balance(party_id, currency),
    }


@router.post("/merchants/{party_id}", status_code=201, dependencies=_OPERATE)
def register_merchant(
    party_id: PartyIdPath, body: MerchantRequest, payments: Payments
) -> dict[str, Any]:
    """Register a merchant (a merchant party of identity) with its category and discount rate."""
    merchant = payments.register_merchant(
        party_id, body.category_code, body.discount_bps, body.currency
    )
    return dataclasses.asdict(merchant) | {"ledger_account_id": str(merchant.ledger_account_id)}


def _qr_response(payload: str, image: str | None) -> Response | dict[str, Any]:
    if image == "png":
        return Response(render_png(payload), media_type="image/png")
    if image == "svg":
        return Response(render_svg(payload), media_type="image/svg+xml")
    return {"payload": payload}


@router.get("/merchants/{party_id}/qr", response_model=None)
def static_qr(
    party_id: PartyIdPath,
    access: MerchantCodeReader,
    payments: Payments,
    merchant_name: Annotated[str, Query(pattern=r"^[ -~]{1,25}$")],
    image: Annotated[Literal["png", "svg"] | None, Query()] = None,
) -> Response | dict[str, Any]:
    """The merchant's static QR code (EMVCo merchant-presented; the payer types the amount)."""
    return _qr_response(payments.static_qr(party_id, merchant_name), image)


@router.post("/merchants/{party_id}/orders", status_code=201, response_model=None)
def create_order(
    party_id: PartyIdPath,
    body: OrderRequest,
    access: MerchantItself,
    payments: Payments,
    image: Annotated[Literal["png", "svg"] | None, Query()] = None,
) -> Response | dict[str, Any]:
    """An order and its dynamic QR code (amount inside, expiring)."""
    order, payload = payments.create_order(
        party_id, body.merchant_name, body.reference, body.amount, body.lifetime_s
    )
    if image is not None:
        return _qr_response(payload, image)
    return {"payload": payload, "expires_at": order.expires_at, "amount": order.amount}


# -- merchant payouts -----------------------------------------------------------------------


class PayoutAccountRequest(_Strict):
    # The number is fingerprinted with the identity context's key and dropped; it is never
    # stored, logged or echoed.
    account_number: Annotated[str, StringConstraints(min_length=8, max_length=40)]
    # The holder of the account as the bank reports it: the business's unified social credit
    # code, which must be the merchant's registration number (P4 for a business).
    holder_registration_number: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{18}$")]


class PayoutRequest(_Strict):
    request_id: PaymentId
    # Omitted: the whole free balance.
    amount: Amount | None = None
    currency: Currency = "CNY"


@router.put("/merchants/{party_id}/payout-account")
def register_payout_account(
    party_id: PartyIdPath,
    body: PayoutAccountRequest,
    access: MerchantItself,
    services: ServicesDependency,
) -> dict[str, Any]:
    """Register the bank account the merchant's payouts go to: held by the registered business
    itself. Only its keyed fingerprint and last four digits are kept; one account per merchant."""
    if services.identity is None:
        raise ApiProblem(
            "fingerprint_key_unavailable", "bank accounts are fingerprinted with identity's key"
        )
    account = services.identity.fingerprint_key.bank_account(body.account_number)
    registered = services.payments.register_payout_account(
        party_id, account.fingerprint, account.last_four, body.holder_registration_number
    )
    return dataclasses.asdict(registered)


@router.get("/merchants/{party_id}/payout-account")
def get_payout_account(
    party_id: PartyIdPath, access: MerchantCodeReader, payments: Payments
) -> dict[str, Any]:
    """The merchant's payout account: fingerprint and last four digits."""
    return dataclasses.asdict(payments.payout_account(party_id))


@router.get("/merchants/{party_id}/free-balance")
def free_balance(
    party_id: PartyIdPath,
    access: MerchantCodeReader,
    payments: Payments,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "CNY",
) -> dict[str, Any]:
    """What the merchant's settlement account holds beyond what its coming settlements pay out
    (loan proceeds, released takings): what a payout or a loan repayment may take."""
    return {
        "merchant_id": party_id,
        "currency": currency,
        "free_balance": payments.merchant_free_balance(party_id, currency),
    }


@router.post("/merchants/{party_id}/payouts", status_code=202)
def request_payout(
    party_id: PartyIdPath, body: PayoutRequest, access: MerchantItself, payments: Payments
) -> dict[str, Any]:
    """Pay out the merchant's free balance (all of it without `amount`) to its payout account
    through the clearing house. Held on the ledger at once; the clearing house's callback posts
    or voids it (`GET .../payouts/{request_id}`). Idempotent by `request_id`."""
    row = payments.request_merchant_payout(body.request_id, party_id, body.amount, body.currency)
    return _rail(row)


@router.get("/merchants/{party_id}/payouts/{request_id}")
def get_payout(
    party_id: PartyIdPath,
    request_id: PaymentIdPath,
    access: MerchantCodeReader,
    payments: Payments,
) -> dict[str, Any]:
    """One of the merchant's payouts and its state."""
    return _rail(payments.merchant_payout(party_id, request_id))


# -- checkout funded from a bound card ----------------------------------------------------


class CardCheckoutRequest(_Strict):
    payment_id: PaymentId
    merchant_id: PartyIdText
    amount: Amount
    card_fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    payer_id: PartyIdText | None = None


@router.post("/card-checkouts", status_code=202)
def card_checkout(body: CardCheckoutRequest, access: Payer, payments: Payments) -> dict[str, str]:
    """Pay a merchant from the payer's own bound card through the clearing house; the payment
    completes when the bank confirms (`GET /card-checkouts/{payment_id}`, then the payment)."""
    state = payments.checkout_with_card(
        body.payment_id,
        acting_party(access, body.payer_id),
        body.merchant_id,
        body.amount,
        body.card_fingerprint,
    )
    return {"payment_id": body.payment_id, "state": state}


PaymentsReader = Annotated[
    Access,
    Depends(require("payments:read", own="payments:read:own", owner=FILTERED_BY_HANDLER)),
]


@router.get("/card-checkouts/{payment_id}")
def card_checkout_state(
    payment_id: PaymentIdPath, access: PaymentsReader, payments: Payments
) -> dict[str, str]:
    """A card checkout's state: pending, paid or failed. Someone else's answers as missing."""
    payer, state = payments.card_checkout_state(payment_id)
    if not access.owns(payer):
        raise ApiProblem("payment_not_found", "no card checkout of yours has this id")
    return {"payment_id": payment_id, "state": state}


# -- customer-presented payment codes ------------------------------------------------------


class PaymentCodeRequest(_Strict):
    payment_id: PaymentId
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{18}$")]
    amount: Amount
    merchant_id: PartyIdText | None = None


MerchantActing = Annotated[
    Access,
    Depends(require("payments:write", own="payments:merchant:own", owner=FILTERED_BY_HANDLER)),
]


@router.post("/parties/{party_id}/payment-code", status_code=201)
def enrol_payment_code(
    party_id: PartyIdPath, access: WalletHolder, payments: Payments
) -> dict[str, Any]:
    """Issue the person's payment-code secret (shown this once, for their app) and its slot;
    an earlier enrolment stops working."""
    credential = payments.enrol_payment_code(party_id)
    return {
        "slot": credential.slot,
        "secret": base64.b64encode(credential.secret).decode(),
        "step_seconds": STEP_SECONDS,
    }


@router.post("/payment-code")
def pay_by_payment_code(
    body: PaymentCodeRequest, access: MerchantActing, services: ServicesDependency
) -> dict[str, Any]:
    """A merchant charges a customer by scanning the code their app shows (one use, about a
    minute of validity)."""
    merchant = acting_party(access, body.merchant_id)
    command = services.payments.payment_code_command(
        body.payment_id, merchant, body.code, body.amount
    )
    return _outcome(services.payment_batcher.pay(command))


# -- payees and QR codes ------------------------------------------------------------------


@router.post("/payees")
def find_payee(body: PayeeLookup, access: Payer, payments: Payments) -> dict[str, str]:
    """The payee a phone number or id names, with its masked name ("**明") for the payer to
    confirm before paying; the number travels in the body, never in a URL."""
    party_id, masked = payments.find_payee(phone=body.phone, party_id=body.party_id)
    return {"party_id": party_id, "masked_name": masked}


@router.post("/qr")
def pay_by_qr(body: QrPayRequest, access: Payer, services: ServicesDependency) -> dict[str, Any]:
    """Pay a merchant's QR code: static (type the amount) or dynamic (its order's amount)."""
    command = services.payments.qr_command(
        body.payment_id,
        acting_party(access, body.payer_id),
        body.payload,
        body.amount,
        device_id=body.device_id,
        **_session(access, body.payer_auth_factors),
    )
    return _outcome(services.payment_batcher.pay(command))


@router.post("/{payment_id}/resume")
def resume(payment_id: PaymentIdPath, access: PayerOfPayment, payments: Payments) -> dict[str, Any]:
    """Decide a `step_up_required` payment again with the caller's (stepped-up) session."""
    if not access.unrestricted and payments.payment(payment_id).payer_id != access.party:
        raise ApiProblem("payment_not_found", "no payment of yours has this id")
    factors = _session(access)["auth_factors"]
    return _outcome(payments.resume(payment_id, factors))


@router.get("/{payment_id}", dependencies=_READ_PAYMENT)
def get_payment(payment_id: PaymentIdPath, payments: Payments) -> dict[str, Any]:
    """One payment with its outcome, rule decision id and risk decision."""
    return _outcome(payments.payment(payment_id))


@router.post("/{payment_id}/refunds", status_code=201)
def refund(
    payment_id: PaymentIdPath, body: RefundRequest, access: PayeeOfPayment, payments: Payments
) -> dict[str, Any]:
    """Refund part or all of a payment to its payer; never more than the payment in total."""
    outcome = payments.refund(body.refund_id, payment_id, body.amount)
    return dataclasses.asdict(outcome) | {"transfer_id": str(outcome.transfer_id)}


# -- bank rails ----------------------------------------------------------------------------


@router.post("/rails", status_code=202)
def request_rail(
    body: RailRequestBody, access: Payer, payments: Payments, party_id: PartyIdText | None = None
) -> dict[str, Any]:
    """Top up from, or withdraw to, the caller's own bound card through the clearing house.

    Answers at once with the request held on the ledger; the outcome arrives with the clearing
    house's callback (see `GET /rails/{request_id}`).
    """
    row = payments.request_rail(
        body.request_id,
        body.direction,
        acting_party(access, party_id),
        body.card_fingerprint,
        body.amount,
        body.currency,
    )
    return _rail(row)


def _rail(row: Any) -> dict[str, Any]:
    document = dataclasses.asdict(row)
    document["hold_transfer_id"] = str(row.hold_transfer_id)
    document.pop("digest")
    return document


@router.get("/rails/{request_id}", dependencies=_READ_RAIL)
def get_rail(request_id: PaymentIdPath, payments: Payments) -> dict[str, Any]:
    return _rail(payments.rail_request(request_id))


@router.post("/clearing/callbacks", dependencies=_OPERATE)
def process_callbacks(payments: Payments) -> list[dict[str, Any]]:
    """Pull and apply the clearing house's callbacks (post, void or note each); time out the
    requests whose callbacks never came."""
    return [dataclasses.asdict(report) for report in payments.process_callbacks()]


# -- operations ----------------------------------------------------------------------------


@router.post("/settlements/{business_date}", dependencies=_OPERATE)
def settle(business_date: BusinessDate, payments: Payments) -> list[dict[str, Any]]:
    """Settle every merchant's takings of a day, net of its discount (T+1); idempotent."""
    report = payments.settle_merchants(business_date)
    return [
        dataclasses.asdict(row)
        | {"transfer_id": None if row.transfer_id is None else str(row.transfer_id)}
        for row in report.settlements
    ]


@router.post("/reconciliations/{business_date}", dependencies=_OPERATE)
def reconcile(business_date: BusinessDate, payments: Payments) -> dict[str, Any]:
    """The clearing house's settlement file of a day against the ledger; every break listed."""
    report = payments.reconcile(business_date)
    return {
        "business_date": business_date,
        "clean": report.is_clean,
        "breaks": [{"kind": item.kind, "request_id": item.request_id} for item in report.breaks],
    }


@router.post("/safeguarding", dependencies=_OPERATE)
def safeguarding(
    payments: Payments, currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "CNY"
) -> dict[str, Any]:
    """Compare client money (wallets and merchant payables) with the reserve (P6), now."""
    return dataclasses.asdict(payments.safeguarding_check(currency))


@router.get("/summary/{business_date}", dependencies=_SUPERVISE)
def day_summary(business_date: BusinessDate, payments: Payments) -> list[dict[str, Any]]:
    """A day's payments by kind, channel, status and decline code: counts and amounts."""
    return [
        {
            "kind": kind,
            "channel": channel,
            "status": status,
            "decline_code": code,
            "count": count,
            "amount": amount,
        }
        for kind, channel, status, code, count, amount in payments.day_summary(business_date)
    ]


# -- anti-money-laundering -----------------------------------------------------------------


def _aml(payments: Payments) -> AmlService:
    return AmlService(payments)


Aml = Annotated[AmlService, Depends(_aml)]
Operator = Annotated[Access, Depends(require("payments:write"))]


class CaseAction(_Strict):
    value: Annotated[str, StringConstraints(min_length=1, max_length=1_000)] | None = None


@router.get("/aml/large-value/{business_date}", dependencies=_SUPERVISE, response_model=None)
def large_value_reports(
    business_date: BusinessDate,
    aml: Aml,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """The day's large-value transaction reports (A1, A2), as JSON or CSV for the filing: every
    movement of money executed that day (payments, refunds, posted top-ups and withdrawals,
    merchant payouts, and lending's loans paid in and repayments, sweeps and recoveries taken
    out), each transaction with its flow (`transaction_flows`)."""
    reports = aml.large_value_reports(business_date)
    if format == "csv":
        return Response(to_csv(reports), media_type="text/csv")
    return Response(to_json(reports), media_type="application/json")


@router.post("/aml/scans/{business_date}", dependencies=_OPERATE)
def aml_scan(
    business_date: BusinessDate, aml: Aml, days: Annotated[int, Query(ge=1, le=31)] = 7
) -> dict[str, Any]:
    """Run the suspicious-pattern detectors over the days ending `business_date`; every new
    alert opens a case for the operators (never shown to the customer: A3)."""
    return dataclasses.asdict(aml.scan(business_date, days))


@router.get("/aml/cases", dependencies=_SUPERVISE)
def aml_cases(
    aml: Aml,
    status: Annotated[Literal["open", "assigned", "closed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> list[dict[str, Any]]:
    return [dataclasses.asdict(case) for case in aml.cases(status, limit)]


@router.post("/aml/cases/{case_id}/{action}")
def aml_case_action(
    case_id: Annotated[str, StringConstraints(min_length=1, max_length=64)],
    action: Literal["assign", "annotate", "close"],
    body: CaseAction,
    access: Operator,
    aml: Aml,
) -> dict[str, Any]:
    """Assign (value: the assignee), annotate (value: the note) or close (value: the
    disposition: reported_str, no_action or false_positive) a case; each action is audited."""
    actor = f"{access.principal.role}:{access.principal.subject}"[:64]
    return dataclasses.asdict(aml.act(case_id, action, actor, body.value))
