"""EMVCo Merchant-Presented Mode (MPM) QR payloads for Tianping merchants: encode, parse, render.

A merchant shows a QR code and the payer's app scans it. The code's text follows the EMVCo QR
Code Specification for Payment Systems, Merchant-Presented Mode: a flat list of data objects,
each a two-digit id, a two-digit length and a value, some of whose values are themselves lists of
data objects (templates). The payload starts with the payload format indicator (id 00, "01") and
ends with a CRC (id 63).

Why this is hand-written. No well-kept Python library encodes and parses EMVCo MPM payloads
(the few packages that exist are unmaintained, encode only, or tied to one country's scheme), and
the format is small enough to implement and test completely here. The parts that *are* well
served by libraries come from them: the checksum is CRC-16/CCITT-FALSE, which the standard
library computes as `binascii.crc_hqx` with an initial value of 0xFFFF, and the QR symbol itself
is drawn by `segno`.

Tianping's choices inside the format:

* Merchant account information template 26 carries Tianping's globally unique identifier
  "cn.tianping" (sub-tag 00), the merchant id (sub-tag 01) and, on dynamic codes only, the
  expiry as Unix seconds (sub-tag 02, Tianping-specific; EMVCo leaves sub-tags 01-99 of a
  merchant account template to the payment system that owns the identifier).
* A static code (point of initiation "11") is printed once and names the merchant only: no
  amount, reference or expiry. A dynamic code (point of initiation "12") is made for one order
  and carries all three: the amount (id 54), the order reference (additional data template 62,
  reference label sub-tag 05) and the expiry.
* Names and cities are printable ASCII, as EMVCo's common character set requires; a merchant's
  name in Chinese characters belongs in the language template (id 64), which is not produced yet.

What the parser accepts. It refuses anything it cannot vouch for: a wrong CRC, broken lengths,
duplicated ids, 00 not first or 63 not last, missing required fields, values out of range, and
ids that would change what the payer is asked to pay (tip and convenience fee, 55-57) or whose
meaning is not yet defined (65-79 at the top level, 10-49 inside template 62). It skips fields
that a multi-network sticker legitimately carries and Tianping has no use for: other payment
systems' merchant account templates (02-51 except 26), the postal code (61), the language
template (64), unreserved templates (80-99), and additional data sub-tags other than the
reference. The CRC only detects accidental damage; anyone can print a well-formed code, so the
payment service must still resolve the merchant id and the order reference itself.

Encoding and parsing are standard-library only (plus the project's own money types), like every
domain module; `segno` is imported inside the two rendering functions so that importing this
module for parsing does not pull in a drawing library.
"""

from __future__ import annotations

import binascii
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tianping.ledger.currencies import ACTIVE_CURRENCIES
from tianping.ledger.money import Currency, InvalidAmount, Money, UnknownCurrency

if TYPE_CHECKING:
    import segno

__all__ = [
    "AMOUNT_TEXT_LENGTH_MAX",
    "EXPIRES_AT_MAX",
    "MERCHANT_CITY_LENGTH_MAX",
    "MERCHANT_ID_LENGTH_MAX",
    "MERCHANT_NAME_LENGTH_MAX",
    "PAYLOAD_LENGTH_MAX",
    "REFERENCE_LENGTH_MAX",
    "RENDER_SCALE_DEFAULT",
    "RENDER_SCALE_MAX",
    "TIANPING_GLOBALLY_UNIQUE_IDENTIFIER",
    "MerchantQr",
    "QrChecksumMismatch",
    "QrError",
    "QrExpired",
    "QrFieldTooLong",
    "QrForeignScheme",
    "QrInvalidField",
    "QrMalformed",
    "QrPayloadTooLong",
    "QrUnsupportedCurrency",
    "crc16_ccitt_false",
    "encode_merchant_qr",
    "parse_merchant_qr",
    "render_png",
    "render_svg",
]

# --------------------------------------------------------------------------- limits

# EMVCo caps a whole MPM payload at 512 characters; longer text is refused before any parsing,
# so hostile input costs no more than one short scan.
PAYLOAD_LENGTH_MAX: Final = 512
# EMVCo field limits: merchant name (59) 25, merchant city (60) 15, amount (54) 13, and the
# reference label (62/05) 25 characters.
MERCHANT_NAME_LENGTH_MAX: Final = 25
MERCHANT_CITY_LENGTH_MAX: Final = 15
AMOUNT_TEXT_LENGTH_MAX: Final = 13
REFERENCE_LENGTH_MAX: Final = 25
# Tianping's own limit: room for a 128-bit decimal id (39 digits) or a prefixed slug, while the
# whole template 26 stays well under the 99 characters a two-digit length can describe.
MERCHANT_ID_LENGTH_MAX: Final = 40
# The expiry is written as at most ten decimal digits, which covers Unix time until the year 2286.
EXPIRES_AT_MAX: Final = 9_999_999_999
# Rendering: pixels per QR module. Eight gives a symbol of a few hundred pixels for a full-size
# payload; the maximum keeps one request from asking for an image of hundreds of megabytes.
RENDER_SCALE_DEFAULT: Final = 8
RENDER_SCALE_MAX: Final = 40
# The quiet zone around the symbol that ISO/IEC 18004 requires for reliable scanning, in modules.
_QUIET_ZONE_MODULES: Final = 4

TIANPING_GLOBALLY_UNIQUE_IDENTIFIER: Final = "cn.tianping"

# --------------------------------------------------------------------------- data object ids

_PAYLOAD_FORMAT_INDICATOR: Final = "00"
_POINT_OF_INITIATION: Final = "01"
_TIANPING_ACCOUNT_TEMPLATE: Final = "26"
_MERCHANT_CATEGORY_CODE: Final = "52"
_TRANSACTION_CURRENCY: Final = "53"
_TRANSACTION_AMOUNT: Final = "54"
_COUNTRY_CODE: Final = "58"
_MERCHANT_NAME: Final = "59"
_MERCHANT_CITY: Final = "60"
_ADDITIONAL_DATA_TEMPLATE: Final = "62"
_CRC: Final = "63"

_PAYLOAD_FORMAT_VERSION: Final = "01"
_STATIC_INITIATION: Final = "11"
_DYNAMIC_INITIATION: Final = "12"

# Sub-tags of Tianping's merchant account information template.
_ACCOUNT_GUI: Final = "00"
_ACCOUNT_MERCHANT_ID: Final = "01"
_ACCOUNT_EXPIRES_AT: Final = "02"
_ACCOUNT_SUB_TAGS: Final = frozenset({_ACCOUNT_GUI, _ACCOUNT_MERCHANT_ID, _ACCOUNT_EXPIRES_AT})

# Sub-tag of the additional data field template that carries the order reference.
_ADDITIONAL_REFERENCE_LABEL: Final = "05"

_REQUIRED_TOP_LEVEL_IDS: Final = (
    _PAYLOAD_FORMAT_INDICATOR,
    _POINT_OF_INITIATION,
    _MERCHANT_CATEGORY_CODE,
    _TRANSACTION_CURRENCY,
    _COUNTRY_CODE,
    _MERCHANT_NAME,
    _MERCHANT_CITY,
    _CRC,
)
# Top-level ids the parser reads itself.
_UNDERSTOOD_TOP_LEVEL_IDS: Final = frozenset(
    {*_REQUIRED_TOP_LEVEL_IDS, _TIANPING_ACCOUNT_TEMPLATE, _TRANSACTION_AMOUNT,
     _ADDITIONAL_DATA_TEMPLATE}
)  # fmt: skip
# Top-level ids a conforming multi-network code may carry and that do not change the payment:
# other systems' merchant account information (02-51), postal code (61), language template (64)
# and unreserved templates (80-99).
_SKIPPED_TOP_LEVEL_IDS: Final = frozenset(
    {f"{number:02d}" for number in (*range(2, 52), 61, 64, *range(80, 100))}
    - {_TIANPING_ACCOUNT_TEMPLATE}
)
# Sub-tags of template 62 that are skipped: the descriptive labels 01-09 other than the reference,
# and the payment-system-specific templates 50-99. Sub-tags 10-49 are reserved for future use.
_SKIPPED_ADDITIONAL_DATA_SUB_TAGS: Final = frozenset(
    {f"{number:02d}" for number in (*range(1, 10), *range(50, 100))} - {_ADDITIONAL_REFERENCE_LABEL}
)

# The CRC object is always the last eight characters: "63", "04" and four hex digits.
_CRC_HEADER: Final = _CRC + "04"
_CRC_OBJECT_LENGTH: Final = 8
_DATA_OBJECT_HEADER_LENGTH: Final = 4
_DATA_OBJECT_VALUE_LENGTH_MAX: Final = 99

# --------------------------------------------------------------------------- value patterns
# Every pattern spells out ASCII classes: `\d` and str.isdigit also accept other scripts' digits.

# EMVCo's common character set, printable ASCII from space to tilde.
_PRINTABLE_ASCII: Final = re.compile(r"[\x20-\x7e]*")
_CRC_VALUE: Final = re.compile(r"[0-9A-F]{4}")
_TWO_DIGITS: Final = re.compile(r"[0-9]{2}")
_MERCHANT_ID: Final = re.compile(r"[A-Za-z0-9._-]+")
_CATEGORY_CODE: Final = re.compile(r"[0-9]{4}")
_CURRENCY_NUMERIC: Final = re.compile(r"[0-9]{3}")
_COUNTRY: Final = re.compile(r"[A-Z]{2}")
_AMOUNT_TEXT: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_EXPIRES_AT_TEXT: Final = re.compile(r"[1-9][0-9]{0,9}")

# ISO 4217 numeric code to the alphabetic code, built from the project's one currency table so
# that the two can never disagree. The check guards against a future table edit that gives two
# codes the same number, which would make parsing ambiguous.
_ALPHA_BY_NUMERIC: Final[dict[int, str]] = {
    numeric: alpha for alpha, (numeric, _exponent, _name) in ACTIVE_CURRENCIES.items()
}
if len(_ALPHA_BY_NUMERIC) != len(ACTIVE_CURRENCIES):  # pragma: no cover - guards the table
    raise RuntimeError("two currencies in the ISO 4217 table share a numeric code")


# --------------------------------------------------------------------------- errors


class QrError(ValueError):
    """Root of the errors about merchant QR codes; `code` is stable, the message names no data.

    Messages name data object ids and lengths only, never a value from the code, so that they
    can be logged without repeating a merchant's or payer's details.
    """

    code = "qr_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QrMalformed(QrError):
    """Raised when the payload's structure is broken: lengths, order, duplicates, missing ids."""

    code = "qr_malformed"


class QrChecksumMismatch(QrError):
    """Raised when the CRC in the payload is not the CRC of the rest of the payload."""

    code = "qr_checksum_mismatch"


class QrExpired(QrError):
    """Raised when a dynamic code is parsed at or after its expiry."""

    code = "qr_expired"


class QrUnsupportedCurrency(QrError):
    """Raised when the currency is not an active ISO 4217 currency with a minor unit."""

    code = "qr_unsupported_currency"


class QrFieldTooLong(QrError):
    """Raised when a field is longer than EMVCo or Tianping allows for it."""

    code = "qr_field_too_long"


class QrPayloadTooLong(QrError):
    """Raised when a whole payload is longer than `PAYLOAD_LENGTH_MAX` characters."""

    code = "qr_payload_too_long"


class QrInvalidField(QrError):
    """Raised when a field is present but its value is not acceptable (characters, range)."""

    code = "qr_invalid_field"


class QrForeignScheme(QrError):
    """Raised when a well-formed code has no Tianping merchant account template.

    It is a separate error so that the app can tell the payer the code belongs to another
    payment system rather than that it is damaged.
    """

    code = "qr_foreign_scheme"


# --------------------------------------------------------------------------- the model


def _check_text(value: object, field: str, pattern: re.Pattern[str], length_max: int) -> str:
    """Return `value` if it is a non-empty str of at most `length_max` characters of `pattern`."""
    if not isinstance(value, str):
        raise QrInvalidField(f"{field} must be a str, got {type(value).__name__}")
    if not value:
        raise QrInvalidField(f"{field} must not be empty")
    if len(value) > length_max:
        raise QrFieldTooLong(f"{field} is {len(value)} characters long; at most {length_max}")
    if pattern.fullmatch(value) is None:
        raise QrInvalidField(f"{field} contains characters that are not allowed")
    return value


@dataclass(frozen=True, slots=True)
class MerchantQr:
    """What a Tianping merchant QR code says, checked on construction.

    `currency` is the ISO 4217 alphabetic code ("CNY"). `amount_minor` is an integer count of
    the currency's minor units. A static code has `amount_minor`, `reference` and `expires_at`
    all None; a dynamic code has all three, and `expires_at` is Unix time in seconds. Every
    constructor call validates the fields, so an instance that exists can always be encoded.
    """

    merchant_id: str
    merchant_name: str
    merchant_city: str
    category_code: str
    currency: str
    country: str
    amount_minor: int | None = None
    reference: str | None = None
    expires_at: int | None = None

    def __post_init__(self) -> None:
        _check_text(self.merchant_id, "merchant id", _MERCHANT_ID, MERCHANT_ID_LENGTH_MAX)
        _check_text(self.merchant_name, "merchant name", _PRINTABLE_ASCII, MERCHANT_NAME_LENGTH_MAX)
        _check_text(self.merchant_city, "merchant city", _PRINTABLE_ASCII, MERCHANT_CITY_LENGTH_MAX)
        _check_text(self.category_code, "merchant category code", _CATEGORY_CODE, 4)
        _check_text(self.country, "country code", _COUNTRY, 2)
        currency = _currency(self.currency)
        dynamic_fields = (self.amount_minor, self.reference, self.expires_at)
        if all(field is None for field in dynamic_fields):
            return
        if any(field is None for field in dynamic_fields):
            raise QrInvalidField(
                "a dynamic code needs an amount, a reference and an expiry together; "
                "a static code has none of them"
            )
        # bool is refused although it is an int: True as an amount or a time is always a bug.
        if type(self.amount_minor) is not int or self.amount_minor <= 0:
            raise QrInvalidField("amount must be a positive int count of minor units")
        amount_text = Money(self.amount_minor, currency).format()
        if len(amount_text) > AMOUNT_TEXT_LENGTH_MAX:
            raise QrFieldTooLong(
                f"amount is {len(amount_text)} characters long as decimal text; "
                f"at most {AMOUNT_TEXT_LENGTH_MAX}"
            )
        _check_text(self.reference, "reference", _PRINTABLE_ASCII, REFERENCE_LENGTH_MAX)
        if type(self.expires_at) is not int or not 1 <= self.expires_at <= EXPIRES_AT_MAX:
            raise QrInvalidField(f"expiry must be an int of Unix seconds, 1 to {EXPIRES_AT_MAX}")

    @property
    def is_dynamic(self) -> bool:
        """Whether the code is for one order (amount, reference, expiry) rather than printed."""
        return self.amount_minor is not None


def _currency(code: object) -> Currency:
    """Return the currency for an alphabetic code, as a QR error if it is not supported."""
    if not isinstance(code, str):
        raise QrUnsupportedCurrency(f"currency must be a str code, got {type(code).__name__}")
    try:
        return Currency.of(code)
    except UnknownCurrency:
        raise QrUnsupportedCurrency(
            "currency is not an active ISO 4217 currency with a minor unit"
        ) from None


# --------------------------------------------------------------------------- checksum


def crc16_ccitt_false(data: bytes) -> int:
    """Return CRC-16/CCITT-FALSE of `data` (polynomial 0x1021, initial value 0xFFFF).

    `binascii.crc_hqx` is the non-reflected CRC-CCITT without a final XOR, so seeded with 0xFFFF
    it is exactly the checksum EMVCo prescribes; "123456789" gives 0x29B1.
    """
    return binascii.crc_hqx(data, 0xFFFF)


def _crc_text(body: str) -> str:
    """The four uppercase hex digits EMVCo writes as the value of the CRC object."""
    return f"{crc16_ccitt_false(body.encode('ascii')):04X}"


# --------------------------------------------------------------------------- encoding


def _data_object(object_id: str, value: str) -> str:
    """Write one data object: id, two-digit length, value."""
    # MerchantQr's limits keep every value within 1-99 characters; reaching this is a bug here.
    if not 1 <= len(value) <= _DATA_OBJECT_VALUE_LENGTH_MAX:  # pragma: no cover - invariant
        raise QrFieldTooLong(f"data object {object_id} would be {len(value)} characters long")
    return f"{object_id}{len(value):02d}{value}"


def encode_merchant_qr(qr: MerchantQr) -> str:
    """Return the EMVCo MPM payload text for `qr`, CRC included, ids in ascending order."""
    if not isinstance(qr, MerchantQr):
        raise TypeError(f"expected a MerchantQr, got {type(qr).__name__}")
    currency = Currency.of(qr.currency)
    account = _data_object(_ACCOUNT_GUI, TIANPING_GLOBALLY_UNIQUE_IDENTIFIER) + _data_object(
        _ACCOUNT_MERCHANT_ID, qr.merchant_id
    )
    if qr.expires_at is not None:
        account += _data_object(_ACCOUNT_EXPIRES_AT, str(qr.expires_at))
    objects = [
        _data_object(_PAYLOAD_FORMAT_INDICATOR, _PAYLOAD_FORMAT_VERSION),
        _data_object(
            _POINT_OF_INITIATION, _DYNAMIC_INITIATION if qr.is_dynamic else _STATIC_INITIATION
        ),
        _data_object(_TIANPING_ACCOUNT_TEMPLATE, account),
        _data_object(_MERCHANT_CATEGORY_CODE, qr.category_code),
        _data_object(_TRANSACTION_CURRENCY, f"{currency.numeric:03d}"),
    ]
    if qr.amount_minor is not None:
        objects.append(_data_object(_TRANSACTION_AMOUNT, Money(qr.amount_minor, currency).format()))
    objects += [
        _data_object(_COUNTRY_CODE, qr.country),
        _data_object(_MERCHANT_NAME, qr.merchant_name),
        _data_object(_MERCHANT_CITY, qr.merchant_city),
    ]
    if qr.reference is not None:
        objects.append(
            _data_object(
                _ADDITIONAL_DATA_TEMPLATE, _data_object(_ADDITIONAL_REFERENCE_LABEL, qr.reference)
            )
        )
    # The CRC covers everything before its own value, including its id and length ("6304").
    body = "".join(objects) + _CRC_HEADER
    payload = body + _crc_text(body)
    # Unreachable with today's field limits (a full payload is under 250 characters); kept so a
    # future field cannot silently produce a code that scanners and the parser refuse.
    if len(payload) > PAYLOAD_LENGTH_MAX:  # pragma: no cover - invariant
        raise QrPayloadTooLong(f"payload would be {len(payload)} characters long")
    return payload


# --------------------------------------------------------------------------- parsing


def _check_envelope(payload: object) -> str:
    """Check type, length, characters and CRC of a payload before its structure is read."""
    if not isinstance(payload, str):
        raise QrMalformed(f"payload must be a str, got {type(payload).__name__}")
    if len(payload) > PAYLOAD_LENGTH_MAX:
        raise QrPayloadTooLong(
            f"payload is {len(payload)} characters long; at most {PAYLOAD_LENGTH_MAX}"
        )
    if _PRINTABLE_ASCII.fullmatch(payload) is None:
        raise QrMalformed("payload contains characters outside printable ASCII")
    if len(payload) < _CRC_OBJECT_LENGTH or payload[-_CRC_OBJECT_LENGTH:-4] != _CRC_HEADER:
        raise QrMalformed("payload does not end with the CRC data object (6304 and four digits)")
    written = payload[-4:]
    if _CRC_VALUE.fullmatch(written) is None:
        raise QrMalformed("the CRC value must be four uppercase hexadecimal digits")
    if written != _crc_text(payload[:-4]):
        raise QrChecksumMismatch("the CRC does not match the payload; the code is damaged")
    return payload


def _split_data_objects(text: str, where: str) -> dict[str, str]:
    """Split `text` into data objects, in order, refusing broken lengths and duplicate ids."""
    objects: dict[str, str] = {}
    position = 0
    # Each object takes at least five characters, so the loop runs at most about a hundred
    # times for the longest payload allowed.
    while position < len(text):
        header = text[position : position + _DATA_OBJECT_HEADER_LENGTH]
        object_id, length_text = header[:2], header[2:]
        if _TWO_DIGITS.fullmatch(object_id) is None or _TWO_DIGITS.fullmatch(length_text) is None:
            raise QrMalformed(f"{where}: a data object header is not four digits")
        length = int(length_text)
        start = position + _DATA_OBJECT_HEADER_LENGTH
        end = start + length
        if length == 0 or end > len(text):
            raise QrMalformed(f"{where}: data object {object_id} has an impossible length")
        if object_id in objects:
            raise QrMalformed(f"{where}: data object {object_id} appears more than once")
        objects[object_id] = text[start:end]
        position = end
    return objects


def _parse_account_template(value: str) -> tuple[str, int | None]:
    """Read Tianping's merchant account template: (merchant id, expiry or None)."""
    where = f"template {_TIANPING_ACCOUNT_TEMPLATE}"
    fields = _split_data_objects(value, where)
    if fields.get(_ACCOUNT_GUI) != TIANPING_GLOBALLY_UNIQUE_IDENTIFIER:
        raise QrForeignScheme("the merchant account template does not belong to Tianping")
    unknown = sorted(set(fields) - _ACCOUNT_SUB_TAGS)
    if unknown:
        raise QrMalformed(f"{where}: unknown sub-tags {', '.join(unknown)}")
    if _ACCOUNT_MERCHANT_ID not in fields:
        raise QrMalformed(f"{where}: the merchant id (sub-tag 01) is missing")
    expires_text = fields.get(_ACCOUNT_EXPIRES_AT)
    if expires_text is None:
        return fields[_ACCOUNT_MERCHANT_ID], None
    if _EXPIRES_AT_TEXT.fullmatch(expires_text) is None:
        raise QrInvalidField(f"{where}: the expiry is not Unix seconds of at most ten digits")
    return fields[_ACCOUNT_MERCHANT_ID], int(expires_text)


def _parse_reference(value: str) -> str | None:
    """Read the order reference from the additional data template, skipping descriptive labels."""
    where = f"template {_ADDITIONAL_DATA_TEMPLATE}"
    fields = _split_data_objects(value, where)
    reserved = sorted(
        set(fields) - _SKIPPED_ADDITIONAL_DATA_SUB_TAGS - {_ADDITIONAL_REFERENCE_LABEL}
    )
    if reserved:
        raise QrMalformed(f"{where}: sub-tags {', '.join(reserved)} are not supported")
    return fields.get(_ADDITIONAL_REFERENCE_LABEL)


def _parse_amount(text: str, currency: Currency) -> int:
    """Read the transaction amount, exactly, as minor units of `currency`."""
    if len(text) > AMOUNT_TEXT_LENGTH_MAX:
        raise QrFieldTooLong(
            f"amount is {len(text)} characters long; at most {AMOUNT_TEXT_LENGTH_MAX}"
        )
    if _AMOUNT_TEXT.fullmatch(text) is None:
        raise QrInvalidField("amount must be digits with an optional decimal point")
    try:
        return Money.parse(text, currency).amount_minor
    except InvalidAmount:
        raise QrInvalidField("amount has more fraction digits than the currency allows") from None


def parse_merchant_qr(payload: str, now: int | None = None) -> MerchantQr:
    """Read a Tianping merchant QR payload, refusing anything damaged, foreign or expired.

    `now` is Unix time in seconds. When it is given, a dynamic code whose expiry is at or before
    `now` raises `QrExpired`; a payment flow must always pass it. Leave it None only to display
    or inspect a code. Every refusal is a `QrError` subclass with a stable `code`.
    """
    if now is not None and type(now) is not int:
        raise TypeError(f"now must be an int of Unix seconds or None, got {type(now).__name__}")
    _check_envelope(payload)
    objects = _split_data_objects(payload, "payload")
    ids = list(objects)
    if ids[0] != _PAYLOAD_FORMAT_INDICATOR or ids[-1] != _CRC:
        raise QrMalformed("the payload format indicator must come first and the CRC last")
    # The envelope check read the CRC from the last eight characters; the object split must
    # have found the same object there, or lengths earlier in the payload are lying.
    if len(objects[_CRC]) != 4:
        raise QrMalformed("the CRC data object must be four characters long")
    if objects[_PAYLOAD_FORMAT_INDICATOR] != _PAYLOAD_FORMAT_VERSION:
        raise QrMalformed("unsupported payload format indicator")
    missing = [object_id for object_id in _REQUIRED_TOP_LEVEL_IDS if object_id not in objects]
    if missing:
        raise QrMalformed(f"required data objects {', '.join(missing)} are missing")
    refused = sorted(set(ids) - _UNDERSTOOD_TOP_LEVEL_IDS - _SKIPPED_TOP_LEVEL_IDS)
    if refused:
        raise QrMalformed(f"data objects {', '.join(refused)} are not supported")
    if _TIANPING_ACCOUNT_TEMPLATE not in objects:
        raise QrForeignScheme("the code has no Tianping merchant account template")

    initiation = objects[_POINT_OF_INITIATION]
    if initiation not in (_STATIC_INITIATION, _DYNAMIC_INITIATION):
        raise QrMalformed("the point of initiation method must be 11 or 12")
    merchant_id, expires_at = _parse_account_template(objects[_TIANPING_ACCOUNT_TEMPLATE])

    currency_text = objects[_TRANSACTION_CURRENCY]
    if _CURRENCY_NUMERIC.fullmatch(currency_text) is None:
        raise QrInvalidField("the transaction currency must be three digits")
    currency_code = _ALPHA_BY_NUMERIC.get(int(currency_text))
    if currency_code is None:
        raise QrUnsupportedCurrency("the transaction currency is not a supported ISO 4217 code")
    currency = Currency.of(currency_code)

    amount_text = objects.get(_TRANSACTION_AMOUNT)
    amount_minor = None if amount_text is None else _parse_amount(amount_text, currency)
    additional_data = objects.get(_ADDITIONAL_DATA_TEMPLATE)
    reference = None if additional_data is None else _parse_reference(additional_data)

    # MerchantQr checks that the dynamic fields come together; the initiation method must agree.
    qr = MerchantQr(
        merchant_id=merchant_id,
        merchant_name=objects[_MERCHANT_NAME],
        merchant_city=objects[_MERCHANT_CITY],
        category_code=objects[_MERCHANT_CATEGORY_CODE],
        currency=currency_code,
        country=objects[_COUNTRY_CODE],
        amount_minor=amount_minor,
        reference=reference,
        expires_at=expires_at,
    )
    if qr.is_dynamic != (initiation == _DYNAMIC_INITIATION):
        raise QrInvalidField(
            "a static code (11) must not carry an amount and a dynamic code (12) must"
        )
    if now is not None and qr.expires_at is not None and now >= qr.expires_at:
        raise QrExpired("the code has expired; ask the merchant for a new one")
    return qr


# --------------------------------------------------------------------------- rendering


def _qr_symbol(payload: str, scale: int) -> segno.QRCode:
    """Build the QR symbol for a payload that passes the envelope checks, at error level M.

    Error correction M (about 15 % of the symbol recoverable) is what payment stickers and
    screens conventionally use. Boosting is turned off so the level is always M, and the
    envelope check makes sure no damaged payload is ever printed.
    """
    import segno  # Imported here so that parsing never loads a drawing library.

    if type(scale) is not int or not 1 <= scale <= RENDER_SCALE_MAX:
        raise ValueError(f"scale must be an int from 1 to {RENDER_SCALE_MAX} pixels per module")
    _check_envelope(payload)
    return segno.make_qr(payload, error="m", boost_error=False)


def render_png(payload: str, *, scale: int = RENDER_SCALE_DEFAULT) -> bytes:
    """Return a PNG image of the QR symbol for `payload`, `scale` pixels per module."""
    symbol = _qr_symbol(payload, scale)
    buffer = io.BytesIO()
    symbol.save(buffer, kind="png", scale=scale, border=_QUIET_ZONE_MODULES)
    return buffer.getvalue()


def render_svg(payload: str, *, scale: int = RENDER_SCALE_DEFAULT) -> str:
    """Return an SVG document of the QR symbol for `payload`, `scale` user units per module."""
    symbol = _qr_symbol(payload, scale)
    buffer = io.BytesIO()
    symbol.save(buffer, kind="svg", scale=scale, border=_QUIET_ZONE_MODULES)
    return buffer.getvalue().decode("utf-8")
