"""`tianping lending`: credit applications, offers, loans, repayment, the daily batches, the book.

    tianping lending apply APPLICATION_ID --party PARTY --amount 5000 --term 12 --income 120000
    tianping lending application APPLICATION_ID
    tianping lending accept APPLICATION_ID --loan LOAN_ID [--sweep-bps 1000]
    tianping lending loan LOAN_ID
    tianping lending repay LOAN_ID PAYMENT_ID --amount 450.00
    tianping lending accrue DATE [--since DATE]
    tianping lending classify DATE
    tianping lending portfolio [--currency CNY]

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
    jsonable,
    parse_amount,
    parse_day,
    progress_console,
    quiet_unless_terminal,
    show_record,
    state_of,
)
from tianping.lending.model import Application, ApplicationOutcome
from tianping.lending.service import ACCRUAL_DAYS_MAX, AccrualReport, LendingRefusal, LendingService
from tianping.lending.store import LoanRow
from tianping.lending.sweep import SWEEP_BPS_MAX

app = typer.Typer(
    name="lending",
    help="Credit applications and decisions, offers, loans, repayment, accrual and the book.",
    no_args_is_help=True,
)

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
    }
)
# Columns of the portfolio chart's bars.
BAR_WIDTH: Final = 30
TERM_MONTHS_MAX: Final = 60

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
Currency = Annotated[str, typer.Option("--currency", help="ISO 4217 currency code.")]
Day = Annotated[str, typer.Argument(metavar="DATE", parser=parse_day, help="YYYY-MM-DD.")]


def _run(action: Callable[[], T]) -> T:
    """Run one lending use case, turning its refusals into the CLI's one-line errors."""
    try:
        return action()
    except LendingRefusal as exc:
        exit_code = EXIT_NOT_FOUND if exc.code.endswith("_not_found") else EXIT_USAGE
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
    currency: Currency = "CNY",
    as_json: Json = False,
) -> None:
    """Apply for an instalment loan: the decision with score, reasons, rate and all-in APR."""
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
    as_json: Json = False,
) -> None:
    """Take up an approved offer: the loan is booked and its principal paid to the wallet (an
    SME loan's to the merchant's settlement account, optionally with a sweep of its takings)."""
    service = _service(ctx)
    _show_loan("Loan", _run(lambda: service.accept(application_id, loan_id, sweep_bps)), as_json)


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


@app.command("portfolio")
def portfolio(ctx: typer.Context, currency: Currency = "CNY", as_json: Json = False) -> None:
    """The active book by five-tier class, charted by exposure, and each stage's provision."""
    service = _service(ctx)
    report: dict[str, Any] = _run(lambda: service.portfolio(currency))
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
