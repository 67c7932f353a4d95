"""The points scorecard at decision time: pure standard-library lookups over bin edges.

A trained scorecard is a table. Every numerical feature has sorted bin edges and one integer
number of points per bin (bins are `[edge_i, edge_i+1)`, as optbinning cuts them); every
categorical feature has points per category. Each feature also has points for a missing value
and, for categories, for a value never seen in training. The score is

    score = base_points + sum(points of the bin each feature falls in)

exactly, in integers, so the points reported with a decision reconcile to the score to the
point. A pair of features binned jointly (an interaction, `PairCard`) is one more term of that
sum: its bins are rectangles of the two features' values (a range or a set of categories on
each axis), each with its points, so the card stays additive over its characteristics and
stays a table a person can read. The probability of default follows from the score alone by
the points-to-double-odds (PDO) scaling the card was trained with,

    ln(good:bad odds) = (score - offset) / factor,  factor = PDO / ln 2,
    offset = base_score - factor * ln(base_odds),

so PD falls strictly as the score rises. Adverse reasons are the features whose points fall
furthest below the best points attainable for that feature ("points below max"), mapped to the
governed reason statements; at most four are returned and a reason statement is quoted once.

Consent and data minimisation: every card knows the data sources its features need. A card is
used only if all of them are in the caller's `allowed_sources` (the sources the person's live
consent covers); `ScorecardBundle` then falls back to the best card trained without the missing
sources, or refuses with `consent_insufficient`. Values for features of other sources are never
read. Fields of prohibited categories passed in by a caller are refused (`prohibited_field`).

Nothing here imports numpy or pandas: one decision is a few dozen dictionary and `bisect`
lookups (well under a millisecond).
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from tianping.lending.scoring.errors import (
    ConsentInsufficient,
    FeatureValueInvalid,
    ModelArtefactInvalid,
    ProhibitedField,
)
from tianping.lending.scoring.reasons import ReasonLibrary, ReasonStatement
from tianping.lending.scoring.schema import Derivation, DerivationOp, is_prohibited_name

__all__ = [
    "MAX_ADVERSE_REASONS",
    "MISSING_BIN",
    "OTHER_BIN",
    "AxisRange",
    "Characteristic",
    "CreditDecisionScore",
    "FeatureCard",
    "FeaturePoints",
    "PairAxis",
    "PairBin",
    "PairCard",
    "ReasonOut",
    "Scaling",
    "ScorecardBundle",
    "ScorecardModel",
    "card_from_mapping",
    "category_key",
]

MAX_ADVERSE_REASONS = 4
MAX_INPUT_FIELDS = 1_000
MAX_CATEGORY_LENGTH = 200
ARTEFACT_FORMAT = "tianping.scorecard/1"
BUNDLE_FORMAT = "tianping.scorecard-bundle/1"
BUNDLE_MANIFEST = "bundle.json"
PAIR_KIND = "pair"
# What `PairCard.bin_of` returns besides a bin's index: a missing value on either axis, or a
# category that no bin holds (never seen in training).
MISSING_BIN = -1
OTHER_BIN = -2


@lru_cache(maxsize=4096)
def _prohibited(name: str) -> bool:
    # Callers pass the same handful of field names on every decision; caching the regex-based
    # check keeps the per-decision cost to a dictionary lookup.
    return is_prohibited_name(name)


def category_key(raw: object) -> str | None:
    """The text key of a categorical value, or None when it is missing. Integral floats read
    from CSV (2.0) and integers (2) map to the same key ("2"), in training and in scoring."""
    if raw is None:
        return None
    if isinstance(raw, float):
        if math.isnan(raw):
            return None
        if raw.is_integer():
            return str(int(raw))
    text = str(raw)
    if not text or len(text) > MAX_CATEGORY_LENGTH:
        return None if not text else text[:MAX_CATEGORY_LENGTH]
    return text


def _number(raw: object, feature: str) -> float | None:
    """A numerical value as float, or None when it is missing (None, NaN or empty text)."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise FeatureValueInvalid(f"feature {feature!r} must be a number, not a boolean")
    if isinstance(raw, int | float | Decimal):
        value = float(raw)
    elif isinstance(raw, str):
        if not raw.strip():
            return None
        try:
            value = float(raw)
        except ValueError:
            raise FeatureValueInvalid(f"feature {feature!r} must be a number") from None
    else:
        raise FeatureValueInvalid(f"feature {feature!r} must be a number")
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise FeatureValueInvalid(f"feature {feature!r} must be finite")
    return value


def _read(name: str, derived: Derivation | None, features: Mapping[str, object]) -> object:
    """The raw value a characteristic reads for feature `name` (a derived feature is computed
    from its inputs' values, with the function training used)."""
    if derived is None:
        return features.get(name)
    return derived.compute([_number(features.get(part), part) for part in derived.inputs])


def _input_names(name: str, derived: Derivation | None) -> tuple[str, ...]:
    """The features a characteristic reads for feature `name`: itself, and a derived feature's
    inputs."""
    return (name, *(derived.inputs if derived else ()))


def _derive_mapping(derived: Derivation | None) -> dict[str, Any]:
    if derived is None:
        return {}
    return {"derive": {"op": derived.op.value, "of": list(derived.inputs)}}


def _derived_from(data: Mapping[str, Any]) -> Derivation | None:
    derive = data.get("derive")
    if not derive:
        return None
    return Derivation(DerivationOp(derive["op"]), tuple(str(name) for name in derive["of"]))


@dataclass(frozen=True, slots=True)
class Scaling:
    """Points-to-double-odds scaling: `base_score` points at good:bad odds `base_odds`, and
    every `pdo` points double the odds."""

    base_score: int = 600
    base_odds: float = 50.0
    pdo: int = 20

    def __post_init__(self) -> None:
        if self.pdo <= 0 or self.base_odds <= 0:
            raise ValueError("PDO and base odds must be positive")

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def pd_from_score(self, score: int) -> float:
        log_odds_good = (score - self.offset) / self.factor
        # 1 / (1 + e^x) computed without overflow for large |x|.
        if log_odds_good >= 0:
            e = math.exp(-log_odds_good)
            return e / (1.0 + e)
        return 1.0 / (1.0 + math.exp(log_odds_good))


@dataclass(frozen=True, slots=True)
class FeatureCard:
    """One feature's points. Numerical: `edges` (sorted) and `bin_points` (one more than the
    edges). Categorical: `category_points`, with `other_points` for unseen categories."""

    name: str
    kind: str
    sources: frozenset[str]
    reason_id: str
    missing_points: int
    edges: tuple[float, ...] = ()
    bin_points: tuple[int, ...] = ()
    category_points: Mapping[str, int] = field(default_factory=dict)
    other_points: int = 0
    derived: Derivation | None = None

    def __post_init__(self) -> None:
        if self.kind == "numerical":
            if len(self.bin_points) != len(self.edges) + 1:
                raise ModelArtefactInvalid(f"feature {self.name!r}: bins and points disagree")
            if list(self.edges) != sorted(self.edges):
                raise ModelArtefactInvalid(f"feature {self.name!r}: edges are not sorted")
        elif self.kind != "categorical":
            raise ModelArtefactInvalid(f"feature {self.name!r}: unknown kind")

    def _candidates(self) -> list[int]:
        candidates = [self.missing_points, *self.bin_points, *self.category_points.values()]
        if self.kind == "categorical":
            candidates.append(self.other_points)
        return candidates

    @property
    def max_points(self) -> int:
        """The best points any value of this feature can earn (the "max" of points-below-max)."""
        return max(self._candidates())

    @property
    def min_points(self) -> int:
        return min(self._candidates())

    @property
    def input_names(self) -> tuple[str, ...]:
        return _input_names(self.name, self.derived)

    def points_of(self, features: Mapping[str, object]) -> int:
        # The common case is read inline rather than through `_read`: this runs once per
        # characteristic on every decision, and a call level costs about as much as the read.
        if self.derived is None:
            return self.points_for(features.get(self.name))
        return self.points_for(_read(self.name, self.derived, features))

    def points_for(self, raw: object) -> int:
        if self.kind == "numerical":
            value = _number(raw, self.name)
            if value is None:
                return self.missing_points
            return self.bin_points[bisect_right(self.edges, value)]
        key = category_key(raw)
        if key is None:
            return self.missing_points
        return self.category_points.get(key, self.other_points)

    def to_mapping(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "sources": sorted(self.sources),
            "reason_id": self.reason_id,
            "missing_points": self.missing_points,
        }
        if self.kind == "numerical":
            data["edges"] = list(self.edges)
            data["bin_points"] = list(self.bin_points)
        else:
            data["category_points"] = dict(sorted(self.category_points.items()))
            data["other_points"] = self.other_points
        data.update(_derive_mapping(self.derived))
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FeatureCard:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            sources=frozenset(str(source) for source in data["sources"]),
            reason_id=str(data["reason_id"]),
            missing_points=int(data["missing_points"]),
            edges=tuple(float(edge) for edge in data.get("edges", ())),
            bin_points=tuple(int(points) for points in data.get("bin_points", ())),
            category_points={
                str(key): int(value) for key, value in data.get("category_points", {}).items()
            },
            other_points=int(data.get("other_points", 0)),
            derived=_derived_from(data),
        )


@dataclass(frozen=True, slots=True)
class AxisRange:
    """The part of one axis that a pair's bin covers: `[lower, upper)` of a numerical feature
    (None is unbounded on that side) or a set of categories of a categorical one."""

    lower: float | None = None
    upper: float | None = None
    categories: tuple[str, ...] = ()

    def to_mapping(self) -> dict[str, Any]:
        if self.categories:
            return {"in": list(self.categories)}
        return {"from": self.lower, "below": self.upper}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AxisRange:
        if "in" in data:
            return cls(categories=tuple(str(category) for category in data["in"]))
        lower, upper = data["from"], data["below"]
        return cls(
            lower=None if lower is None else float(lower),
            upper=None if upper is None else float(upper),
        )


@dataclass(frozen=True, slots=True)
class PairAxis:
    """One feature of a pair: its name, kind and, for a derived feature, its derivation."""

    feature: str
    kind: str
    derived: Derivation | None = None

    def key_of(self, features: Mapping[str, object]) -> float | str | None:
        """The value this axis is binned on (a number or a category key), None if missing."""
        # Read inline when not derived, as `FeatureCard.points_of` does: this is the hot path.
        if self.derived is None:
            raw = features.get(self.feature)
        else:
            raw = _read(self.feature, self.derived, features)
        if self.kind == "numerical":
            return _number(raw, self.feature)
        return category_key(raw)

    def to_mapping(self) -> dict[str, Any]:
        return {"feature": self.feature, "kind": self.kind, **_derive_mapping(self.derived)}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PairAxis:
        return cls(str(data["feature"]), str(data["kind"]), _derived_from(data))


@dataclass(frozen=True, slots=True)
class PairBin:
    """One rectangle of a pair's table and the points it earns."""

    x: AxisRange
    y: AxisRange
    points: int


class _AxisCells:
    """An axis cut into the cells that the bins' ranges share: the intervals between all the
    bins' bounds of a numerical axis, or one cell per category of a categorical one."""

    __slots__ = ("categories", "edges")

    def __init__(self, axis: PairAxis, ranges: Sequence[AxisRange], pair: str) -> None:
        self.edges: tuple[float, ...] = ()
        self.categories: dict[str, int] = {}
        if axis.kind == "numerical":
            if any(item.categories for item in ranges):
                raise ModelArtefactInvalid(f"pair {pair!r}: categories on a numerical axis")
            bounds = {b for item in ranges for b in (item.lower, item.upper) if b is not None}
            self.edges = tuple(sorted(bounds))
        elif axis.kind == "categorical":
            if any(not item.categories for item in ranges):
                raise ModelArtefactInvalid(f"pair {pair!r}: a categorical range is empty")
            names = sorted({category for item in ranges for category in item.categories})
            self.categories = {category: index for index, category in enumerate(names)}
        else:
            raise ModelArtefactInvalid(f"pair {pair!r}: unknown axis kind")

    @property
    def size(self) -> int:
        return len(self.categories) if self.categories else len(self.edges) + 1

    def cell(self, key: float | str) -> int:
        if self.categories:
            return self.categories.get(str(key), OTHER_BIN)
        return bisect_right(self.edges, float(key))

    def covered(self, item: AxisRange, pair: str) -> list[int]:
        if self.categories:
            return sorted({self.categories[category] for category in item.categories})
        # Cell i is [edges[i-1], edges[i]): a range starts at the cell its lower bound opens
        # and stops before the cell its upper bound opens.
        start = 0 if item.lower is None else bisect_left(self.edges, item.lower) + 1
        stop = self.size if item.upper is None else bisect_left(self.edges, item.upper) + 1
        if start >= stop:
            raise ModelArtefactInvalid(f"pair {pair!r}: a bin's range is empty")
        return list(range(start, stop))


@dataclass(frozen=True, slots=True)
class PairCard:
    """An interaction characteristic: two features binned jointly. Its bins must tile the
    plane of the two features' values exactly once (checked when the card is built), so every
    applicant with both values falls in one bin; a missing value on either axis earns
    `missing_points`, a category no bin holds `other_points`."""

    name: str
    x: PairAxis
    y: PairAxis
    sources: frozenset[str]
    reason_id: str
    missing_points: int
    bins: tuple[PairBin, ...]
    other_points: int = 0
    _cells: tuple[_AxisCells, _AxisCells, tuple[tuple[int, ...], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.bins:
            raise ModelArtefactInvalid(f"pair {self.name!r} has no bins")
        x_cells = _AxisCells(self.x, [item.x for item in self.bins], self.name)
        y_cells = _AxisCells(self.y, [item.y for item in self.bins], self.name)
        grid: list[list[int]] = [[MISSING_BIN] * y_cells.size for _ in range(x_cells.size)]
        for index, item in enumerate(self.bins):
            for column in x_cells.covered(item.x, self.name):
                for row in y_cells.covered(item.y, self.name):
                    if grid[column][row] != MISSING_BIN:
                        raise ModelArtefactInvalid(f"pair {self.name!r}: bins overlap")
                    grid[column][row] = index
        if any(MISSING_BIN in column for column in grid):
            raise ModelArtefactInvalid(f"pair {self.name!r}: bins leave a gap")
        object.__setattr__(
            self, "_cells", (x_cells, y_cells, tuple(tuple(column) for column in grid))
        )

    @property
    def kind(self) -> str:
        return PAIR_KIND

    @property
    def input_names(self) -> tuple[str, ...]:
        return (
            *_input_names(self.x.feature, self.x.derived),
            *_input_names(self.y.feature, self.y.derived),
        )

    def _candidates(self) -> list[int]:
        candidates = [self.missing_points, *(item.points for item in self.bins)]
        if "categorical" in (self.x.kind, self.y.kind):
            candidates.append(self.other_points)
        return candidates

    @property
    def max_points(self) -> int:
        return max(self._candidates())

    @property
    def min_points(self) -> int:
        return min(self._candidates())

    def bin_of(self, features: Mapping[str, object]) -> int:
        """The index of the bin the applicant's two values fall in, or MISSING_BIN/OTHER_BIN."""
        x_key = self.x.key_of(features)
        y_key = self.y.key_of(features)
        if x_key is None or y_key is None:
            return MISSING_BIN
        x_cells, y_cells, grid = self._cells
        column, row = x_cells.cell(x_key), y_cells.cell(y_key)
        if column == OTHER_BIN or row == OTHER_BIN:
            return OTHER_BIN
        return grid[column][row]

    def points_of(self, features: Mapping[str, object]) -> int:
        index = self.bin_of(features)
        if index == MISSING_BIN:
            return self.missing_points
        if index == OTHER_BIN:
            return self.other_points
        return self.bins[index].points

    def to_mapping(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": PAIR_KIND,
            "sources": sorted(self.sources),
            "reason_id": self.reason_id,
            "missing_points": self.missing_points,
            "other_points": self.other_points,
            "x": self.x.to_mapping(),
            "y": self.y.to_mapping(),
            "bins": [
                {"x": item.x.to_mapping(), "y": item.y.to_mapping(), "points": item.points}
                for item in self.bins
            ],
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PairCard:
        return cls(
            name=str(data["name"]),
            x=PairAxis.from_mapping(data["x"]),
            y=PairAxis.from_mapping(data["y"]),
            sources=frozenset(str(source) for source in data["sources"]),
            reason_id=str(data["reason_id"]),
            missing_points=int(data["missing_points"]),
            other_points=int(data.get("other_points", 0)),
            bins=tuple(
                PairBin(
                    AxisRange.from_mapping(item["x"]),
                    AxisRange.from_mapping(item["y"]),
                    int(item["points"]),
                )
                for item in data["bins"]
            ),
        )


Characteristic = FeatureCard | PairCard


def card_from_mapping(data: Mapping[str, Any]) -> Characteristic:
    """A characteristic from its artefact form: a pair, or a single feature's card."""
    if data.get("kind") == PAIR_KIND:
        return PairCard.from_mapping(data)
    return FeatureCard.from_mapping(data)


@dataclass(frozen=True, slots=True)
class FeaturePoints:
    feature: str
    points: int
    max_points: int


@dataclass(frozen=True, slots=True)
class ReasonOut:
    """One adverse reason: the governed statement, the feature behind it and its shortfall."""

    reason_id: str
    text_en: str
    text_zh: str
    library_version: str
    feature: str
    points: int
    max_points: int

    @property
    def shortfall(self) -> int:
        return self.max_points - self.points


@dataclass(frozen=True, slots=True)
class CreditDecisionScore:
    score_points: int
    pd: float
    reasons: tuple[ReasonOut, ...]
    model_version: str
    used_sources: tuple[str, ...]
    fallback_used: bool
    base_points: int
    points: tuple[FeaturePoints, ...]


def _canonical_hash(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_inputs(features: Mapping[str, object], known: frozenset[str]) -> None:
    if len(features) > MAX_INPUT_FIELDS:
        raise FeatureValueInvalid(f"more than {MAX_INPUT_FIELDS} input fields")
    for name in features:
        if name not in known and _prohibited(name):
            raise ProhibitedField(f"field {name!r} names a prohibited category of personal data")


class ScorecardModel:
    """One points scorecard, a versioned artefact: its version is the SHA-256 of its content
    (features, points, scaling, reason statements, training data hash and metrics)."""

    __slots__ = (
        "_input_names",
        "_max_points",
        "base_points",
        "features",
        "metadata",
        "name",
        "reason_library_version",
        "reasons",
        "required_sources",
        "scaling",
        "version",
    )

    def __init__(
        self,
        *,
        name: str,
        features: Sequence[Characteristic],
        base_points: int,
        scaling: Scaling,
        reasons: Mapping[str, ReasonStatement],
        reason_library_version: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.features = tuple(features)
        self.base_points = int(base_points)
        self.scaling = scaling
        self.reason_library_version = reason_library_version
        missing = sorted({card.reason_id for card in self.features} - set(reasons))
        if missing:
            raise ModelArtefactInvalid(f"features map to reasons missing from the card: {missing}")
        self.reasons = {
            card.reason_id: reasons[card.reason_id] for card in sorted(self.features, key=_name)
        }
        self.metadata = dict(metadata or {})
        self.required_sources = frozenset().union(*(card.sources for card in self.features))
        self._input_names = frozenset(name for card in self.features for name in card.input_names)
        # Each characteristic's best points, quoted with its earned points in every decision:
        # worked out once here rather than over all its bins on every decision.
        self._max_points = tuple(card.max_points for card in self.features)
        self.version = _canonical_hash(self._content())

    @classmethod
    def build(
        cls,
        *,
        name: str,
        features: Sequence[Characteristic],
        base_points: int,
        scaling: Scaling,
        library: ReasonLibrary,
        metadata: Mapping[str, Any] | None = None,
    ) -> ScorecardModel:
        """A scorecard quoting its reasons from `library` (every feature's id must be in it)."""
        library.check_mapping(card.reason_id for card in features)
        return cls(
            name=name,
            features=features,
            base_points=base_points,
            scaling=scaling,
            reasons={card.reason_id: library.get(card.reason_id) for card in features},
            reason_library_version=library.version,
            metadata=metadata,
        )

    # ------------------------------------------------------------------ scoring
    def points(self, features: Mapping[str, object]) -> tuple[int, tuple[FeaturePoints, ...]]:
        """The score and each characteristic's points; the score is exactly base + sum(points)."""
        earned = tuple(
            FeaturePoints(card.name, card.points_of(features), best)
            for card, best in zip(self.features, self._max_points, strict=True)
        )
        return self.base_points + sum(item.points for item in earned), earned

    def adverse_reasons(self, earned: Iterable[FeaturePoints]) -> tuple[ReasonOut, ...]:
        """The features furthest below their best points, largest shortfall first (ties by the
        card's feature order), one per reason statement, at most four, none with no shortfall."""
        order = {card.name: index for index, card in enumerate(self.features)}
        reason_of = {card.name: card.reason_id for card in self.features}
        ranked = sorted(
            (item for item in earned if item.max_points > item.points),
            key=lambda item: (item.points - item.max_points, order[item.feature]),
        )
        chosen: list[ReasonOut] = []
        quoted: set[str] = set()
        for item in ranked:
            reason_id = reason_of[item.feature]
            if reason_id in quoted:
                continue
            quoted.add(reason_id)
            statement = self.reasons[reason_id]
            chosen.append(
                ReasonOut(
                    reason_id=reason_id,
                    text_en=statement.text_en,
                    text_zh=statement.text_zh,
                    library_version=self.reason_library_version,
                    feature=item.feature,
                    points=item.points,
                    max_points=item.max_points,
                )
            )
            if len(chosen) == MAX_ADVERSE_REASONS:
                break
        return tuple(chosen)

    def score(
        self, features: Mapping[str, object], allowed_sources: Iterable[str]
    ) -> CreditDecisionScore:
        """Score one applicant with this card alone; refuse if consent does not cover it."""
        allowed = frozenset(allowed_sources)
        if not self.required_sources <= allowed:
            raise ConsentInsufficient(
                f"scorecard needs sources {sorted(self.required_sources - allowed)}"
            )
        return self._decide(features, fallback_used=False)

    def _decide(
        self, features: Mapping[str, object], *, fallback_used: bool
    ) -> CreditDecisionScore:
        _check_inputs(features, self._input_names)
        total, earned = self.points(features)
        return CreditDecisionScore(
            score_points=total,
            pd=self.scaling.pd_from_score(total),
            reasons=self.adverse_reasons(earned),
            model_version=self.version,
            used_sources=tuple(sorted(self.required_sources)),
            fallback_used=fallback_used,
            base_points=self.base_points,
            points=earned,
        )

    def pd_of(self, features: Mapping[str, object]) -> float:
        return self.scaling.pd_from_score(self.points(features)[0])

    # ------------------------------------------------------------------ artefact
    def _content(self) -> dict[str, Any]:
        return {
            "format": ARTEFACT_FORMAT,
            "name": self.name,
            "base_points": self.base_points,
            "scaling": {
                "base_score": self.scaling.base_score,
                "base_odds": self.scaling.base_odds,
                "pdo": self.scaling.pdo,
            },
            "features": [card.to_mapping() for card in self.features],
            "reason_library_version": self.reason_library_version,
            "reasons": {
                reason_id: {"en": statement.text_en, "zh": statement.text_zh}
                for reason_id, statement in self.reasons.items()
            },
            "metadata": self.metadata,
        }

    def to_mapping(self) -> dict[str, Any]:
        return {**self._content(), "version": self.version}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ScorecardModel:
        try:
            if data.get("format") != ARTEFACT_FORMAT:
                raise ModelArtefactInvalid("not a scorecard artefact")
            scaling = data["scaling"]
            model = cls(
                name=str(data["name"]),
                features=[card_from_mapping(card) for card in data["features"]],
                base_points=int(data["base_points"]),
                scaling=Scaling(
                    int(scaling["base_score"]), float(scaling["base_odds"]), int(scaling["pdo"])
                ),
                reasons={
                    reason_id: ReasonStatement(reason_id, str(text["en"]), str(text["zh"]))
                    for reason_id, text in data["reasons"].items()
                },
                reason_library_version=str(data["reason_library_version"]),
                metadata=data.get("metadata", {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelArtefactInvalid("scorecard artefact is malformed") from error
        if model.version != data.get("version"):
            raise ModelArtefactInvalid("scorecard content does not match its version hash")
        return model

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        target = path / f"scorecard-{self.version[:16]}.json"
        target.write_text(
            json.dumps(self.to_mapping(), sort_keys=True, ensure_ascii=False, indent=1),
            encoding="utf-8",
        )
        return target

    @classmethod
    def load(cls, path: str | Path) -> ScorecardModel:
        path = Path(path)
        if path.is_dir():
            candidates = sorted(path.glob("scorecard-*.json"))
            if len(candidates) != 1:
                raise ModelArtefactInvalid("expected exactly one scorecard in the directory")
            path = candidates[0]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ModelArtefactInvalid("scorecard artefact is unreadable") from error
        return cls.from_mapping(data)


def _name(card: Characteristic) -> str:
    return card.name


class ScorecardBundle:
    """The primary scorecard and the fallbacks trained without some sources, in order of
    preference. `score` uses the first card whose sources the person's consent covers."""

    __slots__ = ("fallbacks", "primary", "version")

    def __init__(self, primary: ScorecardModel, fallbacks: Sequence[ScorecardModel] = ()) -> None:
        self.primary = primary
        self.fallbacks = tuple(fallbacks)
        self.version = _canonical_hash(
            {"primary": primary.version, "fallbacks": [card.version for card in self.fallbacks]}
        )

    @property
    def models(self) -> tuple[ScorecardModel, ...]:
        return (self.primary, *self.fallbacks)

    def select(self, allowed_sources: Iterable[str]) -> ScorecardModel:
        allowed = frozenset(allowed_sources)
        for model in self.models:
            if model.required_sources <= allowed:
                return model
        raise ConsentInsufficient(
            f"no scorecard can be used with consented sources {sorted(allowed)}"
        )

    def score(
        self, features: Mapping[str, object], allowed_sources: Iterable[str]
    ) -> CreditDecisionScore:
        model = self.select(allowed_sources)
        return model._decide(features, fallback_used=model is not self.primary)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        files = [model.save(path).name for model in self.models]
        manifest = {"format": BUNDLE_FORMAT, "version": self.version, "models": files}
        (path / BUNDLE_MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ScorecardBundle:
        path = Path(directory)
        try:
            manifest = json.loads((path / BUNDLE_MANIFEST).read_text(encoding="utf-8"))
            files = [str(name) for name in manifest["models"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelArtefactInvalid("scorecard bundle manifest is unreadable") from error
        if manifest.get("format") != BUNDLE_FORMAT or not files:
            raise ModelArtefactInvalid("not a scorecard bundle")
        models = [ScorecardModel.load(path / name) for name in files]
        bundle = cls(models[0], models[1:])
        if bundle.version != manifest.get("version"):
            raise ModelArtefactInvalid("scorecard bundle does not match its version hash")
        return bundle
