"""`tianping ledger`: accounts, transfers, balances, statements and the ledger's own checks.

Amounts are typed as decimal text in the currency's major unit (`--amount 12.34 --currency CNY`,
read with `Money.parse`, so `12.345` is refused for CNY rather than rounded) or as an integer
count of minor units (`--amount-minor 1234`). The ledger's per-event answers are its result
codes (`tianping ledger codes`): `ok` and `exists` (an identical replay) succeed; any other code
is reported as an error with exit code 2, or 3 when something named does not exist.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
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
    format_balance,
    format_time,
    id_text,
    join_ids,
    optional_id,
    parse_amount,
    parse_id_option,
    parse_timestamp,
    progress_console,
    quiet_unless_terminal,
    state_of,
)
from tianping.ledger.ids import parse_id
from tianping.ledger.limits import (
    METADATA_BYTES_MAX,
    METADATA_KEYS_MAX,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    TIMEOUT_SECONDS_MAX,
    TRANSFERS_PER_BATCH_MAX,
)
from tianping.ledger.model import (
    Account,
    AccountBalance,
    AccountFlags,
    NewAccount,
    NewTransfer,
    Transfer,
    TransferFlags,
    flag_names,
    flags_from_names,
)
from tianping.ledger.money import Currency
from tianping.ledger.results import (
    AccountStateChangeResult,
    CreateAccountResult,
    CreateTransferResult,
    describe_registry,
)
from tianping.ledger.service import TIMESTAMP_MAX, Ledger

app = typer.Typer(
    help="Accounts, transfers, balances, statements and ledger checks.", no_args_is_help=True
)
accounts_app = typer.Typer(help="Create, show, close and reopen accounts.", no_args_is_help=True)
transfers_app = typer.Typer(help="Create, import and show transfers.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(transfers_app, name="transfers")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]
IdArgument = Annotated[
    int,
    typer.Argument(
        parser=parse_id_option, metavar="ACCOUNT_ID", help="The account's id.", show_default=False
    ),
]
FromOption = Annotated[
    int | None,
    typer.Option(
        "--from",
        parser=parse_timestamp,
        metavar="TIME",
        help="Start of the period, inclusive: ISO 8601 (UTC unless an offset is given) or ns.",
    ),
]
ToOption = Annotated[
    int | None,
    typer.Option(
        "--to",
        parser=parse_timestamp,
        metavar="TIME",
        help="End of the period, inclusive: ISO 8601 (UTC unless an offset is given) or ns.",
    ),
]

# Account flags a client may set; `closed` is state (close/reopen) and `linked` only means
# something inside a batch.
ACCOUNT_CREATE_FLAGS = (
    "debits_must_not_exceed_credits",
    "credits_must_not_exceed_debits",
    "history",
)


# -- rendering -------------------------------------------------------------------------------


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": id_text(account.id),
        "currency": account.currency,
        "code": account.code,
        "flags": flag_names(account.flags, AccountFlags.NAMES),
        "owner": account.owner,
        "timestamp": account.timestamp,
        "closed": account.closed,
        "debits_pending": account.debits_pending,
        "debits_posted": account.debits_posted,
        "credits_pending": account.credits_pending,
        "credits_posted": account.credits_posted,
    }


def transfer_kind(transfer: Transfer) -> str:
    """A short word for what a transfer row did."""
    flags = transfer.flags
    if flags & TransferFlags.PENDING:
        return "hold"
    if flags & TransferFlags.POST_PENDING:
        return "post"
    if flags & TransferFlags.VOID_PENDING:
        return "void"
    if transfer.reverses_id:
        return "reversal"
    return "transfer"


def transfer_json(transfer: Transfer) -> dict[str, Any]:
    return {
        "id": id_text(transfer.id),
        "debit_account_id": id_text(transfer.debit_account_id),
        "credit_account_id": id_text(transfer.credit_account_id),
        "amount": transfer.amount,
        "currency": transfer.currency,
        "code": transfer.code,
        "flags": flag_names(transfer.flags, TransferFlags.NAMES),
        "kind": transfer_kind(transfer),
        "pending_id": optional_id(transfer.pending_id),
        "reverses_id": optional_id(transfer.reverses_id),
        "timeout": transfer.timeout,
        "metadata": transfer.metadata,
        "timestamp": transfer.timestamp,
    }


def accounts_table(accounts: Sequence[Account], title: str = "Accounts") -> Table:
    table = Table(title=title)
    for name in ("id", "currency", "code", "flags", "owner", "created (UTC)"):
        table.add_column(name, no_wrap=name in ("id", "created (UTC)"))
    for name in ("debits posted", "credits posted", "debits pending", "credits pending", "balance"):
        table.add_column(name, justify="right", no_wrap=True)
    for account in accounts:
        currency = account.currency
        table.add_row(
            cell(account.id),
            cell(currency),
            cell(account.code),
            cell(", ".join(flag_names(account.flags, AccountFlags.NAMES)) or "-"),
            cell(account.owner or "-"),
            cell(format_time(account.timestamp)),
            cell(format_amount(account.debits_posted, currency)),
            cell(format_amount(account.credits_posted, currency)),
            cell(format_amount(account.debits_pending, currency)),
            cell(format_amount(account.credits_pending, currency)),
            cell(format_balance(account.debits_posted, account.credits_posted, currency)),
        )
    return table


def transfers_table(transfers: Sequence[Transfer], title: str = "Transfers") -> Table:
    table = Table(title=title)
    for name in ("time (UTC)", "id", "kind", "debit", "credit"):
        table.add_column(name, no_wrap=True)
    table.add_column("amount", justify="right", no_wrap=True)
    for name in ("cur", "code", "flags", "refers to"):
        table.add_column(name)
    for transfer in transfers:
        refers = (
            f"hold {transfer.pending_id}"
            if transfer.pending_id
            else f"transfer {transfer.reverses_id}"
            if transfer.reverses_id
            else "-"
        )
        table.add_row(
            cell(format_time(transfer.timestamp)),
            cell(transfer.id),
            cell(transfer_kind(transfer)),
            cell(transfer.debit_account_id),
            cell(transfer.credit_account_id),
            cell(format_amount(transfer.amount, transfer.currency)),
            cell(transfer.currency),
            cell(transfer.code),
            cell(", ".join(flag_names(transfer.flags, TransferFlags.NAMES)) or "-"),
            cell(refers),
        )
    return table


def _exit_for_result(name: str) -> int:
    return EXIT_NOT_FOUND if name.endswith("not_found") else EXIT_USAGE


def _ledger(ctx: typer.Context) -> Ledger:
    return state_of(ctx).services().ledger


# -- accounts --------------------------------------------------------------------------------


@accounts_app.command("create")
def create_account(
    ctx: typer.Context,
    account_id: Annotated[
        int,
        typer.Option(
            "--id",
            parser=parse_id_option,
            metavar="ID",
            help="The new account's id (client-chosen).",
        ),
    ],
    currency: Annotated[
        str, typer.Option("--currency", metavar="CODE", help="ISO 4217 currency code, such as CNY.")
    ],
    code: Annotated[
        int,
        typer.Option(
            "--code",
            metavar="N",
            min=1,
            max=65535,
            help="Account type code, 1 to 65535 (your chart).",
        ),
    ],
    flags: Annotated[
        list[str] | None,
        typer.Option(
            "--flag", metavar="FLAG", help="Repeatable: " + ", ".join(ACCOUNT_CREATE_FLAGS) + "."
        ),
    ] = None,
    owner: Annotated[
        str, typer.Option("--owner", metavar="REF", help="Pseudonymous owner reference.")
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Create one account (an identical replay answers `exists`)."""
    Currency.of(currency)  # a clear error for an unknown code before the ledger's result code
    names = [name.strip().replace("-", "_") for name in flags or []]
    refused = [
        name for name in names if name in AccountFlags.NAMES and name not in ACCOUNT_CREATE_FLAGS
    ]
    if refused:
        raise CliError(
            f"flag(s) {', '.join(refused)} cannot be set here; choose from "
            f"{', '.join(ACCOUNT_CREATE_FLAGS)}"
        )
    word = flags_from_names(names, AccountFlags.NAMES)
    [result] = _ledger(ctx).create_accounts(
        [NewAccount(id=account_id, currency=currency, code=code, flags=word, owner=owner)]
    )
    _report_account_result(account_id, result, as_json)


def _report_account_result(account_id: int, result: CreateAccountResult, as_json: bool) -> None:
    if as_json:
        emit_json({"id": id_text(account_id), "result": result.name, "code": int(result)})
    elif result is CreateAccountResult.ok:
        console().print(f"created account {account_id}", markup=False)
    elif result is CreateAccountResult.exists:
        console().print(
            f"account {account_id} already exists with these fields (exists)", markup=False
        )
    if result not in (CreateAccountResult.ok, CreateAccountResult.exists):
        raise CliError(
            f"account {account_id} not created: {result.name} ({int(result)})",
            _exit_for_result(result.name),
        )


@accounts_app.command("show")
def show_accounts(
    ctx: typer.Context,
    ids: Annotated[
        list[int],
        typer.Argument(
            parser=parse_id_option,
            metavar="ID...",
            help="One or more account ids.",
            show_default=False,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Show accounts with their balances (exit 3 if any id is unknown)."""
    accounts = _ledger(ctx).lookup_accounts(ids)
    _show_found("account", ids, accounts, account_json, accounts_table, as_json)


def _show_found(
    kind: str,
    ids: list[int],
    records: Sequence[Any],
    to_json: Callable[[Any], dict[str, Any]],
    to_table: Callable[[Sequence[Any]], Any],
    as_json: bool,
) -> None:
    """Print the records found for `ids` (a table, or JSON), then fail with exit 3 naming any
    id that was not found."""
    found = {record.id for record in records}
    missing = [record_id for record_id in dict.fromkeys(ids) if record_id not in found]
    if as_json:
        emit_json(
            {f"{kind}s": [to_json(r) for r in records], "missing": [id_text(i) for i in missing]}
        )
    elif records:
        console().print(to_table(records))
    if missing:
        raise CliError(f"no {kind} has id {join_ids(missing)}", EXIT_NOT_FOUND)


def _state_change(ctx: typer.Context, account_id: int, close: bool, as_json: bool) -> None:
    ledger = _ledger(ctx)
    result = ledger.close_account(account_id) if close else ledger.reopen_account(account_id)
    verb = "closed" if close else "reopened"
    if as_json:
        emit_json({"id": id_text(account_id), "result": result.name, "code": int(result)})
    elif result is AccountStateChangeResult.ok:
        console().print(f"{verb} account {account_id}", markup=False)
    if result is AccountStateChangeResult.account_not_found:
        raise CliError(f"no account has id {account_id}", EXIT_NOT_FOUND)
    if result is not AccountStateChangeResult.ok:
        raise CliError(f"account {account_id} not {verb}: {result.name} ({int(result)})")


@accounts_app.command("close")
def close_account(ctx: typer.Context, account_id: IdArgument, as_json: JsonOption = False) -> None:
    """Close an account to new transfers (voids of its open holds still pass)."""
    _state_change(ctx, account_id, True, as_json)


@accounts_app.command("reopen")
def reopen_account(ctx: typer.Context, account_id: IdArgument, as_json: JsonOption = False) -> None:
    """Reopen a closed account."""
    _state_change(ctx, account_id, False, as_json)


# -- transfers -------------------------------------------------------------------------------


def _compact_metadata(text: str | None) -> str | None:
    """Validate metadata as a small JSON object and return it in compact, sorted form."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"metadata is not valid JSON: {exc.msg} at position {exc.pos}") from None
    return _metadata_from_value(value)


def _metadata_from_value(value: object) -> str:
    if not isinstance(value, dict) or not value:
        raise CliError("metadata must be a non-empty JSON object")
    if len(value) > METADATA_KEYS_MAX:
        raise CliError(f"metadata has {len(value)} keys; at most {METADATA_KEYS_MAX} are allowed")
    compact = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if len(compact.encode()) > METADATA_BYTES_MAX:
        raise CliError(
            f"metadata is {len(compact.encode())} bytes as compact JSON; at most "
            f"{METADATA_BYTES_MAX} are allowed"
        )
    return compact


def _referenced_currency(ledger: Ledger, transfer_id: int) -> str:
    transfers = ledger.lookup_transfers([transfer_id])
    if not transfers:
        raise CliError(f"no transfer has id {transfer_id}", EXIT_NOT_FOUND)
    return transfers[0].currency


@transfers_app.command("create")
def create_transfer(
    ctx: typer.Context,
    transfer_id: Annotated[
        int,
        typer.Option(
            "--id",
            parser=parse_id_option,
            metavar="ID",
            help="The new transfer's id (client-chosen).",
        ),
    ],
    debit: Annotated[
        int | None,
        typer.Option(
            "--debit",
            parser=parse_id_option,
            metavar="ID",
            help="Account to debit (optional for --post, --void and --reverses).",
        ),
    ] = None,
    credit: Annotated[
        int | None,
        typer.Option(
            "--credit",
            parser=parse_id_option,
            metavar="ID",
            help="Account to credit (optional for --post, --void and --reverses).",
        ),
    ] = None,
    amount: Annotated[
        str | None,
        typer.Option(
            "--amount",
            metavar="DECIMAL",
            help="Amount in major units, such as 12.34; needs --currency for a new transfer.",
        ),
    ] = None,
    amount_minor: Annotated[
        int | None,
        typer.Option(
            "--amount-minor",
            metavar="N",
            min=1,
            help="Amount as an integer count of minor units (instead of --amount).",
        ),
    ] = None,
    currency: Annotated[
        str | None,
        typer.Option("--currency", metavar="CODE", help="ISO 4217 currency code, such as CNY."),
    ] = None,
    code: Annotated[
        int,
        typer.Option(
            "--code",
            metavar="N",
            min=0,
            max=65535,
            help="Transfer type code, 1 to 65535 (optional for --post, --void and --reverses).",
        ),
    ] = 0,
    pending: Annotated[
        bool, typer.Option("--pending", help="Create a hold (two-phase transfer).")
    ] = False,
    timeout: Annotated[
        int,
        typer.Option(
            "--timeout",
            metavar="S",
            min=0,
            max=TIMEOUT_SECONDS_MAX,
            help="Seconds after which an unresolved hold is voided (with --pending).",
        ),
    ] = 0,
    post: Annotated[
        int | None,
        typer.Option(
            "--post",
            parser=parse_id_option,
            metavar="ID",
            help="Post the hold with this id (whole amount unless an amount is given).",
        ),
    ] = None,
    void: Annotated[
        int | None,
        typer.Option(
            "--void", parser=parse_id_option, metavar="ID", help="Void the hold with this id."
        ),
    ] = None,
    reverses: Annotated[
        int | None,
        typer.Option(
            "--reverses",
            parser=parse_id_option,
            metavar="ID",
            help="Reverse this posted transfer (what is left of it unless an amount is given).",
        ),
    ] = None,
    linked: Annotated[
        bool,
        typer.Option(
            "--linked", help="Set the linked flag (a lone linked transfer is an open chain)."
        ),
    ] = False,
    balancing_debit: Annotated[
        bool,
        typer.Option(
            "--balancing-debit", help="Move at most what the debit account's limit allows."
        ),
    ] = False,
    balancing_credit: Annotated[
        bool,
        typer.Option(
            "--balancing-credit", help="Move at most what the credit account's limit allows."
        ),
    ] = False,
    metadata: Annotated[
        str | None,
        typer.Option("--metadata", metavar="JSON", help="A small JSON object of references."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create one transfer: plain, a hold, a post or void of a hold, or a reversal."""
    if amount is not None and amount_minor is not None:
        raise CliError("give --amount or --amount-minor, not both")
    if post is not None and void is not None:
        raise CliError("give --post or --void, not both")
    if currency is not None:
        Currency.of(currency)
    ledger = _ledger(ctx)
    pending_id = post if post is not None else void if void is not None else 0
    minor = amount_minor or 0
    if amount is not None:
        unit = currency
        if unit is None and (pending_id or reverses):
            unit = _referenced_currency(ledger, pending_id or reverses or 0)
        if unit is None:
            raise CliError("--amount needs --currency (or use --amount-minor)")
        minor = parse_amount(amount, unit)
    word = 0
    for on, bit in (
        (pending, TransferFlags.PENDING),
        (post is not None, TransferFlags.POST_PENDING),
        (void is not None, TransferFlags.VOID_PENDING),
        (linked, TransferFlags.LINKED),
        (balancing_debit, TransferFlags.BALANCING_DEBIT),
        (balancing_credit, TransferFlags.BALANCING_CREDIT),
    ):
        if on:
            word |= bit
    event = NewTransfer(
        id=transfer_id,
        debit_account_id=debit or 0,
        credit_account_id=credit or 0,
        amount=minor,
        currency=currency or "",
        code=code,
        flags=word,
        pending_id=pending_id,
        reverses_id=reverses or 0,
        timeout=timeout,
        metadata=_compact_metadata(metadata),
    )
    [result] = ledger.create_transfers([event])
    stored = (
        ledger.lookup_transfers([transfer_id])
        if result in (CreateTransferResult.ok, CreateTransferResult.exists)
        else []
    )
    if as_json:
        emit_json(
            {
                "id": id_text(transfer_id),
                "result": result.name,
                "code": int(result),
                "transfer": transfer_json(stored[0]) if stored else None,
            }
        )
    elif result is CreateTransferResult.ok:
        console().print(f"created transfer {transfer_id}", markup=False)
        console().print(transfers_table(stored, title="Transfer"))
    elif result is CreateTransferResult.exists:
        console().print(
            f"transfer {transfer_id} already exists with these fields (exists); "
            "nothing was written",
            markup=False,
        )
    if result not in (CreateTransferResult.ok, CreateTransferResult.exists):
        raise CliError(
            f"transfer {transfer_id} rejected: {result.name} ({int(result)})",
            _exit_for_result(result.name),
        )


@transfers_app.command("show")
def show_transfers(
    ctx: typer.Context,
    ids: Annotated[
        list[int],
        typer.Argument(
            parser=parse_id_option,
            metavar="ID...",
            help="One or more transfer ids.",
            show_default=False,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Show transfers by id (exit 3 if any id is unknown)."""
    transfers = _ledger(ctx).lookup_transfers(ids)
    _show_found("transfer", ids, transfers, transfer_json, transfers_table, as_json)


# -- import ----------------------------------------------------------------------------------

_IMPORT_FIELDS = frozenset(
    {
        "id",
        "debit_account_id",
        "credit_account_id",
        "amount",
        "amount_minor",
        "currency",
        "code",
        "flags",
        "pending_id",
        "reverses_id",
        "timeout",
        "metadata",
    }
)


def _optional_id(record: dict[str, Any], key: str) -> int:
    value = record.get(key)
    if value is None or value in (0, "0"):
        return 0
    if not isinstance(value, int | str):
        raise ValueError(f"{key} must be an id (a decimal string or an integer)")
    return parse_id(value)


def _int_field(record: dict[str, Any], key: str) -> int:
    value = record.get(key, 0)
    if type(value) is not int:
        raise ValueError(f"{key} must be an integer")
    return value


def transfer_from_record(record: object) -> NewTransfer:
    """One JSON-lines record as a `NewTransfer`; raises ValueError naming what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    unknown = sorted(set(record) - _IMPORT_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    if "id" not in record:
        raise ValueError("id is required")
    transfer_id = _optional_id(record, "id")
    currency = record.get("currency") or ""
    if not isinstance(currency, str):
        raise ValueError("currency must be a string")
    amount_text = record.get("amount")
    minor = _int_field(record, "amount_minor")
    if amount_text is not None:
        if "amount_minor" in record:
            raise ValueError("give amount or amount_minor, not both")
        if not isinstance(amount_text, str):
            raise ValueError(
                'amount must be a decimal string such as "12.34" '
                "(use amount_minor for an integer of minor units)"
            )
        if not currency:
            raise ValueError("a decimal amount needs currency (or use amount_minor)")
        minor = parse_amount(amount_text, currency)
    flags = record.get("flags", 0)
    if isinstance(flags, list) and all(isinstance(name, str) for name in flags):
        word = flags_from_names(flags, TransferFlags.NAMES)
    elif type(flags) is int:
        word = flags
    else:
        raise ValueError("flags must be a list of flag names or an integer")
    metadata = record.get("metadata")
    if metadata is not None and not isinstance(metadata, str):
        metadata = _metadata_from_value(metadata)
    return NewTransfer(
        id=transfer_id,
        debit_account_id=_optional_id(record, "debit_account_id"),
        credit_account_id=_optional_id(record, "credit_account_id"),
        amount=minor,
        currency=currency,
        code=_int_field(record, "code"),
        flags=word,
        pending_id=_optional_id(record, "pending_id"),
        reverses_id=_optional_id(record, "reverses_id"),
        timeout=_int_field(record, "timeout"),
        metadata=metadata,
    )


def read_jsonl(path: Path) -> list[tuple[int, NewTransfer]]:
    """Every transfer of a JSON-lines file with its line number; the first bad line raises."""
    events: list[tuple[int, NewTransfer]] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                events.append((number, transfer_from_record(json.loads(line))))
            except json.JSONDecodeError as exc:
                raise CliError(f"{path}:{number}: not JSON: {exc.msg}") from None
            except (ValueError, CliError) as exc:
                raise CliError(f"{path}:{number}: {exc}") from None
    return events


def batches(events: Sequence[NewTransfer], size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) slices of at most `size` events that never split a linked chain.

    A batch ends after an event without the linked flag; only a chain longer than `size` is
    cut, and the ledger then answers `linked_event_chain_open` for it, as it must.
    """
    start = 0
    while start < len(events):
        stop = min(start + size, len(events))
        if stop < len(events):
            cut = stop
            while cut > start and events[cut - 1].flags & TransferFlags.LINKED:
                cut -= 1
            if cut > start:
                stop = cut
        yield start, stop
        start = stop


@dataclass
class ImportSummary:
    events: int
    batches: int
    results: Counter[str]
    rejected: list[tuple[int, int, str]]  # (line, transfer id, result name)


def import_transfers(
    ledger: Ledger,
    numbered: Sequence[tuple[int, NewTransfer]],
    progress_to: Console,
    batch_size: int = TRANSFERS_PER_BATCH_MAX,
    description: str = "importing",
) -> ImportSummary:
    """Submit events in batches with a progress bar; one commit per batch."""
    events = [event for _, event in numbered]
    summary = ImportSummary(len(events), 0, Counter(), [])
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_to,
        disable=quiet_unless_terminal(progress_to),
    ) as progress:
        task = progress.add_task(description, total=len(events))
        for start, stop in batches(events, batch_size):
            results = ledger.create_transfers(events[start:stop])
            summary.batches += 1
            for offset, result in enumerate(results):
                summary.results[result.name] += 1
                if result not in (CreateTransferResult.ok, CreateTransferResult.exists):
                    line, event = numbered[start + offset]
                    summary.rejected.append((line, event.id, result.name))
            progress.advance(task, stop - start)
    return summary


def results_table(results: Counter[str], title: str = "Results") -> Table:
    table = Table(title=title)
    table.add_column("result")
    table.add_column("code", justify="right")
    table.add_column("count", justify="right")
    for name, count in sorted(results.items(), key=lambda item: CreateTransferResult[item[0]]):
        style = "green" if name in ("ok", "exists") else "red"
        table.add_row(cell(name, style), cell(int(CreateTransferResult[name])), cell(count))
    return table


@transfers_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.jsonl",
            exists=True,
            dir_okay=False,
            readable=True,
            help="JSON lines, one transfer object per line (see the CLI README).",
            show_default=False,
        ),
    ],
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, max=TRANSFERS_PER_BATCH_MAX, help="Transfers per commit."
        ),
    ] = TRANSFERS_PER_BATCH_MAX,
    as_json: JsonOption = False,
) -> None:
    """Import a batch of transfers from a JSON-lines file (exit 1 if any is rejected)."""
    numbered = read_jsonl(file)
    summary = import_transfers(_ledger(ctx), numbered, progress_console(), batch_size)
    shown = summary.rejected[:PAGE_SIZE_DEFAULT]
    if as_json:
        emit_json(
            {
                "file": str(file),
                "events": summary.events,
                "batches": summary.batches,
                "results": dict(summary.results),
                "rejected": [
                    {"line": line, "id": id_text(i), "result": name} for line, i, name in shown
                ],
                "rejected_total": len(summary.rejected),
            }
        )
    else:
        out = console()
        out.print(
            f"{file}: {summary.events} transfer(s) in {summary.batches} commit(s)", markup=False
        )
        out.print(results_table(summary.results))
        if shown:
            table = Table(title=f"Rejected (first {len(shown)} of {len(summary.rejected)})")
            for name in ("line", "id", "result"):
                table.add_column(name)
            for line, transfer_id, name in shown:
                table.add_row(cell(line), cell(transfer_id), cell(name, "red"))
            out.print(table)
    if summary.rejected:
        raise CliError(
            f"{len(summary.rejected)} of {summary.events} transfer(s) were rejected", EXIT_FAILED
        )


# -- balances, history, statement ------------------------------------------------------------


def _balance_json(account: Account, balance: AccountBalance | None) -> dict[str, Any]:
    source: Account | AccountBalance = balance if balance is not None else account
    return {
        "account_id": id_text(account.id),
        "currency": account.currency,
        "timestamp": balance.timestamp if balance is not None else None,
        "debits_pending": source.debits_pending,
        "debits_posted": source.debits_posted,
        "credits_pending": source.credits_pending,
        "credits_posted": source.credits_posted,
    }


@app.command("balances")
def balances(
    ctx: typer.Context,
    account_id: IdArgument,
    at: Annotated[
        int | None,
        typer.Option(
            "--at",
            parser=parse_timestamp,
            metavar="TIME",
            help="Balances as they stood at this time (history accounts only): ISO 8601 or ns.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show an account's balances now, or at a past time for a `history` account."""
    ledger = _ledger(ctx)
    account = ledger.get_account(account_id)
    balance = ledger.balance_at(account_id, at) if at is not None else None
    if as_json:
        emit_json(_balance_json(account, balance))
        return
    source: Account | AccountBalance = balance if balance is not None else account
    when = f"at {format_time(at)}" if at is not None else "now"
    table = Table(title=f"Account {account_id} ({account.currency}) balances {when}")
    table.add_column("")
    table.add_column("pending", justify="right")
    table.add_column("posted", justify="right")
    currency = account.currency
    table.add_row(
        "debits",
        format_amount(source.debits_pending, currency),
        format_amount(source.debits_posted, currency),
    )
    table.add_row(
        "credits",
        format_amount(source.credits_pending, currency),
        format_amount(source.credits_posted, currency),
    )
    table.add_row(
        "balance",
        format_balance(source.debits_pending, source.credits_pending, currency),
        format_balance(source.debits_posted, source.credits_posted, currency),
    )
    console().print(table)


@app.command("history")
def history(
    ctx: typer.Context,
    account_id: IdArgument,
    start: FromOption = None,
    end: ToOption = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=PAGE_SIZE_MAX, help="Transfers per page.")
    ] = PAGE_SIZE_DEFAULT,
    newest_first: Annotated[
        bool, typer.Option("--newest-first", help="Newest transfers first.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List an account's transfers in ledger-time order, one page at a time."""
    ledger = _ledger(ctx)
    rows = ledger.get_account_transfers(account_id, start or 0, end or 0, limit, newest_first)
    next_page: dict[str, int] | None = None
    if len(rows) == limit:
        last = rows[-1].timestamp
        next_page = {"to": last - 1} if newest_first else {"from": last + 1}
    if as_json:
        emit_json(
            {
                "account_id": id_text(account_id),
                "transfers": [transfer_json(t) for t in rows],
                "next_page": next_page,
            }
        )
        return
    out = console()
    out.print(transfers_table(rows, title=f"Transfers of account {account_id}"))
    if next_page is not None:
        option, value = next(iter(next_page.items()))
        out.print(f"more may follow: add --{option} {value}", markup=False)


@app.command("statement")
def statement(
    ctx: typer.Context,
    account_id: IdArgument,
    start: FromOption = None,
    end: ToOption = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=PAGE_SIZE_MAX, help="Entries at most.")
    ] = PAGE_SIZE_MAX,
    as_json: JsonOption = False,
) -> None:
    """Show posted activity over a period with opening and closing balances."""
    result = _ledger(ctx).statement(account_id, start or 0, end or 0, limit)
    account = result.account
    currency = account.currency
    if as_json:
        emit_json(
            {
                "account": account_json(account),
                "from": result.timestamp_min,
                "to": result.timestamp_max,
                "opening": {
                    "debits": result.opening_debits,
                    "credits": result.opening_credits,
                    "balance": format_balance(
                        result.opening_debits, result.opening_credits, currency
                    ),
                },
                "entries": [transfer_json(t) for t in result.entries],
                "closing": {
                    "debits": result.closing_debits,
                    "credits": result.closing_credits,
                    "balance": format_balance(
                        result.closing_debits, result.closing_credits, currency
                    ),
                },
                "complete": result.complete,
                "next_from": result.next_timestamp,
            }
        )
        return
    period_start = format_time(result.timestamp_min) if result.timestamp_min else "the start"
    period_end = (
        format_time(result.timestamp_max) if result.timestamp_max < TIMESTAMP_MAX else "now"
    )
    table = Table(
        title=f"Statement of account {account_id} ({currency})",
        caption=f"from {period_start} to {period_end}",
    )
    for name in ("time (UTC)", "transfer", "kind", "counterparty", "code"):
        table.add_column(name, no_wrap=True)
    for name in ("debit", "credit", "balance"):
        table.add_column(name, justify="right", no_wrap=True)
    debits, credits = result.opening_debits, result.opening_credits
    table.add_row(
        "",
        "",
        "opening",
        "",
        "",
        format_amount(debits, currency),
        format_amount(credits, currency),
        format_balance(debits, credits, currency),
        style="bold",
    )
    for entry in result.entries:
        is_debit = entry.debit_account_id == account_id
        if is_debit:
            debits += entry.amount
        else:
            credits += entry.amount
        counterparty = entry.credit_account_id if is_debit else entry.debit_account_id
        amount = format_amount(entry.amount, currency)
        table.add_row(
            cell(format_time(entry.timestamp)),
            cell(entry.id),
            cell(transfer_kind(entry)),
            cell(counterparty),
            cell(entry.code),
            cell(amount if is_debit else ""),
            cell("" if is_debit else amount),
            cell(format_balance(debits, credits, currency)),
        )
    table.add_row(
        "",
        "",
        "closing",
        "",
        "",
        format_amount(result.closing_debits, currency),
        format_amount(result.closing_credits, currency),
        format_balance(result.closing_debits, result.closing_credits, currency),
        style="bold",
    )
    out = console()
    out.print(table)
    if not result.complete:
        out.print(
            f"the period holds more than {limit} entries; continue with "
            f"--from {result.next_timestamp}",
            markup=False,
        )


# -- checks ----------------------------------------------------------------------------------


def ledger_counts(ledger: Ledger) -> tuple[int, int]:
    """(accounts, transfers) in the ledger, read in one snapshot.

    The service layer has no counting query yet, so this one reads the two tables directly;
    both drivers' connections have `execute`.
    """
    with ledger.read(snapshot=True) as store:
        accounts = store.connection.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
        transfers = store.connection.execute("SELECT COUNT(*) FROM transfers").fetchone()[0]
    return int(accounts), int(transfers)


def run_check(ledger: Ledger, out: Console, as_json: bool = False) -> bool:
    """Run `Ledger.check()` and print the outcome; True when the ledger is sound."""
    findings = ledger.check()
    accounts, transfers = ledger_counts(ledger)
    if as_json:
        emit_json(
            {"ok": not findings, "accounts": accounts, "transfers": transfers, "findings": findings}
        )
    elif not findings:
        out.print(
            f"ledger check: OK ({accounts} accounts, {transfers} transfers)",
            markup=False,
            style="green",
        )
    else:
        out.print(
            f"ledger check: FAILED ({len(findings)} finding(s))", markup=False, style="bold red"
        )
        for finding in findings:
            out.print(f"  - {finding}", markup=False)
    return not findings


@app.command("check")
def check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check double entry and the balances against the journal (exit 1 on findings)."""
    if not run_check(_ledger(ctx), console(), as_json):
        raise CliError("ledger check found problems", EXIT_FAILED)


@app.command("expire")
def expire(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Void every hold whose timeout has passed."""
    count = _ledger(ctx).expire_pending()
    if as_json:
        emit_json({"expired": count})
    else:
        console().print(f"voided {count} expired hold(s)", markup=False)


@app.command("codes")
def codes(as_json: JsonOption = False) -> None:
    """List the registry of result codes and the order in which checks are made."""
    registry = describe_registry()
    if as_json:
        emit_json(registry)
        return
    out = console()
    titles = {
        "create_account": "Account results (create_accounts)",
        "create_transfer": "Transfer results (create_transfers)",
        "account_state_change": "Account state changes (close / reopen)",
    }
    for key, title in titles.items():
        entries = registry[key]
        if not isinstance(entries, dict):  # pragma: no cover - the registry's shape is fixed
            continue
        table = Table(title=title)
        table.add_column("code", justify="right")
        table.add_column("name")
        precedence = registry.get(f"{key}_precedence")
        if isinstance(precedence, list):
            table.add_column("checked", justify="right")
        for number, name in entries.items():
            row = [cell(number), cell(name)]
            if isinstance(precedence, list):
                row.append(cell(precedence.index(name) + 1 if name in precedence else "-"))
            table.add_row(*row)
        out.print(table)
