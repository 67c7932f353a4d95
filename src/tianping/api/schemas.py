"""The JSON shapes of the ledger API: request models that check, response models that render.

Conventions, the same on every route:

* Ids are unsigned 128-bit integers, which JavaScript numbers cannot hold exactly, so responses
  always carry them as decimal strings. Requests may send either a string of digits or a JSON
  integer; anything else is refused with `id_invalid`.
* Amounts and balances are JSON integers counting minor units (fen, cents). Responses add a
  read-only decimal rendering (`amount_display`, `balances_display`) made by `Money.format`.
* Flags travel as lists of flag names, such as `["pending", "linked"]`.
* Timestamps are integers of nanoseconds since the Unix epoch (the ledger's own clock), and
  responses add the same instant as an ISO 8601 UTC string, `timestamp_iso`.

What the request models check: JSON types, the length of every string, list and object, and the
numeric ranges of `tianping.ledger.limits`, so that a malformed request is refused whole before
the ledger sees it. What depends on meaning (whether a currency code exists, which characters an
owner reference may hold, which flags combine, when a zero means "take it from the pending
transfer") stays with the ledger, which answers each event with its own result code; that way a
batch is judged event by event exactly as the ledger's other callers see it judged.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from tianping.ledger.errors import BatchTooLarge
from tianping.ledger.ids import InvalidId, parse_id
from tianping.ledger.limits import (
    ACCOUNTS_PER_BATCH_MAX,
    AMOUNT_MINOR_MAX,
    CODE_MAX,
    CODE_MIN,
    ID_MAX,
    ID_MIN,
    IDS_PER_LOOKUP_MAX,
    METADATA_BYTES_MAX,
    METADATA_KEYS_MAX,
    OWNER_REFERENCE_LENGTH_MAX,
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
from tianping.ledger.money import Currency, InvalidAmount, Money, MoneyError

# The text form of an id: 1 to 39 decimal digits (39 digits hold any 128-bit number).
ID_TEXT_PATTERN: Final = r"^[0-9]{1,39}$"
ID_TEXT_LENGTH_MAX: Final = 39

# The longest flag name the ledger defines, with room to spare; longer text is not a flag.
FLAG_NAME_LENGTH_MAX: Final = 64
CURRENCY_CODE_LENGTH: Final = 3
METADATA_INT_MIN: Final = -(2**63)
METADATA_INT_MAX: Final = 2**63 - 1

# The days the platform acts on: those the ledger's clock can stamp from start to end. Every
# time it stores is nanoseconds since the Unix epoch in a signed 64-bit integer, which runs out
# on 2262-04-11; nothing can have happened on a day outside these, and date arithmetic at the
# calendar's own ends (a day before 0001-01-01) fails.
DAY_MIN: Final = date(1970, 1, 1)
DAY_MAX: Final = date(2262, 4, 10)


# -- field types of requests -----------------------------------------------------------------


def _parse_ledger_id(value: object) -> int:
    # `parse_id` refuses booleans (a subclass of int) itself; floats, lists and objects are
    # refused here. Neither message repeats the value.
    if isinstance(value, int | str):
        return parse_id(value)
    raise InvalidId("an id must be a JSON string of decimal digits or a JSON integer")


def _parse_optional_ledger_id(value: object) -> int | None:
    return None if value is None else _parse_ledger_id(value)


def _check_amount(value: object) -> int:
    # Raising `InvalidAmount` (rather than declaring bounds on the field) gives every amount
    # fault the same problem code, `amount_invalid`, whatever exactly is wrong with it.
    if type(value) is not int:
        raise InvalidAmount("an amount must be a JSON integer count of minor units")
    if not 0 <= value <= AMOUNT_MINOR_MAX:
        raise InvalidAmount(f"an amount must lie between 0 and {AMOUNT_MINOR_MAX} minor units")
    return value


def _flag_name_check(names: dict[str, int], kind: str) -> AfterValidator:
    allowed = ", ".join(names)

    def check(name: str) -> str:
        if name not in names:
            raise ValueError(f"not a {kind} flag; the {kind} flags are: {allowed}")
        return name

    return AfterValidator(check)


_ID_JSON_SCHEMA: Final[dict[str, Any]] = {
    "anyOf": [
        {"type": "string", "pattern": ID_TEXT_PATTERN},
        {"type": "integer"},
    ],
    "description": f"A 128-bit id from {ID_MIN} to {ID_MAX}, preferably as a string of digits.",
}

LedgerIdInput = Annotated[int, BeforeValidator(_parse_ledger_id), WithJsonSchema(_ID_JSON_SCHEMA)]
OptionalLedgerIdInput = Annotated[
    int | None,
    BeforeValidator(_parse_optional_ledger_id),
    WithJsonSchema(
        {
            "anyOf": [*_ID_JSON_SCHEMA["anyOf"], {"type": "null"}],
            "description": "A 128-bit id, or null (or absent) when not given.",
        }
    ),
]
# Path parameters arrive as text; the schema says so.
LedgerIdPath = Annotated[
    int,
    BeforeValidator(_parse_ledger_id),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": ID_TEXT_PATTERN,
            "description": "A 128-bit id in decimal digits.",
        }
    ),
]
Day = Annotated[
    date,
    Field(ge=DAY_MIN, le=DAY_MAX),
    WithJsonSchema(
        {"type": "string", "format": "date", "description": f"A day from {DAY_MIN} to {DAY_MAX}."}
    ),
]
AmountInput = Annotated[
    int,
    BeforeValidator(_check_amount),
    WithJsonSchema(
        {
            "type": "integer",
            "minimum": 0,
            "maximum": AMOUNT_MINOR_MAX,
            "description": "Minor units of the currency (fen, cents).",
        }
    ),
]
AccountFlagName = Annotated[
    str,
    StringConstraints(max_length=FLAG_NAME_LENGTH_MAX),
    _flag_name_check(AccountFlags.NAMES, "account"),
    WithJsonSchema({"type": "string", "enum": list(AccountFlags.NAMES)}),
]
TransferFlagName = Annotated[
    str,
    StringConstraints(max_length=FLAG_NAME_LENGTH_MAX),
    _flag_name_check(TransferFlags.NAMES, "transfer"),
    WithJsonSchema({"type": "string", "enum": list(TransferFlags.NAMES)}),
]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=METADATA_BYTES_MAX)]


def _check_metadata_value(value: object) -> bool | int | str:
    # One validator for the three allowed kinds, so a wrong value gets one clear error rather
    # than one per kind it failed to be.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not METADATA_INT_MIN <= value <= METADATA_INT_MAX:
            raise ValueError("a metadata integer must fit in 64 bits")
        return value
    if isinstance(value, str):
        if len(value) > METADATA_BYTES_MAX:
            raise ValueError(f"a metadata string holds at most {METADATA_BYTES_MAX} characters")
        # JSON's \ud800 escapes can spell a lone surrogate, which Python keeps in a str but no
        # UTF-8 response can carry: accepted, it would be stored and then fail every read.
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a metadata string must be valid Unicode text") from None
        return value
    raise ValueError("a metadata value must be a string, an integer or a boolean")


MetadataValue = Annotated[
    bool | int | str,
    PlainValidator(_check_metadata_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": METADATA_BYTES_MAX},
                {"type": "integer", "minimum": METADATA_INT_MIN, "maximum": METADATA_INT_MAX},
                {"type": "boolean"},
            ]
        }
    ),
]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=METADATA_KEYS_MAX)]


def canonical_metadata(metadata: dict[str, bool | int | str] | None) -> str | None:
    """The one text form of a metadata object, so a replay of the same object is `exists`."""
    if metadata is None:
        return None
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class _Request(BaseModel):
    # Strict: a number in quotes is not a number, true is not 1, and 1.0 is not an integer.
    # Unknown fields are refused, so a misspelt optional field cannot be silently ignored.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _refuse_oversized_batch(data: Any, field: str, maximum: int, noun: str) -> Any:
    # Checked before any item is validated, and with the ledger's own error, so an oversized
    # batch costs nothing to refuse and is answered `batch_too_large` exactly as the ledger
    # would answer it.
    if isinstance(data, dict):
        items = data.get(field)
        if isinstance(items, list) and len(items) > maximum:
            raise BatchTooLarge(f"a batch holds at most {maximum} {noun}, not {len(items)}")
    return data


# -- requests ------------------------------------------------------------------------------


class NewAccountInput(_Request):
    """One account to create."""

    id: LedgerIdInput
    currency: Annotated[
        str, StringConstraints(min_length=CURRENCY_CODE_LENGTH, max_length=CURRENCY_CODE_LENGTH)
    ]
    code: Annotated[int, Field(ge=CODE_MIN, le=CODE_MAX)]
    flags: Annotated[list[AccountFlagName], Field(max_length=len(AccountFlags.NAMES))] = []
    owner: Annotated[str, StringConstraints(max_length=OWNER_REFERENCE_LENGTH_MAX)] = ""

    def to_event(self) -> NewAccount:
        return NewAccount(
            id=self.id,
            currency=self.currency,
            code=self.code,
            flags=flags_from_names(self.flags, AccountFlags.NAMES),
            owner=self.owner,
        )


class LookupRequest(_Request):
    """Ids to look up, for lists too long for a query string (up to the lookup limit)."""

    ids: Annotated[list[LedgerIdInput], Field(min_length=1, max_length=IDS_PER_LOOKUP_MAX)]


class CreateAccountsRequest(_Request):
    """A batch of accounts, decided event by event; linked events succeed or fail together."""

    accounts: Annotated[
        list[NewAccountInput], Field(min_length=1, max_length=ACCOUNTS_PER_BATCH_MAX)
    ]

    @model_validator(mode="before")
    @classmethod
    def _batch_size(cls, data: Any) -> Any:
        return _refuse_oversized_batch(data, "accounts", ACCOUNTS_PER_BATCH_MAX, "accounts")


class NewTransferInput(_Request):
    """One transfer to create. Optional fields left out mean "not given" (the ledger's zero)."""

    id: LedgerIdInput
    debit_account_id: OptionalLedgerIdInput = None
    credit_account_id: OptionalLedgerIdInput = None
    amount: AmountInput = 0
    currency: Annotated[str, StringConstraints(max_length=CURRENCY_CODE_LENGTH)] = ""
    code: Annotated[int, Field(ge=0, le=CODE_MAX)] = 0
    flags: Annotated[list[TransferFlagName], Field(max_length=len(TransferFlags.NAMES))] = []
    pending_id: OptionalLedgerIdInput = None
    reverses_id: OptionalLedgerIdInput = None
    timeout: Annotated[
        int,
        Field(
            ge=0, le=TIMEOUT_SECONDS_MAX, description="Seconds until an unresolved hold is voided."
        ),
    ] = 0
    metadata: Metadata | None = None

    def to_event(self) -> NewTransfer:
        return NewTransfer(
            id=self.id,
            debit_account_id=self.debit_account_id or 0,
            credit_account_id=self.credit_account_id or 0,
            amount=self.amount,
            currency=self.currency,
            code=self.code,
            flags=flags_from_names(self.flags, TransferFlags.NAMES),
            pending_id=self.pending_id or 0,
            reverses_id=self.reverses_id or 0,
            timeout=self.timeout,
            metadata=canonical_metadata(self.metadata),
        )


class CreateTransfersRequest(_Request):
    """A batch of transfers, decided event by event; linked events succeed or fail together."""

    transfers: Annotated[
        list[NewTransferInput], Field(min_length=1, max_length=TRANSFERS_PER_BATCH_MAX)
    ]

    @model_validator(mode="before")
    @classmethod
    def _batch_size(cls, data: Any) -> Any:
        return _refuse_oversized_batch(data, "transfers", TRANSFERS_PER_BATCH_MAX, "transfers")


# -- rendering helpers ---------------------------------------------------------------------


def iso_utc(timestamp_ns: int) -> str:
    """Nanoseconds since the epoch as ISO 8601 UTC text with all nine fraction digits."""
    seconds, nanoseconds = divmod(timestamp_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanoseconds:09d}Z"


def amount_display(amount_minor: int, currency: str) -> str | None:
    """The decimal text of an amount, or None if the currency has left the ISO 4217 table.

    Stored amounts are in currencies that were valid when they were booked; if ISO withdraws
    one later, its balances must still be readable, just without a decimal rendering.
    """
    try:
        return Money(amount_minor, Currency.of(currency)).format()
    except MoneyError:
        return None


def _optional_id(value: int) -> str | None:
    return str(value) if value else None


def _metadata_object(text: str | None) -> JsonValue:
    return None if text is None else json.loads(text)


# -- responses -----------------------------------------------------------------------------


class EventResult(BaseModel):
    """The outcome of one event of a batch: its position, its id and its result code."""

    index: int
    id: str
    result: str = Field(description="The result code's name, e.g. `ok` or `exists`.")
    code: int = Field(description="The result code's number (see /v1/ledger/result-codes).")


class CreateResults(BaseModel):
    """One result for every event of the batch, in the order sent (failures and successes)."""

    results: list[EventResult]


class AccountStateChange(BaseModel):
    """The outcome of closing or reopening an account."""

    id: str
    result: str
    code: int


class BalancesDisplay(BaseModel):
    """The four balances as decimal text in the account's currency."""

    debits_pending: str | None
    debits_posted: str | None
    credits_pending: str | None
    credits_posted: str | None


def _balances_display(balances: Account | AccountBalance, currency: str) -> BalancesDisplay:
    return BalancesDisplay(
        debits_pending=amount_display(balances.debits_pending, currency),
        debits_posted=amount_display(balances.debits_posted, currency),
        credits_pending=amount_display(balances.credits_pending, currency),
        credits_posted=amount_display(balances.credits_posted, currency),
    )


class AccountOut(BaseModel):
    """An account with its current balances."""

    id: str
    currency: str
    code: int
    flags: list[str]
    owner: str
    closed: bool
    timestamp: int
    timestamp_iso: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    balances_display: BalancesDisplay

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=str(account.id),
            currency=account.currency,
            code=account.code,
            flags=flag_names(account.flags, AccountFlags.NAMES),
            owner=account.owner,
            closed=account.closed,
            timestamp=account.timestamp,
            timestamp_iso=iso_utc(account.timestamp),
            debits_pending=account.debits_pending,
            debits_posted=account.debits_posted,
            credits_pending=account.credits_pending,
            credits_posted=account.credits_posted,
            balances_display=_balances_display(account, account.currency),
        )


class TransferOut(BaseModel):
    """A transfer as booked."""

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    amount_display: str | None
    currency: str
    code: int
    flags: list[str]
    pending_id: str | None
    reverses_id: str | None
    timeout: int
    metadata: JsonValue
    timestamp: int
    timestamp_iso: str

    @classmethod
    def of(cls, transfer: Transfer) -> TransferOut:
        return cls(
            id=str(transfer.id),
            debit_account_id=str(transfer.debit_account_id),
            credit_account_id=str(transfer.credit_account_id),
            amount=transfer.amount,
            amount_display=amount_display(transfer.amount, transfer.currency),
            currency=transfer.currency,
            code=transfer.code,
            flags=flag_names(transfer.flags, TransferFlags.NAMES),
            pending_id=_optional_id(transfer.pending_id),
            reverses_id=_optional_id(transfer.reverses_id),
            timeout=transfer.timeout,
            metadata=_metadata_object(transfer.metadata),
            timestamp=transfer.timestamp,
            timestamp_iso=iso_utc(transfer.timestamp),
        )


class AccountList(BaseModel):
    """The accounts found, in the order asked; unknown ids are left out."""

    accounts: list[AccountOut]


class TransferList(BaseModel):
    """The transfers found, in the order asked; unknown ids are left out."""

    transfers: list[TransferOut]


class PageCursor(BaseModel):
    """The query bounds that fetch the next page (pass both; zero means unbounded)."""

    timestamp_min: int
    timestamp_max: int


class TransferPage(BaseModel):
    """One page of an account's transfers; `next` is null when the page was not full."""

    transfers: list[TransferOut]
    next: PageCursor | None


class BalanceOut(BaseModel):
    """An account's four balances as they stood right after the transfer at `timestamp`."""

    timestamp: int
    timestamp_iso: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    balances_display: BalancesDisplay

    @classmethod
    def of(cls, balance: AccountBalance, currency: str) -> BalanceOut:
        return cls(
            timestamp=balance.timestamp,
            timestamp_iso=iso_utc(balance.timestamp),
            debits_pending=balance.debits_pending,
            debits_posted=balance.debits_posted,
            credits_pending=balance.credits_pending,
            credits_posted=balance.credits_posted,
            balances_display=_balances_display(balance, currency),
        )


class BalancePage(BaseModel):
    """One page of a history account's balances; `next` is null when the page was not full."""

    account_id: str
    currency: str
    balances: list[BalanceOut]
    next: PageCursor | None


class BalanceAt(BaseModel):
    """A history account's balances as they stood at ledger time `at`."""

    account_id: str
    currency: str
    at: int
    at_iso: str
    balance: BalanceOut


class StatementTotals(BaseModel):
    """Posted debit and credit totals at one end of a statement period."""

    debits: int
    credits: int
    debits_display: str | None
    credits_display: str | None

    @classmethod
    def of(cls, debits: int, credits: int, currency: str) -> StatementTotals:
        return cls(
            debits=debits,
            credits=credits,
            debits_display=amount_display(debits, currency),
            credits_display=amount_display(credits, currency),
        )


class StatementOut(BaseModel):
    """Posted activity of an account over a period, with opening and closing totals.

    When the period holds more entries than the page, `complete` is false and `next` gives the
    bounds of the rest.
    """

    account: AccountOut
    timestamp_min: int
    timestamp_max: int
    opening: StatementTotals
    entries: list[TransferOut]
    closing: StatementTotals
    complete: bool
    next: PageCursor | None


class CheckReport(BaseModel):
    """The ledger's invariants: `ok` when there are no findings."""

    ok: bool
    findings: list[str]


class ChainBreakOut(BaseModel):
    seq: int
    reason: str


class ChainReportOut(BaseModel):
    """The audit chain recomputed from the stored rows; `first_break` is where to look first."""

    ok: bool
    records: int
    head_seq: int
    head_hash: str
    first_break: ChainBreakOut | None


class ResultRegistry(BaseModel):
    """Every result code number and name, and the order in which the checks are made."""

    create_account: dict[str, str]
    create_account_precedence: list[str]
    create_transfer: dict[str, str]
    create_transfer_precedence: list[str]
    account_state_change: dict[str, str]


class Health(BaseModel):
    status: Literal["ok"]


class ProblemErrorItem(BaseModel):
    """One fault of an invalid request: where it is and what is wrong (never the value)."""

    location: list[str | int]
    message: str
    type: str


class ProblemDetails(BaseModel):
    """An error, as RFC 9457 problem details with the stable `code` extension."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    errors: list[ProblemErrorItem] | None = None


# The problem documents every router may answer with, for the OpenAPI document.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails, "description": "The request was refused; `code` says why."}
    for status in ("4XX", "5XX")
}
