"""Co-lending with partner banks: how each flow of a jointly funded loan is split, and the
bank's concentration limits (L1, L3).

In a co-lending (联合贷款) loan a bank and the platform (its licensed lending subsidiary) each
fund a fixed share of the principal and take the same share of what the loan brings in and
loses. CBIRC Notice YBJBF [2021] No. 24 (from 2022-01-01) requires the platform partner to fund
at least 30% of each loan, so the bank funds at most 70% (the 2020 online microlending draft,
L1, set the same 30%); and it caps a bank's co-lending balances at 25% of its net tier-1 capital
with any one partner and at 50% of its total loans with all partners together.

The percentages are parameters here, with the values above as defaults, because the rules
engine (`tianping.rules`, parameter `lending.co_lending_min_partner_share`) owns the values in
force on a given date and passes them in; `basis_points_of` turns the engine's exact Decimal
ratio into basis points.

Splitting uses `tianping.ledger.money.allocate` (largest remainder), so the two parts of every
flow add up to exactly the flow: no fen is lost or created. With two parts, largest remainder
rounds each part to the nearest minor unit (see `split`), so each part is within half a minor
unit of its exact pro-rata share, and the platform is listed first so that an exact half goes
to the platform, the party whose minimum share the rules protect.

Splitting period by period and summing can differ from splitting the period total, because each
split rounds on its own. For n flows the difference in either party's sum is at most
floor(n / 2) minor units (`split_drift_bound`; the property tests check it and show it is
reached). That is why `split` serves reports of a period's flows (`split_flows`) and not the
ledger's positions in a loan.

A loan's positions do not use per-flow splits. Each funder holds a function of each balance of
the loan (principal, interest, penalty interest, fees): the bank `bank_position(balance)` =
balance x bank share // 10000 (floor), the platform the rest. A flow that moves a balance from x
to y gives the bank the change in its position, `|f(x) - f(y)|`, and the platform the rest of
the change (`position_change`). Because f is monotone both parts are non-negative, they add up
to the flow exactly, and a balance that reaches zero leaves each funder holding exactly zero:
nothing drifts, however many flows the loan sees, and a funder is never asked for a unit it
does not hold. The part of a flow is within one unit of its pro-rata share (floor differences).

Pure: standard library and `tianping.ledger.money` only. Amounts are integer minor units of one
currency, named by its ISO code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from tianping.ledger.money import Currency, UnknownCurrency, allocate

__all__ = [
    "ALL_PARTNERS_TOTAL_LOANS_MAX_BPS",
    "AMOUNT_MINOR_MAX",
    "BASIS_POINTS",
    "PARTNERS_MAX",
    "PLATFORM_SHARE_MIN_BPS",
    "SINGLE_PARTNER_TIER1_MAX_BPS",
    "BreachKind",
    "CoLendingError",
    "CoLendingInputInvalid",
    "CoLendingShareBelowMinimum",
    "CoLendingTerms",
    "ConcentrationBreach",
    "ConcentrationLimits",
    "ConcentrationReport",
    "PeriodSplit",
    "Split",
    "bank_position",
    "basis_points_of",
    "concentration",
    "position_change",
    "split",
    "split_drift_bound",
    "split_flows",
]

BASIS_POINTS: Final = 10_000

# L3 / L1: the platform partner funds at least 30% of each jointly funded loan.
PLATFORM_SHARE_MIN_BPS: Final = 3_000

# L3: co-lending balance with one partner at most 25% of the bank's net tier-1 capital.
SINGLE_PARTNER_TIER1_MAX_BPS: Final = 2_500

# L3: co-lending balance with all partners at most 50% of the bank's total loans.
ALL_PARTNERS_TOTAL_LOANS_MAX_BPS: Final = 5_000

# Any one amount (a flow, a balance, a bank's capital or loan book) is at most 10**17 minor
# units: a thousand trillion yuan in fen, beyond any bank's balance sheet, and small enough that
# amount x basis points stays far inside what integer arithmetic handles quickly.
AMOUNT_MINOR_MAX: Final = 10**17

# A concentration check covers at most this many partners; banks work with tens, not thousands.
PARTNERS_MAX: Final = 1_000

BreachKind = Literal["single_partner", "all_partners"]


# --------------------------------------------------------------------------- errors


class CoLendingError(Exception):
    """Root of the co-lending errors; `code` is stable and the message holds no personal data."""

    code = "co_lending_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CoLendingInputInvalid(CoLendingError):
    """A value is malformed or out of range; `field` names it."""

    code = "co_lending_input_invalid"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class CoLendingShareBelowMinimum(CoLendingError):
    """The platform's share is below the minimum in force (the bank's above its maximum)."""

    code = "co_lending_share_below_minimum"


# --------------------------------------------------------------------------- helpers


def _require_int(field_name: str, value: object, low: int, high: int) -> int:
    # `type(...) is int` refuses bool and float: a share or an amount of True is a bug, and a
    # float cannot hold most decimal amounts exactly.
    if type(value) is not int or not low <= value <= high:
        raise CoLendingInputInvalid(field_name, f"must be an int from {low} to {high}")
    return value


def _require_amount(field_name: str, value: object) -> int:
    return _require_int(field_name, value, -AMOUNT_MINOR_MAX, AMOUNT_MINOR_MAX)


def _require_currency(value: object) -> str:
    if not isinstance(value, str):
        raise CoLendingInputInvalid("currency", "must be an ISO 4217 code such as 'CNY'")
    try:
        Currency.of(value)
    except UnknownCurrency:
        raise CoLendingInputInvalid("currency", "is not an active ISO 4217 code") from None
    return value


def basis_points_of(ratio: Decimal) -> int:
    """An exact ratio from the rules engine (Decimal("0.30")) in basis points (3000).

    Refuses ratios outside 0..1 and ratios finer than one basis point: rounding a regulatory
    threshold would silently change it.
    """
    if not isinstance(ratio, Decimal) or not ratio.is_finite():
        raise CoLendingInputInvalid("ratio", "must be a finite Decimal")
    scaled = ratio * BASIS_POINTS
    if scaled != scaled.to_integral_value() or not 0 <= scaled <= BASIS_POINTS:
        raise CoLendingInputInvalid("ratio", "must be 0 to 1 in whole basis points")
    return int(scaled)


# --------------------------------------------------------------------------- terms and splits


@dataclass(frozen=True, slots=True)
class CoLendingTerms:
    """The funding shares of one co-lending product, in basis points summing to 10000.

    `platform_share_min_bps` is the minimum in force (3000 by default; the rules engine passes
    the value for the date). The platform's share must reach it, which holds the bank at or
    below 10000 minus it (7000). The bank's share must be positive: a loan the bank does not
    fund is not co-lending.
    """

    bank_share_bps: int
    platform_share_bps: int
    platform_share_min_bps: int = PLATFORM_SHARE_MIN_BPS

    def __post_init__(self) -> None:
        _require_int("bank_share_bps", self.bank_share_bps, 1, BASIS_POINTS)
        _require_int("platform_share_bps", self.platform_share_bps, 0, BASIS_POINTS)
        _require_int("platform_share_min_bps", self.platform_share_min_bps, 0, BASIS_POINTS - 1)
        if self.bank_share_bps + self.platform_share_bps != BASIS_POINTS:
            raise CoLendingInputInvalid(
                "platform_share_bps", f"the two shares must sum to {BASIS_POINTS} basis points"
            )
        if self.platform_share_bps < self.platform_share_min_bps:
            raise CoLendingShareBelowMinimum(
                f"the platform funds {self.platform_share_bps} bps of each loan; the minimum "
                f"in force is {self.platform_share_min_bps} bps, so the bank may fund at most "
                f"{BASIS_POINTS - self.platform_share_min_bps} bps"
            )

    @property
    def bank_share_max_bps(self) -> int:
        """The most the bank may fund under the minimum in force."""
        return BASIS_POINTS - self.platform_share_min_bps


@dataclass(frozen=True, slots=True)
class Split:
    """One flow split between the bank and the platform; `bank + platform` is the flow."""

    bank: int
    platform: int

    @property
    def total(self) -> int:
        return self.bank + self.platform


def split(amount_minor: int, terms: CoLendingTerms) -> Split:
    """Split an amount of minor units pro rata to the terms, losing and creating nothing.

    `allocate` gives each party the floor of its exact share and the leftover unit (there is at
    most one with two parties) to the larger remainder, i.e. each part is the exact share
    rounded to the nearest unit; an exact half goes to the platform, listed first. A negative
    amount (a reversal) is split as the negation of the positive one.
    """
    if not isinstance(terms, CoLendingTerms):
        raise CoLendingInputInvalid("terms", "must be CoLendingTerms")
    amount = _require_amount("amount_minor", amount_minor)
    platform, bank = allocate(amount, [terms.platform_share_bps, terms.bank_share_bps])
    return Split(bank=bank, platform=platform)


def split_drift_bound(flow_count: int) -> int:
    """The most, in minor units, that the sum of `flow_count` per-flow splits can differ for
    either party from the split of the flows' sum: floor(flow_count / 2).

    Why: each per-flow part is its exact share rounded to the nearest unit, so it is off by at
    most 1/2, and by exactly 1/2 only on a tie, which always rounds the bank's part toward zero.
    The sum of n per-flow parts is thus within n/2 of the exact share of the total, and the
    split of the total within 1/2, so they differ by at most (n + 1) / 2. Reaching that needs
    every error at 1/2 in one direction and the total's error at 1/2 in the other; the tie rule
    makes the errors' directions follow the signs of the amounts, which rules that out, so the
    integer difference is at most floor(n / 2). It is reached: two flows of 1 fen at a 50.01%
    bank share give the bank 1 fen each, while their 2-fen sum gives it 1.
    """
    count = _require_int("flow_count", flow_count, 0, AMOUNT_MINOR_MAX)
    return count // 2


def bank_position(balance: int, bank_share_bps: int, *, whole: int = BASIS_POINTS) -> int:
    """What the bank holds of one balance of a loan it co-funds: the balance times its share,
    rounded down. The platform holds `balance - bank_position(balance)`.

    Floor on non-negative integers, which both databases compute identically (`balance *
    bank_share_bps / 10000` in SQL truncates, and truncation is floor here), so the ledger's
    receivables and the loan sub-ledger can be compared funder by funder to the minor unit.

    `whole` makes the share `bank_share_bps / whole` instead of a number of basis points. A
    credit line needs it: its draws and charges are split by largest remainder, so the bank's
    part of a balance is whatever the line recorded, and what the bank holds of a part of that
    balance is the recorded fraction of it (`credit_lines.recover_line`).
    """
    denominator = _require_int("whole", whole, 1, AMOUNT_MINOR_MAX)
    amount = _require_int("balance", balance, 0, AMOUNT_MINOR_MAX)
    share = _require_int("bank_share_bps", bank_share_bps, 0, denominator)
    return amount * share // denominator


def position_change(
    before: int, after: int, bank_share_bps: int, *, whole: int = BASIS_POINTS
) -> Split:
    """The two parts of a flow that moves one balance of a loan from `before` to `after` (a
    disbursement, a day's interest, a repayment bucket, a write-off, a recovery): the bank's is
    the change of its position, the platform's the rest. Both are non-negative whichever way
    the balance moves, they add up to `|after - before|`, and after any sequence of flows each
    funder holds exactly its position of the balance (zero when the balance is zero). `whole`
    is the share's denominator, as in `bank_position`.
    """
    low, high = sorted((before, after))
    bank = bank_position(high, bank_share_bps, whole=whole) - bank_position(
        low, bank_share_bps, whole=whole
    )
    return Split(bank=bank, platform=high - low - bank)


@dataclass(frozen=True, slots=True)
class PeriodSplit:
    """One period's flows of a co-lending loan (or book) split between bank and platform.

    `disbursement` is principal paid out, `interest` and `fees` are income, `repayments` are
    principal repaid and `losses` principal written off; each is split by the funding shares,
    since in co-lending each party earns and bears its funded share.
    """

    currency: str
    disbursement: Split
    interest: Split
    fees: Split
    repayments: Split
    losses: Split

    @property
    def bank_net_cash_minor(self) -> int:
        """The bank's cash in minus cash out over the period (losses move no cash)."""
        return self.interest.bank + self.fees.bank + self.repayments.bank - self.disbursement.bank

    @property
    def platform_net_cash_minor(self) -> int:
        """The platform's cash in minus cash out over the period (losses move no cash)."""
        return (
            self.interest.platform
            + self.fees.platform
            + self.repayments.platform
            - self.disbursement.platform
        )


def split_flows(
    terms: CoLendingTerms,
    *,
    currency: str,
    disbursement: int = 0,
    interest: int = 0,
    fees: int = 0,
    repayments: int = 0,
    losses: int = 0,
) -> PeriodSplit:
    """Split one period's flows (integer minor units of `currency`) by the terms."""
    return PeriodSplit(
        currency=_require_currency(currency),
        disbursement=split(_require_amount("disbursement", disbursement), terms),
        interest=split(_require_amount("interest", interest), terms),
        fees=split(_require_amount("fees", fees), terms),
        repayments=split(_require_amount("repayments", repayments), terms),
        losses=split(_require_amount("losses", losses), terms),
    )


# --------------------------------------------------------------------------- concentration


@dataclass(frozen=True, slots=True)
class ConcentrationLimits:
    """The L3 concentration limits in force, in basis points (defaults: 25% and 50%)."""

    single_partner_tier1_max_bps: int = SINGLE_PARTNER_TIER1_MAX_BPS
    all_partners_total_loans_max_bps: int = ALL_PARTNERS_TOTAL_LOANS_MAX_BPS

    def __post_init__(self) -> None:
        _require_int(
            "single_partner_tier1_max_bps", self.single_partner_tier1_max_bps, 0, BASIS_POINTS
        )
        _require_int(
            "all_partners_total_loans_max_bps",
            self.all_partners_total_loans_max_bps,
            0,
            BASIS_POINTS,
        )


@dataclass(frozen=True, slots=True)
class ConcentrationBreach:
    """One limit exceeded. `partner_id` is None for the all-partners limit.

    `limit_minor` is the limit as an amount, rounded down (the balance breaches when it exceeds
    the exact limit, which for whole minor units is the same as exceeding the rounded-down one).
    """

    kind: BreachKind
    partner_id: str | None
    balance_minor: int
    limit_minor: int

    @property
    def excess_minor(self) -> int:
        return self.balance_minor - self.limit_minor


@dataclass(frozen=True, slots=True)
class ConcentrationReport:
    """A bank's co-lending concentration against the L3 limits; compliant when no breaches."""

    currency: str
    total_balance_minor: int
    single_partner_limit_minor: int
    all_partners_limit_minor: int
    breaches: tuple[ConcentrationBreach, ...]

    @property
    def compliant(self) -> bool:
        return not self.breaches


def concentration(
    bank_balances_by_partner: Mapping[str, int],
    bank_tier1_capital: int,
    bank_total_loans: int,
    *,
    currency: str,
    limits: ConcentrationLimits | None = None,
) -> ConcentrationReport:
    """Check one bank's co-lending balances (minor units, by partner id) against L3.

    A partner's balance breaches when it exceeds `single_partner_tier1_max_bps` of net tier-1
    capital; all balances together breach when they exceed `all_partners_total_loans_max_bps` of
    the bank's total loans. The comparisons are exact integer ones (balance x 10000 against
    base x bps), so no rounding can hide a breach of a fraction of a unit. Breaches are listed
    single-partner first, by partner id, then the all-partners one.

    Total loans include the co-lending balances, so a total below their sum is refused as
    inconsistent. Net tier-1 capital may be zero or negative (a bank that has lost its capital),
    and then every positive balance breaches.
    """
    resolved_limits = ConcentrationLimits() if limits is None else limits
    resolved_currency = _require_currency(currency)
    if not isinstance(bank_balances_by_partner, Mapping):
        raise CoLendingInputInvalid("bank_balances_by_partner", "must be a mapping")
    if len(bank_balances_by_partner) > PARTNERS_MAX:
        raise CoLendingInputInvalid(
            "bank_balances_by_partner", f"at most {PARTNERS_MAX} partners are checked at once"
        )
    tier1 = _require_amount("bank_tier1_capital", bank_tier1_capital)
    total_loans = _require_int("bank_total_loans", bank_total_loans, 0, AMOUNT_MINOR_MAX)
    balances: dict[str, int] = {}
    for partner_id, balance in bank_balances_by_partner.items():
        if not isinstance(partner_id, str) or not 1 <= len(partner_id) <= 64:
            raise CoLendingInputInvalid("partner_id", "must be a str of 1 to 64 characters")
        balances[partner_id] = _require_int("balance", balance, 0, AMOUNT_MINOR_MAX)
    total_balance = sum(balances.values())
    if total_balance > total_loans:
        raise CoLendingInputInvalid(
            "bank_total_loans", "is below the sum of the co-lending balances it includes"
        )

    single_bps = resolved_limits.single_partner_tier1_max_bps
    all_bps = resolved_limits.all_partners_total_loans_max_bps
    breaches: list[ConcentrationBreach] = []
    single_limit = tier1 * single_bps // BASIS_POINTS
    for partner_id in sorted(balances):
        balance = balances[partner_id]
        if balance * BASIS_POINTS > tier1 * single_bps:
            breaches.append(
                ConcentrationBreach("single_partner", partner_id, balance, single_limit)
            )
    all_limit = total_loans * all_bps // BASIS_POINTS
    if total_balance * BASIS_POINTS > total_loans * all_bps:
        breaches.append(ConcentrationBreach("all_partners", None, total_balance, all_limit))
    return ConcentrationReport(
        currency=resolved_currency,
        total_balance_minor=total_balance,
        single_partner_limit_minor=single_limit,
        all_partners_limit_minor=all_limit,
        breaches=tuple(breaches),
    )
