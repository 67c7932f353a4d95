"""Money as an integer count of minor units in one ISO 4217 currency.

A `Money` value never holds a binary floating-point number: amounts are exact integers of minor
units (fen, cents, fils), decimal text is converted at the edge by `Money.parse` and
`Money.format`, and splitting an amount uses `allocate`, which never loses or invents a unit.
The module uses only the standard library so that the ledger's domain code stays pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, overload

from tianping.ledger.currencies import ACTIVE_CURRENCIES

__all__ = [
    "ALLOCATION_RATIOS_MAX",
    "AMOUNT_TEXT_LENGTH_MAX",
    "Currency",
    "CurrencyMismatch",
    "InvalidAmount",
    "Money",
    "MoneyError",
    "UnknownCurrency",
    "allocate",
]

# Decimal text longer than this is refused before any parsing work is done. Forty characters hold
# a sign, every amount the ledger can store in any currency, and a generous margin, while keeping
# hostile input from making the parser (or int()) chew through megabytes of digits.
AMOUNT_TEXT_LENGTH_MAX: Final = 40

# One allocation splits a total into at most this many parts. The bound keeps the sort inside
# `allocate` cheap for any caller; a real split (instalments, fee shares, pro-rata refunds) is
# far smaller.
ALLOCATION_RATIOS_MAX: Final = 10_000

# The accepted decimal text: an optional sign, at least one ASCII digit, and optionally a point
# followed by at least one ASCII digit. `[0-9]` is spelled out because `\d` would also accept
# non-ASCII digits such as Arabic-Indic ones. Exponents ("1e5"), grouping separators ("1,234"),
# "NaN", "Infinity" and surrounding whitespace all fail to match.
_AMOUNT_TEXT_PATTERN: Final = re.compile(
    r"(?P<sign>[+-]?)(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?"
)

# ISO 4217 alphabetic codes are exactly three ASCII capital letters.
_CURRENCY_CODE_PATTERN: Final = re.compile(r"[A-Z]{3}")


class MoneyError(ValueError):
    """Root of every error this module raises about money values, so callers can catch one type.

    It derives from ValueError because each of its subclasses reports a value that is well typed
    but not acceptable as money.
    """


class UnknownCurrency(MoneyError):
    """Raised when a currency code is not an active ISO 4217 code in the currency table."""


class CurrencyMismatch(MoneyError):
    """Raised when arithmetic or comparison combines amounts in two different currencies."""


class InvalidAmount(MoneyError):
    """Raised when decimal text is not an exact amount in the currency it is parsed for."""


@dataclass(frozen=True, slots=True)
class Currency:
    """One ISO 4217 currency: alphabetic code, numeric code, minor-unit exponent and name.

    The exponent is the number of decimal digits of the minor unit: 2 for CNY (one fen is 0.01
    yuan), 0 for JPY, 3 for KWD. Instances for the active ISO 4217 table are built once at import
    and shared, so `Currency.of` is a dictionary lookup.
    """

    code: str
    numeric: int
    exponent: int
    name: str

    def __post_init__(self) -> None:
        # A currency whose exponent is wrong or negative would scale every amount in it, so the
        # fields are checked even though the shared instances all come from the vetted table.
        if not isinstance(self.code, str) or _CURRENCY_CODE_PATTERN.fullmatch(self.code) is None:
            raise ValueError(f"currency code must be three ASCII capital letters: {self.code!r}")
        if type(self.numeric) is not int or not 1 <= self.numeric <= 999:
            raise ValueError(f"numeric currency code must be an int, 1 to 999: {self.numeric!r}")
        if type(self.exponent) is not int or not 0 <= self.exponent <= 4:
            raise ValueError(f"minor-unit exponent must be an int, 0 to 4: {self.exponent!r}")

    @classmethod
    def of(cls, code: str) -> Currency:
        """Return the active ISO 4217 currency with this alphabetic code, such as "CNY".

        The lookup is case-sensitive: codes are upper-case, and a lower-case code is refused
        rather than guessed at, so that stored data always carries the canonical spelling.
        """
        currency = _CURRENCIES_BY_CODE.get(code) if isinstance(code, str) else None
        if currency is not None:
            return currency
        hint = ""
        if isinstance(code, str) and code.upper() in _CURRENCIES_BY_CODE:
            hint = f"; currency codes are upper-case, did you mean {code.upper()!r}?"
        raise UnknownCurrency(
            f"unknown currency code {code!r}: not an active ISO 4217 code with a minor unit{hint}"
        )

    def __str__(self) -> str:
        return self.code


# Built once at import so that `Currency.of` never constructs an instance and every caller
# shares the same object for the same code.
_CURRENCIES_BY_CODE: Final[dict[str, Currency]] = {
    code: Currency(code=code, numeric=numeric, exponent=exponent, name=name)
    for code, (numeric, exponent, name) in ACTIVE_CURRENCIES.items()
}


def _resolve_currency(currency: str | Currency) -> Currency:
    """Accept either a currency or its code, so edge code can pass what it received."""
    if isinstance(currency, Currency):
        return currency
    return Currency.of(currency)


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: an integer number of minor units of one currency.

    `Money(1230, Currency.of("CNY"))` is 12.30 yuan. Arithmetic and ordering are only defined
    between amounts of the same currency; mixing currencies raises `CurrencyMismatch` because
    converting needs a rate, and a rate is a business decision that does not belong here. There
    is no division operator: splitting an amount must say where the indivisible remainder goes,
    which is what `allocate` does.
    """

    amount_minor: int
    currency: Currency

    def __post_init__(self) -> None:
        # `type(...) is int` rather than isinstance: bool is a subclass of int, and True as an
        # amount is always a bug. Floats are refused because binary fractions cannot hold most
        # decimal amounts exactly (0.1 + 0.2 != 0.3), which is the whole reason this type exists.
        if type(self.amount_minor) is not int:
            raise TypeError(
                "amount_minor must be an int count of minor units, got "
                f"{type(self.amount_minor).__name__} {self.amount_minor!r}; "
                "convert decimal text with Money.parse instead"
            )
        if not isinstance(self.currency, Currency):
            raise TypeError(
                f"currency must be a Currency, got {type(self.currency).__name__}; "
                "use Currency.of(code)"
            )

    @classmethod
    def zero(cls, currency: str | Currency) -> Money:
        """Return no money in the given currency, the starting point of a sum."""
        return cls(0, _resolve_currency(currency))

    @classmethod
    def parse(cls, text: str, currency: str | Currency) -> Money:
        """Read decimal text such as "12.34", "-0.5" or "1000" as an exact amount.

        The text may have an optional sign, digits, and a point followed by at most as many
        fraction digits as the currency's exponent. Anything else is refused with
        `InvalidAmount`, including more fraction digits than the currency allows: silently
        rounding "0.125" to a two-digit currency would change the amount the sender meant.
        """
        resolved_currency = _resolve_currency(currency)
        if not isinstance(text, str):
            raise TypeError(
                f"amount text must be a str, got {type(text).__name__} {text!r}; "
                "pass the decimal string exactly as received"
            )
        if len(text) > AMOUNT_TEXT_LENGTH_MAX:
            raise InvalidAmount(
                f"amount text is {len(text)} characters long; "
                f"at most {AMOUNT_TEXT_LENGTH_MAX} are accepted"
            )
        match = _AMOUNT_TEXT_PATTERN.fullmatch(text)
        if match is None:
            raise InvalidAmount(
                f"{text!r} is not a plain decimal amount: expected an optional sign, digits, "
                "and an optional point with fraction digits (no exponent, grouping or spaces)"
            )
        fraction = match["fraction"] or ""
        exponent = resolved_currency.exponent
        if len(fraction) > exponent:
            raise InvalidAmount(
                f"{text!r} has {len(fraction)} fraction digits but {resolved_currency.code} "
                f"allows at most {exponent}; round the amount explicitly before parsing it"
            )
        # Padding the fraction to the exponent turns "12.3" in a two-digit currency into the
        # digit string "1230", which is the amount in minor units; no arithmetic can lose it.
        minor_digits = match["whole"] + fraction.ljust(exponent, "0")
        amount_minor = int(minor_digits)
        return cls(-amount_minor if match["sign"] == "-" else amount_minor, resolved_currency)

    def format(self) -> str:
        """Return the canonical decimal text with exactly `exponent` fraction digits.

        12.30 CNY gives "12.30", minus five fen gives "-0.05", and 1000 JPY gives "1000". There
        is no grouping and no locale, so the result can always be read back by `Money.parse`.
        """
        exponent = self.currency.exponent
        sign = "-" if self.amount_minor < 0 else ""
        digits = str(abs(self.amount_minor))
        if exponent == 0:
            return sign + digits
        # Left-padding guarantees at least one whole digit, so 5 fen become "0.05" and not ".05".
        digits = digits.rjust(exponent + 1, "0")
        return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"

    def to_decimal(self) -> Decimal:
        """Return the amount in major units as an exact Decimal, such as Decimal("12.30").

        The Decimal is built from the canonical text because the string constructor is exact and
        ignores the context precision, whereas arithmetic on Decimals would round to it.
        """
        return Decimal(self.format())

    def is_zero(self) -> bool:
        """Return whether the amount is exactly zero."""
        return self.amount_minor == 0

    def is_positive(self) -> bool:
        """Return whether the amount is strictly greater than zero."""
        return self.amount_minor > 0

    def is_negative(self) -> bool:
        """Return whether the amount is strictly less than zero."""
        return self.amount_minor < 0

    def __str__(self) -> str:
        return f"{self.format()} {self.currency.code}"

    def _require_same_currency(self, other: Money, operation: str) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot {operation} {self} and {other}: amounts are in different currencies"
            )

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other, "add")
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other, "subtract")
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return Money(abs(self.amount_minor), self.currency)

    def __mul__(self, factor: int) -> Money:
        # Only whole-number factors keep the result an exact count of minor units; a fractional
        # factor (an interest rate, a share) needs a rounding rule and belongs to the caller.
        if type(factor) is not int:
            return NotImplemented
        return Money(self.amount_minor * factor, self.currency)

    def __rmul__(self, factor: int) -> Money:
        return self.__mul__(factor)

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other, "compare")
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other, "compare")
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other, "compare")
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other, "compare")
        return self.amount_minor >= other.amount_minor


def _validated_ratios(ratios: Sequence[int]) -> tuple[int, ...]:
    """Return the ratios as a tuple after checking every rule `allocate` states."""
    if isinstance(ratios, (str, bytes)) or not isinstance(ratios, Sequence):
        raise ValueError(f"ratios must be a sequence of ints, got {type(ratios).__name__}")
    if not ratios:
        raise ValueError("ratios must not be empty")
    if len(ratios) > ALLOCATION_RATIOS_MAX:
        raise ValueError(
            f"{len(ratios)} ratios given; at most {ALLOCATION_RATIOS_MAX} are accepted"
        )
    for index, ratio in enumerate(ratios):
        # bool is refused like in Money: True as a weight is almost certainly a mistake.
        if type(ratio) is not int:
            raise ValueError(
                f"ratio at index {index} must be an int, got {type(ratio).__name__} {ratio!r}"
            )
        if ratio < 0:
            raise ValueError(f"ratio at index {index} must not be negative, got {ratio}")
    validated = tuple(ratios)
    if sum(validated) == 0:
        raise ValueError("ratios must have a positive sum")
    return validated


def _allocate_minor(total_minor: int, ratios: tuple[int, ...]) -> list[int]:
    """Split an integer by the largest-remainder (Hamilton) method; see `allocate`."""
    # The magnitude is split and the sign restored afterwards, so a refund split the same way as
    # the payment it reverses gives exactly the negated parts.
    magnitude = abs(total_minor)
    ratio_sum = sum(ratios)
    parts: list[int] = []
    remainders: list[int] = []
    for ratio in ratios:
        part, remainder = divmod(magnitude * ratio, ratio_sum)
        parts.append(part)
        remainders.append(remainder)
    # The floors fall short of the total by sum(remainders) / ratio_sum units, which is less
    # than the number of positive remainders, so each leftover unit goes to a distinct part and
    # a zero ratio (whose remainder is zero) never receives one. Sorting on (-remainder, index)
    # hands them to the largest remainders first and breaks ties by lower index, so the result
    # depends only on the inputs.
    leftover = magnitude - sum(parts)
    by_largest_remainder = sorted(range(len(ratios)), key=lambda index: (-remainders[index], index))
    for index in by_largest_remainder[:leftover]:
        parts[index] += 1
    if total_minor < 0:
        return [-part for part in parts]
    return parts


@overload
def allocate(total: Money, ratios: Sequence[int]) -> list[Money]: ...


@overload
def allocate(total: int, ratios: Sequence[int]) -> list[int]: ...


def allocate(total: Money | int, ratios: Sequence[int]) -> list[Money] | list[int]:
    """Split `total` pro rata to `ratios` so that the parts add up to exactly `total`.

    Uses the largest-remainder (Hamilton) method: each part starts as
    floor(|total| * ratio / sum(ratios)) minor units, and the units this leaves over go one each
    to the parts with the largest remainders, ties going to the lower index. Every part is thus
    within one minor unit of its exact share. A negative total is split by its magnitude and the
    parts negated, so all parts carry the total's sign. A zero ratio always gets zero.

    Ratios must be non-negative ints with a positive sum, at most `ALLOCATION_RATIOS_MAX` of
    them; otherwise ValueError is raised. A `Money` total gives a list of `Money` in the same
    currency, an int total (minor units) gives a list of ints.
    """
    validated_ratios = _validated_ratios(ratios)
    if isinstance(total, Money):
        currency = total.currency
        return [
            Money(part, currency) for part in _allocate_minor(total.amount_minor, validated_ratios)
        ]
    if type(total) is not int:
        raise TypeError(
            f"total must be Money or an int count of minor units, got {type(total).__name__}"
        )
    return _allocate_minor(total, validated_ratios)
