"""The gradient-boosted challenger: LightGBM with monotone constraints.

The challenger exists to keep the scorecard honest: if boosting on the same inputs beats the
points card by more than a couple of AUC points, the card is missing structure. Numerical
features carry the monotone constraint the binning found (default rate rising or falling with
the value) or the one the schema declares; categorical features are unconstrained. The artefact
is LightGBM's text model plus a JSON sidecar; its version is the SHA-256 of both.

The challenger scores batches for evaluation only; decisions use the scorecard.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

from tianping.lending.scoring.errors import ModelArtefactInvalid

__all__ = ["ChallengerModel", "encode_frame"]

SIDECAR_FORMAT = "tianping.challenger/1"
FloatArray = npt.NDArray[np.float64]


def encode_frame(
    frame: pd.DataFrame,
    feature_names: Sequence[str],
    categories: Mapping[str, Sequence[str]],
) -> FloatArray:
    """The numeric matrix LightGBM reads: numerical columns as they are, categorical columns
    as the index of the category in the training categories (unseen or missing: NaN)."""
    columns = []
    for name in feature_names:
        column = frame[name]
        if name in categories:
            index = {category: float(code) for code, category in enumerate(categories[name])}
            columns.append(
                np.array([index.get(value, math.nan) for value in column], dtype=np.float64)
            )
        else:
            columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


class ChallengerModel:
    __slots__ = ("booster", "categories", "feature_names", "metadata", "model_text", "version")

    def __init__(
        self,
        *,
        model_text: str,
        feature_names: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.model_text = model_text
        self.feature_names = tuple(feature_names)
        self.categories = {name: tuple(values) for name, values in categories.items()}
        self.metadata = dict(metadata or {})
        self.booster = lgb.Booster(model_str=model_text)
        self.version = hashlib.sha256(
            (model_text + json.dumps(self._sidecar(), sort_keys=True)).encode()
        ).hexdigest()

    @classmethod
    def from_booster(
        cls,
        booster: lgb.Booster,
        *,
        feature_names: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        metadata: Mapping[str, Any] | None = None,
    ) -> ChallengerModel:
        return cls(
            model_text=booster.model_to_string(),
            feature_names=feature_names,
            categories=categories,
            metadata=metadata,
        )

    def _sidecar(self) -> dict[str, Any]:
        return {
            "format": SIDECAR_FORMAT,
            "feature_names": list(self.feature_names),
            "categories": {name: list(values) for name, values in self.categories.items()},
            "metadata": self.metadata,
        }

    def predict_pd(self, frame: pd.DataFrame) -> FloatArray:
        """Probability of default for each row of a prepared frame (see `prepare_frame`)."""
        matrix = encode_frame(frame, self.feature_names, self.categories)
        return np.asarray(self.booster.predict(matrix), dtype=np.float64)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / "challenger.txt").write_text(self.model_text, encoding="utf-8")
        sidecar = {**self._sidecar(), "version": self.version}
        (path / "challenger.json").write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ChallengerModel:
        path = Path(directory)
        try:
            text = (path / "challenger.txt").read_text(encoding="utf-8")
            sidecar = json.loads((path / "challenger.json").read_text(encoding="utf-8"))
            model = cls(
                model_text=text,
                feature_names=sidecar["feature_names"],
                categories=sidecar["categories"],
                metadata=sidecar.get("metadata", {}),
            )
        except (OSError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as error:
            raise ModelArtefactInvalid("challenger artefact is unreadable") from error
        if sidecar.get("format") != SIDECAR_FORMAT or model.version != sidecar.get("version"):
            raise ModelArtefactInvalid("challenger content does not match its version hash")
        return model
