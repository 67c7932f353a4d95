"""Explicit risk rules: readable conditions on a payment's features, each with a reason code.

Rules sit beside the model because some patterns must be acted on whatever the model says (a
burst of payments is denied even if each looks normal), because they work from the first day
with no training data, and because their reason is exact. Each rule yields an action and a
stable snake_case reason code; the scorer takes the most severe action of the rules and the
model. Money limits are integers in minor units of the feature state's currency, compared with
the exact `FeatureVector.amount_minor`, never with the float features.

Velocity counts in the features are the payments *before* this one, so "at most 5 per minute"
denies the payment that would be the sixth.

Pure standard library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from tianping.payments.risk.errors import RiskConfigurationInvalid
from tianping.payments.risk.features import FeatureVector

__all__ = [
    "ACTIONS",
    "ACTION_SEVERITY",
    "REASON_DEVICE_SHARED",
    "REASON_NEW_ACCOUNT_LARGE_AMOUNT",
    "REASON_NEW_DEVICE_LARGE_AMOUNT",
    "REASON_PASSWORD_CHANGE_NEW_PAYEE_LARGE_AMOUNT",
    "REASON_VELOCITY_EXCEEDED",
    "RuleHit",
    "RuleLimits",
    "evaluate_rules",
    "most_severe",
]

ACTIONS: Final = ("allow", "challenge", "deny")
ACTION_SEVERITY: Final = {action: rank for rank, action in enumerate(ACTIONS)}

REASON_VELOCITY_EXCEEDED: Final = "velocity_exceeded"
REASON_NEW_DEVICE_LARGE_AMOUNT: Final = "new_device_large_amount"
# A reason code, not a secret (ruff S105 matches the word "password").
REASON_PASSWORD_CHANGE_NEW_PAYEE_LARGE_AMOUNT: Final = "password_change_new_payee_large_amount"  # noqa: S105
REASON_NEW_ACCOUNT_LARGE_AMOUNT: Final = "new_account_large_amount"
REASON_DEVICE_SHARED: Final = "device_shared_by_many_payers"


@dataclass(frozen=True, slots=True)
class RuleLimits:
    """Thresholds of the rules, for one currency (the defaults assume two-decimal units, CNY).

    An amount is *large* when it reaches `large_amount_minor` outright, or when the payer has at
    least `history_min` past payments, the amount is at least `large_amount_ratio` times their
    mean, and it is at least `large_amount_floor_minor` (so 30 yuan after a history of 10 yuan
    payments is not "large").
    """

    payer_payments_per_minute_max: int = 5
    payer_payments_per_day_max: int = 100
    device_payments_per_hour_max: int = 30
    device_payers_max: int = 4
    large_amount_minor: int = 500_000
    large_amount_floor_minor: int = 50_000
    large_amount_ratio: float = 3.0
    history_min: int = 3
    new_account_amount_minor_max: int = 200_000

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) <= 0:
                raise RiskConfigurationInvalid(f"{name} must be positive")


@dataclass(frozen=True, slots=True)
class RuleHit:
    action: str
    reason: str


def most_severe(actions: tuple[str, ...]) -> str:
    """The most severe of `actions` (deny > challenge > allow); allow when there are none."""
    return max(actions, key=ACTION_SEVERITY.__getitem__, default="allow")


def is_large_amount(features: FeatureVector, limits: RuleLimits) -> bool:
    amount = features.amount_minor
    if amount >= limits.large_amount_minor:
        return True
    return (
        features["payer_history_count"] >= limits.history_min
        and amount >= limits.large_amount_floor_minor
        and features["amount_to_mean_log_ratio"] >= math.log(limits.large_amount_ratio)
    )


def evaluate_rules(features: FeatureVector, limits: RuleLimits) -> tuple[RuleHit, ...]:
    """Every rule that fires for this payment, in a fixed order (deny rules first)."""
    hits: list[RuleHit] = []
    if (
        features["payer_count_1m"] + 1 > limits.payer_payments_per_minute_max
        or features["payer_count_24h"] + 1 > limits.payer_payments_per_day_max
        or features["device_count_1h"] + 1 > limits.device_payments_per_hour_max
    ):
        hits.append(RuleHit("deny", REASON_VELOCITY_EXCEEDED))
    large = is_large_amount(features, limits)
    if large and features["new_device"] == 1.0:
        hits.append(RuleHit("challenge", REASON_NEW_DEVICE_LARGE_AMOUNT))
    if large and features["password_changed_24h"] == 1.0 and features["new_payee"] == 1.0:
        hits.append(RuleHit("challenge", REASON_PASSWORD_CHANGE_NEW_PAYEE_LARGE_AMOUNT))
    if (
        features["new_account"] == 1.0
        and features.amount_minor > limits.new_account_amount_minor_max
    ):
        hits.append(RuleHit("challenge", REASON_NEW_ACCOUNT_LARGE_AMOUNT))
    if features["device_payer_count"] >= limits.device_payers_max:
        hits.append(RuleHit("challenge", REASON_DEVICE_SHARED))
    return tuple(hits)
