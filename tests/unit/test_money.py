"""Unit and property tests for tianping.ledger.money and the ISO 4217 table behind it."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tianping.ledger.currencies import ACTIVE_CURRENCIES
from tianping.ledger.money import (
    ALLOCATION_RATIOS_MAX,
    AMOUNT_TEXT_LENGTH_MAX,
    Currency,
    CurrencyMismatch,
    InvalidAmount,
    Money,
    MoneyError,
    UnknownCurrency,
    allocate,
)

CNY = Currency.of("CNY")
USD = Currency.of("USD")
JPY = Currency.of("JPY")
KWD = Currency.of("KWD")
CLF = Currency.of("CLF")

currency_codes = st.sampled_from(sorted(ACTIVE_CURRENCIES))
# Wider than any ledger limit on purpose: the money type itself must be exact at every size.
minor_amounts = st.integers(min_value=-(10**18), max_value=10**18)
ratio_lists = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=40).filter(
    lambda ratios: sum(ratios) > 0
)


def cny(amount_minor: int) -> Money:
    """Build an amount in yuan from fen, to keep the examples short."""
    return Money(amount_minor, CNY)


# --- The ISO 4217 table ---------------------------------------------------------------------


# Exponents that differ from the common 2, pinned because a wrong digit here silently scales every
# amount in that currency by a power of ten.
PINNED_EXPONENTS = {
    "CNY": 2, "HKD": 2, "USD": 2, "EUR": 2, "GBP": 2,
    "JPY": 0, "KRW": 0, "VND": 0, "ISK": 0, "UGX": 0, "XOF": 0, "XAF": 0, "XPF": 0,
    "CLP": 0, "PYG": 0, "BIF": 0, "DJF": 0, "GNF": 0, "KMF": 0, "RWF": 0, "VUV": 0, "UYI": 0,
    "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3, "LYD": 3, "IQD": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip


@pytest.mark.parametrize(("code", "exponent"), sorted(PINNED_EXPONENTS.items()))
def test_pinned_exponents(code: str, exponent: int) -> None:
    """Currencies whose exponent is easy to get wrong carry the exponent ISO 4217 gives them."""
    assert Currency.of(code).exponent == exponent


def test_only_pinned_currencies_have_an_exponent_other_than_two() -> None:
    """Every exponent other than 2 in the table is one of the pinned, reviewed ones."""
    unusual = {code for code, (_, exponent, _) in ACTIVE_CURRENCIES.items() if exponent != 2}
    assert unusual == {code for code, exponent in PINNED_EXPONENTS.items() if exponent != 2}


def test_table_covers_the_active_list() -> None:
    """The table holds all 165 List One codes that have a minor unit, with well-formed fields."""
    assert len(ACTIVE_CURRENCIES) == 165
    for code, (numeric, exponent, name) in ACTIVE_CURRENCIES.items():
        assert re.fullmatch(r"[A-Z]{3}", code), code
        assert 1 <= numeric <= 999, code
        assert exponent in (0, 2, 3, 4), code
        assert name and name == name.strip() and name.isascii(), code
    numerics = [numeric for numeric, _, _ in ACTIVE_CURRENCIES.values()]
    assert len(numerics) == len(set(numerics))


def test_known_numeric_codes() -> None:
    """A sample of numeric codes matches ISO 4217, including ones with leading zeros."""
    assert Currency.of("CNY").numeric == 156
    assert Currency.of("USD").numeric == 840
    assert Currency.of("EUR").numeric == 978
    assert Currency.of("ALL").numeric == 8
    assert Currency.of("XCG").numeric == 532


@pytest.mark.parametrize(
    "code",
    ["XAU", "XAG", "XPD", "XPT", "XDR", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA", "XTS", "XXX"],
)
def test_codes_without_minor_unit_are_excluded(code: str) -> None:
    """Codes whose minor unit ISO gives as N.A. cannot be looked up."""
    assert code not in ACTIVE_CURRENCIES
    with pytest.raises(UnknownCurrency):
        Currency.of(code)


@pytest.mark.parametrize("code", ["ANG", "BGN", "HRK", "SLL", "ZWL", "CUC", "VEF"])
def test_withdrawn_codes_are_excluded(code: str) -> None:
    """Codes withdrawn from List One before the edition followed are not active."""
    assert code not in ACTIVE_CURRENCIES


def test_table_is_read_only() -> None:
    """The table cannot be changed at run time."""
    with pytest.raises(TypeError):
        ACTIVE_CURRENCIES["ZZZ"] = (1, 2, "Test")  # type: ignore[index]


# --- Currency ------------------------------------------------------------------------------


def test_currency_of_returns_shared_instance() -> None:
    """Looking a code up twice returns the very same cached object."""
    assert Currency.of("CNY") is Currency.of("CNY")
    assert Currency.of("CNY") == Currency(code="CNY", numeric=156, exponent=2, name="Yuan Renminbi")


@pytest.mark.parametrize("code", ["cny", "Cny", "XYZ", "", "CNYY", " CNY", "CN"])
def test_currency_of_rejects_unknown_codes(code: str) -> None:
    """Unknown, lower-case or malformed codes raise UnknownCurrency naming the code."""
    with pytest.raises(UnknownCurrency, match=re.escape(repr(code))):
        Currency.of(code)


def test_currency_of_suggests_upper_case() -> None:
    """A lower-case spelling of a real code gets a hint towards the upper-case one."""
    with pytest.raises(UnknownCurrency, match="did you mean 'USD'"):
        Currency.of("usd")


def test_currency_of_rejects_non_string() -> None:
    """A non-string code is reported as unknown rather than crashing the lookup."""
    with pytest.raises(UnknownCurrency):
        Currency.of(156)  # type: ignore[arg-type]


def test_unknown_currency_is_a_value_error() -> None:
    """Callers that catch ValueError or MoneyError also catch UnknownCurrency."""
    assert issubclass(UnknownCurrency, MoneyError)
    assert issubclass(CurrencyMismatch, MoneyError)
    assert issubclass(InvalidAmount, MoneyError)
    assert issubclass(MoneyError, ValueError)


@pytest.mark.parametrize(
    ("code", "numeric", "exponent"),
    [("usd", 840, 2), ("US1", 840, 2), ("USD", 0, 2), ("USD", 840, -1), ("USD", 840, 5)],
)
def test_currency_constructor_validates_fields(code: str, numeric: int, exponent: int) -> None:
    """A hand-built currency with a malformed code, numeric code or exponent is refused."""
    with pytest.raises(ValueError):
        Currency(code=code, numeric=numeric, exponent=exponent, name="Test")


# --- Construction --------------------------------------------------------------------------


def test_float_amount_is_refused_with_type_error_naming_float() -> None:
    """Money(1.0, ...) raises TypeError and the message names float."""
    with pytest.raises(TypeError, match="float"):
        Money(1.0, CNY)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [True, False, Decimal("1"), "100", None, Fraction(1, 1)])
def test_non_int_amounts_are_refused(amount: object) -> None:
    """bool, Decimal, str, None and Fraction amounts are refused with TypeError."""
    with pytest.raises(TypeError, match="amount_minor must be an int"):
        Money(amount, CNY)  # type: ignore[arg-type]


def test_currency_must_be_currency_instance() -> None:
    """A bare code string in place of a Currency is refused with a hint to Currency.of."""
    with pytest.raises(TypeError, match=r"Currency\.of"):
        Money(100, "CNY")  # type: ignore[arg-type]


def test_money_is_immutable_and_hashable() -> None:
    """Amounts cannot be changed after creation and equal amounts hash equally."""
    amount = cny(100)
    with pytest.raises(AttributeError):
        amount.amount_minor = 5  # type: ignore[misc]
    assert hash(cny(100)) == hash(Money(100, Currency.of("CNY")))
    assert {cny(100), cny(100), cny(101)} == {cny(100), cny(101)}


def test_zero() -> None:
    """Money.zero gives a zero amount in the requested currency."""
    assert Money.zero("JPY") == Money(0, JPY)
    assert Money.zero(USD) == Money(0, USD)


# --- Arithmetic and comparison -------------------------------------------------------------


def test_addition_and_subtraction() -> None:
    """Same-currency amounts add and subtract exactly in minor units."""
    assert cny(1230) + cny(5) == cny(1235)
    assert cny(1230) - cny(1235) == cny(-5)


def test_negation_abs_and_plus() -> None:
    """Unary minus, unary plus and abs act on the amount and keep the currency."""
    assert -cny(5) == cny(-5)
    assert +cny(-5) == cny(-5)
    assert abs(cny(-5)) == cny(5)
    assert abs(cny(5)) == cny(5)


def test_multiplication_by_int() -> None:
    """Multiplying by an int on either side scales the amount exactly."""
    assert cny(125) * 3 == cny(375)
    assert 3 * cny(125) == cny(375)
    assert cny(125) * -2 == cny(-250)
    assert cny(10**30) * 10**30 == cny(10**60)


@pytest.mark.parametrize("factor", [1.5, 2.0, Decimal("2"), True, Fraction(1, 2), "2"])
def test_multiplication_by_non_int_is_refused(factor: Any) -> None:
    """Multiplying by a float, Decimal, bool, Fraction or str raises TypeError."""
    with pytest.raises(TypeError):
        cny(100) * factor
    with pytest.raises(TypeError):
        factor * cny(100)


def test_money_times_money_is_refused() -> None:
    """Multiplying two amounts has no meaning and raises TypeError."""
    with pytest.raises(TypeError):
        cny(100) * cny(2)  # type: ignore[operator]


def test_there_is_no_division() -> None:
    """True and floor division are not defined; splitting must go through allocate."""
    with pytest.raises(TypeError):
        cny(100) / 2  # type: ignore[operator]
    with pytest.raises(TypeError):
        cny(100) // 2  # type: ignore[operator]


def test_adding_a_plain_number_is_refused() -> None:
    """An int or float cannot be added to an amount, so units are never mixed up."""
    with pytest.raises(TypeError):
        cny(100) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        cny(100) - 0.5  # type: ignore[operator]


def test_comparisons_within_one_currency() -> None:
    """Ordering compares minor units within one currency."""
    assert cny(1) < cny(2)
    assert cny(2) <= cny(2)
    assert cny(3) > cny(2)
    assert cny(2) >= cny(2)
    assert not cny(2) < cny(2)
    assert max(cny(7), cny(-3), cny(5)) == cny(7)


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
    ids=["add", "subtract", "lt", "le", "gt", "ge"],
)
def test_cross_currency_operations_are_refused(operation: Any) -> None:
    """Arithmetic and ordering across two currencies raise CurrencyMismatch naming both."""
    with pytest.raises(CurrencyMismatch, match=r"1\.00 CNY.*1\.00 USD"):
        operation(cny(100), Money(100, USD))


def test_equality_across_currencies_is_false_not_an_error() -> None:
    """Equal digits in different currencies are simply unequal amounts."""
    assert cny(100) != Money(100, USD)
    assert cny(100) == cny(100)


def test_sign_predicates() -> None:
    """is_zero, is_positive and is_negative each hold for exactly one sign."""
    assert cny(0).is_zero() and not cny(0).is_positive() and not cny(0).is_negative()
    assert cny(1).is_positive() and not cny(1).is_zero() and not cny(1).is_negative()
    assert cny(-1).is_negative() and not cny(-1).is_zero() and not cny(-1).is_positive()


@given(minor_amounts, minor_amounts, minor_amounts)
def test_addition_is_exact_and_associative(a: int, b: int, c: int) -> None:
    """Addition matches integer addition of minor units, whatever the order of grouping."""
    assert (cny(a) + cny(b)) + cny(c) == cny(a) + (cny(b) + cny(c)) == cny(a + b + c)
    assert cny(a) - cny(b) == cny(a) + -cny(b)


# --- Parsing and formatting ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "amount_minor"),
    [
        ("12.34", "CNY", 1234),
        ("12.3", "CNY", 1230),
        ("12", "CNY", 1200),
        ("-0.5", "CNY", -50),
        ("+0.05", "CNY", 5),
        ("-0", "CNY", 0),
        ("0.00", "USD", 0),
        ("007.10", "USD", 710),
        ("1000", "JPY", 1000),
        ("-1000", "JPY", -1000),
        ("1.234", "KWD", 1234),
        ("0.0001", "CLF", 1),
        ("99999999999999999999.99", "HKD", 9999999999999999999999),
    ],
)
def test_parse_valid_amounts(text: str, currency: str, amount_minor: int) -> None:
    """Plain decimal text becomes the exact number of minor units."""
    assert Money.parse(text, currency) == Money(amount_minor, Currency.of(currency))


def test_parse_accepts_currency_instance() -> None:
    """Money.parse accepts a Currency as well as a code."""
    assert Money.parse("1.50", USD) == Money(150, USD)


@pytest.mark.parametrize(
    ("text", "currency"),
    [("12.345", "CNY"), ("0.001", "USD"), ("1.0", "JPY"), ("1.2345", "KWD"), ("0.00001", "CLF")],
)
def test_parse_rejects_more_fraction_digits_than_the_currency_has(text: str, currency: str) -> None:
    """Too many fraction digits are refused, with the allowed count, rather than rounded."""
    exponent = Currency.of(currency).exponent
    with pytest.raises(InvalidAmount, match=f"{currency} allows at most {exponent}"):
        Money.parse(text, currency)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\t\n",
        " 12.34",
        "12.34 ",
        "1,234.56",
        "1 234",
        "1e5",
        "1E5",
        "1.5e2",
        "NaN",
        "nan",
        "-NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "12.",
        ".5",
        "-",
        "+",
        "--1",
        "+-1",
        "0x10",
        "1_000",
        "12,34",
        "\u0661\u0662",  # Arabic-Indic digits: int() would accept them, the parser must not.
        "\uff11\uff12",  # Full-width digits, for the same reason.
        "12.3\n",
    ],
)
def test_parse_rejects_malformed_text(text: str) -> None:
    """Whitespace, grouping, exponents, NaN, infinities and non-ASCII digits are refused."""
    with pytest.raises(InvalidAmount):
        Money.parse(text, "CNY")


def test_parse_rejects_overlong_text() -> None:
    """Text longer than the limit is refused even when it is a well-formed number."""
    at_limit = "1" * AMOUNT_TEXT_LENGTH_MAX
    assert Money.parse(at_limit, "JPY").amount_minor == int(at_limit)
    with pytest.raises(InvalidAmount, match="characters long"):
        Money.parse("1" * (AMOUNT_TEXT_LENGTH_MAX + 1), "JPY")


@pytest.mark.parametrize("value", [12.34, 12, Decimal("12.34"), None, b"12.34"])
def test_parse_rejects_non_string_input(value: object) -> None:
    """Floats, ints, Decimals and bytes must arrive as text; anything else is a TypeError."""
    with pytest.raises(TypeError, match=type(value).__name__):
        Money.parse(value, "CNY")  # type: ignore[arg-type]


def test_parse_rejects_unknown_currency() -> None:
    """Parsing into an unknown currency raises UnknownCurrency."""
    with pytest.raises(UnknownCurrency):
        Money.parse("1.00", "XXX")


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (cny(1230), "12.30"),
        (cny(-5), "-0.05"),
        (cny(-100), "-1.00"),
        (cny(0), "0.00"),
        (Money(1000, JPY), "1000"),
        (Money(-7, JPY), "-7"),
        (Money(1, KWD), "0.001"),
        (Money(12345, CLF), "1.2345"),
    ],
)
def test_format(amount: Money, text: str) -> None:
    """format gives exactly `exponent` fraction digits with a leading zero and a minus sign."""
    assert amount.format() == text


def test_str_and_to_decimal() -> None:
    """str shows the canonical text and the code; to_decimal keeps the trailing zeros."""
    assert str(cny(1230)) == "12.30 CNY"
    assert str(Money(1000, JPY)) == "1000 JPY"
    assert cny(1230).to_decimal() == Decimal("12.30")
    assert cny(1230).to_decimal().as_tuple().exponent == -2


@given(minor_amounts, currency_codes)
def test_format_parse_round_trip_for_every_currency(amount_minor: int, code: str) -> None:
    """Formatting then parsing gives back the same amount, in every currency of the table."""
    amount = Money(amount_minor, Currency.of(code))
    assert Money.parse(amount.format(), code) == amount


@given(minor_amounts, currency_codes)
def test_format_matches_decimal_scaling(amount_minor: int, code: str) -> None:
    """format and to_decimal agree with an independent Decimal computation of the same value."""
    currency = Currency.of(code)
    amount = Money(amount_minor, currency)
    expected = Decimal(amount_minor).scaleb(-currency.exponent)
    assert amount.to_decimal() == expected
    assert amount.format() == f"{expected:f}"
    fraction_part = amount.format().partition(".")[2]
    assert len(fraction_part) == currency.exponent


@given(st.decimals(allow_nan=False, allow_infinity=False, places=2), currency_codes)
def test_parse_of_decimal_text_is_exact_or_refused(value: Decimal, code: str) -> None:
    """Two-place decimal text parses exactly if the currency allows it and is refused otherwise."""
    currency = Currency.of(code)
    text = f"{value:f}"
    if len(text) > AMOUNT_TEXT_LENGTH_MAX:
        return
    fraction_digits = len(text.partition(".")[2])
    if fraction_digits > currency.exponent:
        with pytest.raises(InvalidAmount):
            Money.parse(text, currency)
    else:
        assert Money.parse(text, currency).to_decimal() == value


# --- Allocation ----------------------------------------------------------------------------


def test_allocate_classic_example() -> None:
    """Splitting 0.05 in ratio 3:7 gives 0.02 and 0.03, as in Fowler's money pattern."""
    assert allocate(cny(5), [3, 7]) == [cny(2), cny(3)]


def test_allocate_even_split_gives_leftover_to_lower_index() -> None:
    """100 fen in three equal shares go 34, 33, 33: the tie goes to the lowest index."""
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]


def test_allocate_largest_remainder_wins_over_index() -> None:
    """The leftover unit goes to the largest remainder even when it is not the first part."""
    # The exact shares are 1.1, 2.2 and 7.7: the floors leave one unit over, and it goes to the
    # part with the largest remainder (0.7), the last one.
    assert allocate(11, [1, 2, 7]) == [1, 2, 8]


def test_allocate_negative_total_mirrors_positive() -> None:
    """A negative total is split like its magnitude with every part negated."""
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]
    assert allocate(cny(-5), [3, 7]) == [cny(-2), cny(-3)]


def test_allocate_zero_ratios_get_zero() -> None:
    """A zero ratio always gets zero, even when there are leftover units to hand out."""
    assert allocate(7, [0, 1, 0, 1, 0]) == [0, 4, 0, 3, 0]


def test_allocate_zero_total() -> None:
    """Allocating nothing gives all-zero parts."""
    assert allocate(0, [1, 2, 3]) == [0, 0, 0]


def test_allocate_money_keeps_currency() -> None:
    """A Money total gives Money parts in the same currency."""
    parts = allocate(Money(1000, JPY), [1, 2])
    assert parts == [Money(333, JPY), Money(667, JPY)]
    assert all(part.currency is JPY for part in parts)


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ([], "must not be empty"),
        ([0, 0], "positive sum"),
        ([1, -1], "must not be negative"),
        ([1, 0.5], "must be an int"),
        ([1, True], "must be an int"),
        ([1, Decimal(1)], "must be an int"),
        ("12", "sequence of ints"),
        ([1] * (ALLOCATION_RATIOS_MAX + 1), "at most"),
    ],
)
def test_allocate_rejects_bad_ratios(ratios: Any, message: str) -> None:
    """Empty, all-zero, negative, non-int or too many ratios raise ValueError."""
    with pytest.raises(ValueError, match=message):
        allocate(100, ratios)


def test_allocate_accepts_the_maximum_number_of_ratios() -> None:
    """Exactly ALLOCATION_RATIOS_MAX ratios are accepted and split correctly."""
    parts = allocate(ALLOCATION_RATIOS_MAX + 1, [1] * ALLOCATION_RATIOS_MAX)
    assert parts == [2] + [1] * (ALLOCATION_RATIOS_MAX - 1)


@pytest.mark.parametrize("total", [1.0, True, Decimal(1), "100"])
def test_allocate_rejects_non_int_total(total: Any) -> None:
    """A float, bool, Decimal or str total raises TypeError."""
    with pytest.raises(TypeError):
        allocate(total, [1, 1])


@given(minor_amounts, ratio_lists)
def test_allocation_sums_to_total(total: int, ratios: list[int]) -> None:
    """Allocation never loses or creates a minor unit: the parts sum to the total."""
    parts = allocate(total, ratios)
    assert len(parts) == len(ratios)
    assert sum(parts) == total


@given(minor_amounts, ratio_lists)
def test_allocation_parts_are_within_one_of_exact_share(total: int, ratios: list[int]) -> None:
    """Every part differs from its exact proportional share by less than one minor unit."""
    ratio_sum = sum(ratios)
    for part, ratio in zip(allocate(total, ratios), ratios, strict=True):
        exact_share = Fraction(total * ratio, ratio_sum)
        assert abs(part - exact_share) < 1
        if ratio == 0:
            assert part == 0


@given(st.integers(min_value=0, max_value=10**18), ratio_lists)
def test_allocation_of_non_negative_total_has_non_negative_parts(
    total: int, ratios: list[int]
) -> None:
    """Parts of a non-negative total are never negative."""
    assert all(part >= 0 for part in allocate(total, ratios))


@given(minor_amounts, ratio_lists)
def test_allocation_sign_symmetry(total: int, ratios: list[int]) -> None:
    """Allocating -total gives exactly the negated parts of allocating total."""
    assert allocate(-total, ratios) == [-part for part in allocate(total, ratios)]


@given(minor_amounts, ratio_lists)
def test_allocation_is_deterministic(total: int, ratios: list[int]) -> None:
    """The same inputs always give the same parts, and list or tuple input makes no difference."""
    assert (
        allocate(total, ratios) == allocate(total, list(ratios)) == allocate(total, tuple(ratios))
    )


@given(minor_amounts, ratio_lists)
def test_allocation_follows_largest_remainder_rule(total: int, ratios: list[int]) -> None:
    """Exactly the parts with the largest remainders, lower index first on ties, get a unit."""
    magnitude, ratio_sum = abs(total), sum(ratios)
    floors = [magnitude * ratio // ratio_sum for ratio in ratios]
    remainders = [magnitude * ratio % ratio_sum for ratio in ratios]
    bumped = [
        abs(part) - floor for part, floor in zip(allocate(total, ratios), floors, strict=True)
    ]
    assert set(bumped) <= {0, 1}
    # A part that got a unit must not rank below one that did not.
    for winner, got_unit in enumerate(bumped):
        for loser, other_got_unit in enumerate(bumped):
            if got_unit and not other_got_unit:
                assert (remainders[winner], -winner) > (remainders[loser], -loser)


@given(minor_amounts, currency_codes, ratio_lists)
def test_money_allocation_matches_int_allocation(total: int, code: str, ratios: list[int]) -> None:
    """Allocating Money gives the same minor units as allocating the int, in the same currency."""
    currency = Currency.of(code)
    parts = allocate(Money(total, currency), ratios)
    assert [part.amount_minor for part in parts] == allocate(total, ratios)
    assert all(part.currency == currency for part in parts)
