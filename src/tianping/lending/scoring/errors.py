"""Errors of the credit-scoring package.

ScoringError                  root; carries a stable `code`
├── SchemaInvalid             a dataset schema is malformed (unknown type, duplicate feature, ...)
├── ProhibitedField           a field of a prohibited category (C1) reached training or scoring
├── ConsentInsufficient       no scorecard can be used with the sources the person consented to
├── FeatureValueInvalid       an applicant's feature value cannot be read (wrong type, not finite)
├── ReasonLibraryInvalid      the reason library is malformed or a feature maps to no reason
├── ModelArtefactInvalid      a saved model is unreadable or its content hash does not match
└── TrainingDataInvalid       training data is empty, one-class or misses a schema column

Messages never contain applicants' values: they may end up in logs and responses. They name
only schema-level things (feature names, sources, codes).
"""

from __future__ import annotations

__all__ = [
    "ConsentInsufficient",
    "FeatureValueInvalid",
    "ModelArtefactInvalid",
    "ProhibitedField",
    "ReasonLibraryInvalid",
    "SchemaInvalid",
    "ScoringError",
    "TrainingDataInvalid",
]


class ScoringError(Exception):
    """Root of the scoring package's errors, so callers can catch one type and map `code`."""

    code = "scoring_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SchemaInvalid(ScoringError):
    code = "schema_invalid"


class ProhibitedField(ScoringError):
    """Raised when a field of a category the law forbids collecting for credit decisions
    (religion, genetic data, biometrics, blood type, medical history, ethnicity) is declared
    in a schema, present in training data or passed to a decision: refusing it loudly is the
    only safe answer, since silently ignoring it would hide that it was collected."""

    code = "prohibited_field"


class ConsentInsufficient(ScoringError):
    """Raised when the person's live consent covers too few data sources for any trained
    scorecard (the primary or a declared fallback)."""

    code = "consent_insufficient"


class FeatureValueInvalid(ScoringError):
    code = "feature_value_invalid"


class ReasonLibraryInvalid(ScoringError):
    code = "reason_library_invalid"


class ModelArtefactInvalid(ScoringError):
    code = "model_artefact_invalid"


class TrainingDataInvalid(ScoringError):
    code = "training_data_invalid"
