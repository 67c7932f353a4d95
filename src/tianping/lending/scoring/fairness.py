"""Fairness monitoring of approval decisions by protected group.

Protected attributes (sex, age band, ...) are never model inputs; they are joined to decisions
afterwards to watch two things at a given approval cut-off:

* the approval-rate ratio: the lowest group's approval rate over the highest's. The
  four-fifths rule (US EEOC Uniform Guidelines, used for credit as a disparate-impact screen)
  flags a ratio below 0.8;
* the equal-opportunity difference: the largest gap between groups in the approval rate of
  applicants who did repay (the true-positive rate when "approve" is the positive decision).

Both are computed by hand: they are a few group counts and no library computes them in this
form. Groups smaller than `min_group_size` are reported but left out of the ratios, since a
handful of applicants gives a rate too noisy to alert on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_EO_DIFFERENCE",
    "DEFAULT_MIN_APPROVAL_RATIO",
    "FairnessReport",
    "GroupRates",
    "fairness_report",
]

DEFAULT_MIN_APPROVAL_RATIO = 0.8
DEFAULT_MAX_EO_DIFFERENCE = 0.1
DEFAULT_MIN_GROUP_SIZE = 30


@dataclass(frozen=True, slots=True)
class GroupRates:
    group: str
    count: int
    approval_rate: float
    # Approval rate among applicants who repaid (did not default); None if the group has none.
    true_positive_rate: float | None


@dataclass(frozen=True, slots=True)
class FairnessReport:
    attribute: str
    model_version: str
    cutoff: float
    groups: tuple[GroupRates, ...]
    approval_rate_ratio: float | None
    equal_opportunity_difference: float | None
    min_approval_ratio: float
    max_eo_difference: float

    @property
    def alert(self) -> bool:
        """True when the four-fifths rule or the equal-opportunity limit is breached."""
        ratio_breach = (
            self.approval_rate_ratio is not None
            and self.approval_rate_ratio < self.min_approval_ratio
        )
        eo_breach = (
            self.equal_opportunity_difference is not None
            and self.equal_opportunity_difference > self.max_eo_difference
        )
        return ratio_breach or eo_breach

    def summary(self) -> dict[str, object]:
        return {
            "attribute": self.attribute,
            "model_version": self.model_version[:16],
            "cutoff": self.cutoff,
            "approval_rate_ratio": _round(self.approval_rate_ratio),
            "equal_opportunity_difference": _round(self.equal_opportunity_difference),
            "alert": self.alert,
            "groups": {
                rates.group: {
                    "n": rates.count,
                    "approval": round(rates.approval_rate, 4),
                    "tpr": _round(rates.true_positive_rate),
                }
                for rates in self.groups
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def fairness_report(
    *,
    attribute: str,
    model_version: str,
    groups: Sequence[str],
    scores: Sequence[float],
    defaulted: Sequence[bool],
    cutoff: float,
    min_approval_ratio: float = DEFAULT_MIN_APPROVAL_RATIO,
    max_eo_difference: float = DEFAULT_MAX_EO_DIFFERENCE,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> FairnessReport:
    """Approval by group when applicants with `score >= cutoff` are approved."""
    if not len(groups) == len(scores) == len(defaulted):
        raise ValueError("groups, scores and outcomes must have equal length")
    if not 0 < min_approval_ratio <= 1 or not 0 <= max_eo_difference <= 1:
        raise ValueError("alert thresholds out of range")
    tallies: dict[str, list[int]] = {}
    for group, score, bad in zip(groups, scores, defaulted, strict=True):
        # [applicants, approved, repaid, repaid and approved]
        tally = tallies.setdefault(group, [0, 0, 0, 0])
        approved = score >= cutoff
        tally[0] += 1
        tally[1] += approved
        if not bad:
            tally[2] += 1
            tally[3] += approved
    rates = tuple(
        GroupRates(
            group=group,
            count=count,
            approval_rate=approved / count,
            true_positive_rate=(good_approved / good) if good else None,
        )
        for group, (count, approved, good, good_approved) in sorted(tallies.items())
    )
    eligible = [rate for rate in rates if rate.count >= min_group_size]
    ratio = None
    eo_difference = None
    if len(eligible) >= 2:
        highest = max(rate.approval_rate for rate in eligible)
        lowest = min(rate.approval_rate for rate in eligible)
        ratio = lowest / highest if highest > 0 else None
        tprs = [rate.true_positive_rate for rate in eligible if rate.true_positive_rate is not None]
        if len(tprs) >= 2:
            eo_difference = max(tprs) - min(tprs)
    return FairnessReport(
        attribute=attribute,
        model_version=model_version,
        cutoff=cutoff,
        groups=rates,
        approval_rate_ratio=ratio,
        equal_opportunity_difference=eo_difference,
        min_approval_ratio=min_approval_ratio,
        max_eo_difference=max_eo_difference,
    )
