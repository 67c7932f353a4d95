"""The boundary to the clearing house that carries bank top-ups and withdrawals (PBoC rule P7).

A payment institution may not link to banks directly: money between a customer's bound,
same-name bank card and the platform's reserve account moves bank -> clearing house (NetsUnion,
UnionPay) -> reserve account. The exchange is asynchronous. The payments service

1. builds a `RailRequest` (its `request_id` is the idempotency key on every hop),
2. places a pending hold on the ledger and calls `ClearingHouse.submit`, which answers at once
   with a `RailSubmission` (accepted with a clearing reference, or refused: malformed, bank
   unavailable, capacity),
3. later receives one or more `RailCallback`s carrying the outcome and posts or voids the hold;
   when no final outcome arrives before its own timeout it voids the hold,
4. once a day reads the clearing house's `SettlementFile` and reconciles it against the ledger
   (`tianping.payments.reconciliation`).

Callbacks are pulled: `ClearingHouse.poll_callbacks(now, limit)`. A pull model lets a simulator
deliver late, duplicated and out-of-order callbacks deterministically in tests. A real
clearing-house adapter receives HTTP webhooks instead; it must verify and store each webhook in
an inbox table (acknowledging only after the store commits) and serve `poll_callbacks` from that
inbox, so the service code is the same for both.

Delivery is at-least-once and unordered, so `RailOutcomeTracker` decides what each callback
means for one request: the first final outcome wins, a redelivery is a duplicate, a different
final outcome after it is flagged `conflicting_outcome`, and a final outcome after the service
timed the request out is `late_after_timeout`. The service has then already voided its hold; if
the late outcome is a success, the clearing house has moved money the ledger does not show. That
is deliberately not patched up here: the next settlement file lists the item, reconciliation
reports it as a `missing_in_ledger` break, and an operator resolves it with a compensating
transfer (crediting the customer for a top-up, or recovering a withdrawal paid out twice). One
well-audited path for every such case is safer than a second, rarely exercised posting path.

Everything here is pure (standard library and `tianping.ledger.money` only). Amounts are integer
minor units; times are integer unix seconds supplied by the caller.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal, Protocol, get_args

from tianping.ledger.money import Currency, UnknownCurrency

__all__ = [
    "BUSINESS_DAY_CUTOFF_HOUR",
    "CALLBACKS_PER_REQUEST_MAX",
    "CARD_TOKEN_LENGTH_MAX",
    "DECLINE_CODES",
    "IDENTIFIER_LENGTH_MAX",
    "POLL_LIMIT_MAX",
    "RAIL_AMOUNT_MINOR_MAX",
    "RAIL_TIMEOUT_SECONDS_MAX",
    "REFUSAL_CODES",
    "SETTLEMENT_COLUMNS",
    "SETTLEMENT_LINE_LENGTH_MAX",
    "SETTLEMENT_RECORDS_MAX",
    "SETTLEMENT_TEXT_LENGTH_MAX",
    "CallbackDisposition",
    "CallbackVerdict",
    "ClearingError",
    "ClearingHouse",
    "InvalidRailInput",
    "InvalidRailTransition",
    "RailCallback",
    "RailCallbackMismatch",
    "RailDirection",
    "RailOutcome",
    "RailOutcomeTracker",
    "RailRequest",
    "RailState",
    "RailSubmission",
    "SettlementChecksumMismatch",
    "SettlementFile",
    "SettlementFileMalformed",
    "SettlementFileRejected",
    "SettlementFileTooLarge",
    "SettlementHeaderInvalid",
    "SettlementLineCountMismatch",
    "SettlementRecord",
    "SettlementRecordInvalid",
    "SettlementTotal",
    "SettlementTotalMismatch",
    "SettlementTrailerMissing",
    "business_date_of",
    "require_business_date",
    "require_choice",
    "require_currency",
    "require_identifier",
    "require_int",
    "require_optional_identifier",
]

# --------------------------------------------------------------------------- limits

# Request ids, clearing references, bank ids and clearing-house ids are at most this long. 64 is
# the brief's bound for the idempotency key and is more than any clearing house's reference.
IDENTIFIER_LENGTH_MAX: Final = 64

# A card token is an HMAC fingerprint or a clearing-house token, never the card number. 128
# characters hold a hex SHA-512 or a base64 token with room to spare.
CARD_TOKEN_LENGTH_MAX: Final = 128

# One top-up or withdrawal moves at most this many minor units (10 billion yuan in fen). Real
# caps are far lower and are the rules engine's business; this only keeps absurd values out.
RAIL_AMOUNT_MINOR_MAX: Final = 10**12

# A service timeout longer than a week would leave customer money on hold for no good reason.
RAIL_TIMEOUT_SECONDS_MAX: Final = 7 * 24 * 3600

# A callback's sequence number is at most this, so a tracker remembers at most this many
# distinct notices for one request; a clearing house that numbers beyond it is misbehaving and
# its callback is refused as invalid input.
CALLBACKS_PER_REQUEST_MAX: Final = 32

# One `poll_callbacks` call returns at most this many callbacks, so one batch stays small enough
# to process in one database transaction.
POLL_LIMIT_MAX: Final = 10_000

# One settlement file holds at most a million records; a clearing house that settles more in a
# day for one institution splits its file, and reconciliation has the same bound.
SETTLEMENT_RECORDS_MAX: Final = 1_000_000

# One line of the settlement file is at most this long; a valid record is under 350 characters.
SETTLEMENT_LINE_LENGTH_MAX: Final = 512

# The whole text is refused before parsing beyond this size: every line at its maximum length.
SETTLEMENT_TEXT_LENGTH_MAX: Final = (SETTLEMENT_RECORDS_MAX + 3) * (SETTLEMENT_LINE_LENGTH_MAX + 1)

# The clearing house closes a business day at 23:00 China Standard Time (UTC+8, no daylight
# saving): anything settled from 23:00 on belongs to the next day's file. This mirrors the
# common practice of Chinese clearing houses closing the day before midnight; the simulator uses
# it and the service can use it to date its ledger entries the same way.
BUSINESS_DAY_CUTOFF_HOUR: Final = 23
_CHINA_UTC_OFFSET: Final = timedelta(hours=8)

# Stable codes of a declined outcome. A clearing house's own codes are mapped onto these by its
# adapter so that the service and the customer-facing messages need to know only this list.
DECLINE_CODES: Final = frozenset(
    {"insufficient_funds", "card_blocked", "limit_exceeded", "do_not_honour", "account_closed"}
)

# Stable codes of a synchronous refusal at submit time.
REFUSAL_CODES: Final = frozenset(
    {
        "malformed_request",  # the clearing house could not accept the request as sent
        "currency_not_supported",  # the rail does not carry this currency
        "bank_unavailable",  # the partner bank (or the clearing house) is down; retry later
        "capacity_exceeded",  # too many requests in flight; retry later
        "request_id_conflict",  # the request id was already used with different fields
    }
)

RailDirection = Literal["top_up", "withdrawal"]
# "processing" is the interim acknowledgement some clearing houses send before the outcome; it is
# never final and exists so that out-of-order delivery of it can be handled explicitly.
RailOutcome = Literal["processing", "succeeded", "declined", "failed"]
RailState = Literal[
    "requested", "submitted", "refused", "succeeded", "declined", "failed", "timed_out"
]
CallbackDisposition = Literal[
    "applied",  # the first final outcome: the service posts (succeeded) or voids the hold
    "progress",  # an interim notice before any final outcome: nothing to do
    "duplicate",  # a redelivery or a restatement of the outcome already applied: nothing to do
    "stale",  # an interim notice arriving after the final outcome (out of order): nothing to do
    "late_after_timeout",  # a final outcome after the service timed out: see the module docstring
    "conflicting_outcome",  # a final outcome contradicting the one already applied: investigate
    "settled_amount_mismatch",  # success for a different amount than requested: not applied
]

_DIRECTIONS: Final = frozenset(get_args(RailDirection))
_OUTCOMES: Final = frozenset(get_args(RailOutcome))
_FINAL_OUTCOMES: Final = frozenset({"succeeded", "declined", "failed"})
_SETTLEMENT_STATUSES: Final = frozenset({"settled"})

# Identifiers are printable ASCII without separators, so they can never break a CSV line, inject
# a formula into a spreadsheet (no leading "=", "+", "@") or smuggle personal data in free text.
_IDENTIFIER_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_CARD_TOKEN_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+/=-]*")
# A bare run of 12 to 19 digits has the shape of a card number (PAN); such a "token" is refused
# so that a caller cannot pass the card number through this field by mistake.
_PAN_SHAPE_PATTERN: Final = re.compile(r"[0-9]{12,19}")
_DATE_PATTERN: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Non-negative integers in canonical form only: no sign, no leading zeros, no spaces.
_CANONICAL_NATURAL_PATTERN: Final = re.compile(r"0|[1-9][0-9]*")
_SHA256_HEX_PATTERN: Final = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------- errors


class ClearingError(Exception):
    """Root of the clearing errors; `code` is stable and the message holds no personal data."""

    code = "clearing_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRailInput(ClearingError):
    """A field of a rail message is malformed or out of range; `field` names it."""

    code = "invalid_rail_input"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class InvalidRailTransition(ClearingError):
    """The tracker was asked for a transition its current state does not allow."""

    code = "invalid_rail_transition"


class RailCallbackMismatch(ClearingError):
    """A callback names a different request or clearing reference than the tracked request."""

    code = "rail_callback_mismatch"


class SettlementFileRejected(ClearingError):
    """Root of the refusals of a settlement file's text; `line` is 1-based when known."""

    code = "settlement_file_rejected"

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


class SettlementFileTooLarge(SettlementFileRejected):
    """The text, a line or the record count exceeds its limit."""

    code = "settlement_file_too_large"


class SettlementFileMalformed(SettlementFileRejected):
    """The text is not made of newline-terminated lines as `to_csv` writes them."""

    code = "settlement_file_malformed"


class SettlementHeaderInvalid(SettlementFileRejected):
    """The first line or the column line is not the expected header."""

    code = "settlement_header_invalid"


class SettlementTrailerMissing(SettlementFileRejected):
    """The last line is not a well-formed trailer: the file may have been truncated."""

    code = "settlement_trailer_missing"


class SettlementRecordInvalid(SettlementFileRejected):
    """A record line has the wrong number of fields or a field that fails validation."""

    code = "settlement_record_invalid"


class SettlementLineCountMismatch(SettlementFileRejected):
    """The trailer's record count differs from the number of record lines."""

    code = "settlement_line_count_mismatch"


class SettlementTotalMismatch(SettlementFileRejected):
    """The trailer's amount or fee total differs from the sum of the records."""

    code = "settlement_total_mismatch"


class SettlementChecksumMismatch(SettlementFileRejected):
    """The trailer's SHA-256 differs from the digest of the record lines."""

    code = "settlement_checksum_mismatch"


# --------------------------------------------------------------------------- validation helpers
# Public so that the other rail modules (reconciliation, the service) validate their own types
# with the same rules and error codes; each raises `InvalidRailInput` naming the field.


def require_identifier(value: object, field_name: str) -> None:
    """An identifier: 1 to 64 ASCII letters, digits and _ . : - (no leading punctuation)."""
    if not isinstance(value, str):
        raise InvalidRailInput(field_name, "must be a string")
    if not 1 <= len(value) <= IDENTIFIER_LENGTH_MAX:
        raise InvalidRailInput(field_name, f"must be 1 to {IDENTIFIER_LENGTH_MAX} characters")
    if _IDENTIFIER_PATTERN.fullmatch(value) is None:
        raise InvalidRailInput(field_name, "allows only ASCII letters, digits and _ . : -")


def require_optional_identifier(value: object, field_name: str) -> None:
    """None, or an identifier as `require_identifier` checks it."""
    if value is not None:
        require_identifier(value, field_name)


def require_int(value: object, field_name: str, low: int, high: int) -> None:
    """An int (not a bool) between `low` and `high` inclusive."""
    # bool is an int subclass; True as an amount or a time is always a bug.
    if type(value) is not int:
        raise InvalidRailInput(field_name, "must be an int")
    if not low <= value <= high:
        raise InvalidRailInput(field_name, f"must be between {low} and {high}")


def require_choice(value: object, field_name: str, choices: frozenset[str]) -> None:
    """One of `choices`."""
    if value not in choices:
        raise InvalidRailInput(field_name, f"must be one of {', '.join(sorted(choices))}")


def require_currency(value: object, field_name: str) -> None:
    """An active ISO 4217 alphabetic code."""
    if not isinstance(value, str):
        raise InvalidRailInput(field_name, "must be an ISO 4217 code")
    try:
        Currency.of(value)
    except UnknownCurrency:
        raise InvalidRailInput(field_name, "is not an active ISO 4217 code") from None


def require_business_date(value: object, field_name: str) -> None:
    """A calendar date written YYYY-MM-DD."""
    if not isinstance(value, str) or _DATE_PATTERN.fullmatch(value) is None:
        raise InvalidRailInput(field_name, "must be a date written YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise InvalidRailInput(field_name, "is not a calendar date") from None


def business_date_of(unix_seconds: int) -> str:
    """Return the clearing business date (YYYY-MM-DD) of an instant.

    The day runs from 23:00 China Standard Time on the previous calendar day to 22:59:59, see
    `BUSINESS_DAY_CUTOFF_HOUR`: 2026-11-27 22:59:59 CST is on 2026-11-27, 23:00:00 on 2026-11-28.
    """
    require_int(unix_seconds, "unix_seconds", 0, 2**40)
    china_time = datetime.fromtimestamp(unix_seconds, tz=UTC) + _CHINA_UTC_OFFSET
    shifted = china_time + timedelta(hours=24 - BUSINESS_DAY_CUTOFF_HOUR)
    return shifted.date().isoformat()


# --------------------------------------------------------------------------- messages

_TIME_MAX: Final = 2**40  # unix seconds: far beyond any real date, small enough for every store


@dataclass(frozen=True, slots=True)
class RailRequest:
    """One top-up or withdrawal asked of the clearing house; `request_id` is the idempotency key.

    `partner_bank_id` is the pseudonymous id of the card's bank as an institution; `card_token`
    is the bound card's fingerprint or the clearing house's token for it. No card number, name or
    account number ever travels in this type.
    """

    request_id: str
    direction: RailDirection
    partner_bank_id: str
    card_token: str
    amount_minor: int
    currency: str
    requested_at: int

    def __post_init__(self) -> None:
        require_identifier(self.request_id, "request_id")
        require_choice(self.direction, "direction", _DIRECTIONS)
        require_identifier(self.partner_bank_id, "partner_bank_id")
        if not isinstance(self.card_token, str) or not (
            1 <= len(self.card_token) <= CARD_TOKEN_LENGTH_MAX
        ):
            raise InvalidRailInput("card_token", f"must be 1 to {CARD_TOKEN_LENGTH_MAX} characters")
        if _CARD_TOKEN_PATTERN.fullmatch(self.card_token) is None:
            raise InvalidRailInput("card_token", "must be a token of ASCII letters and digits")
        if _PAN_SHAPE_PATTERN.fullmatch(self.card_token) is not None:
            raise InvalidRailInput("card_token", "looks like a card number; pass a token")
        require_int(self.amount_minor, "amount_minor", 1, RAIL_AMOUNT_MINOR_MAX)
        require_currency(self.currency, "currency")
        require_int(self.requested_at, "requested_at", 0, _TIME_MAX)


@dataclass(frozen=True, slots=True)
class RailSubmission:
    """The clearing house's synchronous answer to `submit`.

    Accepted: `clearing_reference` is set and the outcome follows by callback. Refused:
    `refusal_code` (one of `REFUSAL_CODES`) says why, and no callback will follow.
    """

    accepted: bool
    clearing_reference: str | None
    refusal_code: str | None

    def __post_init__(self) -> None:
        if type(self.accepted) is not bool:
            raise InvalidRailInput("accepted", "must be a bool")
        if self.accepted:
            require_identifier(self.clearing_reference, "clearing_reference")
            if self.refusal_code is not None:
                raise InvalidRailInput("refusal_code", "must be None when accepted")
        else:
            require_choice(self.refusal_code, "refusal_code", REFUSAL_CODES)
            if self.clearing_reference is not None:
                raise InvalidRailInput("clearing_reference", "must be None when refused")


@dataclass(frozen=True, slots=True)
class RailCallback:
    """One delivery of an outcome notice for a request.

    `callback_id` is unique per delivery attempt, so it cannot identify a redelivery; the dedupe
    key is `(request_id, sequence)`, where `sequence` numbers the distinct notices the clearing
    house issued for the request (1, 2, ...). A succeeded notice carries the settled amount;
    other notices carry 0. Only declined notices carry a `decline_code`.
    """

    callback_id: str
    request_id: str
    clearing_reference: str
    sequence: int
    outcome: RailOutcome
    decline_code: str | None
    settled_amount_minor: int
    business_date: str
    sent_at: int

    def __post_init__(self) -> None:
        require_identifier(self.callback_id, "callback_id")
        require_identifier(self.request_id, "request_id")
        require_identifier(self.clearing_reference, "clearing_reference")
        require_int(self.sequence, "sequence", 1, CALLBACKS_PER_REQUEST_MAX)
        require_choice(self.outcome, "outcome", _OUTCOMES)
        if self.outcome == "declined":
            require_choice(self.decline_code, "decline_code", DECLINE_CODES)
        elif self.decline_code is not None:
            raise InvalidRailInput("decline_code", "is only given for a declined outcome")
        if self.outcome == "succeeded":
            require_int(self.settled_amount_minor, "settled_amount_minor", 1, RAIL_AMOUNT_MINOR_MAX)
        else:
            require_int(self.settled_amount_minor, "settled_amount_minor", 0, 0)
        require_business_date(self.business_date, "business_date")
        require_int(self.sent_at, "sent_at", 0, _TIME_MAX)

    @property
    def dedupe_key(self) -> tuple[str, int]:
        """The key under which redeliveries of the same notice collapse."""
        return (self.request_id, self.sequence)

    @property
    def is_final(self) -> bool:
        """Whether the notice carries a final outcome (anything but "processing")."""
        return self.outcome in _FINAL_OUTCOMES


SETTLEMENT_COLUMNS: Final = (
    "clearing_reference",
    "request_id",
    "direction",
    "partner_bank_id",
    "amount_minor",
    "currency",
    "fee_minor",
    "business_date",
    "status",
)
_HEADER_TAG: Final = "H"
_TRAILER_TAG: Final = "T"
_FORMAT_VERSION: Final = "1"


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One line of the daily settlement file: an item the clearing house settled.

    `fee_minor` is the clearing house's fee for the item, charged separately from the amount.
    Version 1 of the file lists settled items only (`status` "settled"); the field exists so a
    later version can list returns without changing the layout.
    """

    clearing_reference: str
    request_id: str
    direction: RailDirection
    partner_bank_id: str
    amount_minor: int
    currency: str
    fee_minor: int
    business_date: str
    status: str = "settled"

    def __post_init__(self) -> None:
        require_identifier(self.clearing_reference, "clearing_reference")
        require_identifier(self.request_id, "request_id")
        require_choice(self.direction, "direction", _DIRECTIONS)
        require_identifier(self.partner_bank_id, "partner_bank_id")
        require_int(self.amount_minor, "amount_minor", 1, RAIL_AMOUNT_MINOR_MAX)
        require_currency(self.currency, "currency")
        require_int(self.fee_minor, "fee_minor", 0, RAIL_AMOUNT_MINOR_MAX)
        require_business_date(self.business_date, "business_date")
        require_choice(self.status, "status", _SETTLEMENT_STATUSES)

    def csv_fields(self) -> tuple[str, ...]:
        """The record's fields as text, in `SETTLEMENT_COLUMNS` order."""
        return (
            self.clearing_reference,
            self.request_id,
            self.direction,
            self.partner_bank_id,
            str(self.amount_minor),
            self.currency,
            str(self.fee_minor),
            self.business_date,
            self.status,
        )


@dataclass(frozen=True, slots=True)
class SettlementTotal:
    """Count, amount and fees of one direction in one currency within a settlement file."""

    direction: RailDirection
    currency: str
    record_count: int
    amount_minor: int
    fee_minor: int


def _csv_line(fields: Sequence[str]) -> str:
    """One CSV line without its terminator, quoted by the csv module when a field needs it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


def _record_line(record: SettlementRecord) -> str:
    """A record's CSV line. Every field is validated to be free of commas, quotes and line
    breaks, so plain joining is exactly the line the csv module would write, at a fraction of
    the cost per line."""
    return ",".join(record.csv_fields())


def _records_digest(record_lines: Sequence[str]) -> str:
    """SHA-256 over the record lines, each followed by a newline, exactly as written."""
    digest = hashlib.sha256()
    for line in record_lines:
        digest.update(line.encode("ascii"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class SettlementFile:
    """The clearing house's daily list of settled items for one business date.

    Text form (`to_csv`), newline-terminated lines:

        H,1,<clearing_house_id>,<business_date>
        clearing_reference,request_id,direction,...          (the column names)
        <one line per record>
        T,<record count>,<amount total>,<fee total>,<SHA-256 of the record lines>

    The amount total in the trailer is a control total over all currencies (a sum that only
    checks completeness, not money); `totals` gives the real per-direction, per-currency sums.
    Every record must carry the file's business date. The records may contain the same request
    twice: finding that is reconciliation's job, so the file type does not hide it.
    """

    business_date: str
    clearing_house_id: str
    records: tuple[SettlementRecord, ...] = field(default=())

    def __post_init__(self) -> None:
        require_business_date(self.business_date, "business_date")
        require_identifier(self.clearing_house_id, "clearing_house_id")
        if not isinstance(self.records, tuple):
            raise InvalidRailInput("records", "must be a tuple of SettlementRecord")
        if len(self.records) > SETTLEMENT_RECORDS_MAX:
            raise InvalidRailInput("records", f"at most {SETTLEMENT_RECORDS_MAX} are allowed")
        for record in self.records:
            if not isinstance(record, SettlementRecord):
                raise InvalidRailInput("records", "must be a tuple of SettlementRecord")
            if record.business_date != self.business_date:
                raise InvalidRailInput("records", "every record must carry the file's date")

    @property
    def record_count(self) -> int:
        """Number of records, as the trailer states it."""
        return len(self.records)

    @property
    def control_total_minor(self) -> int:
        """Sum of all record amounts across currencies: a completeness check, not money."""
        return sum(record.amount_minor for record in self.records)

    @property
    def fee_total_minor(self) -> int:
        """Sum of all record fees across currencies: a completeness check, not money."""
        return sum(record.fee_minor for record in self.records)

    @property
    def totals(self) -> tuple[SettlementTotal, ...]:
        """Per direction and currency: count, amount and fees, sorted by direction then currency."""
        sums: dict[tuple[RailDirection, str], list[int]] = {}
        for record in self.records:
            bucket = sums.setdefault((record.direction, record.currency), [0, 0, 0])
            bucket[0] += 1
            bucket[1] += record.amount_minor
            bucket[2] += record.fee_minor
        return tuple(
            SettlementTotal(direction, currency, count, amount, fee)
            for (direction, currency), (count, amount, fee) in sorted(sums.items())
        )

    def to_csv(self) -> str:
        """The file as text in the layout described on the class, ending with a newline."""
        record_lines = [_record_line(record) for record in self.records]
        header = _csv_line(
            (_HEADER_TAG, _FORMAT_VERSION, self.clearing_house_id, self.business_date)
        )
        trailer = _csv_line(
            (
                _TRAILER_TAG,
                str(self.record_count),
                str(self.control_total_minor),
                str(self.fee_total_minor),
                _records_digest(record_lines),
            )
        )
        return "\n".join([header, _csv_line(SETTLEMENT_COLUMNS), *record_lines, trailer]) + "\n"

    @classmethod
    def parse_csv(cls, text: str) -> SettlementFile:
        """Read a settlement file's text strictly, refusing anything `to_csv` would not write.

        Each refusal is a `SettlementFileRejected` subclass with a stable `code`: the size
        limits, a missing final newline or carriage returns, a wrong header or column line, a
        missing or malformed trailer (a truncated file), a bad record, and a trailer whose
        count, totals or checksum do not match the records.
        """
        if not isinstance(text, str):
            raise SettlementFileMalformed("settlement text must be a str")
        if len(text) > SETTLEMENT_TEXT_LENGTH_MAX:
            raise SettlementFileTooLarge(f"text exceeds {SETTLEMENT_TEXT_LENGTH_MAX} characters")
        if not text.endswith("\n") or "\r" in text:
            # A missing final newline is how a truncated transfer usually looks; carriage
            # returns mean the file was rewritten by a tool that may have changed more.
            raise SettlementFileMalformed("lines must end with a newline and carry no CR")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise SettlementTrailerMissing("a header, a column line and a trailer are required")
        if len(lines) - 3 > SETTLEMENT_RECORDS_MAX:
            raise SettlementFileTooLarge(f"more than {SETTLEMENT_RECORDS_MAX} records")
        for number, line in enumerate(lines, start=1):
            if len(line) > SETTLEMENT_LINE_LENGTH_MAX:
                raise SettlementFileTooLarge("line too long", number)
            if not line.isascii():
                raise SettlementFileMalformed("non-ASCII characters", number)

        header = _split_line(lines[0], 1, SettlementHeaderInvalid)
        if len(header) != 4 or header[0] != _HEADER_TAG or header[1] != _FORMAT_VERSION:
            raise SettlementHeaderInvalid(
                f"expected {_HEADER_TAG},{_FORMAT_VERSION},<house>,<date>", 1
            )
        try:
            require_identifier(header[2], "clearing_house_id")
            require_business_date(header[3], "business_date")
        except InvalidRailInput as error:
            raise SettlementHeaderInvalid(error.message, 1) from None
        if lines[1] != _csv_line(SETTLEMENT_COLUMNS):
            raise SettlementHeaderInvalid("the column line is not the expected one", 2)

        trailer_number = len(lines)
        trailer = _split_line(lines[-1], trailer_number, SettlementTrailerMissing)
        if (
            len(trailer) != 5
            or trailer[0] != _TRAILER_TAG
            or any(_CANONICAL_NATURAL_PATTERN.fullmatch(value) is None for value in trailer[1:4])
            or _SHA256_HEX_PATTERN.fullmatch(trailer[4]) is None
        ):
            raise SettlementTrailerMissing("the last line is not a trailer", trailer_number)
        stated_count, stated_amount, stated_fees = (int(value) for value in trailer[1:4])

        record_lines = lines[2:-1]
        if stated_count != len(record_lines):
            raise SettlementLineCountMismatch(
                f"trailer states {stated_count} records, file has {len(record_lines)}",
                trailer_number,
            )
        # No valid field contains a comma, quote or line break, so a record line is its fields
        # joined by commas and splitting is exact. A quote is refused up front: handed to the csv
        # module, an unbalanced one would swallow the following lines into one field.
        records_read: list[SettlementRecord] = []
        for number, line in enumerate(record_lines, start=3):
            if '"' in line:
                raise SettlementRecordInvalid("quoted fields are not allowed", number)
            records_read.append(_parse_record(line.split(","), line, number, header[3]))
        records = tuple(records_read)
        settlement = cls(business_date=header[3], clearing_house_id=header[2], records=records)
        if stated_amount != settlement.control_total_minor:
            raise SettlementTotalMismatch(
                "trailer amount total differs from the records", trailer_number
            )
        if stated_fees != settlement.fee_total_minor:
            raise SettlementTotalMismatch(
                "trailer fee total differs from the records", trailer_number
            )
        if trailer[4] != _records_digest(record_lines):
            raise SettlementChecksumMismatch(
                "trailer checksum differs from the records", trailer_number
            )
        return settlement


def _split_line(line: str, number: int, error_type: type[SettlementFileRejected]) -> list[str]:
    """The fields of one CSV line; an unparseable line raises `error_type` naming the line."""
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error:
        raise error_type("not a valid CSV line", number) from None
    if len(rows) != 1:
        raise error_type("not a single CSV line", number)
    return rows[0]


def _parse_record(
    fields: list[str], line: str, number: int, business_date: str
) -> SettlementRecord:
    if len(fields) != len(SETTLEMENT_COLUMNS):
        raise SettlementRecordInvalid(f"expected {len(SETTLEMENT_COLUMNS)} fields", number)
    values = dict(zip(SETTLEMENT_COLUMNS, fields, strict=True))
    for numeric in ("amount_minor", "fee_minor"):
        if _CANONICAL_NATURAL_PATTERN.fullmatch(values[numeric]) is None:
            raise SettlementRecordInvalid(f"{numeric} is not a canonical integer", number)
    if values["business_date"] != business_date:
        raise SettlementRecordInvalid("record date differs from the header's", number)
    try:
        record = SettlementRecord(
            clearing_reference=values["clearing_reference"],
            request_id=values["request_id"],
            direction=values["direction"],  # type: ignore[arg-type]  # validated by the record
            partner_bank_id=values["partner_bank_id"],
            amount_minor=int(values["amount_minor"]),
            currency=values["currency"],
            fee_minor=int(values["fee_minor"]),
            business_date=values["business_date"],
            status=values["status"],
        )
    except InvalidRailInput as error:
        raise SettlementRecordInvalid(error.message, number) from None
    if _record_line(record) != line:
        # Quoting or spelling that `to_csv` would not produce: refused so that the checksum
        # always covers the canonical text of what was read.
        raise SettlementRecordInvalid("record is not in canonical form", number)
    return record


# --------------------------------------------------------------------------- the protocol


class ClearingHouse(Protocol):
    """What the payments service needs from a clearing house (real adapter or simulator).

    `submit` is idempotent by `request_id`: submitting the same request again returns the same
    answer; the same id with different fields is refused with "request_id_conflict".
    `poll_callbacks` returns the callbacks due by `now` (at most `limit`, at most
    `POLL_LIMIT_MAX`), each once; delivery is at-least-once and unordered across calls, so the
    service must pass every callback through a `RailOutcomeTracker`. A webhook adapter serves
    this from its inbox table. `settlement_file` returns the settled items of one business date.
    """

    def submit(self, request: RailRequest) -> RailSubmission:
        """Send one request; answer synchronously whether it was accepted."""
        ...

    def poll_callbacks(self, now: int, limit: int) -> list[RailCallback]:
        """Take up to `limit` callbacks that are due by `now`, in delivery order."""
        ...

    def settlement_file(self, business_date: str) -> SettlementFile:
        """Return the settlement file of a business date (YYYY-MM-DD)."""
        ...


# --------------------------------------------------------------------------- the tracker

_OPEN_STATES: Final = frozenset({"requested", "submitted"})
_STATE_OF_FINAL_OUTCOME: Final[Mapping[RailOutcome, RailState]] = {
    "succeeded": "succeeded",
    "declined": "declined",
    "failed": "failed",
}


@dataclass(frozen=True, slots=True)
class CallbackVerdict:
    """What one callback means for a request: the tracker after it, and what the service does.

    Only `applied` asks the service to act on the ledger (post on "succeeded", void otherwise).
    `late_after_timeout` with a success and `conflicting_outcome` should be logged for the
    operators; the money side of both is settled through reconciliation.
    """

    tracker: RailOutcomeTracker
    disposition: CallbackDisposition


@dataclass(frozen=True, slots=True)
class RailOutcomeTracker:
    """The outcome state machine of one rail request; immutable, every step returns a new one.

    requested -> submitted (accepted) | refused (synchronous refusal)
    requested | submitted -> succeeded | declined | failed (first final callback)
    requested | submitted -> timed_out (`time_out` at or after `timeout_at`)

    Callbacks are accepted in `requested` too, because a callback can overtake the synchronous
    answer. The tracker remembers each `(sequence, outcome)` it has seen, so a redelivery is a
    duplicate and a different outcome under a seen sequence is a conflict.
    """

    request: RailRequest
    timeout_at: int
    state: RailState = "requested"
    clearing_reference: str | None = None
    refusal_code: str | None = None
    final_outcome: RailCallback | None = None
    late_outcome: RailCallback | None = None
    # (sequence, outcome) pairs in arrival order: a tuple keeps the tracker immutable and
    # hashable, and its length is bounded by CALLBACKS_PER_REQUEST_MAX.
    seen: tuple[tuple[int, RailOutcome], ...] = ()

    @classmethod
    def start(cls, request: RailRequest, timeout_seconds: int) -> RailOutcomeTracker:
        """Track a new request that times out `timeout_seconds` after it was requested."""
        if not isinstance(request, RailRequest):
            raise InvalidRailInput("request", "must be a RailRequest")
        require_int(timeout_seconds, "timeout_seconds", 1, RAIL_TIMEOUT_SECONDS_MAX)
        return cls(request=request, timeout_at=request.requested_at + timeout_seconds)

    @property
    def is_open(self) -> bool:
        """Whether no final outcome, refusal or timeout has been decided yet."""
        return self.state in _OPEN_STATES

    def is_due(self, now: int) -> bool:
        """Whether the request is still open and its timeout has passed at `now`."""
        return self.is_open and now >= self.timeout_at

    def record_submission(self, submission: RailSubmission) -> RailOutcomeTracker:
        """Apply the synchronous answer to `submit`.

        From `requested`: accepted -> `submitted`, refused -> `refused`. When a final callback
        overtook the answer, an accepted answer with the same reference only fills it in.
        """
        if not isinstance(submission, RailSubmission):
            raise InvalidRailInput("submission", "must be a RailSubmission")
        if self.state == "requested":
            if submission.accepted:
                return replace(
                    self, state="submitted", clearing_reference=submission.clearing_reference
                )
            return replace(self, state="refused", refusal_code=submission.refusal_code)
        if (
            self.state in _FINAL_OUTCOMES
            and submission.accepted
            and self.clearing_reference in (None, submission.clearing_reference)
        ):
            return replace(self, clearing_reference=submission.clearing_reference)
        raise InvalidRailTransition(f"cannot record a submission in state {self.state}")

    def time_out(self, now: int) -> RailOutcomeTracker:
        """Move an open request to `timed_out`; refused before `timeout_at` or once decided."""
        require_int(now, "now", 0, _TIME_MAX)
        if not self.is_open:
            raise InvalidRailTransition(f"cannot time out a request in state {self.state}")
        if now < self.timeout_at:
            raise InvalidRailTransition("the request's timeout has not passed yet")
        return replace(self, state="timed_out")

    def apply_callback(self, callback: RailCallback) -> CallbackVerdict:
        """Decide what one callback means; see `CallbackDisposition` for each answer."""
        if not isinstance(callback, RailCallback):
            raise InvalidRailInput("callback", "must be a RailCallback")
        if callback.request_id != self.request.request_id:
            raise RailCallbackMismatch("callback is for a different request")
        if self.clearing_reference not in (None, callback.clearing_reference):
            raise RailCallbackMismatch("callback carries a different clearing reference")

        earlier_outcome = dict(self.seen).get(callback.sequence)
        if earlier_outcome is not None:
            disposition: CallbackDisposition = (
                "duplicate" if earlier_outcome == callback.outcome else "conflicting_outcome"
            )
            return CallbackVerdict(self, disposition)
        seen = (*self.seen, (callback.sequence, callback.outcome))
        noted = replace(self, seen=seen, clearing_reference=callback.clearing_reference)

        if not callback.is_final:
            if self.is_open:
                return CallbackVerdict(replace(noted, state="submitted"), "progress")
            return CallbackVerdict(noted, "stale")
        if self.state == "timed_out":
            if self.late_outcome is None:
                return CallbackVerdict(replace(noted, late_outcome=callback), "late_after_timeout")
            same = self.late_outcome.outcome == callback.outcome
            return CallbackVerdict(noted, "duplicate" if same else "conflicting_outcome")
        if self.state == "refused":
            return CallbackVerdict(noted, "conflicting_outcome")
        if self.final_outcome is not None:
            same = self.final_outcome.outcome == callback.outcome
            return CallbackVerdict(noted, "duplicate" if same else "conflicting_outcome")
        if callback.outcome == "succeeded" and (
            callback.settled_amount_minor != self.request.amount_minor
        ):
            # Posting a different amount than was held would need a partial post and a customer
            # notice; the tracker leaves the hold open instead, so the timeout voids it and
            # reconciliation reports the settled item for an operator to resolve.
            return CallbackVerdict(noted, "settled_amount_mismatch")
        return CallbackVerdict(
            replace(noted, state=_STATE_OF_FINAL_OUTCOME[callback.outcome], final_outcome=callback),
            "applied",
        )
