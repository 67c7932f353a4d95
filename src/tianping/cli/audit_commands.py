"""`tianping audit`: verify the hash chain over the journal, and show its head for anchoring."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tianping.cli.common import (
    EXIT_FAILED,
    CliError,
    cell,
    console,
    emit_json,
    format_time,
    progress_console,
    quiet_unless_terminal,
    state_of,
)
from tianping.ledger.audit import ChainReport, verify_chain
from tianping.ledger.service import Ledger

app = typer.Typer(help="Verify the tamper-evident journal and show its head.",
                  no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]

_BREAKS_SHOWN = 20


def verify(ledger: Ledger, progress_to: Console) -> ChainReport:
    """Recompute the chain over one snapshot, with a progress bar over its records."""
    with ledger.read(snapshot=True) as store:
        total = store.read_head().seq
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=progress_to, transient=True,
                      disable=quiet_unless_terminal(progress_to)) as progress:
            task = progress.add_task("verifying the audit chain", total=total or None)

            def advance(records: int) -> None:
                progress.update(task, completed=records)

            return verify_chain(store, progress=advance)


def print_report(report: ChainReport, out: Console, as_json: bool = False) -> bool:
    """Print a `ChainReport`; True when the chain is intact."""
    first = report.first_break
    if as_json:
        emit_json({
            "ok": report.ok, "records": report.records, "head_seq": report.head_seq,
            "head_hash": report.head_hash or None, "break_count": len(report.breaks),
            "first_break": None if first is None else {"seq": first.seq, "reason": first.reason},
            "breaks": [{"seq": b.seq, "reason": b.reason} for b in report.breaks],
        })
        return report.ok
    if first is None:
        out.print(f"audit verify: OK ({report.records} records; head seq {report.head_seq}, "
                  f"hash {report.head_hash})", markup=False, style="green")
        return True
    out.print(f"audit verify: FAILED at record seq {first.seq}: {first.reason} "
              f"({len(report.breaks)} break(s) in {report.records} records)", markup=False,
              style="bold red")
    table = Table(title=f"Breaks (first {min(len(report.breaks), _BREAKS_SHOWN)} of "
                        f"{len(report.breaks)})")
    table.add_column("seq", justify="right")
    table.add_column("reason")
    for item in report.breaks[:_BREAKS_SHOWN]:
        table.add_row(cell(item.seq), cell(item.reason))
    out.print(table)
    return False


@app.command("verify")
def verify_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Recompute the hash chain from the stored rows (exit 1 at the first broken link)."""
    report = verify(state_of(ctx).services().ledger, progress_console())
    first = report.first_break
    if not print_report(report, console(), as_json) and first is not None:
        raise CliError(f"audit chain broken at record seq {first.seq} "
                       f"({len(report.breaks)} break(s))", EXIT_FAILED)


@app.command("head")
def head(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print the chain head (seq and hash) to anchor outside the database."""
    ledger = state_of(ctx).services().ledger
    with ledger.read() as store:
        current = store.read_head()
    digest = current.hash.hex()
    if as_json:
        emit_json({"seq": current.seq, "hash": digest,
                   "last_timestamp": current.last_timestamp})
        return
    out = console()
    out.print(f"seq  {current.seq}\nhash {digest}\ntime {format_time(current.last_timestamp)}",
              markup=False)
