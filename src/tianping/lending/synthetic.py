"""A synthetic applicant population, and the platform scorecard trained on it.

Until the platform has a loan book of its own, its application scorecard is trained on a
seeded synthetic population whose default risk rises with the amount asked against income,
with missing or thin payment history, and with bureau delinquencies and recent inquiries. The
shape is documented so nobody mistakes it for evidence about real borrowers: it exists so that
the service, its reasons, its fallbacks and its consent handling run end to end. A real model
is trained with `tianping.lending.scoring.train` on the lender's own data and loaded in its
place (`ScorecardBundle.load`).
"""

from __future__ import annotations

import math
import random
from functools import cache
from pathlib import Path
from typing import Any, Final

from tianping.lending.scoring.schema import DatasetSchema
from tianping.lending.scoring.scorecard import ScorecardBundle
from tianping.lending.scoring.training import train

__all__ = ["PLATFORM_SCHEMA", "applicants", "platform_scorecard"]

PLATFORM_SCHEMA: Final = Path(__file__).parent / "scoring" / "schemas" / "platform.yaml"


def applicants(seed: int, count: int = 6_000) -> list[dict[str, Any]]:
    """`count` applicants with a `defaulted` label drawn from a documented logistic risk."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not a secret
    rows = []
    for _ in range(count):
        income = int(rng.lognormvariate(math.log(90_000_00), 0.5))
        amount = rng.choice((2_000_00, 5_000_00, 10_000_00, 20_000_00, 50_000_00))
        payments = max(0, int(rng.gauss(40, 25)))
        age_days = rng.randint(0, 3_000)
        delinquencies = min(6, int(rng.expovariate(1.5)))
        inquiries = min(12, int(rng.expovariate(0.6)))
        logit = (
            -3.2
            + 2.2 * (amount / max(income, 1))
            - 0.012 * min(payments, 120)
            - 0.0004 * age_days
            + 0.55 * delinquencies
            + 0.12 * inquiries
        )
        defaulted = int(rng.random() < 1 / (1 + math.exp(-logit)))
        rows.append(
            {
                "annual_income": income,
                "requested_amount": amount,
                "payments_90d_count": payments,
                "wallet_age_days": age_days,
                "bureau_delinquencies": delinquencies,
                "bureau_inquiries_6m": inquiries,
                "defaulted": defaulted,
            }
        )
    return rows


@cache
def platform_scorecard(seed: int = 0) -> ScorecardBundle:
    """The platform scorecard (with its application-only fallback), trained once per process."""
    schema = DatasetSchema.load(PLATFORM_SCHEMA)
    return train(schema, applicants(seed), seed, with_challenger=False).scorecards
