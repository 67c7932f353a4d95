"""Credit scoring with reasons: schema-driven points scorecards (monotonic optimal binning,
WoE, PDO scaling), consent-aware fallbacks, a LightGBM challenger, evaluation metrics and
fairness monitoring. See README.md.

The decision-time pieces (`scorecard`, `schema`, `reasons`, `errors`) import no numpy or
pandas; `training`, `challenger`, `metrics`, `fairness` and `datasets` are for training and
evaluation. Import those modules directly."""

from tianping.lending.scoring.errors import (
    ConsentInsufficient,
    ProhibitedField,
    ScoringError,
)
from tianping.lending.scoring.reasons import ReasonLibrary, load_default_library
from tianping.lending.scoring.schema import DatasetSchema
from tianping.lending.scoring.scorecard import (
    CreditDecisionScore,
    ReasonOut,
    Scaling,
    ScorecardBundle,
    ScorecardModel,
)

__all__ = [
    "ConsentInsufficient",
    "CreditDecisionScore",
    "DatasetSchema",
    "ProhibitedField",
    "ReasonLibrary",
    "ReasonOut",
    "Scaling",
    "ScorecardBundle",
    "ScorecardModel",
    "ScoringError",
    "load_default_library",
]
