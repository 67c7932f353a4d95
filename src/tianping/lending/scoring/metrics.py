"""Discrimination, calibration and stability metrics for credit models.

AUC, the ROC curve and the Brier score come from scikit-learn. KS is read off sklearn's ROC
curve (the largest gap between the cumulative shares of bads and goods is max(TPR - FPR)).
The decile reliability table and the population stability index are written here with numpy
because scikit-learn has neither in the form credit risk uses: `calibration_curve` drops empty
bins and returns no counts, and there is no PSI at all. PSI follows the usual definition

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

over bins cut at the deciles of the expected (training) distribution, with shares floored at
1e-4 so that an empty bin gives a large but finite contribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve  # type: ignore[import-untyped]

__all__ = [
    "CalibrationRow",
    "ModelMetrics",
    "auc",
    "brier",
    "calibration_table",
    "evaluate",
    "gini",
    "ks_statistic",
    "psi",
]

PSI_SHARE_FLOOR = 1e-4
DEFAULT_PSI_BINS = 10
CALIBRATION_BINS = 10

FloatArray = npt.NDArray[np.float64]


def _arrays(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    labels = np.asarray(y_true, dtype=np.float64).ravel()
    values = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != values.shape or labels.size == 0:
        raise ValueError("labels and scores must be non-empty and of equal length")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    return labels, values


def auc(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve, with larger scores meaning more likely to default."""
    labels, values = _arrays(y_true, scores)
    return float(roc_auc_score(labels, values))


def gini(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Gini coefficient (accuracy ratio) = 2 * AUC - 1."""
    return 2.0 * auc(y_true, scores) - 1.0


def ks_statistic(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Kolmogorov-Smirnov: the largest distance between the score distributions of defaulters
    and non-defaulters, max over thresholds of TPR - FPR."""
    labels, values = _arrays(y_true, scores)
    fpr, tpr, _ = roc_curve(labels, values)
    return float(np.max(tpr - fpr))


def brier(y_true: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    labels, values = _arrays(y_true, probabilities)
    return float(brier_score_loss(labels, values))


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    decile: int
    count: int
    mean_predicted: float
    observed_rate: float


def calibration_table(
    y_true: npt.ArrayLike, probabilities: npt.ArrayLike, bins: int = CALIBRATION_BINS
) -> list[CalibrationRow]:
    """Reliability table: rows sorted by predicted PD and cut into `bins` groups of (nearly)
    equal size; each group's mean predicted PD against its observed default rate."""
    labels, values = _arrays(y_true, probabilities)
    order = np.argsort(values, kind="stable")
    rows = []
    for index, chunk in enumerate(np.array_split(order, bins)):
        if chunk.size == 0:
            continue
        rows.append(
            CalibrationRow(
                decile=index + 1,
                count=int(chunk.size),
                mean_predicted=float(values[chunk].mean()),
                observed_rate=float(labels[chunk].mean()),
            )
        )
    return rows


def psi(expected: npt.ArrayLike, actual: npt.ArrayLike, bins: int = DEFAULT_PSI_BINS) -> float:
    """Population stability index of `actual` (scoring data) against `expected` (training
    data), over bins cut at the quantiles of `expected`."""
    base = np.asarray(expected, dtype=np.float64).ravel()
    new = np.asarray(actual, dtype=np.float64).ravel()
    if base.size == 0 or new.size == 0:
        raise ValueError("PSI needs two non-empty samples")
    edges = np.unique(np.quantile(base, np.linspace(0.0, 1.0, bins + 1))[1:-1])
    base_counts = np.bincount(np.searchsorted(edges, base, side="right"), minlength=edges.size + 1)
    new_counts = np.bincount(np.searchsorted(edges, new, side="right"), minlength=edges.size + 1)
    base_share = np.maximum(base_counts / base.size, PSI_SHARE_FLOOR)
    new_share = np.maximum(new_counts / new.size, PSI_SHARE_FLOOR)
    return float(np.sum((new_share - base_share) * np.log(new_share / base_share)))


@dataclass(frozen=True, slots=True)
class ModelMetrics:
    auc: float
    ks: float
    gini: float
    brier: float
    rows: int
    default_rate: float
    calibration: tuple[CalibrationRow, ...]

    def summary(self) -> dict[str, float | int]:
        return {
            "auc": round(self.auc, 4),
            "ks": round(self.ks, 4),
            "gini": round(self.gini, 4),
            "brier": round(self.brier, 4),
            "rows": self.rows,
            "default_rate": round(self.default_rate, 4),
        }


def evaluate(y_true: npt.ArrayLike, probabilities: npt.ArrayLike) -> ModelMetrics:
    labels, values = _arrays(y_true, probabilities)
    area = auc(labels, values)
    return ModelMetrics(
        auc=area,
        ks=ks_statistic(labels, values),
        gini=2.0 * area - 1.0,
        brier=brier(labels, values),
        rows=int(labels.size),
        default_rate=float(labels.mean()),
        calibration=tuple(calibration_table(labels, values)),
    )
