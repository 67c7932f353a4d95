"""Errors of the payment-risk package.

RiskError                   root; carries a stable `code`
├── InvalidPaymentContext   a payment context is malformed (unknown kind, negative amount, ...)
├── CurrencyNotTracked      a context's currency differs from the feature state's currency
├── FeatureVectorMismatch   a feature vector does not match the model's feature names
├── ModelArtefactInvalid    a saved model is unreadable or its content hash does not match
├── TrainingDataInvalid     training data is empty, one-class or of inconsistent shape
└── RiskConfigurationInvalid  a limit, threshold or parameter is out of range

Messages never contain payer, payee or device identifiers: they may end up in logs.
"""

from __future__ import annotations


class RiskError(Exception):
    """Root of the risk package's errors, so callers can catch one type and map `code`."""

    code = "risk_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidPaymentContext(RiskError):
    code = "payment_context_invalid"


class CurrencyNotTracked(RiskError):
    """Raised when a payment's currency is not the one a `FeatureState` tracks: amounts in two
    currencies cannot share one amount history, so each currency needs its own state."""

    code = "currency_not_tracked"


class FeatureVectorMismatch(RiskError):
    code = "feature_vector_mismatch"


class ModelArtefactInvalid(RiskError):
    code = "model_artefact_invalid"


class TrainingDataInvalid(RiskError):
    code = "training_data_invalid"


class RiskConfigurationInvalid(RiskError):
    code = "risk_configuration_invalid"
