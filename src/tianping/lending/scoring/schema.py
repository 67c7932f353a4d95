"""Dataset schemas: what a scorecard may learn from, where each input comes from, and what it
must never use.

A schema is a small YAML or JSON file. It names the target column and the values that mean
"default", every model input with its type, its data source (`bureau`, `application`,
`bank_statement`, `platform_payments`, ...) and the reason statement it maps to, the protected
attributes that are monitored for fairness but never used as inputs, and the source subsets for
which fallback scorecards are trained (data minimisation: a person who consents to fewer
sources is scored by a card that never needed the others).

A schema may also declare interactions: pairs of its features binned jointly (a
two-dimensional bin per combination of the two values), each of which becomes one more
characteristic of the card with its own reason statement. A pair needs the sources of both of
its features, so a person who consented to only one of them is scored by a fallback card
without it.

Prohibited fields (C1: religion, genetic data, biometrics, blood type, disease or medical
history, and ethnicity) are refused here, at training and at scoring, by the name of the field
and by the category the schema declares for it; a pair can only join declared features, so it
can never hold a prohibited, protected or excluded field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from tianping.lending.scoring.errors import ProhibitedField, SchemaInvalid

__all__ = [
    "MAX_FEATURES",
    "PROHIBITED_CATEGORIES",
    "DatasetSchema",
    "Derivation",
    "FeatureKind",
    "FeatureSpec",
    "InteractionSpec",
    "ProtectedAttribute",
    "check_not_prohibited",
    "is_prohibited_name",
]

MAX_FEATURES = 400
MAX_INTERACTIONS = 20
MAX_NAME_LENGTH = 80
MAX_FALLBACKS = 8
MAX_SCHEMA_BYTES = 256_000
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

# Categories a schema may declare for a field that the law forbids as credit inputs (C1), and
# the name tokens that reveal them when a schema forgets to declare the category. Matching is on
# whole tokens of the field name (split on non-letters and camel case), so `DAYS_REGISTRATION`
# does not match `race` but `ethnic_group` matches `ethnic`.
PROHIBITED_CATEGORIES = frozenset(
    {"religion", "genetic", "biometric", "blood_type", "medical", "ethnicity"}
)
PROHIBITED_NAME_TOKENS = frozenset(
    {
        "religion",
        "religious",
        "faith",
        "gene",
        "genes",
        "genetic",
        "genome",
        "dna",
        "fingerprint",
        "fingerprints",
        "biometric",
        "biometrics",
        "faceprint",
        "iris",
        "bloodtype",
        "disease",
        "diseases",
        "medical",
        "illness",
        "diagnosis",
        "ethnicity",
        "ethnic",
        "race",
    }
)
# Two-token names that are prohibited together but harmless apart ("blood type").
PROHIBITED_NAME_PAIRS = frozenset({("blood", "type"), ("blood", "group"), ("health", "history")})
_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _name_tokens(name: str) -> list[str]:
    spaced = _CAMEL_BOUNDARY.sub("_", name).lower()
    return [token for token in _TOKEN_SPLIT.split(spaced) if token]


def is_prohibited_name(name: str) -> bool:
    """Whether a field's name reveals a prohibited category (C1)."""
    tokens = _name_tokens(name)
    if any(token in PROHIBITED_NAME_TOKENS for token in tokens):
        return True
    return any(pair in PROHIBITED_NAME_PAIRS for pair in pairwise(tokens))


def check_not_prohibited(name: str, category: str | None = None) -> None:
    """Raise `ProhibitedField` if the field's declared category or its name is prohibited."""
    if category is not None and category in PROHIBITED_CATEGORIES:
        raise ProhibitedField(f"field {name!r} is of prohibited category {category!r}")
    if is_prohibited_name(name):
        raise ProhibitedField(f"field {name!r} names a prohibited category of personal data")


class FeatureKind(StrEnum):
    NUMERICAL = "numerical"
    CATEGORICAL = "categorical"


class DerivationOp(StrEnum):
    RATIO = "ratio"
    MAX = "max"
    COUNT_POSITIVE = "count_positive"


MAX_DERIVATION_INPUTS = 12


@dataclass(frozen=True, slots=True)
class Derivation:
    """A feature computed from other declared features' raw numeric values: `ratio` (a / b,
    missing when either is missing, b is 0, or the quotient is too large for a float), `max`
    (the largest present value) or `count_positive` (how many present values are above 0,
    e.g. months in arrears). Missing
    when every input is missing. One pure function serves training and decisions, so both
    compute the same number."""

    op: DerivationOp
    inputs: tuple[str, ...]

    def __post_init__(self) -> None:
        expected_two = self.op is DerivationOp.RATIO
        if (expected_two and len(self.inputs) != 2) or not (
            2 <= len(self.inputs) <= MAX_DERIVATION_INPUTS
        ):
            raise SchemaInvalid("a derivation has the wrong number of inputs")

    def compute(self, values: Sequence[float | None]) -> float | None:
        if self.op is DerivationOp.RATIO:
            numerator, denominator = values
            if numerator is None or denominator is None or denominator == 0:
                return None
            quotient = numerator / denominator
            # A denominator near zero (a stated income of a fraction of a fen, say) overflows to
            # infinity; such a ratio says nothing, so it counts as missing rather than refusing
            # the applicant (found by the scorecard's property test).
            return quotient if math.isfinite(quotient) else None
        present = [value for value in values if value is not None]
        if not present:
            return None
        if self.op is DerivationOp.MAX:
            return max(present)
        return float(sum(1 for value in present if value > 0))


class Monotonic(StrEnum):
    """The trend the default rate must follow across a numerical feature's bins. `auto` lets
    the binning pick ascending or descending (optbinning's `auto_asc_desc`); `peak`/`valley`
    allow one turn for features such as age where the truth is not monotone."""

    AUTO = "auto"
    ASCENDING = "ascending"
    DESCENDING = "descending"
    PEAK = "peak"
    VALLEY = "valley"


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    kind: FeatureKind
    source: str
    reason_id: str
    monotonic: Monotonic = Monotonic.AUTO
    category: str | None = None
    # A derived feature (utilisation = balance / limit, months in arrears) is computed from
    # other declared features: scorecards read these far better than the raw amounts. It needs
    # the sources of its inputs as well as its own.
    derived: Derivation | None = None


@dataclass(frozen=True, slots=True)
class InteractionSpec:
    """Two declared features binned jointly into one characteristic (`x` across, `y` down).
    Its points depend on the combination of the two values, which an additive card of single
    features cannot express (for example a late payment last month together with one the
    month before)."""

    name: str
    x: str
    y: str
    reason_id: str

    @property
    def members(self) -> tuple[str, str]:
        return (self.x, self.y)


@dataclass(frozen=True, slots=True)
class ProtectedAttribute:
    """A protected attribute watched by fairness monitoring. `groups` maps raw values to group
    labels (values not listed are `other`); `age_bands` turns a numeric age into bands
    ("<25", "25-34", ...), after `age_scale` (for example -1/365.25 for Home Credit's
    DAYS_BIRTH, which counts days before the application as a negative number)."""

    name: str
    column: str
    groups: Mapping[str, str] = field(default_factory=dict)
    age_bands: tuple[int, ...] = ()
    age_scale: float = 1.0

    def group_of(self, raw: object) -> str:
        if self.age_bands:
            try:
                age = float(str(raw)) * self.age_scale
            except ValueError:
                return "unknown"
            if age != age:  # NaN: an unrecorded age
                return "unknown"
            lower = None
            for bound in self.age_bands:
                if age < bound:
                    return f"<{bound}" if lower is None else f"{lower}-{bound - 1}"
                lower = bound
            return f"{lower}+"
        return self.groups.get(_raw_key(raw), "other")


def _raw_key(raw: object) -> str:
    """The text form of a raw value used for group and category lookups: integral floats read
    from CSV (2.0) and integers (2) must match the same key ("2")."""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def _derivation(raw: object, where: str) -> Derivation | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SchemaInvalid(f"{where}: derive must be a mapping with op and of")
    inputs = raw.get("of")
    if not isinstance(inputs, Sequence) or isinstance(inputs, str):
        raise SchemaInvalid(f"{where}: derive.of must list features")
    try:
        op = DerivationOp(str(raw.get("op")))
    except ValueError as error:
        raise SchemaInvalid(f"{where}: unknown derivation") from error
    return Derivation(op, tuple(str(name) for name in inputs))


def _interactions(raw: object) -> tuple[InteractionSpec, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise SchemaInvalid("interactions must be a list")
    pairs = []
    for index, item in enumerate(raw):
        where = f"interaction {index}"
        if not isinstance(item, Mapping):
            raise SchemaInvalid(f"{where}: must be a mapping")
        members = _require(item, "of", where)
        if not isinstance(members, Sequence) or isinstance(members, str) or len(members) != 2:
            raise SchemaInvalid(f"{where}: of must list exactly two features")
        pairs.append(
            InteractionSpec(
                name=_check_name(_require(item, "name", where), where),
                x=_check_name(members[0], where),
                y=_check_name(members[1], where),
                reason_id=str(_require(item, "reason", where)),
            )
        )
    return tuple(pairs)


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise SchemaInvalid(f"{where}: missing {key!r}")
    return mapping[key]


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name) or len(name) > MAX_NAME_LENGTH:
        raise SchemaInvalid(f"{where}: invalid name")
    return name


@dataclass(frozen=True, slots=True)
class DatasetSchema:
    name: str
    version: str
    target_column: str
    positive_values: tuple[str, ...]
    features: tuple[FeatureSpec, ...]
    protected: tuple[ProtectedAttribute, ...] = ()
    fallback_sources: tuple[frozenset[str], ...] = ()
    excluded: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    interactions: tuple[InteractionSpec, ...] = ()

    def __post_init__(self) -> None:
        if not self.features:
            raise SchemaInvalid("schema declares no features")
        if len(self.features) > MAX_FEATURES:
            raise SchemaInvalid(f"schema declares more than {MAX_FEATURES} features")
        names = [spec.name for spec in self.features]
        if len(set(names)) != len(names):
            raise SchemaInvalid("schema declares a feature twice")
        for spec in self.features:
            check_not_prohibited(spec.name, spec.category)
        protected_columns = {attribute.column for attribute in self.protected}
        if protected_columns & set(names):
            raise SchemaInvalid("a protected attribute is declared as a model input")
        if self.target_column in names:
            raise SchemaInvalid("the target is declared as a model input")
        if len(self.fallback_sources) > MAX_FALLBACKS:
            raise SchemaInvalid(f"schema declares more than {MAX_FALLBACKS} fallbacks")
        for subset in self.fallback_sources:
            if not subset or not subset < self.sources:
                raise SchemaInvalid("a fallback must be a proper, non-empty subset of sources")
        by_name = {spec.name: spec for spec in self.features}
        for spec in self.features:
            if spec.derived is None:
                continue
            for part in spec.derived.inputs:
                base = by_name.get(part)
                if base is None or base.derived is not None:
                    raise SchemaInvalid(f"derived feature {spec.name!r}: bad input")
            if spec.kind != FeatureKind.NUMERICAL:
                raise SchemaInvalid(f"derived feature {spec.name!r} must be numerical")
        self._check_interactions(set(names), protected_columns)

    def _check_interactions(self, names: set[str], protected_columns: set[str]) -> None:
        if len(self.interactions) > MAX_INTERACTIONS:
            raise SchemaInvalid(f"schema declares more than {MAX_INTERACTIONS} interactions")
        seen_names = set(names)
        seen_pairs: set[frozenset[str]] = set()
        for pair in self.interactions:
            check_not_prohibited(pair.name)
            if pair.name in seen_names:
                raise SchemaInvalid(f"interaction {pair.name!r} reuses a name")
            seen_names.add(pair.name)
            for member in pair.members:
                # Checked here as well as by "must be a declared feature", so that the refusal
                # names the rule a pair broke rather than only that the name is unknown.
                check_not_prohibited(member)
                if member in protected_columns or member in self.excluded:
                    raise SchemaInvalid(
                        f"interaction {pair.name!r} reads a protected or excluded column"
                    )
                if member not in names:
                    raise SchemaInvalid(f"interaction {pair.name!r}: {member!r} is not a feature")
            if pair.x == pair.y or frozenset(pair.members) in seen_pairs:
                raise SchemaInvalid(f"interaction {pair.name!r} must join two new features")
            seen_pairs.add(frozenset(pair.members))

    def required_sources(self, spec: FeatureSpec) -> frozenset[str]:
        """The sources a feature needs: its own, and for a derived one also its inputs'."""
        if spec.derived is None:
            return frozenset({spec.source})
        parts = (self.feature(part).source for part in spec.derived.inputs)
        return frozenset({spec.source, *parts})

    def pair_sources(self, pair: InteractionSpec) -> frozenset[str]:
        """The sources a pair needs: all those of both of its features."""
        return self.required_sources(self.feature(pair.x)) | self.required_sources(
            self.feature(pair.y)
        )

    @property
    def reason_ids(self) -> tuple[str, ...]:
        """Every reason id the schema's characteristics (features and pairs) map to."""
        return (
            *(spec.reason_id for spec in self.features),
            *(pair.reason_id for pair in self.interactions),
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.features)

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(spec.source for spec in self.features)

    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise SchemaInvalid(f"schema has no feature {name!r}")

    def is_positive(self, raw: object) -> bool:
        return _raw_key(raw) in self.positive_values

    def content_hash(self) -> str:
        """SHA-256 of the schema's canonical JSON: models record which schema they follow."""
        text = json.dumps(self.to_mapping(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_mapping(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "target": {"column": self.target_column, "positive": list(self.positive_values)},
            "features": [
                {
                    "name": spec.name,
                    "type": spec.kind.value,
                    "source": spec.source,
                    "reason": spec.reason_id,
                    "monotonic": spec.monotonic.value,
                    **({"category": spec.category} if spec.category else {}),
                    **(
                        {"derive": {"op": spec.derived.op.value, "of": list(spec.derived.inputs)}}
                        if spec.derived
                        else {}
                    ),
                }
                for spec in self.features
            ],
            "protected": [
                {
                    "name": attribute.name,
                    "column": attribute.column,
                    **({"groups": dict(attribute.groups)} if attribute.groups else {}),
                    **({"age_bands": list(attribute.age_bands)} if attribute.age_bands else {}),
                    **({"age_scale": attribute.age_scale} if attribute.age_scale != 1.0 else {}),
                }
                for attribute in self.protected
            ],
            "fallbacks": [sorted(subset) for subset in self.fallback_sources],
            "excluded": dict(self.excluded),
            # Only present when declared, so that the hash of a schema without pairs (and of
            # every model trained on it) is what it was before pairs existed.
            **(
                {
                    "interactions": [
                        {"name": pair.name, "of": [pair.x, pair.y], "reason": pair.reason_id}
                        for pair in self.interactions
                    ]
                }
                if self.interactions
                else {}
            ),
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DatasetSchema:
        if not isinstance(data, Mapping):
            raise SchemaInvalid("schema must be a mapping")
        target = _require(data, "target", "schema")
        raw_features = _require(data, "features", "schema")
        if not isinstance(raw_features, Sequence) or not isinstance(target, Mapping):
            raise SchemaInvalid("schema: target must be a mapping and features a list")
        features = []
        for index, raw in enumerate(raw_features):
            where = f"feature {index}"
            if not isinstance(raw, Mapping):
                raise SchemaInvalid(f"{where}: must be a mapping")
            name = _check_name(_require(raw, "name", where), where)
            category = raw.get("category")
            check_not_prohibited(name, category if isinstance(category, str) else None)
            try:
                kind = FeatureKind(_require(raw, "type", where))
                monotonic = Monotonic(raw.get("monotonic", Monotonic.AUTO.value))
            except ValueError as error:
                raise SchemaInvalid(f"{where}: unknown type or monotonic trend") from error
            derived = _derivation(raw.get("derive"), where)
            features.append(
                FeatureSpec(
                    name=name,
                    kind=kind,
                    source=_check_name(_require(raw, "source", where), where),
                    reason_id=str(_require(raw, "reason", where)),
                    monotonic=monotonic,
                    category=category if isinstance(category, str) else None,
                    derived=derived,
                )
            )
        protected = []
        for index, raw in enumerate(data.get("protected", ())):
            where = f"protected attribute {index}"
            protected.append(
                ProtectedAttribute(
                    name=_check_name(_require(raw, "name", where), where),
                    column=str(_require(raw, "column", where)),
                    groups={str(key): str(value) for key, value in raw.get("groups", {}).items()},
                    age_bands=tuple(int(bound) for bound in raw.get("age_bands", ())),
                    age_scale=float(raw.get("age_scale", 1.0)),
                )
            )
        return cls(
            name=_check_name(_require(data, "name", "schema"), "schema"),
            version=str(data.get("version", "1")),
            target_column=str(_require(target, "column", "target")),
            positive_values=tuple(str(value) for value in _require(target, "positive", "target")),
            features=tuple(features),
            protected=tuple(protected),
            fallback_sources=tuple(
                frozenset(str(source) for source in subset) for subset in data.get("fallbacks", ())
            ),
            excluded={str(key): str(value) for key, value in data.get("excluded", {}).items()},
            description=str(data.get("description", "")),
            interactions=_interactions(data.get("interactions", ())),
        )

    @classmethod
    def load(cls, path: str | Path) -> DatasetSchema:
        """Read a schema from a YAML (.yaml/.yml) or JSON (.json) file."""
        path = Path(path)
        if not path.is_absolute() and not path.exists():
            path = SCHEMA_DIR / path
        text = path.read_text(encoding="utf-8")
        if len(text.encode()) > MAX_SCHEMA_BYTES:
            raise SchemaInvalid("schema file is too large")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return cls.from_mapping(data)
