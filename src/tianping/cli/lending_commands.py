"""`tianping lending`: credit applications, offers, loans, repayment, the daily batches, the book.

    tianping lending apply APPLICATION_ID --party PARTY --amount 5000 --term 12 --income 120000
    tianping lending application APPLICATION_ID
    tianping lending accept APPLICATION_ID --loan LOAN_ID [--sweep-bps 1000]
    tianping lending loan LOAN_ID
    tianping lending schedule LOAN_ID
    tianping lending repay LOAN_ID PAYMENT_ID --amount 450.00
    tianping lending payoff LOAN_ID [--on DATE]
    tianping lending write-off LOAN_ID WRITE_OFF_ID --on DATE --reason TEXT
    tianping lending recover LOAN_ID RECOVERY_ID --amount 100.00 --on DATE
    tianping lending notices PARTY
    tianping lending accrue DATE [--since DATE]
    tianping lending classify DATE
    tianping lending portfolio [--currency CNY] [--since DATE] [--until DATE]
    tianping lending concentration BANK
    tianping lending line open APPLICATION_ID --line LINE_ID --statement-day 5
    tianping lending line show LINE_ID | statements LINE_ID | statement LINE_ID DATE
    tianping lending line repay LINE_ID PAYMENT_ID --amount 100.00
    tianping lending line quote LINE_ID DATE --months 6
    tianping lending line instalments LINE_ID DATE --plan PLAN_ID --months 6
    tianping lending line statement-run DATE | classify DATE
    tianping lending line freeze | unfreeze | close | transactions LINE_ID
    tianping lending line write-off LINE_ID WRITE_OFF_ID --on DATE --reason TEXT
    tianping lending line recover LINE_ID RECOVERY_ID --amount 100.00 --on DATE

Each command calls one use case of `tianping.lending.service.LendingService`, built by
`Services.lending` with the configured rulebook, the identity context's consents and the
platform scorecard (trained on first use, which takes a second or two). Amounts are decimal
text in the currency's major unit, read with `Money.parse` (never through a float); `--json`
prints minor units. Refusals are one `error:` line: exit 2 for bad input and refused requests,
3 when what the command names does not exist. A declined application is an answer, not an
error: it prints its reasons and the human-review path and exits 0.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Final, TypeVar

import typer
from rich.bar import Bar
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tianping.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    cell,
    console,
    emit_json,
    format_amount,
    format_time,
    jsonable,
    parse_amount,
    parse_day,
    progress_console,
    quiet_unless_terminal,
    record_table,
    show_record,
    state_of,
)
from tianping.lending.line_store import LineRow
from tianping.lending.model import Application, ApplicationOutcome
from tianping.lending.service import ACCRUAL_DAYS_MAX, AccrualReport, LendingRefusal, LendingService
from tianping.lending.store import LoanRow
from tianping.lending.sweep import SWEEP_BPS_MAX
from tianping.payments.model import local_date

app = typer.Typer(
    name="lending",
    help="Credit applications and decisions, offers, loans, repayment, accrual and the book.",
    no_args_is_help=True,
)
line_app = typer.Typer(
    name="line",
    help="Revolving credit lines: opening, statements, repayment, bills into instalments.",
    no_args_is_help=True,
)
app.add_typer(line_app)

T = TypeVar("T")
# The fields of the service's answers that hold minor units, shown as decimal amounts.
MONEY_FIELDS: Final = frozenset(
    {
        "amount",
        "principal",
        "outstanding_principal",
        "accrued_interest",
        "fees_due",
        "penalty_due",
        "overpayment",
        "interest",
        "penalty_interest",
        "fees",
        "prepayment_fee",
        "total",
        "recovered",
        "still_written_off",
        "allowance_used",
        "loss_expense",
        "credit_limit",
        "instalment_principal",
        "owed",
        "available",
        "previous_balance",
        "purchases",
        "payments",
        "interest_charged",
        "fees_charged",
        "new_balance",
        "minimum_payment",
        "total_fee",
    }
)
# Columns of the portfolio chart's bars.
BAR_WIDTH: Final = 30
TERM_MONTHS_MAX: Final = 60
PRODUCTS: Final = ("instalment", "credit_line", "sme")
# Refusals that mean "what the command names does not exist" without saying `_not_found`.
NOT_FOUND_CODES: Final = frozenset({"partner_not_registered"})

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
Currency = Annotated[str, typer.Option("--currency", help="ISO 4217 currency code.")]
Day = Annotated[str, typer.Argument(metavar="DATE", parser=parse_day, help="YYYY-MM-DD.")]


def _run(action: Callable[[], T]) -> T:
    """Run one lending use case, turning its refusals into the CLI's one-line errors."""
    try:
        return action()
    except LendingRefusal as exc:
        missing = exc.code.endswith("_not_found") or exc.code in NOT_FOUND_CODES
        exit_code = EXIT_NOT_FOUND if missing else EXIT_USAGE
        raise CliError(f"{exc.code}: {exc}", exit_code) from None


def _service(ctx: typer.Context) -> LendingService:
    return state_of(ctx).services().lending


def _show_outcome(outcome: ApplicationOutcome, as_json: bool) -> None:
    """The decision: a record table, then the reasons (declines and adverse factors) in order."""
    if as_json:
        emit_json(jsonable(outcome))
        return
    record = jsonable(outcome)
    reasons = record.pop("reasons")
    for name in ("rate_bps", "apr_bps"):
        if record.get(name) is not None:
            record[name.removesuffix("_bps")] = f"{record.pop(name) / 100:.2f}%"
    show_record("Credit decision", record, False, MONEY_FIELDS)
    if reasons:
        table = Table(title="Reasons (most important first)")
        for column in reasons[0]:
            table.add_column(column)
        for reason in reasons:
            table.add_row(*(cell(value) for value in reason.values()))
        console().print(table)


def _show_loan(title: str, loan: LoanRow, as_json: bool) -> None:
    show_record(title, loan, as_json, MONEY_FIELDS)


# -- applications and offers -----------------------------------------------------------------


@app.command("apply")
def apply(
    ctx: typer.Context,
    application_id: Annotated[str, typer.Argument(metavar="APPLICATION_ID")],
    party_id: Annotated[str, typer.Option("--party", help="The applicant's party id.")],
    amount: Annotated[str, typer.Option("--amount", help="Decimal amount asked, e.g. 5000.")],
    term_months: Annotated[
        int, typer.Option("--term", min=1, max=TERM_MONTHS_MAX, help="Term in months.")
    ],
    income: Annotated[str, typer.Option("--income", help="Stated annual income (decimal).")],
    no_income: Annotated[
        bool, typer.Option("--no-income", help="The applicant states no income.")
    ] = False,
    student: Annotated[bool, typer.Option("--student", help="The applicant is a student.")] = False,
    partner_bank: Annotated[
        str | None, typer.Option("--partner-bank", help="Co-lend with this bank's party id.")
    ] = None,
    product: Annotated[
        str,
        typer.Option(
            "--product",
            help="instalment (a person), credit_line (a person) or sme (a merchant).",
        ),
    ] = "instalment",
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="equal_instalment (等额本息, the same total monthly) or equal_principal "
            "(等额本金, the same principal monthly).",
        ),
    ] = "equal_instalment",
    currency: Currency = "CNY",
    as_json: Json = False,
) -> None:
    """Apply for credit: the decision with score, reasons, rate and all-in APR."""
    if product not in PRODUCTS:
        raise CliError(f"--product is one of {', '.join(PRODUCTS)}, not {product!r}")
    annual_income = 0 if no_income else parse_amount(income, currency)
    service = _service(ctx)
    outcome = _run(
        lambda: service.apply(
            Application(
                application_id=application_id,
                party_id=party_id,
                amount=parse_amount(amount, currency),
                term_months=term_months,
                annual_income=annual_income,
                has_income=not no_income,
                is_student=student,
                product=product,
                repayment_method=method,
                currency=currency,
                partner_bank_id=partner_bank,
            )
        )
    )
    _show_outcome(outcome, as_json)


@app.command("application")
def application(
    ctx: typer.Context,
    application_id: Annotated[str, typer.Argument(metavar="APPLICATION_ID")],
    as_json: Json = False,
) -> None:
    """An application's decision as it was recorded."""
    service = _service(ctx)
    _show_outcome(_run(lambda: service.application(application_id)), as_json)


@app.command("accept")
def accept(
    ctx: typer.Context,
    application_id: Annotated[str, typer.Argument(metavar="APPLICATION_ID")],
    loan_id: Annotated[str, typer.Option("--loan", help="The new loan's id (idempotency key).")],
    sweep_bps: Annotated[
        int,
        typer.Option(
            "--sweep-bps",
            min=0,
            max=SWEEP_BPS_MAX,
            help="SME loans: basis points of each day's takings that repay the loan (0: none).",
        ),
    ] = 0,
    to_card: Annotated[
        str | None,
        typer.Option(
            "--to-card",
            metavar="FINGERPRINT",
            help="Pay the principal on to this bank card bound in the borrower's own name.",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Take up an approved offer: the loan is booked and its principal paid to the wallet (an
    SME loan's to the merchant's settlement account, optionally with a sweep of its takings),
    and on to the borrower's own card with --to-card (the clearing house answers later)."""
    service = _service(ctx)
    loan = _run(lambda: service.accept(application_id, loan_id, sweep_bps))
    if to_card is None:
        _show_loan("Loan", loan, as_json)
        return
    payout = _run(lambda: service.disburse_to_card(loan.loan_id, to_card))
    if as_json:
        emit_json({"loan": jsonable(loan), "card_payout": payout})
        return
    _show_loan("Loan", loan, False)
    show_record("Paid on to the card", payout, False, MONEY_FIELDS)


# -- loans -----------------------------------------------------------------------------------


@app.command("loan")
def loan(
    ctx: typer.Context,
    loan_id: Annotated[str, typer.Argument(metavar="LOAN_ID")],
    as_json: Json = False,
) -> None:
    """A loan's balances, days past due, class and stage."""
    service = _service(ctx)
    _show_loan("Loan", _run(lambda: service.loan(loan_id)), as_json)


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    loan_id: Annotated[str, typer.Argument(metavar="LOAN_ID")],
    as_json: Json = False,
) -> None:
    """A loan's instalments: due date, principal, interest, and what is paid of each."""
    service = _service(ctx)
    plan = _run(lambda: service.schedule(loan_id))
    if as_json:
        emit_json(plan)
        return
    currency = plan["currency"]
    table = Table(title=f"Schedule of {loan_id} ({plan['repayment_method']})")
    for column in ("#", "due", "principal", "interest", "total", "paid"):
        table.add_column(column, justify="left" if column in ("#", "due") else "right")
    for row in plan["instalments"]:
        table.add_row(
            cell(row["number"]),
            cell(row["due_on"]),
            cell(format_amount(row["principal"], currency)),
            cell(format_amount(row["interest"], currency)),
            cell(format_amount(row["principal"] + row["interest"], currency)),
            cell(format_amount(row["principal_paid"] + row["interest_paid"], currency)),
        )
    console().print(table)


@app.command("repay")
def repay(
    ctx: typer.Context,
    loan_id: Annotated[str, typer.Argument(metavar="LOAN_ID")],
    payment_id: Annotated[str, typer.Argument(metavar="PAYMENT_ID")],
    amount: Annotated[str, typer.Option("--amount", help="Decimal amount, e.g. 450.00.")],
    as_json: Json = False,
) -> None:
    """Repay from the borrower's wallet (fees, penalty interest, interest, then principal)."""
    service = _service(ctx)
    currency = _run(lambda: service.loan(loan_id)).currency
    outcome = _run(lambda: service.repay(loan_id, payment_id, parse_amount(amount, currency)))
    if as_json:
        emit_json(jsonable(outcome))
        return
    table = Table(title=f"Repayment {payment_id} of {loan_id}: loan {outcome.status}")
    table.add_column("allocated to")
    table.add_column("amount", justify="right")
    for bucket, paid in outcome.allocation.items():
        table.add_row(cell(bucket), cell(format_amount(paid, currency)))
    overpayment = format_amount(outcome.overpayment, currency)
    table.add_row(cell("overpayment (stays in the wallet)"), cell(overpayment))
    console().print(table)


# -- the daily batches -----------------------------------------------------------------------


@app.command("accrue")
def accrue(
    ctx: typer.Context,
    day: Day,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            parser=parse_day,
            help="Catch up every day after this one up to DATE (at most a year).",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Accrue a day's interest over the whole book (set-based; idempotent per day)."""
    service = _service(ctx)
    until = date.fromisoformat(day)
    first = until if since is None else date.fromisoformat(since)
    days = [until] if since is None else _days_after(first, until)
    reports: list[AccrualReport] = []
    target = progress_console()
    with Progress(
        TextColumn("accruing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=target,
        disable=quiet_unless_terminal(target),
    ) as progress:
        task = progress.add_task("", total=len(days))
        for each in days:
            progress.update(task, description=each.isoformat())
            reports.append(_accrue_one(service, each))
            progress.advance(task)
    if as_json:
        emit_json(jsonable(reports))
        return
    table = Table(title="Interest accrual")
    for column in ("day", "loans", "interest", "note"):
        table.add_column(column, justify="right" if column in ("loans", "interest") else "left")
    for report in reports:
        note = "already run (replayed)" if report.replayed else ""
        table.add_row(
            cell(report.day), cell(report.loans), cell(_interest_by_currency(report)), cell(note)
        )
    console().print(table)


def _accrue_one(service: LendingService, day: date) -> AccrualReport:
    return _run(lambda: service.accrue(day))


def _interest_by_currency(report: AccrualReport) -> str:
    """A day's interest per currency ("12.34 CNY"), summed over the funding groups."""
    totals: dict[str, int] = {}
    for group in report.groups:
        totals[group.currency] = totals.get(group.currency, 0) + group.interest
    if not totals:
        return "0"
    shown = (f"{format_amount(amount, code)} {code}" for code, amount in sorted(totals.items()))
    return ", ".join(shown)


def _days_after(since: date, until: date) -> list[date]:
    """Every day after `since` up to `until`, refused beyond the service's catch-up bound."""
    count = (until - since).days
    if not 0 <= count <= ACCRUAL_DAYS_MAX:
        raise CliError(f"--since must be 0 to {ACCRUAL_DAYS_MAX} days before DATE")
    return [date.fromordinal(since.toordinal() + offset) for offset in range(1, count + 1)]


@app.command("classify")
def classify(ctx: typer.Context, day: Day, as_json: Json = False) -> None:
    """Days past due, the five-tier class and the expected-loss stage of the book on DATE."""
    service = _service(ctx)
    loans = _run(lambda: service.classify(date.fromisoformat(day)))
    if as_json:
        emit_json({"day": day, "loans": loans})
        return
    console().print(f"classified {loans} active loan(s) as of {day}", markup=False)


# -- the book --------------------------------------------------------------------------------

TIER_ORDER: Final = ("normal", "special_mention", "substandard", "doubtful", "loss")


WindowStart = Annotated[
    str | None,
    typer.Option("--since", parser=parse_day, help="Credit losses dated from this day too."),
]
WindowEnd = Annotated[
    str | None,
    typer.Option("--until", parser=parse_day, help="Credit losses dated through this day too."),
]
PRODUCT_LABELS: Final = (("loans", "loans"), ("credit_lines", "credit lines"), ("total", "total"))


def _rate_text(rate: str | None) -> str:
    """A recovery rate (a decimal fraction with six places) as a percentage with four: exact,
    no rounding; '-' when nothing was written off."""
    return "-" if rate is None else f"{Decimal(rate) * 100:.4f} %"


def _credit_loss_table(title: str, sections: dict[str, Any], currency: str) -> Table:
    """Written off, recovered, net charge-off and recovery rate of loans, lines and both, each
    in total and by funder."""
    table = Table(title=title)
    table.add_column("product")
    table.add_column("funder")
    for column in ("written off", "recovered", "net charge-off", "recovery rate"):
        table.add_column(column, justify="right")
    for key, label in PRODUCT_LABELS:
        section = sections[key]
        rows = [("all", section), *section["by_funder"].items()]
        for funder, figures in rows:
            table.add_row(
                cell(label if funder == "all" else ""),
                cell(funder),
                cell(format_amount(figures["written_off"], currency)),
                cell(format_amount(figures["recovered"], currency)),
                cell(format_amount(figures["net_charge_off"], currency)),
                cell(_rate_text(figures["recovery_rate"])),
            )
    return table


def _show_credit_losses(losses: dict[str, Any], currency: str) -> None:
    """The credit losses to date with the ledger check, and the window's if asked for. A
    disagreement with the ledger is printed with each funder's figures, never summarised."""
    out = console()
    out.print(_credit_loss_table(f"Credit losses ({currency}) to date", losses, currency))
    if losses["ledger_agrees"]:
        out.print(
            "ledger: credit losses (4201) and recoveries (4202) agree with the sub-ledger "
            "for every funder",
            markup=False,
        )
    else:
        check = Table(title="LEDGER DISAGREES: credit losses and recoveries by funder")
        for column in ("funder", "credit losses", "written off", "recoveries", "recovered"):
            check.add_column(column, justify="left" if column == "funder" else "right")
        for funder, figures in (("all", losses["ledger"]), *losses["ledger_by_funder"].items()):
            check.add_row(
                cell(funder),
                *(
                    cell(format_amount(figures[name], currency))
                    for name in (
                        "credit_losses",
                        "sub_ledger_written_off",
                        "recoveries",
                        "sub_ledger_recovered",
                    )
                ),
            )
        out.print(check)
    window = losses["window"]
    if window is not None:
        span = f"{window['since'] or 'the start'} to {window['until'] or 'today'}"
        out.print(_credit_loss_table(f"Credit losses ({currency}) from {span}", window, currency))


@app.command("portfolio")
def portfolio(
    ctx: typer.Context,
    currency: Currency = "CNY",
    since: WindowStart = None,
    until: WindowEnd = None,
    as_json: Json = False,
) -> None:
    """The active book by five-tier class, charted by exposure, each stage's provision, and the
    credit losses (written off, recovered, net, recovery rate) by product and funder."""
    service = _service(ctx)
    report: dict[str, Any] = _run(
        lambda: service.portfolio(
            currency,
            since=None if since is None else date.fromisoformat(since),
            until=None if until is None else date.fromisoformat(until),
        )
    )
    if as_json:
        emit_json(report)
        return
    by_tier: dict[str, dict[str, int]] = report["by_tier"]
    total = sum(totals["exposure"] for totals in by_tier.values())
    tiers = Table(title=f"Loan book ({currency}) by five-tier class")
    tiers.add_column("class")
    tiers.add_column("loans", justify="right")
    tiers.add_column("exposure", justify="right")
    tiers.add_column("share of exposure")
    for tier in TIER_ORDER:
        totals = by_tier.get(tier, {"loans": 0, "exposure": 0})
        tiers.add_row(
            cell(tier),
            cell(totals["loans"]),
            cell(format_amount(totals["exposure"], currency)),
            Bar(size=max(total, 1), begin=0, end=totals["exposure"], width=BAR_WIDTH),
        )
    console().print(tiers)
    stages = Table(title="Expected-loss provision by stage")
    for column in ("stage", "loans", "exposure", "ECL"):
        stages.add_column(column, justify="left" if column == "stage" else "right")
    for stage, totals in report["by_stage"].items():
        stages.add_row(
            cell(stage),
            cell(totals["loans"]),
            cell(format_amount(totals["exposure"], currency)),
            cell(format_amount(totals["ecl"], currency)),
        )
    ecl_total = format_amount(report["ecl_total"], currency)
    stages.add_row(cell("total"), cell(""), cell(""), cell(ecl_total))
    console().print(stages)
    _show_credit_losses(report["credit_losses"], currency)


@app.command("concentration")
def concentration(
    ctx: typer.Context,
    bank_id: Annotated[str, typer.Argument(metavar="BANK")],
    as_json: Json = False,
) -> None:
    """A partner bank's co-lending balance with the platform against the L3 limits."""
    service = _service(ctx)
    report = _run(lambda: service.concentration_report(bank_id))
    if as_json:
        emit_json(jsonable(report))
        return
    console().print(record_table(f"Co-lending concentration of {bank_id} (L3)", jsonable(report)))


# -- servicing -------------------------------------------------------------------------------


@app.command("payoff")
def payoff(
    ctx: typer.Context,
    loan_id: Annotated[str, typer.Argument(metavar="LOAN_ID")],
    on: Annotated[
        str | None, typer.Option("--on", parser=parse_day, help="Quote for this day (today).")
    ] = None,
    as_json: Json = False,
) -> None:
    """What settles the loan on a day: repaying `total` that day closes it."""
    service = _service(ctx)
    day = date.fromisoformat(on) if on else _today(ctx)
    quote = _run(lambda: service.quote_payoff(loan_id, day))
    currency = _run(lambda: service.loan(loan_id)).currency
    show_record(f"Payoff of {loan_id} ({currency})", quote, as_json, MONEY_FIELDS)


@app.command("write-off")
def write_off(
    ctx: typer.Context,
    loan_id: Annotated[str, typer.Argument(metavar="LOAN_ID")],
    write_off_id: Annotated[str, typer.Argument(metavar="WRITE_OFF_ID")],
    on: Annotated[str, typer.Option("--on", parser=parse_day, help="The write-off's date.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the loan's events).")],
    as_json: Json = False,
) -> None:
    """Write a loan off (loss class, or past the write-off threshold); the borrower gets a
    notice with its reasons and the review path."""
    service = _service(ctx)
    outcome = _run(
        lambda: service.write_off(loan_id, write_off_id, date.fromisoformat(on), reason.strip())
    )
    if as_json:
        emit_json(jsonable(outcome))
        return
    currency = service.loan(loan_id).currency
    table = Table(title=f"Write-off {write_off_id} of {loan_id} on {outcome.on}")
    table.add_column("funder")
    table.add_column("balance")
    table.add_column("amount", justify="right")
    for funder, parts in outcome.by_funder.items():
        for balance, amount in parts.items():
            table.add_row(cell(funder), cell(balance), cell(format_amount(amount, currency)))
    table.add_row(cell("total"), cell(""), cell(format_amount(outcome.total, currency)))
    console().print(table)


# A recovery's arguments, the same for a loan and a credit line.
RecoveryId = Annotated[str, typer.Argument(metavar="RECOVERY_ID")]
Collected = Annotated[str, typer.Option("--amount", help="Decimal amount collected.")]
RecoveryDay = Annotated[str, typer.Option("--on", parser=parse_day, help="The recovery's date.")]


def _show_recovery(
    title: str,
    currency: Callable[[], str],
    book: Callable[[int, date], Any],
    amount: str,
    on: str,
    as_json: bool,
) -> None:
    """Book a recovery of `amount` (decimal text in the currency of what it recovers) on `on`
    and show it."""
    unit = _run(currency)
    outcome = _run(lambda: book(parse_amount(amount, unit), date.fromisoformat(on)))
    show_record(title, outcome, as_json, MONEY_FIELDS)


@app.command("recover")
def recover(
    ctx: typer.Context,
    loan_id: Annotated[str, typer.Argument(metavar="LOAN_ID")],
    recovery_id: RecoveryId,
    amount: Collected,
    on: RecoveryDay,
    as_json: Json = False,
) -> None:
    """Book cash recovered on a written-off loan (collected from the borrower's account)."""
    service = _service(ctx)
    _show_recovery(
        f"Recovery {recovery_id} of {loan_id}",
        lambda: service.loan(loan_id).currency,
        lambda minor, day: service.record_recovery(loan_id, recovery_id, minor, day),
        amount,
        on,
        as_json,
    )


@app.command("notices")
def notices(
    ctx: typer.Context,
    party_id: Annotated[str, typer.Argument(metavar="PARTY")],
    as_json: Json = False,
) -> None:
    """A borrower's adverse-change notices (a worse class, a write-off) with their reasons."""
    service = _service(ctx)
    found = _run(lambda: service.notices(party_id))
    if as_json:
        emit_json(jsonable(found))
        return
    table = Table(title=f"Notices to {party_id}")
    for column in ("day", "loan", "notice", "reasons", "ask for a human review at"):
        table.add_column(column)
    for notice in found:
        reasons = "; ".join(reason["text_en"] for reason in notice["reasons"])
        table.add_row(
            cell(notice["day"]),
            cell(notice["loan_id"]),
            cell(notice["notice"]),
            cell(reasons),
            cell(notice["review_path"]),
        )
    console().print(table)


def _today(ctx: typer.Context) -> date:
    """The business day of the services' clock (China time, like every lending date)."""
    return local_date(state_of(ctx).services().ledger.clock())


# -- credit lines ----------------------------------------------------------------------------

LineId = Annotated[str, typer.Argument(metavar="LINE_ID")]
StatementDay = Annotated[
    str, typer.Argument(metavar="DATE", parser=parse_day, help="The statement date.")
]
Months = Annotated[int, typer.Option("--months", help="Instalments: 3, 6, 9 or 12.")]


def _show_line(line: LineRow, as_json: bool) -> None:
    record = jsonable(line)
    record["owed"], record["available"] = line.owed, line.available
    show_record(f"Credit line {line.line_id}", record, as_json, MONEY_FIELDS)


@line_app.command("open")
def line_open(
    ctx: typer.Context,
    application_id: Annotated[str, typer.Argument(metavar="APPLICATION_ID")],
    line_id: Annotated[str, typer.Option("--line", help="The new line's id (idempotency key).")],
    statement_day: Annotated[
        int, typer.Option("--statement-day", min=1, max=28, help="Day of the month billed.")
    ],
    as_json: Json = False,
) -> None:
    """Open an approved credit-line offer (needs a live credit-bureau-reporting consent, L5)."""
    service = _service(ctx)
    _show_line(_run(lambda: service.open_line(application_id, line_id, statement_day)), as_json)


@line_app.command("show")
def line_show(ctx: typer.Context, line_id: LineId, as_json: Json = False) -> None:
    """A line's limit, what is owed and what is available."""
    service = _service(ctx)
    _show_line(_run(lambda: service.line(line_id)), as_json)


@line_app.command("statements")
def line_statements(ctx: typer.Context, line_id: LineId, as_json: Json = False) -> None:
    """The line's statements, newest first."""
    service = _service(ctx)
    rows = _run(lambda: service.line_statements(line_id))
    if as_json:
        emit_json(jsonable(rows))
        return
    currency = service.line(line_id).currency
    table = Table(title=f"Statements of {line_id} ({currency})")
    for column in ("date", "due", "new balance", "minimum", "interest", "grace kept"):
        table.add_column(column, justify="right" if column not in ("date", "due") else "left")
    for row in rows:
        table.add_row(
            cell(row.statement_date),
            cell(row.due_date),
            cell(format_amount(row.new_balance, currency)),
            cell(format_amount(row.minimum_payment, currency)),
            cell(format_amount(row.interest_charged, currency)),
            cell("yes" if row.grace_kept else "no"),
        )
    console().print(table)


@line_app.command("statement")
def line_statement(
    ctx: typer.Context, line_id: LineId, statement_date: StatementDay, as_json: Json = False
) -> None:
    """One statement of the line."""
    service = _service(ctx)
    row = _run(lambda: service.line_statement(line_id, date.fromisoformat(statement_date)))
    show_record(f"Statement of {line_id} on {statement_date}", row, as_json, MONEY_FIELDS)


@line_app.command("repay")
def line_repay(
    ctx: typer.Context,
    line_id: LineId,
    payment_id: Annotated[str, typer.Argument(metavar="PAYMENT_ID")],
    amount: Annotated[str, typer.Option("--amount", help="Decimal amount, e.g. 100.00.")],
    as_json: Json = False,
) -> None:
    """Repay the line from the holder's wallet (fees, interest, then principal, oldest first)."""
    service = _service(ctx)
    currency = _run(lambda: service.line(line_id)).currency
    outcome = _run(lambda: service.repay_line(line_id, payment_id, parse_amount(amount, currency)))
    show_record(f"Repayment {payment_id} of {line_id}", outcome, as_json, MONEY_FIELDS)


@line_app.command("quote")
def line_quote(
    ctx: typer.Context,
    line_id: LineId,
    statement_date: StatementDay,
    months: Months,
    as_json: Json = False,
) -> None:
    """What turning a bill into instalments would cost, with the all-in APR (writes nothing)."""
    service = _service(ctx)
    quote = _run(
        lambda: service.quote_statement_instalments(
            line_id, date.fromisoformat(statement_date), months
        )
    )
    if as_json:
        emit_json(jsonable(quote))
        return
    currency = service.line(line_id).currency
    console().print(
        f"{months} instalments of the bill of {statement_date}: fee "
        f"{format_amount(quote.total_fee, currency)} {currency}, all-in APR "
        f"{quote.apr_bps / 100:.2f}%",
        markup=False,
    )
    table = Table(title="Instalments")
    for column in ("#", "billed", "due", "principal", "fee"):
        table.add_column(column, justify="right" if column in ("principal", "fee") else "left")
    for instalment in quote.instalments:
        table.add_row(
            cell(instalment.number),
            cell(instalment.bill_on.isoformat()),
            cell(instalment.due_on.isoformat()),
            cell(format_amount(instalment.principal, currency)),
            cell(format_amount(instalment.fee, currency)),
        )
    console().print(table)


@line_app.command("instalments")
def line_instalments(
    ctx: typer.Context,
    line_id: LineId,
    statement_date: StatementDay,
    plan_id: Annotated[str, typer.Option("--plan", help="The plan's id (idempotency key).")],
    months: Months,
    as_json: Json = False,
) -> None:
    """Accept the quote: the bill becomes monthly instalments (price checked by the rules)."""
    service = _service(ctx)
    plan = _run(
        lambda: service.convert_statement(
            line_id, date.fromisoformat(statement_date), plan_id, months
        )
    )
    record = jsonable(plan)
    record.pop("digest", None)
    show_record(f"Instalment plan {plan_id}", record, as_json, MONEY_FIELDS)


@line_app.command("statement-run")
def line_statement_run(ctx: typer.Context, day: Day, as_json: Json = False) -> None:
    """Issue every credit-line statement due on DATE (idempotent per line and date)."""
    service = _service(ctx)
    run = _run(lambda: service.issue_statements(date.fromisoformat(day)))
    if as_json:
        emit_json(jsonable(run))
        return
    console().print(
        f"issued {run.issued} statement(s) dated {run.day}; {run.frozen_for_consent} line(s) "
        "frozen because the consent to credit-bureau reporting was withdrawn (L5)",
        markup=False,
    )


@line_app.command("freeze")
def line_freeze(ctx: typer.Context, line_id: LineId, as_json: Json = False) -> None:
    """Freeze a line (the operator): no draws until it is unfrozen; repayments go on."""
    service = _service(ctx)
    _show_line(_run(lambda: service.freeze_line(line_id)), as_json)


@line_app.command("unfreeze")
def line_unfreeze(ctx: typer.Context, line_id: LineId, as_json: Json = False) -> None:
    """Unfreeze a line (refused while it is past due or its reporting consent is withdrawn)."""
    service = _service(ctx)
    _show_line(_run(lambda: service.unfreeze_line(line_id)), as_json)


@line_app.command("close")
def line_close(ctx: typer.Context, line_id: LineId, as_json: Json = False) -> None:
    """Close a line that owes nothing (its holder's choice)."""
    service = _service(ctx)
    _show_line(_run(lambda: service.close_line(line_id)), as_json)


@line_app.command("transactions")
def line_transactions(
    ctx: typer.Context,
    line_id: LineId,
    after: Annotated[
        str | None, typer.Option("--after", help="The cursor a previous page printed.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="Page size.")] = 50,
    as_json: Json = False,
) -> None:
    """One page of the line's transactions, oldest first, and the cursor of the next page."""
    service = _service(ctx)
    page, cursor = _run(lambda: service.line_transactions(line_id, after, limit))
    if as_json:
        emit_json({"transactions": jsonable(page), "next": cursor})
        return
    currency = service.line(line_id).currency
    table = Table(title=f"Transactions of {line_id} ({currency})")
    for column in ("at", "kind", "amount", "reference"):
        table.add_column(column, justify="right" if column == "amount" else "left")
    for entry in page:
        table.add_row(
            cell(format_time(entry.at)),
            cell(entry.kind),
            cell(format_amount(entry.amount, currency)),
            cell(entry.reference or "-"),
        )
    console().print(table)
    if cursor is not None:
        console().print(f"next page: --after {cursor}", markup=False)


@line_app.command("classify")
def line_classify(ctx: typer.Context, day: Day, as_json: Json = False) -> None:
    """Days past due, class and stage of every line on DATE; past-due lines are frozen and
    their holders get a notice."""
    service = _service(ctx)
    report = _run(lambda: service.classify_lines(date.fromisoformat(day)))
    if as_json:
        emit_json(jsonable(report))
        return
    console().print(
        f"{report.lines} line(s) classified as of {report.day}: {report.past_due} past due, "
        f"{report.worsened} moved to a worse class",
        markup=False,
    )


@line_app.command("write-off")
def line_write_off(
    ctx: typer.Context,
    line_id: LineId,
    write_off_id: Annotated[str, typer.Argument(metavar="WRITE_OFF_ID")],
    on: Annotated[str, typer.Option("--on", parser=parse_day, help="The write-off's date.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the line).")],
    as_json: Json = False,
) -> None:
    """Write a line off (loss class, or past the write-off threshold)."""
    service = _service(ctx)
    outcome = _run(
        lambda: service.write_off_line(
            line_id, write_off_id, date.fromisoformat(on), reason.strip()
        )
    )
    show_record(f"Write-off {write_off_id} of {line_id}", outcome, as_json, MONEY_FIELDS)


@line_app.command("recover")
def line_recover(
    ctx: typer.Context,
    line_id: LineId,
    recovery_id: RecoveryId,
    amount: Collected,
    on: RecoveryDay,
    as_json: Json = False,
) -> None:
    """Book cash recovered on a written-off line (collected from the holder's wallet)."""
    service = _service(ctx)
    _show_recovery(
        f"Recovery {recovery_id} of {line_id}",
        lambda: service.line(line_id).currency,
        lambda minor, day: service.record_line_recovery(line_id, recovery_id, minor, day),
        amount,
        on,
        as_json,
    )
