"""Loan-book quality, pure: the terms of the daily penalty accrual, each funder's part of a flow
that moves a loan's balance, probabilities of default calibrated from each loan's own decision,
the charge-offs (written off, recovered, net, the recovery rate) by funder, and the
adverse-change notices a borrower receives.

Standard library (and the lending domain's pure modules) only; money is integer minor units,
rates and probabilities are `Decimal`.

Penalty interest. PBoC's 2003 interest-rate provisions set overdue interest at the contract rate
plus 30 % to 50 % (`servicing.penalty_rate`). Ordinary interest keeps accruing on the whole
outstanding principal at the contract rate (the set-based daily accrual), so the penalty bucket
holds only the surcharge, `penalty_rate(rate) - rate`, on the overdue principal: in total the
overdue principal then bears exactly `penalty_rate`. The surcharge is a fraction of the contract
rate with a small denominator (`PenaltySurcharge`), which lets the database compute each day's
penalty in integers: overdue x rate_bps x numerator // (3,650,000 x denominator). Each day is
rounded down (in the borrower's favour) and no remainder is carried, because the loan row keeps a
remainder for ordinary interest only; the shortfall is under one minor unit per overdue day
(`daily_penalty` and its property test).

Penalty interest is charged on overdue principal only, not on overdue interest (no compound
interest): the conservative reading for consumer loans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Final

from tianping.lending.colending import position_change
from tianping.lending.model import LendingRefusal
from tianping.lending.schedules import DECIMAL_PRECISION, InvalidLendingInput, round_half_up
from tianping.lending.servicing import PENALTY_UPLIFT_DEFAULT, RiskTier, penalty_rate

__all__ = [
    "BASIS_POINTS",
    "DAY_DENOMINATOR",
    "FALLBACK_PD_12_MONTH",
    "LGD_DEFAULT",
    "NOTICE_REASONS",
    "PENALTY_DENOMINATOR_MAX",
    "RECOVERY_RATE_QUANTUM",
    "WRITE_OFF_REASON_MAX",
    "ChargeOffGroup",
    "PenaltySurcharge",
    "charge_off_figures",
    "charge_offs",
    "check_write_off_reason",
    "class_change_notice",
    "daily_penalty",
    "ecl",
    "funder_parts",
    "horizon_pd",
    "line_class_change_notice",
    "line_frozen_notice",
    "line_write_off_notice",
    "recovery_rate",
    "stage_pd",
    "tier_rank",
    "write_off_notice",
]

BASIS_POINTS: Final = 10_000
# A write-off's reason, in the operator's words: stored with the event, so bounded.
WRITE_OFF_REASON_MAX: Final = 200
# One day's interest at rate_bps a year (ACT/365) is amount x rate_bps / DAY_DENOMINATOR.
DAY_DENOMINATOR: Final = BASIS_POINTS * 365
# The surcharge fraction's denominator: an uplift in whole per cent at most. It keeps
# principal (at most 10^10) x rate_bps (at most 10^5) x numerator inside a signed 64-bit integer.
PENALTY_DENOMINATOR_MAX: Final = 100
# Loss given default of unsecured consumer loans: the Basel foundation-IRB supervisory value for
# senior unsecured claims (45 %), until the platform has its own recovery history.
LGD_DEFAULT: Final = Decimal("0.45")
# A loan booked without a decision PD (a migrated book, a benchmark) is provisioned at this
# 12-month PD, the placeholder stage-1 PD the service used before calibration.
FALLBACK_PD_12_MONTH: Final = Decimal("0.02")
MONTHS_PER_YEAR: Final = 12
# A loan's lifetime horizon is its remaining instalments, at most thirty years of months.
HORIZON_MONTHS_MAX: Final = 360


@dataclass(frozen=True, slots=True)
class PenaltySurcharge:
    """The penalty surcharge as `numerator / denominator` of the contract rate (1/2 for +50 %)."""

    numerator: int
    denominator: int

    @classmethod
    def for_uplift(cls, uplift: Decimal = PENALTY_UPLIFT_DEFAULT) -> PenaltySurcharge:
        """What `servicing.penalty_rate` adds to a contract rate, as an exact fraction of it."""
        surcharge = penalty_rate(Decimal(1), uplift) - 1
        numerator, denominator = surcharge.as_integer_ratio()
        if denominator > PENALTY_DENOMINATOR_MAX:
            raise InvalidLendingInput("uplift", "must be a whole number of per cent")
        return cls(numerator, denominator)


def daily_penalty(overdue_principal: int, rate_bps: int, surcharge: PenaltySurcharge) -> int:
    """One day's penalty surcharge on overdue principal, rounded down: the SQL of the daily batch
    written once more in Python, for quotes and tests."""
    if type(overdue_principal) is not int or overdue_principal < 0:
        raise InvalidLendingInput("overdue_principal", "must be a non-negative int")
    return (overdue_principal * rate_bps * surcharge.numerator) // (
        DAY_DENOMINATOR * surcharge.denominator
    )


def funder_parts(
    before: int, after: int, bank_share_bps: int, funder: str, platform: str
) -> dict[str, int]:
    """The parts of a flow moving one balance of a loan from `before` to `after`, by funder:
    the bank's is the change of its position in the balance (`colending.position_change`), the
    platform's the rest. So what each funder holds of the loan is always its position of each
    balance, never drifting by a unit however many flows the loan sees, and a balance paid or
    written off to zero takes each funder's holding to exactly zero. A loan the platform funds
    alone gives it everything."""
    for name, value in (("before", before), ("after", after)):
        if type(value) is not int or value < 0:
            raise InvalidLendingInput(name, "must be a non-negative int of minor units")
    if type(bank_share_bps) is not int or not 0 <= bank_share_bps <= BASIS_POINTS:
        raise InvalidLendingInput("bank_share_bps", "must be 0 to 10000")
    if not bank_share_bps or funder == platform:
        return {platform: abs(after - before)}
    parts = position_change(before, after, bank_share_bps)
    return {funder: parts.bank, platform: parts.platform}


# --------------------------------------------------------------------------- provisioning


def horizon_pd(pd_12_month: Decimal, months: int) -> Decimal:
    """The probability of default within `months`, from a 12-month PD under a constant hazard:
    1 - (1 - PD12)^(months / 12). Equal to PD12 at 12 months, below it for shorter horizons,
    above it (but never beyond 1) for longer ones."""
    if not isinstance(pd_12_month, Decimal) or not Decimal(0) <= pd_12_month <= Decimal(1):
        raise InvalidLendingInput("pd_12_month", "must be a Decimal from 0 to 1")
    if type(months) is not int or not 0 <= months <= HORIZON_MONTHS_MAX:
        raise InvalidLendingInput("months", f"must be an int from 0 to {HORIZON_MONTHS_MAX}")
    if months == 0 or pd_12_month == 0:
        return Decimal(0)
    if pd_12_month == 1:
        return Decimal(1)
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        survival = (Decimal(1) - pd_12_month) ** (Decimal(months) / MONTHS_PER_YEAR)
        return min(Decimal(1), max(Decimal(0), Decimal(1) - survival))


def stage_pd(stage: int, pd_12_month: Decimal, remaining_months: int) -> Decimal:
    """The PD a stage provisions with (IFRS 9 5.5.3, 5.5.5): stage 1 the PD over the next twelve
    months (or the remaining life if shorter), stage 2 the lifetime PD over the remaining
    instalments, stage 3 one (default has happened). A loan past its last due date still owing
    counts one month of life."""
    if stage == 3:
        return Decimal(1)
    life = min(max(remaining_months, 1), HORIZON_MONTHS_MAX)
    if stage == 2:
        return horizon_pd(pd_12_month, life)
    if stage == 1:
        return horizon_pd(pd_12_month, min(life, MONTHS_PER_YEAR))
    raise InvalidLendingInput("stage", "must be 1, 2 or 3")


def ecl(exposure: int, probability: Decimal, lgd: Decimal) -> int:
    """PD x LGD x EAD, rounded half up once to a minor unit."""
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        return round_half_up(probability * lgd * exposure)


# --------------------------------------------------------------------------- charge-offs

# A recovery rate is reported to six decimal places (a part per million of what was written off):
# finer than any amount of minor units a book of 10^10-unit loans could make visible.
RECOVERY_RATE_QUANTUM: Final = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class ChargeOffGroup:
    """What the sub-ledger records of the write-offs and recoveries of the loans (or the lines)
    funded with one bank, the platform's own under the platform's id: the gross amounts, the
    platform's part of each, and how many write-offs. The bank's part is the rest, as in the
    split of every flow (`funder_parts`)."""

    funder: str
    written_off: int
    platform_written_off: int
    recovered: int
    platform_recovered: int
    write_offs: int


def recovery_rate(recovered: int, written_off: int) -> str | None:
    """Recovered / written off as a decimal string to six places, rounded half up, like the
    report's other ratios (`lgd`). None when nothing was written off: the rate is then
    undefined, and zero would read as losses that went unrecovered. Over a date window it can
    exceed one (recoveries of losses written off before the window)."""
    for name, value in (("recovered", recovered), ("written_off", written_off)):
        if type(value) is not int or value < 0:
            raise InvalidLendingInput(name, "must be a non-negative int of minor units")
    if not written_off:
        return None
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        rate = Decimal(recovered) / Decimal(written_off)
        return str(rate.quantize(RECOVERY_RATE_QUANTUM, rounding=ROUND_HALF_UP))


def charge_off_figures(written_off: int, recovered: int) -> dict[str, Any]:
    """Gross written off, recovered, net charge-off (written off less recovered) and the
    recovery rate."""
    return {
        "written_off": written_off,
        "recovered": recovered,
        "net_charge_off": written_off - recovered,
        "recovery_rate": recovery_rate(recovered, written_off),
    }


def charge_offs(groups: Iterable[ChargeOffGroup], platform: str) -> dict[str, Any]:
    """The charge-offs of some groups in total and by funder: each bank the gross less the
    platform's part of its groups, the platform its parts of every group (it is always shown,
    at zero if need be). The funders' figures add up to the totals by construction."""
    parts: dict[str, tuple[int, int]] = {platform: (0, 0)}
    write_offs = 0
    for group in groups:
        write_offs += group.write_offs
        own = parts[platform]
        parts[platform] = (
            own[0] + group.platform_written_off,
            own[1] + group.platform_recovered,
        )
        bank = parts.get(group.funder, (0, 0))
        parts[group.funder] = (
            bank[0] + group.written_off - group.platform_written_off,
            bank[1] + group.recovered - group.platform_recovered,
        )
    return {
        **charge_off_figures(
            sum(written for written, _ in parts.values()),
            sum(recovered for _, recovered in parts.values()),
        ),
        "write_offs": write_offs,
        "by_funder": {
            funder: charge_off_figures(written, recovered)
            for funder, (written, recovered) in sorted(parts.items())
        },
    }


# --------------------------------------------------------------------------- notices

# The governed texts of adverse-change notices, in English and Chinese; a notice names at most
# four reasons (G7: more than four rarely help).
NOTICE_REASONS: Final[Mapping[str, tuple[str, str]]] = {
    "N-PAYMENT-OVERDUE": (
        "A repayment is {days} days past its due date",
        "有一期还款已逾期{days}天",
    ),
    "N-CLASS-WORSENED": (
        "The loan's risk class changed from {from_tier} to {to_tier}",
        "贷款风险分类由{from_tier_zh}调整为{to_tier_zh}",
    ),
    "N-PENALTY-INTEREST": (
        "Overdue principal bears penalty interest until it is repaid",
        "逾期本金在还清前按罚息利率计息",
    ),
    "N-WRITTEN-OFF": (
        "The lender wrote the loan off as uncollectable; the debt is still owed",
        "贷款已作为损失核销, 债务仍需偿还",
    ),
    "N-LINE-MINIMUM-OVERDUE": (
        "A minimum payment on the credit line is {days} days past its due date",
        "信用额度的最低还款额已逾期{days}天",
    ),
    "N-LINE-CLASS-WORSENED": (
        "The credit line's risk class changed from {from_tier} to {to_tier}",
        "信用额度风险分类由{from_tier_zh}调整为{to_tier_zh}",
    ),
    "N-LINE-FROZEN": (
        "The line takes no new purchases until the overdue minimum payments are paid",
        "在逾期最低还款额还清前, 该额度暂停使用",
    ),
    "N-LINE-WRITTEN-OFF": (
        "The lender wrote the credit line off as uncollectable; the debt is still owed",
        "信用额度欠款已作为损失核销, 债务仍需偿还",
    ),
    "N-LINE-FROZEN-BY-LENDER": (
        "The lender froze the line for a review: it takes no new purchases meanwhile; "
        "repayments and refunds still reach it",
        "贷款机构因审查暂停了该额度: 期间不能新增消费, 还款和退款不受影响",
    ),
    "N-LINE-CONSENT-WITHDRAWN": (
        "You withdrew your consent to credit-bureau reporting, which a credit line needs; "
        "the line takes no new purchases until the consent is given again",
        "您已撤回征信报送授权, 而信用额度需要该授权; 重新授权前该额度不能新增消费",
    ),
}
_TIER_ZH: Final = {
    "normal": "正常",
    "special_mention": "关注",
    "substandard": "次级",
    "doubtful": "可疑",
    "loss": "损失",
}


def tier_rank(tier: str) -> int:
    """1 (normal) to 5 (loss): the order of the five tiers, worse is higher."""
    return int(RiskTier[tier.upper()])


def _reason(reason_id: str, **values: Any) -> dict[str, str]:
    text_en, text_zh = NOTICE_REASONS[reason_id]
    return {
        "reason_id": reason_id,
        "text_en": text_en.format(**values),
        "text_zh": text_zh.format(**values),
    }


def _review_path(party_id: str) -> str:
    # The identity context takes a request for a human review of any decision about a person
    # (D4, G5): the notice names the way there, as a declined application does.
    return f"/v1/identity/parties/{party_id}/review-requests"


def class_change_notice(
    party_id: str, loan_id: str, day: str, from_tier: str, to_tier: str, days_past_due: int
) -> dict[str, Any]:
    """The notice of a loan moving into a worse class: why, and how to ask for a human review."""
    reasons = [
        _reason("N-PAYMENT-OVERDUE", days=days_past_due),
        _reason(
            "N-CLASS-WORSENED",
            from_tier=from_tier,
            to_tier=to_tier,
            from_tier_zh=_TIER_ZH[from_tier],
            to_tier_zh=_TIER_ZH[to_tier],
        ),
        _reason("N-PENALTY-INTEREST"),
    ]
    return {
        "notice": "class_worsened",
        "loan_id": loan_id,
        "day": day,
        "from_tier": from_tier,
        "to_tier": to_tier,
        "days_past_due": days_past_due,
        "reasons": reasons,
        "review_path": _review_path(party_id),
    }


def write_off_notice(
    party_id: str, loan_id: str, day: str, days_past_due: int, remaining: int
) -> dict[str, Any]:
    """The notice of a write-off: the debt stays owed, and the review path."""
    return _written_off_notice(
        party_id,
        ("loan_id", loan_id),
        (day, days_past_due, remaining),
        ("N-PAYMENT-OVERDUE", "N-WRITTEN-OFF"),
    )


def _written_off_notice(
    party_id: str,
    subject: tuple[str, str],
    when: tuple[str, int, int],
    reason_ids: tuple[str, str],
) -> dict[str, Any]:
    """A loan's or a line's write-off notice: one document, keyed by the loan's or the line's
    id (`subject`: the key and the id), on `when` (the day, the days past due and what is
    still owed), with each product's own reasons (`reason_ids`: what is overdue, and that it
    was written off), since the governed texts are worded for each product."""
    key, subject_id = subject
    day, days_past_due, remaining = when
    overdue_reason, written_off_reason = reason_ids
    return {
        "notice": "written_off",
        key: subject_id,
        "day": day,
        "days_past_due": days_past_due,
        "still_owed": remaining,
        "reasons": [
            _reason(overdue_reason, days=days_past_due),
            _reason(written_off_reason),
        ],
        "review_path": _review_path(party_id),
    }


def line_class_change_notice(
    party_id: str, line_id: str, day: str, from_tier: str, to_tier: str, days_past_due: int
) -> dict[str, Any]:
    """The notice of a credit line moving into a worse class: the overdue minimum, the new
    class, that the line is frozen meanwhile, and the review path. No penalty-interest reason:
    the line product charges none (see `line_service`)."""
    return {
        "notice": "class_worsened",
        "line_id": line_id,
        "day": day,
        "from_tier": from_tier,
        "to_tier": to_tier,
        "days_past_due": days_past_due,
        "reasons": [
            _reason("N-LINE-MINIMUM-OVERDUE", days=days_past_due),
            _reason(
                "N-LINE-CLASS-WORSENED",
                from_tier=from_tier,
                to_tier=to_tier,
                from_tier_zh=_TIER_ZH[from_tier],
                to_tier_zh=_TIER_ZH[to_tier],
            ),
            _reason("N-LINE-FROZEN"),
        ],
        "review_path": _review_path(party_id),
    }


def check_write_off_reason(reason: object) -> None:
    """A write-off's reason, in the operator's words, is stored with the loan or line: 1 to
    `WRITE_OFF_REASON_MAX` characters, else the refusal `reason_invalid`."""
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= WRITE_OFF_REASON_MAX:
        raise LendingRefusal(
            "reason_invalid", f"a write-off reason is 1 to {WRITE_OFF_REASON_MAX} characters"
        )


def line_frozen_notice(party_id: str, line_id: str, day: str, cause: str) -> dict[str, Any]:
    """The notice of a line frozen by the lender (`operator`) or for a withdrawn reporting
    consent (`consent_withdrawn`, L5): why, that repayments still reach it, and the review
    path. A line frozen for being past due gets the class-change notice instead."""
    reason = {
        "operator": "N-LINE-FROZEN-BY-LENDER",
        "consent_withdrawn": "N-LINE-CONSENT-WITHDRAWN",
    }
    if cause not in reason:
        raise InvalidLendingInput("cause", "a freeze notice is for operator or consent_withdrawn")
    return {
        "notice": "line_frozen",
        "line_id": line_id,
        "day": day,
        "cause": cause,
        "reasons": [_reason(reason[cause])],
        "review_path": _review_path(party_id),
    }


def line_write_off_notice(
    party_id: str, line_id: str, day: str, days_past_due: int, remaining: int
) -> dict[str, Any]:
    """The notice of a credit line written off: the debt stays owed, and the review path."""
    return _written_off_notice(
        party_id,
        ("line_id", line_id),
        (day, days_past_due, remaining),
        ("N-LINE-MINIMUM-OVERDUE", "N-LINE-WRITTEN-OFF"),
    )
