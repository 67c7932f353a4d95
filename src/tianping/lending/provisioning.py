"""Expected-credit-loss provisioning in the IFRS 9 style (China's CAS 22 follows it).

Each loan is placed in a stage, and its expected credit loss (ECL) is PD * LGD * EAD with the
probability of default over the horizon its stage requires:

* Stage 1, performing: 12-month ECL, with the 12-month PD.
* Stage 2, significant increase in credit risk (SICR): lifetime ECL, with the lifetime PD. The
  triggers are more than 30 days past due (the IFRS 9 B5.5.19 rebuttable presumption) or a
  five-tier class of special mention.
* Stage 3, credit-impaired: more than 90 days past due (the IFRS 9 B5.5.37 default presumption)
  or a non-performing tier (substandard, doubtful, loss). Default has happened, so PD is 1 and
  the ECL is LGD * EAD.

Stage rules are checked worst first, so a loan meeting several criteria gets the worst stage.

Money is int minor units and every ECL is rounded half up to one unit once, per loan, from the
exact Decimal product, as in `tianping.lending.schedules`. Portfolio totals are sums of those
integers, so a total always equals the sum of its loans. Where one amount computed for a pool
must be split across its loans (`pooled_ecl`), the split uses the ledger's largest-remainder
`allocate`, which never loses or invents a unit.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Final

from tianping.ledger.money import allocate
from tianping.lending.schedules import (
    DECIMAL_PRECISION,
    PRINCIPAL_MINOR_MAX,
    InvalidLendingInput,
    round_half_up,
)
from tianping.lending.servicing import RiskTier

__all__ = [
    "CREDIT_IMPAIRED_DPD_THRESHOLD",
    "PORTFOLIO_SIZE_MAX",
    "SICR_DPD_THRESHOLD",
    "Exposure",
    "LoanProvision",
    "PortfolioProvision",
    "Stage",
    "StageTotals",
    "expected_credit_loss",
    "pooled_ecl",
    "portfolio_provision",
    "stage_for",
]

# Loans in one provisioning run; a larger book is run in segments.
PORTFOLIO_SIZE_MAX: Final = 1_000_000
# More than this many days past due is a significant increase in credit risk (stage 2).
SICR_DPD_THRESHOLD: Final = 30
# More than this many days past due is credit-impaired (stage 3).
CREDIT_IMPAIRED_DPD_THRESHOLD: Final = 90


class Stage(enum.IntEnum):
    """IFRS 9 impairment stage."""

    PERFORMING = 1
    UNDERPERFORMING = 2
    CREDIT_IMPAIRED = 3


def stage_for(dpd: int, tier: RiskTier | None = None) -> Stage:
    """The stage of a loan from its days past due and (optionally) its five-tier class."""
    if type(dpd) is not int or dpd < 0:
        raise InvalidLendingInput("dpd", "must be a non-negative int")
    if dpd > CREDIT_IMPAIRED_DPD_THRESHOLD or (tier is not None and tier.is_non_performing):
        return Stage.CREDIT_IMPAIRED
    if dpd > SICR_DPD_THRESHOLD or tier is RiskTier.SPECIAL_MENTION:
        return Stage.UNDERPERFORMING
    return Stage.PERFORMING


def _require_probability(field_name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidLendingInput(field_name, "must be a finite decimal.Decimal")
    if not Decimal(0) <= value <= Decimal(1):
        raise InvalidLendingInput(field_name, "must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class Exposure:
    """One loan's risk inputs. `ead` is in minor units; PDs and LGD are fractions in [0, 1].

    `pd_lifetime` is the cumulative PD over the loan's remaining life, so it can never be below
    the 12-month PD. `loan_ref` is an opaque reference, never personal data.
    """

    loan_ref: str
    ead: int
    lgd: Decimal
    pd_12_month: Decimal
    pd_lifetime: Decimal
    dpd: int = 0
    tier: RiskTier | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.loan_ref, str) or not 1 <= len(self.loan_ref) <= 64:
            raise InvalidLendingInput("loan_ref", "must be text of 1 to 64 characters")
        if type(self.ead) is not int or not 0 <= self.ead <= PRINCIPAL_MINOR_MAX:
            raise InvalidLendingInput("ead", "must be a non-negative int of minor units")
        _require_probability("lgd", self.lgd)
        _require_probability("pd_12_month", self.pd_12_month)
        _require_probability("pd_lifetime", self.pd_lifetime)
        if self.pd_lifetime < self.pd_12_month:
            raise InvalidLendingInput("pd_lifetime", "must not be below the 12-month PD")
        if type(self.dpd) is not int or self.dpd < 0:
            raise InvalidLendingInput("dpd", "must be a non-negative int")


@dataclass(frozen=True, slots=True)
class LoanProvision:
    """The stage, the PD applied and the ECL (minor units) of one loan."""

    loan_ref: str
    stage: Stage
    pd_applied: Decimal
    ead: int
    ecl: int


def expected_credit_loss(exposure: Exposure) -> LoanProvision:
    """Stage a loan and compute its ECL = PD * LGD * EAD, rounded half up to one minor unit."""
    stage = stage_for(exposure.dpd, exposure.tier)
    if stage is Stage.CREDIT_IMPAIRED:
        probability = Decimal(1)
    elif stage is Stage.UNDERPERFORMING:
        probability = exposure.pd_lifetime
    else:
        probability = exposure.pd_12_month
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        ecl = round_half_up(probability * exposure.lgd * exposure.ead)
    return LoanProvision(
        loan_ref=exposure.loan_ref, stage=stage, pd_applied=probability, ead=exposure.ead, ecl=ecl
    )


@dataclass(frozen=True, slots=True)
class StageTotals:
    """Loans, exposure and ECL of one stage; amounts in minor units."""

    loans: int
    ead: int
    ecl: int


@dataclass(frozen=True, slots=True)
class PortfolioProvision:
    """Per-loan provisions and their totals by stage and overall."""

    loans: tuple[LoanProvision, ...]
    by_stage: dict[Stage, StageTotals]
    total_ead: int
    total_ecl: int


def portfolio_provision(exposures: Sequence[Exposure]) -> PortfolioProvision:
    """Provision every loan and add the results up by stage (every stage is present)."""
    if len(exposures) > PORTFOLIO_SIZE_MAX:
        raise InvalidLendingInput("exposures", f"at most {PORTFOLIO_SIZE_MAX} loans per run")
    provisions = tuple(expected_credit_loss(exposure) for exposure in exposures)
    by_stage: dict[Stage, StageTotals] = {}
    for stage in Stage:
        members = [provision for provision in provisions if provision.stage is stage]
        by_stage[stage] = StageTotals(
            loans=len(members),
            ead=sum(provision.ead for provision in members),
            ecl=sum(provision.ecl for provision in members),
        )
    return PortfolioProvision(
        loans=provisions,
        by_stage=by_stage,
        total_ead=sum(provision.ead for provision in provisions),
        total_ecl=sum(provision.ecl for provision in provisions),
    )


def pooled_ecl(
    eads: Sequence[int], probability_of_default: Decimal, lgd: Decimal
) -> tuple[int, list[int]]:
    """Collective ECL of a homogeneous pool, and its split across the pool's loans.

    Retail pools (thousands of small, similar loans) are provisioned with one PD and one LGD for
    the segment. Rounding the pool's ECL once, and then splitting it by EAD with
    largest-remainder allocation, keeps the pool total exactly PD * LGD * ΣEAD to the nearest
    unit, where rounding each loan separately could drift by up to half a unit per loan.
    Returns (pool ECL, per-loan ECL in the order of `eads`).
    """
    if not 1 <= len(eads) <= PORTFOLIO_SIZE_MAX:
        raise InvalidLendingInput("eads", f"must hold 1 to {PORTFOLIO_SIZE_MAX} loans")
    for ead in eads:
        if type(ead) is not int or not 0 <= ead <= PRINCIPAL_MINOR_MAX:
            raise InvalidLendingInput("eads", "must be non-negative ints of minor units")
    _require_probability("probability_of_default", probability_of_default)
    _require_probability("lgd", lgd)
    total_ead = sum(eads)
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        pool_ecl = round_half_up(probability_of_default * lgd * total_ead)
    if total_ead == 0:
        return 0, [0] * len(eads)
    return pool_ecl, allocate(pool_ecl, list(eads))
