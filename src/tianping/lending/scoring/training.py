"""Training: monotonic optimal binning, a logistic regression over WoE scaled to points, the
fallback cards per consented-source subset, and the LightGBM challenger.

Pipeline, for a dataset described by a `DatasetSchema`:

1. Prepare the frame: numerical columns as floats (derived features computed), categorical
   columns as text keys. Prohibited columns in the data are refused; protected attributes and
   columns the schema does not declare are never read as inputs.
2. Bin every feature with optbinning (`BinningProcess`): optimal bins under a monotonic trend
   of the default rate (ascending or descending, chosen per feature unless the schema fixes
   it), at least 5% of rows per bin. Each pair the schema declares (an interaction) is binned
   jointly with optbinning's `OptimalBinning2D` (5 CART prebins per axis, the same minimum bin
   share; a numerical axis keeps the trend its own binning has, a categorical axis rises in
   its categories' event-rate order) into rectangles of the two values.
3. Weight of evidence per bin is computed here from the bin counts, in the event orientation
   (higher WoE = riskier) with a 0.5 count smoothing, so that training and decision time apply
   literally the same bin lookup (the `FeatureCard` code) and an empty missing bin gets WoE 0
   (the population average). A pair's WoE is computed the same way from its rectangles, with
   the decision-time lookup (`PairCard.bin_of`). Characteristics with information value below
   0.02 are dropped, the usual "unpredictive" threshold.
4. Logistic regression (scikit-learn) on the WoE columns (a pair is one more column, beside
   its two features' own). A feature whose coefficient comes
   out non-positive (collinearity reversing its direction) is dropped and the model refitted,
   so every card's points follow its bins' risk order.
5. Points: with factor = PDO / ln 2 and offset = base_score - factor * ln(base_odds),
   base points = round(offset - factor * intercept) and each bin earns
   round(-factor * coefficient * WoE). Scores are integers that reconcile exactly.
6. Fallback cards: the same bins, refitted on the characteristics whose sources lie within
   each fallback subset the schema declares (a pair only if both its features' sources do).
7. Challenger: LightGBM on the single features (trees find interactions on their own), with
   the binning's monotone trends as constraints, early-stopped on a stratified 20% slice of
   the training rows (never the test set), then refitted on all training rows for the chosen
   number of rounds.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
from optbinning import BinningProcess, OptimalBinning2D  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

from tianping.lending.scoring.challenger import ChallengerModel, encode_frame
from tianping.lending.scoring.errors import TrainingDataInvalid
from tianping.lending.scoring.metrics import evaluate
from tianping.lending.scoring.reasons import ReasonLibrary, load_default_library
from tianping.lending.scoring.schema import (
    DatasetSchema,
    FeatureKind,
    FeatureSpec,
    InteractionSpec,
    Monotonic,
    check_not_prohibited,
)
from tianping.lending.scoring.scorecard import (
    MISSING_BIN,
    OTHER_BIN,
    AxisRange,
    Characteristic,
    FeatureCard,
    PairAxis,
    PairBin,
    PairCard,
    Scaling,
    ScorecardBundle,
    ScorecardModel,
    category_key,
)

__all__ = [
    "MIN_INFORMATION_VALUE",
    "MIN_TRAINING_ROWS",
    "BinnedFeature",
    "BinnedPair",
    "TrainedModels",
    "prepare_frame",
    "score_frame",
    "target_vector",
    "train",
    "training_data_hash",
]

MIN_TRAINING_ROWS = 50
MAX_TRAINING_ROWS = 5_000_000
MIN_INFORMATION_VALUE = 0.02
MIN_BIN_SHARE = 0.05
MAX_PREBINS = 20
PAIR_PREBINS = 5
WOE_SMOOTHING = 0.5
LOGISTIC_C = 1.0
MAX_SIGN_REFITS = 50
CHALLENGER_VALIDATION_SHARE = 0.2
CHALLENGER_MAX_ROUNDS = 2_000
CHALLENGER_EARLY_STOPPING = 100
CHALLENGER_THREADS = 2

_OPTBINNING_TREND = {
    Monotonic.AUTO: "auto_asc_desc",
    Monotonic.ASCENDING: "ascending",
    Monotonic.DESCENDING: "descending",
    Monotonic.PEAK: "peak",
    Monotonic.VALLEY: "valley",
}

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------- data preparation
def _as_frame(data: pd.DataFrame | Sequence[Mapping[str, object]]) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    return pd.DataFrame.from_records(list(data))


def _check_columns(schema: DatasetSchema, frame: pd.DataFrame) -> None:
    for column in frame.columns:
        check_not_prohibited(str(column))
    needed = [spec.name for spec in schema.features if spec.derived is None]
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise TrainingDataInvalid(f"data lacks schema columns {missing}")


def prepare_frame(
    schema: DatasetSchema, data: pd.DataFrame | Sequence[Mapping[str, object]]
) -> pd.DataFrame:
    """The schema's features as model inputs: floats for numerical features, text keys or NaN
    for categorical ones. Derived features are computed row by row with the same pure
    function decisions use (`Derivation.compute`) on the inputs' raw numeric values."""
    frame = _as_frame(data)
    _check_columns(schema, frame)
    prepared: dict[str, Any] = {}
    for spec in schema.features:
        if spec.derived is not None:
            continue
        if spec.kind is FeatureKind.NUMERICAL:
            prepared[spec.name] = pd.to_numeric(frame[spec.name], errors="coerce").astype(
                np.float64
            )
        else:
            keys = [category_key(value) for value in frame[spec.name]]
            prepared[spec.name] = pd.Series(
                [np.nan if key is None else key for key in keys], dtype=object, index=frame.index
            )
    for spec in schema.features:
        if spec.derived is None:
            continue
        inputs = [
            pd.to_numeric(frame[name], errors="coerce").astype(np.float64).tolist()
            for name in spec.derived.inputs
        ]
        computed = [
            spec.derived.compute([None if math.isnan(v) else v for v in values])
            for values in zip(*inputs, strict=True)
        ]
        prepared[spec.name] = pd.Series(
            [np.nan if value is None else value for value in computed],
            dtype=np.float64,
            index=frame.index,
        )
    return pd.DataFrame(prepared, index=frame.index)[list(schema.feature_names)]


def target_vector(
    schema: DatasetSchema, data: pd.DataFrame | Sequence[Mapping[str, object]]
) -> IntArray:
    frame = _as_frame(data)
    if schema.target_column not in frame.columns:
        raise TrainingDataInvalid("data lacks the target column")
    return np.array([1 if schema.is_positive(v) else 0 for v in frame[schema.target_column]])


def training_data_hash(frame: pd.DataFrame, target: IntArray) -> str:
    """SHA-256 over the prepared inputs and the target, row by row in order."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(target, dtype=np.int8).tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- binning
@dataclass(frozen=True, slots=True)
class BinnedFeature:
    """One feature's bins as the card will use them, with the training WoE of each bin."""

    spec: FeatureSpec
    sources: frozenset[str]
    edges: tuple[float, ...]
    category_bins: Mapping[str, int]
    bin_woe: tuple[float, ...]
    missing_woe: float
    information_value: float
    trend: int  # +1 default rate rises with the value, -1 falls, 0 neither or categorical

    @property
    def name(self) -> str:
        return self.spec.name

    def bin_index(self, column: pd.Series) -> IntArray:
        if self.spec.kind is FeatureKind.NUMERICAL:
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            index = np.searchsorted(np.asarray(self.edges), values, side="right")
            return np.where(np.isnan(values), MISSING_BIN, index).astype(np.int64)
        return np.array(
            [
                MISSING_BIN
                if not isinstance(value, str)
                else self.category_bins.get(value, OTHER_BIN)
                for value in column
            ],
            dtype=np.int64,
        )

    def woe_column(self, column: pd.Series) -> FloatArray:
        return _woe_lookup(self.bin_woe, self.missing_woe, self.bin_index(column))

    def woe_of(self, frame: pd.DataFrame) -> FloatArray:
        return self.woe_column(frame[self.spec.name])

    def card(self, coefficient: float, factor: float) -> FeatureCard:
        bin_points = tuple(_points(woe, coefficient, factor) for woe in self.bin_woe)
        missing_points = _points(self.missing_woe, coefficient, factor)
        if self.spec.kind is FeatureKind.NUMERICAL:
            return FeatureCard(
                name=self.spec.name,
                kind="numerical",
                sources=self.sources,
                reason_id=self.spec.reason_id,
                missing_points=missing_points,
                edges=self.edges,
                bin_points=bin_points,
                derived=self.spec.derived,
            )
        return FeatureCard(
            name=self.spec.name,
            kind="categorical",
            sources=self.sources,
            reason_id=self.spec.reason_id,
            missing_points=missing_points,
            category_points={
                category: bin_points[index] for category, index in self.category_bins.items()
            },
            other_points=0,
        )


@dataclass(frozen=True, slots=True)
class BinnedPair:
    """One pair's rectangles as the card will use them (`layout`, a `PairCard` whose points
    are still zero), with the training WoE of each rectangle."""

    spec: InteractionSpec
    layout: PairCard
    bin_woe: tuple[float, ...]
    missing_woe: float
    information_value: float

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def sources(self) -> frozenset[str]:
        return self.layout.sources

    def bin_index(self, frame: pd.DataFrame) -> IntArray:
        # The decision-time lookup itself, row by row, so that training and decisions cannot
        # put an applicant in different rectangles.
        rows = frame[list(dict.fromkeys(self.layout.input_names))].to_dict("records")
        return np.array([self.layout.bin_of(row) for row in rows], dtype=np.int64)

    def woe_of(self, frame: pd.DataFrame) -> FloatArray:
        return _woe_lookup(self.bin_woe, self.missing_woe, self.bin_index(frame))

    def card(self, coefficient: float, factor: float) -> PairCard:
        layout = self.layout
        return PairCard(
            name=layout.name,
            x=layout.x,
            y=layout.y,
            sources=layout.sources,
            reason_id=layout.reason_id,
            missing_points=_points(self.missing_woe, coefficient, factor),
            bins=tuple(
                PairBin(item.x, item.y, _points(woe, coefficient, factor))
                for item, woe in zip(layout.bins, self.bin_woe, strict=True)
            ),
            other_points=0,
        )


Binned = BinnedFeature | BinnedPair


def _points(woe: float, coefficient: float, factor: float) -> int:
    return round(-factor * coefficient * woe)


def _woe_lookup(bin_woe: Sequence[float], missing_woe: float, index: IntArray) -> FloatArray:
    table = np.array([*bin_woe, 0.0, missing_woe], dtype=np.float64)
    # Index -1 (missing) reads the last entry, -2 (unseen category) the neutral 0.0.
    return table[index]


def _bin_woe(index: IntArray, bins: int, target: IntArray) -> tuple[list[float], float]:
    """The WoE of every bin and then of the missing bin, and the information value."""
    total_events = float(target.sum())
    total_non = float(target.size - target.sum())
    woe = []
    information_value = 0.0
    for bin_id in [*range(bins), MISSING_BIN]:
        in_bin = index == bin_id
        events = float(target[in_bin].sum())
        non_events = float(in_bin.sum() - events)
        value = _woe(events, non_events, total_events, total_non) if in_bin.any() else 0.0
        woe.append(value)
        information_value += (events / total_events - non_events / total_non) * value
    return woe, information_value


def _woe(events: float, non_events: float, total_events: float, total_non: float) -> float:
    return math.log(
        ((events + WOE_SMOOTHING) / (total_events + WOE_SMOOTHING))
        / ((non_events + WOE_SMOOTHING) / (total_non + WOE_SMOOTHING))
    )


def _trend(woe: Sequence[float]) -> int:
    steps = np.diff(np.asarray(woe))
    if steps.size == 0:
        return 0
    if np.all(steps >= 0) and np.any(steps > 0):
        return 1
    if np.all(steps <= 0) and np.any(steps < 0):
        return -1
    return 0


def _bin_features(
    schema: DatasetSchema, frame: pd.DataFrame, target: IntArray, min_bin_share: float
) -> list[BinnedFeature]:
    names = list(schema.feature_names)
    categorical = [spec.name for spec in schema.features if spec.kind is FeatureKind.CATEGORICAL]
    fit_params = {
        spec.name: {"monotonic_trend": _OPTBINNING_TREND[spec.monotonic]}
        for spec in schema.features
        if spec.kind is FeatureKind.NUMERICAL
    }
    process = BinningProcess(
        names,
        categorical_variables=categorical,
        max_n_prebins=MAX_PREBINS,
        min_prebin_size=min_bin_share,
        min_bin_size=min_bin_share,
        binning_fit_params=fit_params,
    )
    with warnings.catch_warnings():
        # optbinning builds its summary tables with pandas idioms that newer pandas deprecates;
        # the warnings concern optbinning's internals, not our data.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*incompatible dtype.*")
        process.fit(frame, target)
    binned = []
    for spec in schema.features:
        optimal = process.get_binned_variable(spec.name)
        if spec.kind is FeatureKind.NUMERICAL:
            edges = tuple(float(edge) for edge in np.asarray(optimal.splits, dtype=np.float64))
            category_bins: dict[str, int] = {}
            bins = len(edges) + 1
        else:
            edges = ()
            category_bins = {
                str(category): index
                for index, group in enumerate(optimal.splits)
                for category in group
            }
            bins = len(optimal.splits)
        draft = BinnedFeature(
            spec, schema.required_sources(spec), edges, category_bins, (), 0, 0, 0
        )
        woe, information_value = _bin_woe(draft.bin_index(frame[spec.name]), bins, target)
        binned.append(
            BinnedFeature(
                spec=spec,
                sources=schema.required_sources(spec),
                edges=edges,
                category_bins=category_bins,
                bin_woe=tuple(woe[:-1]),
                missing_woe=woe[-1],
                information_value=information_value,
                trend=_trend(woe[:-1]) if spec.kind is FeatureKind.NUMERICAL else 0,
            )
        )
    return binned


def _pair_trend(spec: FeatureSpec, found: int) -> str | None:
    """The event-rate trend a pair's axis is held to: a numerical feature's declared trend,
    else the one its own binning found; a categorical axis is ordered by event rate, so
    rising along it is the trend."""
    if spec.kind is FeatureKind.CATEGORICAL:
        return "ascending"
    declared = {Monotonic.ASCENDING: "ascending", Monotonic.DESCENDING: "descending"}
    if spec.monotonic in declared:
        return declared[spec.monotonic]
    if spec.monotonic is Monotonic.AUTO and found != 0:
        return "ascending" if found > 0 else "descending"
    return None


def _axis_range(kind: FeatureKind, split: Any) -> AxisRange:
    if kind is FeatureKind.CATEGORICAL:
        return AxisRange(categories=tuple(sorted(str(category) for category in split)))
    lower, upper = (float(bound) for bound in split)
    return AxisRange(
        lower=lower if math.isfinite(lower) else None,
        upper=upper if math.isfinite(upper) else None,
    )


def _bin_pair(
    schema: DatasetSchema,
    pair: InteractionSpec,
    frame: pd.DataFrame,
    target: IntArray,
    singles: Mapping[str, BinnedFeature],
    min_bin_share: float,
) -> BinnedPair | None:
    """Bin one pair jointly; None when the solver finds no binning."""
    specs = [schema.feature(member) for member in pair.members]
    trends = [_pair_trend(spec, singles[spec.name].trend) for spec in specs]
    optimal = OptimalBinning2D(
        name_x=pair.x,
        name_y=pair.y,
        dtype_x=specs[0].kind.value,
        dtype_y=specs[1].kind.value,
        max_n_prebins_x=PAIR_PREBINS,
        max_n_prebins_y=PAIR_PREBINS,
        min_prebin_size_x=min_bin_share,
        min_prebin_size_y=min_bin_share,
        min_bin_size=min_bin_share,
        monotonic_trend_x=trends[0],
        monotonic_trend_y=trends[1],
    )
    with warnings.catch_warnings():
        # As for the single features: optbinning's internal pandas idioms, not our data.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        optimal.fit(frame[pair.x].to_numpy(), frame[pair.y].to_numpy(), target)
    if optimal.status not in ("OPTIMAL", "FEASIBLE"):
        return None
    splits_x, splits_y = optimal.splits
    layout = PairCard(
        name=pair.name,
        x=PairAxis(pair.x, specs[0].kind.value, specs[0].derived),
        y=PairAxis(pair.y, specs[1].kind.value, specs[1].derived),
        sources=schema.pair_sources(pair),
        reason_id=pair.reason_id,
        missing_points=0,
        bins=tuple(
            PairBin(_axis_range(specs[0].kind, x), _axis_range(specs[1].kind, y), 0)
            for x, y in zip(splits_x, splits_y, strict=True)
        ),
    )
    draft = BinnedPair(pair, layout, (), 0.0, 0.0)
    woe, information_value = _bin_woe(draft.bin_index(frame), len(layout.bins), target)
    return BinnedPair(pair, layout, tuple(woe[:-1]), woe[-1], information_value)


# ---------------------------------------------------------------------------- scorecards
def _fit_logistic(
    features: list[Binned], woe: Mapping[str, FloatArray], target: IntArray, seed: int
) -> tuple[list[Binned], list[float], float, list[str]]:
    """Logistic regression over WoE, dropping any feature whose coefficient is not positive
    (WoE is risk-oriented, so a sound feature has a positive one) and refitting."""
    kept = list(features)
    dropped: list[str] = []
    for _ in range(MAX_SIGN_REFITS):
        if not kept:
            break
        matrix = np.column_stack([woe[item.name] for item in kept])
        model = LogisticRegression(C=LOGISTIC_C, max_iter=2_000, random_state=seed)
        model.fit(matrix, target)
        coefficients = [float(value) for value in model.coef_[0]]
        wrong = [i for i, value in enumerate(coefficients) if value <= 0]
        if not wrong:
            return kept, coefficients, float(model.intercept_[0]), dropped
        worst = min(wrong, key=lambda i: coefficients[i])
        dropped.append(kept.pop(worst).name)
    raise TrainingDataInvalid("no feature keeps a positive coefficient")


def _scorecard(
    *,
    name: str,
    features: list[Binned],
    woe: Mapping[str, FloatArray],
    target: IntArray,
    scaling: Scaling,
    library: ReasonLibrary,
    seed: int,
    metadata: Mapping[str, Any],
) -> tuple[ScorecardModel, list[str]]:
    kept, coefficients, intercept, dropped = _fit_logistic(features, woe, target, seed)
    factor = scaling.factor
    cards: list[Characteristic] = [
        item.card(c, factor) for item, c in zip(kept, coefficients, strict=True)
    ]
    base_points = round(scaling.offset - factor * intercept)
    model = ScorecardModel.build(
        name=name,
        features=cards,
        base_points=base_points,
        scaling=scaling,
        library=library,
        metadata={
            **metadata,
            "coefficients": {
                item.name: round(c, 6) for item, c in zip(kept, coefficients, strict=True)
            },
            "intercept": round(intercept, 6),
        },
    )
    return model, dropped


def score_frame(model: ScorecardModel, frame: pd.DataFrame) -> tuple[IntArray, FloatArray]:
    """Scores and PDs of every row through the decision-time code path (one dict per row)."""
    scores = []
    for row in frame.to_dict("records"):
        scores.append(model.points(row)[0])
    score_array = np.asarray(scores, dtype=np.int64)
    pds = np.array([model.scaling.pd_from_score(int(s)) for s in score_array], dtype=np.float64)
    return score_array, pds


# ---------------------------------------------------------------------------- challenger
def _train_challenger(
    binned: Sequence[BinnedFeature],
    frame: pd.DataFrame,
    target: IntArray,
    seed: int,
    metadata: Mapping[str, Any],
) -> ChallengerModel:
    names = [item.spec.name for item in binned]
    categories = {
        item.spec.name: sorted(item.category_bins)
        for item in binned
        if item.spec.kind is FeatureKind.CATEGORICAL
    }
    constraints = []
    for item in binned:
        declared = {Monotonic.ASCENDING: 1, Monotonic.DESCENDING: -1}.get(item.spec.monotonic)
        constraints.append(declared if declared is not None else item.trend)
    categorical_index = [i for i, name in enumerate(names) if name in categories]
    rows = len(frame)
    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": 0.03,
        "num_leaves": 15,
        "min_data_in_leaf": max(10, min(100, rows // 100)),
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "cat_smooth": 10.0,
        "monotone_constraints": constraints,
        "monotone_constraints_method": "advanced",
        "seed": seed,
        "deterministic": True,
        "num_threads": CHALLENGER_THREADS,
        "verbose": -1,
    }
    matrix = encode_frame(frame, names, categories)
    fit_rows, stop_rows = train_test_split(
        np.arange(rows), test_size=CHALLENGER_VALIDATION_SHARE, random_state=seed, stratify=target
    )

    def dataset(index: npt.NDArray[np.int64]) -> lgb.Dataset:
        return lgb.Dataset(
            matrix[index],
            label=target[index],
            feature_name=names,
            categorical_feature=categorical_index,
            free_raw_data=False,
        )

    train_set = dataset(fit_rows)
    probe = lgb.train(
        params,
        train_set,
        num_boost_round=CHALLENGER_MAX_ROUNDS,
        valid_sets=[dataset(stop_rows)],
        callbacks=[lgb.early_stopping(CHALLENGER_EARLY_STOPPING, verbose=False)],
    )
    rounds = max(1, int(probe.best_iteration))
    booster = lgb.train(params, dataset(np.arange(rows)), num_boost_round=rounds)
    return ChallengerModel.from_booster(
        booster,
        feature_names=names,
        categories=categories,
        metadata={**metadata, "rounds": rounds, "monotone_constraints": constraints},
    )


# ---------------------------------------------------------------------------- entry point
@dataclass(slots=True)
class TrainedModels:
    scorecards: ScorecardBundle
    challenger: ChallengerModel | None
    metrics: dict[str, Any]
    binned: tuple[BinnedFeature, ...]
    dropped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    pairs: tuple[BinnedPair, ...] = ()

    @property
    def scorecard(self) -> ScorecardModel:
        return self.scorecards.primary

    @property
    def fallbacks(self) -> tuple[ScorecardModel, ...]:
        return self.scorecards.fallbacks


def train(
    schema: DatasetSchema,
    data: pd.DataFrame | Sequence[Mapping[str, object]],
    seed: int,
    *,
    scaling: Scaling | None = None,
    library: ReasonLibrary | None = None,
    with_challenger: bool = True,
    min_bin_share: float = MIN_BIN_SHARE,
    min_information_value: float = MIN_INFORMATION_VALUE,
    clock: Callable[[], float] = time.perf_counter,
) -> TrainedModels:
    """Train the primary scorecard, one fallback card per declared source subset (richest
    first) and, unless disabled, the LightGBM challenger. Metrics recorded in the artefacts
    are on the training data; hold-out metrics are the caller's (see the benchmark)."""
    scaling = scaling or Scaling()
    library = library or load_default_library()
    library.check_mapping(schema.reason_ids)
    frame = prepare_frame(schema, data)
    target = target_vector(schema, data)
    if not MIN_TRAINING_ROWS <= len(frame) <= MAX_TRAINING_ROWS:
        raise TrainingDataInvalid(f"training needs {MIN_TRAINING_ROWS}..{MAX_TRAINING_ROWS} rows")
    if target.min() == target.max():
        raise TrainingDataInvalid("training data holds only one class")
    data_hash = training_data_hash(frame, target)
    started = clock()
    binned_all = _bin_features(schema, frame, target, min_bin_share)
    singles = {item.spec.name: item for item in binned_all}
    pairs: list[BinnedPair] = []
    unbinnable: list[str] = []
    for pair in schema.interactions:
        binned_pair = _bin_pair(schema, pair, frame, target, singles, min_bin_share)
        if binned_pair is None:
            unbinnable.append(pair.name)
        else:
            pairs.append(binned_pair)
    candidates: list[Binned] = [*binned_all, *pairs]
    dropped = {
        item.name: "information_value_below_minimum"
        for item in candidates
        if item.information_value < min_information_value
    }
    dropped.update(dict.fromkeys(unbinnable, "interaction_not_binned"))
    selected = [item for item in candidates if item.name not in dropped]
    if not selected:
        raise TrainingDataInvalid("no feature reaches the minimum information value")
    woe = {item.name: item.woe_of(frame) for item in selected}
    base_metadata = {
        "schema": schema.name,
        "schema_hash": schema.content_hash(),
        "training_data_hash": data_hash,
        "training_rows": len(frame),
        "seed": seed,
    }

    def card(name: str, features: list[Binned]) -> ScorecardModel:
        model, wrong_sign = _scorecard(
            name=name,
            features=features,
            woe=woe,
            target=target,
            scaling=scaling,
            library=library,
            seed=seed,
            metadata=base_metadata,
        )
        if name == "primary":
            dropped.update(dict.fromkeys(wrong_sign, "non_positive_coefficient"))
        return model

    draft_primary = card("primary", selected)
    fallbacks = []
    for subset in sorted(schema.fallback_sources, key=lambda s: (-len(s), sorted(s))):
        usable = [item for item in selected if item.sources <= subset]
        if usable:
            fallbacks.append(card("fallback:" + "+".join(sorted(subset)), usable))
    scorecard_seconds = clock() - started

    # Record training metrics inside each card (they are part of its content hash).
    def with_metrics(model: ScorecardModel) -> ScorecardModel:
        _, pds = score_frame(model, frame)
        summary = evaluate(target, pds).summary()
        return ScorecardModel(
            name=model.name,
            features=model.features,
            base_points=model.base_points,
            scaling=model.scaling,
            reasons=model.reasons,
            reason_library_version=model.reason_library_version,
            metadata={**model.metadata, "training_metrics": summary},
        )

    primary = with_metrics(draft_primary)
    bundle = ScorecardBundle(primary, [with_metrics(model) for model in fallbacks])
    challenger = None
    challenger_seconds = 0.0
    if with_challenger:
        started = clock()
        challenger = _train_challenger(binned_all, frame, target, seed, base_metadata)
        challenger_seconds = clock() - started
    return TrainedModels(
        scorecards=bundle,
        challenger=challenger,
        metrics={"training": primary.metadata["training_metrics"]},
        binned=tuple(binned_all),
        dropped=dropped,
        seconds={"scorecard": scorecard_seconds, "challenger": challenger_seconds},
        pairs=tuple(pairs),
    )
