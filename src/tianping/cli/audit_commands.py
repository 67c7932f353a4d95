"""`tianping audit`: verify the hash chain over the journal, and show its head for anchoring."""

from __future__ import annotations

from dataclasses import dataclass
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

app = typer.Typer(help="Verify the tamper-evident journal and show its head.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]

_BREAKS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """Whether the chain still holds record `seq` with the hash anchored outside earlier."""

    seq: int
    expected: str
    found: str | None

    @property
    def ok(self) -> bool:
        return self.found == self.expected


def parse_anchor(text: str) -> tuple[int, str]:
    """`SEQ:HASH`, the `anchor` line that `tianping audit head` prints."""
    seq_text, _, digest = text.strip().partition(":")
    digest = digest.strip().lower()
    if (
        not seq_text.isdigit()
        or int(seq_text) < 1
        or len(digest) != 64
        or not all(c in "0123456789abcdef" for c in digest)
    ):
        raise ValueError(
            "an anchor is SEQ:HASH, a record number and its 64 hex digit hash, "
            "as `tianping audit head` prints them"
        )
    return int(seq_text), digest


def verify(
    ledger: Ledger, progress_to: Console, anchor: tuple[int, str] | None = None
) -> tuple[ChainReport, AnchorCheck | None]:
    """Recompute the chain over one snapshot, with a progress bar over its records; with
    `anchor`, also look up the anchored record in the same snapshot."""
    with ledger.read(snapshot=True) as store:
        total = store.read_head().seq
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=progress_to,
            transient=True,
            disable=quiet_unless_terminal(progress_to),
        ) as progress:
            task = progress.add_task("verifying the audit chain", total=total or None)

            def advance(records: int) -> None:
                progress.update(task, completed=records)

            report = verify_chain(store, progress=advance)
        check = None
        if anchor is not None:
            seq, expected = anchor
            records = store.chain_records(seq - 1, 1)
            found = records[0].hash.hex() if records and records[0].seq == seq else None
            check = AnchorCheck(seq, expected, found)
    return report, check


def print_report(
    report: ChainReport, out: Console, as_json: bool = False, anchor: AnchorCheck | None = None
) -> bool:
    """Print a `ChainReport` (and an anchor check); True when the chain is intact."""
    first = report.first_break
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "records": report.records,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash or None,
                "break_count": len(report.breaks),
                "first_break": None
                if first is None
                else {"seq": first.seq, "reason": first.reason},
                "breaks": [{"seq": b.seq, "reason": b.reason} for b in report.breaks],
                "anchor": None
                if anchor is None
                else {
                    "seq": anchor.seq,
                    "hash": anchor.expected,
                    "found": anchor.found,
                    "ok": anchor.ok,
                },
            }
        )
        return report.ok
    if first is None:
        out.print(
            f"audit verify: OK ({report.records} records; head seq {report.head_seq}, "
            f"hash {report.head_hash})",
            markup=False,
            style="green",
        )
    else:
        out.print(
            f"audit verify: FAILED at record seq {first.seq}: {first.reason} "
            f"({len(report.breaks)} break(s) in {report.records} records)",
            markup=False,
            style="bold red",
        )
        table = Table(
            title=f"Breaks (first {min(len(report.breaks), _BREAKS_SHOWN)} of {len(report.breaks)})"
        )
        table.add_column("seq", justify="right")
        table.add_column("reason")
        for item in report.breaks[:_BREAKS_SHOWN]:
            table.add_row(cell(item.seq), cell(item.reason))
        out.print(table)
    if anchor is not None:
        if anchor.ok:
            out.print(
                f"anchor: record seq {anchor.seq} still has the anchored hash",
                markup=False,
                style="green",
            )
        else:
            found = "is missing" if anchor.found is None else f"has hash {anchor.found}"
            out.print(
                f"anchor: FAILED: record seq {anchor.seq} {found}, anchored {anchor.expected}",
                markup=False,
                style="bold red",
            )
    return report.ok


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            metavar="SEQ:HASH",
            help="Also require that record SEQ still has HASH (from an earlier `audit head`).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the hash chain from the stored rows (exit 1 at the first broken link)."""
    try:
        anchored = parse_anchor(anchor) if anchor is not None else None
    except ValueError as exc:
        raise CliError(f"--anchor {anchor!r}: {exc}") from None
    report, check = verify(state_of(ctx).services().ledger, progress_console(), anchored)
    first = report.first_break
    if not print_report(report, console(), as_json, check) and first is not None:
        raise CliError(
            f"audit chain broken at record seq {first.seq} ({len(report.breaks)} break(s))",
            EXIT_FAILED,
        )
    if check is not None and not check.ok:
        raise CliError(f"record seq {check.seq} does not have the anchored hash", EXIT_FAILED)


@app.command("head")
def head(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print the chain head (seq and hash) to anchor outside the database."""
    ledger = state_of(ctx).services().ledger
    with ledger.read() as store:
        current = store.read_head()
    digest = current.hash.hex()
    if as_json:
        emit_json(
            {
                "seq": current.seq,
                "hash": digest,
                "anchor": f"{current.seq}:{digest}",
                "last_timestamp": current.last_timestamp,
            }
        )
        return
    out = console()
    out.print(
        f"seq    {current.seq}\nhash   {digest}\ntime   "
        f"{format_time(current.last_timestamp)}\nanchor {current.seq}:{digest}",
        markup=False,
    )
