"""`tianping payments`: wallets, merchants and their QR codes, paying, refunds, bank rails, checks.

    tianping payments wallet open PARTY PAYMENT_ACCOUNT
    tianping payments wallet balance PARTY
    tianping payments merchant register MERCHANT --mcc 5812 --discount-bps 60
    tianping payments merchant qr MERCHANT --name NAME [--png FILE | --svg FILE]
    tianping payments merchant order MERCHANT --name NAME --reference REF --amount 12.34 [--png F]
    tianping payments merchant payout-account MERCHANT --account-number N --holder USCC
    tianping payments merchant free-balance MERCHANT
    tianping payments merchant payout MERCHANT REQUEST_ID [--amount 12.34]
    tianping payments pay PAYMENT_ID --from PARTY --to PARTY|MERCHANT --amount 12.34 [--merchant]
    tianping payments pay-qr PAYMENT_ID --from PARTY --payload TEXT [--amount 12.34]
    tianping payments resume PAYMENT_ID --factors 2
    tianping payments show PAYMENT_ID
    tianping payments refund REFUND_ID PAYMENT_ID --amount 12.34
    tianping payments top-up | withdraw REQUEST_ID --party PARTY --card FINGERPRINT --amount 12.34
    tianping payments callbacks | sweep DATE | settle DATE | safeguarding | summary DATE
    tianping payments reconcile DATE [--file CSV]

Each command calls one use case of `tianping.payments.service.PaymentsService`, built by
`Services.payments` like every other command's services. Amounts are decimal text in the
currency's major unit, read with `Money.parse` (never through a float). Refusals are one
`error:` line: exit 2 for bad input and refused or declined requests, 3 when what the command
names does not exist, 1 when a check finds a problem (a reconciliation break, a safeguarding
break) or a bank rail gives no answer in time.

The clearing house of a CLI process is the simulated one (the real adapters need credentials
this repository does not have), and it lives only as long as the process: `top-up` and
`withdraw` (and a merchant's `payout`) therefore wait for their callback (`--wait`), and
`reconcile` takes the clearing house's settlement file with `--file` (without it, the process's
own, empty, file). `sweep DATE` is lending's daily step that repays SME loans from a share of
DATE's takings; run it before `settle DATE`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from tianping.cli.common import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    cell,
    console,
    emit_json,
    format_amount,
    jsonable,
    parse_amount,
    parse_day,
    progress_console,
    quiet_unless_terminal,
    show_record,
    state_of,
)
from tianping.identity.errors import IdentityError
from tianping.lending.model import LendingRefusal
from tianping.payments.clearing import ClearingError, SettlementFile
from tianping.payments.model import PaymentCommand, PaymentError, PaymentOutcome
from tianping.payments.qr import QrError, parse_merchant_qr, render_png, render_svg
from tianping.payments.service import PaymentsService
from tianping.payments.store import RailRow

app = typer.Typer(
    name="payments",
    help="Wallets, merchants, QR codes, payments, refunds, bank rails, settlement and checks.",
    no_args_is_help=True,
)
wallet_app = typer.Typer(name="wallet", help="Customer wallets.", no_args_is_help=True)
merchant_app = typer.Typer(
    name="merchant", help="Merchant accounts and their QR codes.", no_args_is_help=True
)
app.add_typer(wallet_app)
app.add_typer(merchant_app)

T = TypeVar("T")
NS = 1_000_000_000
# How long `top-up` and `withdraw` wait for the clearing house by default, and at most: the
# service's own rail timeout is 120 s, after which waiting longer cannot change the answer.
RAIL_WAIT_DEFAULT_S = 60
RAIL_WAIT_MAX_S = 600
RAIL_POLL_INTERVAL_S = 0.5
# A merchant order lives 30 s to 1 h (the service's bounds); five minutes unless asked.
ORDER_LIFETIME_DEFAULT_S = 300
RAIL_FINAL_STATES = frozenset({"succeeded", "declined", "failed", "refused", "timed_out"})

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
Currency = Annotated[str, typer.Option("--currency", help="ISO 4217 currency code.")]


def _pause(seconds: float) -> None:
    """Sleep between polls of the clearing house (a separate function so tests can replace it)."""
    time.sleep(seconds)


def _run(action: Callable[[], T]) -> T:
    """Run one payments use case, turning its refusals into the CLI's one-line errors."""
    try:
        return action()
    except (PaymentError, IdentityError, QrError, ClearingError, LendingRefusal) as exc:
        code = getattr(exc, "code", "payment_error")
        exit_code = EXIT_NOT_FOUND if code.endswith("_not_found") else EXIT_USAGE
        raise CliError(f"{code}: {exc}", exit_code) from None


def _service(ctx: typer.Context) -> PaymentsService:
    return state_of(ctx).services().payments


def _show(title: str, value: Any, as_json: bool) -> None:
    show_record(title, value, as_json, MONEY_FIELDS)


# The fields of the service's answers that hold minor units, shown as decimal amounts.
MONEY_FIELDS = frozenset(
    {"amount", "refunded", "refunded_total", "reserve", "client_liabilities", "difference"}
)


# -- wallets and merchants -------------------------------------------------------------------


@wallet_app.command("open")
def wallet_open(
    ctx: typer.Context,
    party_id: Annotated[str, typer.Argument(metavar="PARTY")],
    payment_account_id: Annotated[str, typer.Argument(metavar="PAYMENT_ACCOUNT")],
    currency: Currency = "CNY",
    as_json: Json = False,
) -> None:
    """Open the person's wallet on their payment account (opened through identity)."""
    service = _service(ctx)
    wallet = _run(lambda: service.open_wallet(party_id, payment_account_id, currency))
    _show("Wallet", wallet, as_json)


@wallet_app.command("balance")
def wallet_balance(
    ctx: typer.Context,
    party_id: Annotated[str, typer.Argument(metavar="PARTY")],
    currency: Currency = "CNY",
    as_json: Json = False,
) -> None:
    """The wallet's available balance (posted credits less posted and pending debits)."""
    service = _service(ctx)
    balance = _run(lambda: service.balance(party_id, currency))
    if as_json:
        emit_json({"party_id": party_id, "currency": currency, "available": balance})
        return
    console().print(f"{format_amount(balance, currency)} {currency} available", markup=False)


@merchant_app.command("register")
def merchant_register(
    ctx: typer.Context,
    merchant_id: Annotated[str, typer.Argument(metavar="MERCHANT")],
    mcc: Annotated[str, typer.Option("--mcc", help="Merchant category code (4 digits).")],
    discount_bps: Annotated[
        int, typer.Option("--discount-bps", help="Discount rate in basis points (0-1000).")
    ],
    currency: Currency = "CNY",
    as_json: Json = False,
) -> None:
    """Open the account for a merchant's takings (the merchant is registered in identity)."""
    service = _service(ctx)
    merchant = _run(lambda: service.register_merchant(merchant_id, mcc, discount_bps, currency))
    _show("Merchant", merchant, as_json)


def _check_image_options(png: Path | None, svg: Path | None) -> None:
    if png is not None and svg is not None:
        raise CliError("give --png or --svg, not both")


def _write_image(payload: str, png: Path | None, svg: Path | None) -> None:
    if png is not None:
        png.write_bytes(_run(lambda: render_png(payload)))
    if svg is not None:
        svg.write_text(_run(lambda: render_svg(payload)), encoding="utf-8")


Png = Annotated[Path | None, typer.Option("--png", metavar="FILE", help="Write the code as PNG.")]
Svg = Annotated[Path | None, typer.Option("--svg", metavar="FILE", help="Write the code as SVG.")]
MerchantName = Annotated[str, typer.Option("--name", help="The name payers see.")]


@merchant_app.command("qr")
def merchant_qr(
    ctx: typer.Context,
    merchant_id: Annotated[str, typer.Argument(metavar="MERCHANT")],
    name: MerchantName,
    png: Png = None,
    svg: Svg = None,
    as_json: Json = False,
) -> None:
    """The merchant's static QR code (no amount: the payer types it); prints the payload."""
    _check_image_options(png, svg)
    service = _service(ctx)
    payload = _run(lambda: service.static_qr(merchant_id, name))
    _write_image(payload, png, svg)
    if as_json:
        emit_json({"merchant_id": merchant_id, "payload": payload})
        return
    typer.echo(payload)


@merchant_app.command("order")
def merchant_order(
    ctx: typer.Context,
    merchant_id: Annotated[str, typer.Argument(metavar="MERCHANT")],
    name: MerchantName,
    reference: Annotated[str, typer.Option("--reference", help="The merchant's order id.")],
    amount: Annotated[str, typer.Option("--amount", help="Decimal amount, e.g. 12.34.")],
    lifetime: Annotated[
        int, typer.Option("--lifetime", min=30, max=3600, help="Seconds the code is valid.")
    ] = ORDER_LIFETIME_DEFAULT_S,
    currency: Currency = "CNY",
    png: Png = None,
    svg: Svg = None,
    as_json: Json = False,
) -> None:
    """A merchant order and its dynamic QR code (amount inside, expiring); prints the payload."""
    _check_image_options(png, svg)
    minor = parse_amount(amount, currency)
    service = _service(ctx)
    order, payload = _run(
        lambda: service.create_order(merchant_id, name, reference, minor, lifetime)
    )
    _write_image(payload, png, svg)
    if as_json:
        emit_json({"order": jsonable(order), "payload": payload})
        return
    typer.echo(payload)


# -- paying ----------------------------------------------------------------------------------

Factors = Annotated[
    int, typer.Option("--factors", min=0, max=5, help="Authentication factors of the session.")
]
Certificate = Annotated[
    bool, typer.Option("--certificate", help="The session used a digital certificate.")
]
Device = Annotated[str, typer.Option("--device", help="The payer's device id (risk features).")]


def _outcome(outcome: PaymentOutcome, as_json: bool) -> None:
    """Print a payment's outcome; a declined payment then ends the command with exit 2."""
    _show("Payment", outcome, as_json)
    if outcome.status == "step_up_required" and not as_json:
        typer.echo(
            f"a second factor is needed: `tianping payments resume {outcome.payment_id} "
            "--factors 2` once the payer has proved it",
            err=True,
        )
    if outcome.status == "declined":
        reasons = ", ".join(outcome.reasons) or "-"
        raise CliError(f"payment declined: {outcome.decline_code} ({reasons})", EXIT_USAGE)


def _pay_one(service: PaymentsService, command: PaymentCommand) -> PaymentOutcome:
    (answer,) = service.pay([command])
    if isinstance(answer, PaymentError):
        raise answer
    return answer


@app.command("pay")
def pay(
    ctx: typer.Context,
    payment_id: Annotated[str, typer.Argument(metavar="PAYMENT_ID", help="Idempotency key.")],
    payer: Annotated[str, typer.Option("--from", help="The payer's party id.")],
    payee: Annotated[str, typer.Option("--to", help="The payee's party or merchant id.")],
    amount: Annotated[str, typer.Option("--amount", help="Decimal amount, e.g. 12.34.")],
    merchant: Annotated[bool, typer.Option("--merchant", help="The payee is a merchant.")] = False,
    factors: Factors = 1,
    certificate: Certificate = False,
    device: Device = "cli",
    currency: Currency = "CNY",
    as_json: Json = False,
) -> None:
    """Pay from the payer's wallet balance to a person's wallet or a merchant."""
    minor = parse_amount(amount, currency)
    service = _service(ctx)
    outcome = _run(
        lambda: _pay_one(
            service,
            PaymentCommand(
                payment_id,
                payer,
                payee,
                minor,
                currency,
                kind="merchant" if merchant else "p2p",
                auth_factors=factors,
                has_certificate=certificate,
                device_id=device,
            ),
        )
    )
    _outcome(outcome, as_json)


@app.command("pay-qr")
def pay_qr(
    ctx: typer.Context,
    payment_id: Annotated[str, typer.Argument(metavar="PAYMENT_ID", help="Idempotency key.")],
    payer: Annotated[str, typer.Option("--from", help="The payer's party id.")],
    payload: Annotated[str, typer.Option("--payload", help="The scanned QR code's text.")],
    amount: Annotated[
        str | None, typer.Option("--amount", help="Typed amount (static codes only).")
    ] = None,
    factors: Factors = 1,
    certificate: Certificate = False,
    device: Device = "cli",
    as_json: Json = False,
) -> None:
    """Pay a scanned merchant QR code: a static one with a typed amount, or a dynamic order."""
    service = _service(ctx)

    def command() -> PaymentCommand:
        minor = None
        if amount is not None:
            # The typed amount is in the code's own currency.
            minor = parse_amount(amount, parse_merchant_qr(payload).currency)
        return service.qr_command(
            payment_id,
            payer,
            payload,
            minor,
            auth_factors=factors,
            has_certificate=certificate,
            device_id=device,
        )

    outcome = _run(lambda: _pay_one(service, command()))
    _outcome(outcome, as_json)


@app.command("resume")
def resume(
    ctx: typer.Context,
    payment_id: Annotated[str, typer.Argument(metavar="PAYMENT_ID")],
    factors: Factors = 2,
    certificate: Certificate = False,
    as_json: Json = False,
) -> None:
    """Decide a payment stopped for a step-up again, from the payer's stronger session."""
    service = _service(ctx)
    outcome = _run(lambda: service.resume(payment_id, factors, certificate))
    _outcome(outcome, as_json)


@app.command("show")
def show(
    ctx: typer.Context,
    payment_id: Annotated[str, typer.Argument(metavar="PAYMENT_ID")],
    as_json: Json = False,
) -> None:
    """A payment's stored outcome."""
    service = _service(ctx)
    outcome = _run(lambda: service.payment(payment_id))
    _show("Payment", outcome, as_json)


@app.command("refund")
def refund(
    ctx: typer.Context,
    refund_id: Annotated[str, typer.Argument(metavar="REFUND_ID", help="Idempotency key.")],
    payment_id: Annotated[str, typer.Argument(metavar="PAYMENT_ID")],
    amount: Annotated[str, typer.Option("--amount", help="Decimal amount, e.g. 12.34.")],
    currency: Currency = "CNY",
    as_json: Json = False,
) -> None:
    """Return part or all of a completed merchant payment to the payer."""
    minor = parse_amount(amount, currency)
    service = _service(ctx)
    outcome = _run(lambda: service.refund(refund_id, payment_id, minor))
    _show("Refund", outcome, as_json)


# -- bank rails ------------------------------------------------------------------------------


def _rail(
    ctx: typer.Context,
    direction: str,
    request_id: str,
    party_id: str,
    card: str,
    amount: str,
    currency: str,
    wait: int,
    as_json: bool,
) -> None:
    minor = parse_amount(amount, currency)
    service = _service(ctx)
    row = _run(lambda: service.request_rail(request_id, direction, party_id, card, minor, currency))
    _await_rail(service, row, direction, wait, as_json)


def _await_rail(
    service: PaymentsService, row: RailRow, direction: str, wait: int, as_json: bool
) -> None:
    """Wait up to `wait` seconds for the clearing house's answer, show the request, and turn a
    refused, declined, failed or unanswered one into the CLI's error."""
    request_id = row.request_id
    if row.state not in RAIL_FINAL_STATES and wait > 0:
        deadline = service.clock() + wait * NS
        target = progress_console()
        with Progress(
            SpinnerColumn(),
            TextColumn("waiting for the clearing house"),
            TimeElapsedColumn(),
            console=target,
            disable=quiet_unless_terminal(target),
        ) as progress:
            progress.add_task("wait", total=None)
            while row.state not in RAIL_FINAL_STATES and service.clock() < deadline:
                _pause(RAIL_POLL_INTERVAL_S)
                service.process_callbacks()
                row = service.rail_request(request_id)
    titles = {"top_up": "Top-up", "withdrawal": "Withdrawal", "merchant_payout": "Payout"}
    _show(titles.get(direction, direction), row, as_json)
    if row.state in ("declined", "failed", "refused"):
        raise CliError(f"{direction} {row.state}: {row.outcome_code or '-'}", EXIT_USAGE)
    if row.state == "timed_out":
        raise CliError(f"{direction} timed out: the clearing house did not answer", EXIT_FAILED)
    if row.state == "submitted":
        raise CliError(
            f"{direction} still awaiting the clearing house after {wait} s; "
            f"see `tianping payments rail {request_id}`",
            EXIT_FAILED,
        )


RequestIdArg = Annotated[str, typer.Argument(metavar="REQUEST_ID", help="Idempotency key.")]
PartyOpt = Annotated[str, typer.Option("--party", help="The person's party id.")]
CardOpt = Annotated[str, typer.Option("--card", help="The bound card's fingerprint.")]
AmountOpt = Annotated[str, typer.Option("--amount", help="Decimal amount, e.g. 12.34.")]
WaitOpt = Annotated[
    int,
    typer.Option(
        "--wait",
        min=0,
        max=RAIL_WAIT_MAX_S,
        metavar="SECONDS",
        help="How long to wait for the clearing house's answer (0: do not wait).",
    ),
]


@app.command("top-up")
def top_up(
    ctx: typer.Context,
    request_id: RequestIdArg,
    party: PartyOpt,
    card: CardOpt,
    amount: AmountOpt,
    currency: Currency = "CNY",
    wait: WaitOpt = RAIL_WAIT_DEFAULT_S,
    as_json: Json = False,
) -> None:
    """Top up the wallet from the person's own bound card, through the clearing house."""
    _rail(ctx, "top_up", request_id, party, card, amount, currency, wait, as_json)


@app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    request_id: RequestIdArg,
    party: PartyOpt,
    card: CardOpt,
    amount: AmountOpt,
    currency: Currency = "CNY",
    wait: WaitOpt = RAIL_WAIT_DEFAULT_S,
    as_json: Json = False,
) -> None:
    """Withdraw from the wallet to the person's own bound card, through the clearing house."""
    _rail(ctx, "withdrawal", request_id, party, card, amount, currency, wait, as_json)


@merchant_app.command("payout-account")
def merchant_payout_account(
    ctx: typer.Context,
    merchant_id: Annotated[str, typer.Argument(metavar="MERCHANT")],
    account_number: Annotated[
        str, typer.Option("--account-number", help="The bank account's number (not stored).")
    ],
    holder: Annotated[
        str,
        typer.Option(
            "--holder",
            help="The account holder's unified social credit code, as the bank reports it.",
        ),
    ],
    as_json: Json = False,
) -> None:
    """Register the bank account the merchant's payouts go to (held by the business itself)."""
    services = state_of(ctx).services()
    if services.identity is None:
        raise CliError(
            "fingerprint_key_unavailable: bank accounts are fingerprinted with identity's key",
            EXIT_USAGE,
        )
    key = services.identity.fingerprint_key
    account = _run(lambda: key.bank_account(account_number))
    registered = _run(
        lambda: services.payments.register_payout_account(
            merchant_id, account.fingerprint, account.last_four, holder
        )
    )
    _show("Payout account", registered, as_json)


@merchant_app.command("free-balance")
def merchant_free_balance(
    ctx: typer.Context,
    merchant_id: Annotated[str, typer.Argument(metavar="MERCHANT")],
    currency: Currency = "CNY",
    as_json: Json = False,
) -> None:
    """What the settlement account holds beyond what coming settlements pay out."""
    service = _service(ctx)
    free = _run(lambda: service.merchant_free_balance(merchant_id, currency))
    if as_json:
        emit_json({"merchant_id": merchant_id, "currency": currency, "free_balance": free})
        return
    console().print(f"{format_amount(free, currency)} {currency} free", markup=False)


@merchant_app.command("payout")
def merchant_payout(
    ctx: typer.Context,
    merchant_id: Annotated[str, typer.Argument(metavar="MERCHANT")],
    request_id: RequestIdArg,
    amount: Annotated[
        str | None,
        typer.Option("--amount", help="Decimal amount, e.g. 12.34 (default: all that is free)."),
    ] = None,
    currency: Currency = "CNY",
    wait: WaitOpt = RAIL_WAIT_DEFAULT_S,
    as_json: Json = False,
) -> None:
    """Pay the merchant's free balance out to its payout account, through the clearing house."""
    minor = None if amount is None else parse_amount(amount, currency)
    service = _service(ctx)
    row = _run(lambda: service.request_merchant_payout(request_id, merchant_id, minor, currency))
    _await_rail(service, row, "merchant_payout", wait, as_json)


@app.command("rail")
def rail(ctx: typer.Context, request_id: RequestIdArg, as_json: Json = False) -> None:
    """A top-up's or withdrawal's current state."""
    service = _service(ctx)
    row = _run(lambda: service.rail_request(request_id))
    _show("Bank rail request", row, as_json)


@app.command("callbacks")
def callbacks(ctx: typer.Context, as_json: Json = False) -> None:
    """Act on the clearing house's callbacks, and time out requests left unanswered."""
    service = _service(ctx)
    reports = _run(service.process_callbacks)
    if as_json:
        emit_json(jsonable(reports))
        return
    table = Table(title=f"Callbacks ({len(reports)})")
    for name in ("request", "sequence", "outcome", "disposition"):
        table.add_column(name)
    for report in reports:
        style = "green" if report.disposition in ("applied", "progress") else "yellow"
        table.add_row(
            cell(report.request_id),
            cell(report.sequence),
            cell(report.outcome),
            cell(report.disposition, style),
        )
    console().print(table)


# -- the day's checks ------------------------------------------------------------------------

BusinessDate = Annotated[str, typer.Argument(metavar="DATE", parser=parse_day, help="YYYY-MM-DD.")]


@app.command("sweep")
def sweep(ctx: typer.Context, business_date: BusinessDate, as_json: Json = False) -> None:
    """Repay SME loans with a sweep from their share of DATE's takings (before `settle DATE`)."""
    lending = state_of(ctx).services().lending
    day = date.fromisoformat(business_date)
    report = _run(lambda: lending.sweep_repayments(day))
    if as_json:
        emit_json(jsonable(report))
        return
    table = Table(
        title=f"Sweep of {business_date}: {report.swept} of {report.loans} loans repaid"
        + (f", {report.refused} refused" if report.refused else "")
    )
    table.add_column("loan")
    table.add_column("takings", justify="right", no_wrap=True)
    table.add_column("repaid", justify="right", no_wrap=True)
    table.add_column("status")
    for line in report.lines:
        status = line.status if line.code is None else f"{line.status}: {line.code}"
        table.add_row(
            cell(line.loan_id),
            cell(format_amount(line.takings, line.currency)),
            cell(format_amount(line.amount, line.currency)),
            cell(status, "green" if line.status == "swept" else "yellow"),
        )
    console().print(table)


@app.command("settle")
def settle(ctx: typer.Context, business_date: BusinessDate, as_json: Json = False) -> None:
    """Pay every merchant its takings of DATE (T+1), net of its discount rate."""
    service = _service(ctx)
    report = _run(lambda: service.settle_merchants(business_date))
    if as_json:
        emit_json(jsonable(report))
        return
    table = Table(title=f"Merchant settlement of {business_date}")
    table.add_column("merchant")
    for name in ("payments", "gross", "refunds", "fee", "net"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in report.settlements:
        table.add_row(
            cell(row.merchant_id),
            cell(row.payments),
            *(
                cell(format_amount(value, row.currency))
                for value in (row.gross, row.refunds, row.fee, row.net)
            ),
        )
    console().print(table)


@app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    business_date: BusinessDate,
    file: Annotated[
        Path | None,
        typer.Option("--file", metavar="CSV", help="The clearing house's settlement file."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Reconcile DATE's settlement file against the ledger; exit 1 when there are breaks."""
    settlement = None
    if file is not None:
        text = file.read_text(encoding="utf-8")
        settlement = _run(lambda: SettlementFile.parse_csv(text))
        if settlement.business_date != business_date:
            raise CliError(f"the file is for {settlement.business_date}, not {business_date}")
    service = _service(ctx)
    report = _run(lambda: service.reconcile(business_date, settlement))
    if as_json:
        emit_json({**jsonable(report), "is_clean": report.is_clean})
    else:
        table = Table(title=f"Reconciliation of {business_date}: {len(report.breaks)} break(s)")
        for name in ("break", "request", "settled", "ledger"):
            table.add_column(name)
        for item in report.breaks:
            settled = item.settlement
            ledger = item.ledger
            table.add_row(
                cell(item.kind, "yellow"),
                cell(item.request_id),
                cell("-" if settled is None else format_amount(settled.amount_minor, "CNY")),
                cell(
                    "-"
                    if ledger is None
                    else f"{ledger.state} {format_amount(ledger.amount_minor, ledger.currency)}"
                ),
            )
        console().print(table)
        console().print(
            f"{report.settlement_record_count} settled items, {report.ledger_entry_count} "
            "ledger entries",
            markup=False,
        )
    if not report.is_clean:
        raise CliError(
            f"reconciliation of {business_date}: {len(report.breaks)} break(s)", EXIT_FAILED
        )


@app.command("safeguarding")
def safeguarding(ctx: typer.Context, currency: Currency = "CNY", as_json: Json = False) -> None:
    """Client money (wallets and merchant payables) against the reserve; exit 1 on a break."""
    service = _service(ctx)
    report = _run(lambda: service.safeguarding_check(currency))
    _show("Safeguarding check", report, as_json)
    if not report.in_balance:
        raise CliError(
            f"safeguarding break in {currency}: the reserve is "
            f"{format_amount(abs(report.difference), currency)} "
            f"{'short of' if report.difference < 0 else 'over'} client money",
            EXIT_FAILED,
        )


@app.command("summary")
def summary(ctx: typer.Context, business_date: BusinessDate, as_json: Json = False) -> None:
    """DATE's payments by kind, channel, status and decline code."""
    service = _service(ctx)
    rows = _run(lambda: service.day_summary(business_date))
    if as_json:
        emit_json(
            [
                {
                    "kind": kind,
                    "channel": channel,
                    "status": status,
                    "decline_code": code,
                    "count": count,
                    "amount": amount,
                }
                for kind, channel, status, code, count, amount in rows
            ]
        )
        return
    table = Table(title=f"Payments on {business_date}")
    for name in ("kind", "channel", "status", "decline code"):
        table.add_column(name)
    table.add_column("count", justify="right")
    table.add_column("amount", justify="right", no_wrap=True)
    for kind, channel, status, code, count, amount in rows:
        table.add_row(
            cell(kind),
            cell(channel),
            cell(status),
            cell(code or "-"),
            cell(count),
            cell(format_amount(amount, "CNY")),
        )
    console().print(table)
