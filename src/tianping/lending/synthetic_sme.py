"""A synthetic population of merchants asking for working capital, and the SME scorecard
trained on it.

There is no public SME loan dataset among the platform's evaluation data (see
/work/shared/data/MANIFEST.md), so, like the consumer platform card (`synthetic.py`), the SME
card is trained at start-up on a seeded simulation. Its shape is documented here so nobody
mistakes it for evidence about real businesses; it exists so that the service, the reasons,
the consent handling and the cap by receipts run end to end. A real model is trained with
`tianping.lending.scoring.train` on the lender's own SME book and loaded in its place
(`ScorecardBundle.load`).

Each simulated merchant has a monthly receipts level (lognormal around 60,000 CNY), a monthly
growth rate, a month-to-month volatility, a time on the platform (1 to 60 months), a refund
share, a share of declined payment attempts, an average ticket and a trading rhythm. Its last
`SME_WINDOW_MONTHS` months are turned into the monthly aggregates the payments store would
return (`MonthlyAcquiring`) and into features by the same pure function a decision uses
(`tianping.payments.cash_flow.derive_profile`), so training and decisions see the same numbers.
It asks for 0.3 to 3 times its mean monthly receipts over 3, 6 or 12 months and states an
annual turnover between 0.8 and 1.6 times its real one. Default follows a logistic risk that
rises with the amount against receipts, volatility, falling receipts, refunds, declines and a
short time trading, and falls with more distinct payers and more trading days.
"""

from __future__ import annotations

import math
import random
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Final

from tianping.lending.scoring.schema import DatasetSchema
from tianping.lending.scoring.scorecard import ScorecardBundle
from tianping.lending.scoring.training import train
from tianping.lending.sme import SME_WINDOW_MONTHS
from tianping.payments.cash_flow import MonthlyAcquiring, derive_profile, window_months

__all__ = ["SME_SCHEMA", "SME_WINDOW_MONTHS", "sme_applicants", "sme_scorecard"]

SME_SCHEMA: Final = Path(__file__).parent / "scoring" / "schemas" / "sme.yaml"
# A fixed reference date: the simulation must not depend on the day it runs.
_AS_OF: Final = date(2026, 1, 15)


def _merchant(rng: random.Random) -> dict[str, Any]:
    """One simulated merchant's window of monthly aggregates, its application and its label."""
    level = rng.lognormvariate(math.log(60_000_00), 0.7)
    growth = rng.gauss(0.0, 0.04)
    volatility = rng.uniform(0.03, 0.6)
    trading_months = rng.randint(1, 60)
    refund_share = min(0.5, rng.expovariate(1 / 0.03))
    decline_share = min(0.5, rng.expovariate(1 / 0.02))
    ticket = rng.lognormvariate(math.log(80_00), 0.6)
    days_share = rng.uniform(0.3, 1.0)
    window = window_months(_AS_OF, SME_WINDOW_MONTHS)
    first = len(window) - min(trading_months, len(window))
    monthly = []
    for offset, month in enumerate(window[first:], start=first):
        expected = level * (1 + growth) ** (offset - len(window) + 1)
        gross = max(0, int(expected * max(0.0, rng.gauss(1.0, volatility))))
        receipts = max(1, int(gross / ticket)) if gross else 0
        declined = int(receipts * decline_share)
        monthly.append(
            MonthlyAcquiring(
                month,
                gross,
                int(gross * refund_share),
                receipts,
                declined,
                min(30, max(1 if gross else 0, int(30 * days_share * rng.uniform(0.8, 1.0)))),
            )
        )
    receipts_total = sum(row.receipts for row in monthly)
    payers = int(receipts_total * rng.uniform(0.15, 0.7))
    first_month_index = _AS_OF.year * 12 + _AS_OF.month - 1 - trading_months
    first_month = f"{first_month_index // 12:04d}-{first_month_index % 12 + 1:02d}"
    profile = derive_profile("sim", "CNY", _AS_OF, SME_WINDOW_MONTHS, monthly, payers, first_month)
    mean = max(profile.mean_monthly_receipts, 1)
    multiple = rng.uniform(0.3, 3.0)
    term = rng.choice((3, 6, 12))
    cv = (profile.receipts_cv_bps or 0) / 10_000
    trend = (profile.receipts_trend_bps or 0) / 10_000
    logit = (
        -3.4
        + 0.75 * multiple
        + 0.05 * term
        + 2.2 * cv
        - 9.0 * trend
        + 6.0 * refund_share
        + 8.0 * decline_share
        - 0.03 * min(trading_months, 36)
        - 0.25 * math.log1p(payers / 100)
        - 1.0 * days_share
        - 0.25 * math.log(mean / 60_000_00)
    )
    return {
        "requested_amount": int(mean * multiple),
        "term_months": term,
        "stated_annual_turnover": int(12 * mean * rng.uniform(0.8, 1.6)),
        **profile.features(),
        "defaulted": int(rng.random() < 1 / (1 + math.exp(-logit))),
    }


def sme_applicants(seed: int, count: int = 6_000) -> list[dict[str, Any]]:
    """`count` simulated SME applicants with a `defaulted` label (deterministic by `seed`)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not a secret
    return [_merchant(rng) for _ in range(count)]


@cache
def sme_scorecard(seed: int = 0) -> ScorecardBundle:
    """The SME working-capital scorecard, trained once per process."""
    schema = DatasetSchema.load(SME_SCHEMA)
    return train(schema, sme_applicants(seed), seed, with_challenger=False).scorecards
