"""The risk model (LightGBM), its versioned artefact, the decision thresholds and the scorer.

`train_risk_model` fits a small gradient-boosted tree model with fixed seed and one thread, so a
given training set always gives the same trees and so the same version. The version is a content
hash of the saved model text, the feature names and the two thresholds: anything that can change
a decision changes the version, and every `RiskDecision` carries it.

Thresholds are chosen on validation data, never on the training data the trees have memorised:
`challenge_threshold` is the lowest score at which at most 1% of validation non-fraud payments
would be challenged, and `deny_threshold` the same at 0.1%.

Single-payment scoring does not use LightGBM's `pred_contrib` (TreeSHAP) for reason codes: it was
measured at about 800 us per row for 150 trees, most of the 1 ms budget. Instead one native call,
`predict(pred_leaf=True)` (about 25 us), returns the leaf each tree reaches; the score is the sum
of those leaves' values, and the reason codes come from per-leaf attribution vectors prepared
once at load time: for each leaf, the change of the node value at every split on the way from the
root, credited to the split's feature (the "Saabas" path attribution). Like SHAP, the
contributions add up exactly to the raw score minus the model's base value; unlike SHAP they are
path-dependent, which is acceptable for naming the top few features behind a challenge.
`RiskModel.shap_contributions` still offers exact TreeSHAP for offline explanation.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from tianping.payments.risk.errors import (
    FeatureVectorMismatch,
    ModelArtefactInvalid,
    RiskConfigurationInvalid,
    TrainingDataInvalid,
)
from tianping.payments.risk.features import (
    FEATURE_NAMES,
    FeatureState,
    FeatureVector,
    PaymentContext,
)
from tianping.payments.risk.rules import RuleLimits, evaluate_rules, most_severe

__all__ = [
    "CHALLENGE_FPR",
    "DEFAULT_PARAMS",
    "DENY_FPR",
    "MODEL_REASONS_MAX",
    "FloatArray",
    "LogisticBaseline",
    "RiskDecision",
    "RiskModel",
    "RiskScorer",
    "average_precision",
    "recall_at_fpr",
    "threshold_for_fpr",
    "train_risk_model",
]

FloatArray = npt.NDArray[np.float64]

ARTEFACT_FORMAT: Final = "tianping-risk-model/1"
# The share of legitimate payments the model may challenge, and may deny, on validation data.
CHALLENGE_FPR: Final = 0.01
DENY_FPR: Final = 0.001
# A decision names at most this many model features as reasons, the largest contributions first.
MODEL_REASONS_MAX: Final = 3
# Hex digits of the content hash used as the model version in decisions (80 bits).
VERSION_HEX_DIGITS: Final = 20

# Small and deterministic: one thread and fixed seeds make training reproducible bit for bit, and
# 150 trees of at most 31 leaves keep single-row inference far below the latency budget.
DEFAULT_PARAMS: Final[Mapping[str, Any]] = {
    "objective": "binary",
    "num_iterations": 150,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "seed": 20_240_505,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}


def _as_matrix(x: npt.ArrayLike, width: int | None = None) -> FloatArray:
    matrix = np.asarray(x, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise TrainingDataInvalid("expected a non-empty two-dimensional feature matrix")
    if width is not None and matrix.shape[1] != width:
        raise FeatureVectorMismatch(f"expected {width} features, got {matrix.shape[1]}")
    return matrix


def _as_labels(y: npt.ArrayLike, rows: int) -> npt.NDArray[np.int8]:
    labels = np.asarray(y).astype(np.int8)
    if labels.shape != (rows,):
        raise TrainingDataInvalid("labels must be one value per feature row")
    if set(np.unique(labels).tolist()) != {0, 1}:
        raise TrainingDataInvalid("labels must contain both classes, as 0 and 1")
    return labels


def threshold_for_fpr(negative_scores: npt.ArrayLike, fpr: float) -> float:
    """The lowest score threshold at which at most `fpr` of these negatives score at or above it.

    A payment is flagged when `score >= threshold`. Ties are resolved towards flagging fewer: the
    threshold is placed just above the score of the first negative that must not be flagged.
    """
    if not 0.0 < fpr < 1.0:
        raise RiskConfigurationInvalid("the false-positive rate must be in (0, 1)")
    scores = np.sort(np.asarray(negative_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise TrainingDataInvalid("no negative examples to choose a threshold from")
    allowed = math.floor(fpr * scores.size)
    return float(np.nextafter(scores[allowed], np.inf))


def recall_at_fpr(y_true: npt.ArrayLike, scores: npt.ArrayLike, fpr: float) -> float:
    """Share of positives flagged at the threshold that flags at most `fpr` of the negatives."""
    labels = np.asarray(y_true).astype(bool)
    values = np.asarray(scores, dtype=np.float64)
    threshold = threshold_for_fpr(values[~labels], fpr)
    return float(np.mean(values[labels] >= threshold))


def average_precision(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the precision-recall curve (scikit-learn's average precision)."""
    from sklearn.metrics import average_precision_score  # type: ignore[import-untyped]

    return float(average_precision_score(np.asarray(y_true), np.asarray(scores)))


class _LeafAttribution:
    """Per-leaf values and path attributions of a booster, for fast single-row explanation.

    Row `tree_offset[t] + leaf` of `leaf_values` / `contributions` describes leaf `leaf` of tree
    `t`. See the module docstring for why this replaces `pred_contrib` on the request path.
    """

    def __init__(self, booster: lgb.Booster, feature_count: int) -> None:
        trees = booster.dump_model()["tree_info"]
        offsets: list[int] = []
        values: list[float] = []
        rows: list[FloatArray] = []
        base_value = 0.0
        for tree in trees:
            offsets.append(len(values))
            leaves: dict[int, tuple[float, FloatArray]] = {}
            root = tree["tree_structure"]
            base_value += float(root.get("internal_value", root.get("leaf_value", 0.0)))
            self._walk(root, np.zeros(feature_count), leaves)
            for index in range(len(leaves)):
                value, contribution = leaves[index]
                values.append(value)
                rows.append(contribution)
        self.tree_offset = np.asarray(offsets, dtype=np.int64)
        self.leaf_values = np.asarray(values, dtype=np.float64)
        self.contributions = np.vstack(rows)
        self.base_value = base_value

    @staticmethod
    def _node_value(node: Mapping[str, Any]) -> float:
        return float(node["leaf_value"] if "leaf_value" in node else node["internal_value"])

    def _walk(
        self,
        node: Mapping[str, Any],
        path: FloatArray,
        leaves: dict[int, tuple[float, FloatArray]],
    ) -> None:
        # Iterative rather than recursive would save little: trees are at most a few dozen deep.
        if "leaf_value" in node:
            leaves[int(node.get("leaf_index", 0))] = (float(node["leaf_value"]), path)
            return
        parent_value = self._node_value(node)
        feature = int(node["split_feature"])
        for side in ("left_child", "right_child"):
            child = node[side]
            step = path.copy()
            step[feature] += self._node_value(child) - parent_value
            self._walk(child, step, leaves)

    def rows(self, leaf_indices: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
        return self.tree_offset + leaf_indices.astype(np.int64)


def _content_version(
    model_text: str, feature_names: Sequence[str], challenge: float, deny: float
) -> str:
    digest = hashlib.sha256()
    digest.update(model_text.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(json.dumps(list(feature_names)).encode("utf-8"))
    digest.update(b"\x00")
    digest.update(json.dumps([challenge, deny]).encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """A model score and the table rows of the leaves it came from (for `RiskModel.explain`)."""

    score: float
    leaf_rows: npt.NDArray[np.int64]


@dataclass(eq=False)
class RiskModel:
    """A trained booster with its feature names, thresholds and provenance."""

    booster: lgb.Booster
    model_text: str
    feature_names: tuple[str, ...]
    challenge_threshold: float
    deny_threshold: float
    description: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.challenge_threshold <= self.deny_threshold <= 1.0 + 1e-9:
            raise RiskConfigurationInvalid("thresholds must satisfy 0 <= challenge <= deny <= 1")
        if self.booster.num_feature() != len(self.feature_names):
            raise FeatureVectorMismatch("the booster and the feature names disagree in length")
        self.content_sha256 = _content_version(
            self.model_text, self.feature_names, self.challenge_threshold, self.deny_threshold
        )
        self._attribution = _LeafAttribution(self.booster, len(self.feature_names))

    @property
    def version(self) -> str:
        return self.content_sha256[:VERSION_HEX_DIGITS]

    def predict_proba(self, x: npt.ArrayLike) -> FloatArray:
        """Fraud scores in [0, 1] for a batch of rows (LightGBM's batch path)."""
        matrix = _as_matrix(x, len(self.feature_names))
        return np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)

    def shap_contributions(self, x: npt.ArrayLike) -> FloatArray:
        """Exact TreeSHAP values (last column: base value), for offline explanation only."""
        matrix = _as_matrix(x, len(self.feature_names))
        return np.asarray(self.booster.predict(matrix, pred_contrib=True), dtype=np.float64)

    def score_one(self, values: Sequence[float]) -> ScoredRow:
        """Score one row with one native call; see the module docstring."""
        row = np.asarray(values, dtype=np.float64).reshape(1, -1)
        if row.shape[1] != len(self.feature_names):
            raise FeatureVectorMismatch(
                f"expected {len(self.feature_names)} features, got {row.shape[1]}"
            )
        leaves = np.asarray(self.booster.predict(row, pred_leaf=True, num_threads=1))[0]
        leaf_rows = self._attribution.rows(leaves)
        raw = float(self._attribution.leaf_values[leaf_rows].sum())
        # exp overflows below about -709; such a score is zero to double precision anyway.
        score = 1.0 / (1.0 + math.exp(-raw)) if raw > -700 else 0.0
        return ScoredRow(score=score, leaf_rows=leaf_rows)

    def score_rows(self, rows: Sequence[Sequence[float]]) -> list[ScoredRow]:
        """Score many rows with one native call: a batch of payments pays LightGBM's per-call
        overhead (tens of microseconds) once instead of once per payment."""
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        if matrix.shape[1] != len(self.feature_names):
            raise FeatureVectorMismatch(
                f"expected {len(self.feature_names)} features, got {matrix.shape[1]}"
            )
        leaves = np.asarray(self.booster.predict(matrix, pred_leaf=True, num_threads=1))
        leaf_rows = self._attribution.rows(leaves)
        raws = self._attribution.leaf_values[leaf_rows].sum(axis=1).tolist()
        return [
            ScoredRow(score=1.0 / (1.0 + math.exp(-raw)) if raw > -700 else 0.0, leaf_rows=rows)
            for raw, rows in zip(raws, leaf_rows, strict=True)
        ]

    def explain(self, scored: ScoredRow) -> FloatArray:
        """Per-feature contributions to the log-odds of a scored row; they sum to the raw score
        minus `base_value`."""
        return np.asarray(self._attribution.contributions[scored.leaf_rows].sum(axis=0))

    @property
    def base_value(self) -> float:
        return self._attribution.base_value

    def action_for(self, score: float) -> str:
        if score >= self.deny_threshold:
            return "deny"
        if score >= self.challenge_threshold:
            return "challenge"
        return "allow"

    def save(self, path: str | Path) -> Path:
        """Write the LightGBM text model to `path` and a JSON sidecar beside it; returns the
        sidecar path (`path` with suffix `.json`)."""
        model_path = Path(path)
        sidecar = model_path.with_suffix(".json")
        if sidecar == model_path:
            raise RiskConfigurationInvalid("the model file must not itself end in .json")
        model_path.write_text(self.model_text, encoding="utf-8")
        document = {
            "format": ARTEFACT_FORMAT,
            "version": self.version,
            "content_sha256": self.content_sha256,
            "feature_names": list(self.feature_names),
            "challenge_threshold": self.challenge_threshold,
            "deny_threshold": self.deny_threshold,
            "description": dict(self.description),
            "metrics": dict(self.metrics),
        }
        sidecar.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", "utf-8")
        return sidecar

    @classmethod
    def load(cls, path: str | Path) -> RiskModel:
        """Read a saved model, refusing it if the files do not hash to the recorded version."""
        model_path = Path(path)
        try:
            model_text = model_path.read_text(encoding="utf-8")
            document = json.loads(model_path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ModelArtefactInvalid("the model or its sidecar cannot be read") from error
        if not isinstance(document, dict) or document.get("format") != ARTEFACT_FORMAT:
            raise ModelArtefactInvalid("the sidecar is not a risk-model description")
        try:
            booster = lgb.Booster(model_str=model_text)
            model = cls(
                booster=booster,
                model_text=model_text,
                feature_names=tuple(document["feature_names"]),
                challenge_threshold=float(document["challenge_threshold"]),
                deny_threshold=float(document["deny_threshold"]),
                description=document.get("description", {}),
                metrics=document.get("metrics", {}),
            )
        except (KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as error:
            raise ModelArtefactInvalid("the model artefact is incomplete") from error
        if model.content_sha256 != document.get("content_sha256"):
            raise ModelArtefactInvalid("the model's content hash does not match its sidecar")
        return model


def train_risk_model(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    params: Mapping[str, Any] | None = None,
    *,
    feature_names: Sequence[str] = FEATURE_NAMES,
    x_valid: npt.ArrayLike | None = None,
    y_valid: npt.ArrayLike | None = None,
    description: Mapping[str, Any] | None = None,
    challenge_fpr: float = CHALLENGE_FPR,
    deny_fpr: float = DENY_FPR,
) -> RiskModel:
    """Train a booster on (x, y) and choose thresholds on (x_valid, y_valid).

    Without validation data the thresholds are chosen on the training data, which flatters the
    model (it has seen those rows); only tiny test models should do that, and the description
    records it.
    """
    names = tuple(feature_names)
    matrix = _as_matrix(x, len(names))
    labels = _as_labels(y, matrix.shape[0])
    merged = {**DEFAULT_PARAMS, **(params or {})}
    rounds = int(merged.pop("num_iterations"))
    dataset = lgb.Dataset(matrix, label=labels, feature_name=list(names), free_raw_data=True)
    booster = lgb.train(merged, dataset, num_boost_round=rounds)
    model_text = booster.model_to_string()
    # Reload from the text so that the booster in memory is exactly what `load` will rebuild.
    booster = lgb.Booster(model_str=model_text)

    thresholds_on = "validation"
    if x_valid is None or y_valid is None:
        valid_matrix, valid_labels, thresholds_on = matrix, labels, "training"
    else:
        valid_matrix = _as_matrix(x_valid, len(names))
        valid_labels = _as_labels(y_valid, valid_matrix.shape[0])
    valid_scores = np.asarray(booster.predict(valid_matrix, num_threads=1), dtype=np.float64)
    negatives = valid_scores[valid_labels == 0]
    challenge = threshold_for_fpr(negatives, challenge_fpr)
    deny = max(threshold_for_fpr(negatives, deny_fpr), challenge)
    metrics = {
        "validation_auprc": average_precision(valid_labels, valid_scores),
        "validation_recall_at_challenge": float(
            np.mean(valid_scores[valid_labels == 1] >= challenge)
        ),
        "validation_recall_at_deny": float(np.mean(valid_scores[valid_labels == 1] >= deny)),
    }
    info = {
        **(description or {}),
        "training_rows": int(matrix.shape[0]),
        "training_positives": int(labels.sum()),
        "thresholds_chosen_on": thresholds_on,
        "challenge_fpr": challenge_fpr,
        "deny_fpr": deny_fpr,
        "params": {key: value for key, value in merged.items()} | {"num_iterations": rounds},
    }
    return RiskModel(
        booster=booster,
        model_text=model_text,
        feature_names=names,
        challenge_threshold=min(challenge, 1.0),
        deny_threshold=min(deny, 1.0),
        description=info,
        metrics=metrics,
    )


class LogisticBaseline:
    """Standardised logistic regression: the comparison the tree model has to beat."""

    def __init__(self, *, max_iter: int = 2_000) -> None:
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
        from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
        from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

        self._pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))

    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike) -> LogisticBaseline:
        matrix = _as_matrix(x)
        self._pipeline.fit(matrix, _as_labels(y, matrix.shape[0]))
        return self

    def predict_proba(self, x: npt.ArrayLike) -> FloatArray:
        return np.asarray(self._pipeline.predict_proba(_as_matrix(x))[:, 1], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The outcome for one payment, with its reasons and the model version that produced it."""

    action: str
    score: float
    reasons: tuple[str, ...]
    model_version: str


class RiskScorer:
    """Combines the model and the explicit rules into one decision per payment.

    The action is the most severe of the model's (from its thresholds) and the rules'. Reasons
    list the rules that fired, then, if the model itself challenges or denies, its top positive
    contributions as `model:<feature>`. An allowed payment carries no reasons.
    """

    def __init__(self, model: RiskModel, rules: RuleLimits | None = None) -> None:
        if model.feature_names != FEATURE_NAMES:
            raise FeatureVectorMismatch(
                "the scorer needs a model trained on the online FEATURE_NAMES"
            )
        self.model = model
        self.rules = rules or RuleLimits()

    def score(self, features: FeatureVector) -> RiskDecision:
        return self._decide(features, self.model.score_one(features.values))

    def score_many(self, features: Sequence[FeatureVector]) -> list[RiskDecision]:
        """The decisions for many payments, scored by the model in one call."""
        if not features:
            return []
        scored = self.model.score_rows([vector.values for vector in features])
        return [self._decide(vector, row) for vector, row in zip(features, scored, strict=True)]

    def _decide(self, features: FeatureVector, scored: ScoredRow) -> RiskDecision:
        model = self.model
        hits = evaluate_rules(features, self.rules)
        # The model is asked for its explanation only when it would be shown: the gather of
        # per-leaf vectors costs a few microseconds that allowed payments need not pay.
        model_action = model.action_for(scored.score)
        reasons = [hit.reason for hit in hits]
        if model_action != "allow":
            contributions = model.explain(scored)
            order = np.argsort(-contributions, kind="stable")[:MODEL_REASONS_MAX]
            reasons.extend(
                f"model:{model.feature_names[i]}" for i in order.tolist() if contributions[i] > 0
            )
        action = most_severe((model_action, *(hit.action for hit in hits)))
        return RiskDecision(
            action=action,
            score=scored.score,
            reasons=tuple(reasons) if action != "allow" else (),
            model_version=model.version,
        )

    def assess(self, state: FeatureState, ctx: PaymentContext) -> RiskDecision:
        """Features and decision for `ctx`; the caller then decides whether to `observe` it."""
        return self.score(state.features(ctx))
