"""Rulebooks: parameters plus rules, loaded from a directory, overlaid, hashed and evaluated.

A rulebook lives in a directory (the shipped ones under `tianping/rules/rulebooks/<name>/`):

    parameters/*.yaml   dated, cited parameters (see `parameters.py`)
    rules.py            the rule functions, registered on a module-level `rules = RuleSet()`
    overlays/*.yaml     named what-if overlays ("reforms") the sandbox can apply
    scenarios/*.yaml    the rulebook's scenario tests

Everything is checked at load time, and a failure names the file and the key: a parameter
without a reference, a wrong unit, two values on one date, a rule that declares a parameter the
rulebook does not have. A loaded rulebook is immutable; applying an overlay returns a new one.

Its version is a content hash (SHA-256) over its parameters (every dated value), its overlays
and the source of its rules, so a decision recorded with the hash proves which rules and which
numbers decided it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tianping.rules.errors import RulebookError, UnknownPoint, UnknownRule
from tianping.rules.model import Decision, Finding, Outcome
from tianping.rules.parameters import Parameter, parse_parameter, parse_series
from tianping.rules.registry import ENFORCEMENT_POINTS, NotInForce, RuleContext, RuleSet, RuleSpec

RULEBOOKS_DIR = Path(__file__).resolve().parent / "rulebooks"
_YAML_BYTES_MAX = 1024 * 1024


class _StrictStringLoader(getattr(yaml, "CBaseLoader", yaml.BaseLoader)):  # type: ignore[misc]
    """YAML with every scalar kept as a string, and no key written twice in one mapping.

    The base loader resolves no types, so `0.30` stays the text "0.30" and is parsed exactly by
    its unit, never through a float, and `2016-07-01` stays text too. YAML itself keeps only the
    last of two equal keys, which would drop a dated value silently after a copy-paste; this
    loader refuses the file instead. libyaml's C parser is used when installed (it makes loading
    `cn` about three times faster).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise RulebookError(
                        f"{getattr(self, 'source_name', '(yaml)')}:{key_node.start_mark.line + 1}",
                        key_node.value,
                        "written twice in one mapping (YAML would keep only the last)",
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]


def read_yaml(path: Path) -> Any:
    """Parse a rulebook YAML file strictly (see `_StrictStringLoader`)."""
    if path.stat().st_size > _YAML_BYTES_MAX:
        raise RulebookError(str(path), "(file)", "larger than 1 MiB")
    loader = _StrictStringLoader(path.read_text(encoding="utf-8"))
    loader.source_name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        raise RulebookError(str(path), "(file)", f"not valid YAML: {error}") from None
    finally:
        loader.dispose()


@dataclass(slots=True, frozen=True)
class Overlay:
    """A named change to parameters from given dates, applied without editing the base."""

    name: str
    description: str
    changes: Mapping[str, Any]  # parameter name -> raw `values:` mapping, parsed on apply
    source: str = ""

    @classmethod
    def from_file(cls, path: Path) -> Overlay:
        raw = read_yaml(path)
        source = str(path)
        if not isinstance(raw, dict):
            raise RulebookError(source, "(file)", "an overlay is a mapping")
        unknown = set(raw) - {"name", "description", "changes"}
        if unknown:
            raise RulebookError(source, "(file)", f"unknown key(s): {', '.join(sorted(unknown))}")
        if not raw.get("name") or not isinstance(raw.get("changes"), dict) or not raw["changes"]:
            raise RulebookError(source, "(file)", "an overlay has a name and changes")
        return cls(str(raw["name"]), str(raw.get("description", "")), raw["changes"], source)


@dataclass(slots=True, frozen=True)
class ParameterChange:
    """One difference between two rulebooks' parameters, for `rules diff`."""

    name: str
    start: date
    before: Any
    after: Any


# Identity equality (eq=False): two loads of one directory are equal in content (same hash) but
# distinct objects, and identity keeps the caches below from hashing mappings.
@dataclass(frozen=True, eq=False)
class Rulebook:
    """An immutable rulebook: evaluate commands at enforcement points against it."""

    name: str
    parameters: Mapping[str, Parameter]
    rules: tuple[RuleSpec, ...]
    rules_source: str
    overlays: tuple[str, ...] = ()
    directory: Path | None = None
    _by_point: dict[str, tuple[RuleSpec, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for spec in self.rules:
            for name in spec.parameters:
                if name not in self.parameters:
                    raise RulebookError(
                        f"rule {spec.id}", name, "declares a parameter the rulebook does not have"
                    )
        by_point: dict[str, list[RuleSpec]] = {}
        for spec in self.rules:
            by_point.setdefault(spec.point, []).append(spec)
        self._by_point.update({point: tuple(specs) for point, specs in by_point.items()})

    # -- identity -------------------------------------------------------------------------

    @property
    def content_hash(self) -> str:
        return _content_hash(self)

    @property
    def label(self) -> str:
        return "+".join((self.name, *self.overlays))

    # -- lookups --------------------------------------------------------------------------

    def rule(self, rule_id: str) -> RuleSpec:
        for spec in self.rules:
            if spec.id == rule_id:
                return spec
        raise UnknownRule(f"no rule has id {rule_id!r} in rulebook {self.label}")

    def rules_at(self, point: str) -> tuple[RuleSpec, ...]:
        if point not in ENFORCEMENT_POINTS:
            raise UnknownPoint(f"no enforcement point is called {point!r}")
        return self._by_point.get(point, ())

    def values_on(self, on: date) -> Mapping[str, Any]:
        """Every parameter's value on a date (REPEALED where none is in force), cached."""
        return _values_on(self, on)

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self, point: str, facts: Mapping[str, Any], on: date) -> Decision:
        """Ask every rule at `point` about a command described by `facts`, on date `on`."""
        values = self.values_on(on)
        findings: list[Finding] = []
        evaluated: list[str] = []
        outcome = Outcome.allow
        for spec in self.rules_at(point):
            evaluated.append(spec.id)
            context = RuleContext(spec.id, on, values, spec.parameters, facts)
            try:
                finding = spec.function(context)
            except NotInForce:
                continue
            if finding is not None:
                findings.append(finding)
                outcome = max(outcome, finding.outcome)
        return Decision(
            point, on, outcome, tuple(findings), tuple(evaluated), self.label, self.content_hash
        )

    # -- overlays -------------------------------------------------------------------------

    def with_overlay(self, overlay: Overlay) -> Rulebook:
        """A new rulebook with the overlay's values from their dates on; the base is untouched."""
        parameters = dict(self.parameters)
        for name, raw in overlay.changes.items():
            base = parameters.get(name)
            if base is None:
                raise RulebookError(
                    overlay.source or overlay.name,
                    name,
                    f"changes a parameter rulebook {self.name} does not have",
                )
            starts, values = parse_series(base.unit, raw, overlay.source or overlay.name, name)
            parameters[name] = base.with_values_from(starts, values)
        return Rulebook(
            self.name,
            parameters,
            self.rules,
            self.rules_source,
            (*self.overlays, overlay.name),
            self.directory,
        )

    def overlay_named(self, name: str) -> Overlay:
        if self.directory is None:
            raise RulebookError(self.name, name, "this rulebook has no overlay directory")
        path = self.directory / "overlays" / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in (self.directory / "overlays").glob("*.yaml"))
            raise RulebookError(
                str(path), name, f"no such overlay (known: {', '.join(known) or 'none'})"
            )
        return Overlay.from_file(path)


def diff(base: Rulebook, other: Rulebook) -> list[ParameterChange]:
    """Every dated value that differs between two rulebooks, by parameter and date."""
    changes: list[ParameterChange] = []
    for name in sorted(set(base.parameters) | set(other.parameters)):
        before = base.parameters.get(name)
        after = other.parameters.get(name)
        dates = sorted(set(before.starts if before else ()) | set(after.starts if after else ()))
        for start in dates:
            old = before.value_on(start) if before else None
            new = after.value_on(start) if after else None
            if old != new:
                changes.append(ParameterChange(name, start, old, new))
    return changes


@lru_cache(maxsize=4096)
def _values_on(rulebook: Rulebook, on: date) -> Mapping[str, Any]:
    return {name: parameter.value_on(on) for name, parameter in rulebook.parameters.items()}


@lru_cache(maxsize=256)
def _content_hash(rulebook: Rulebook) -> str:
    document = {
        "name": rulebook.name,
        "overlays": list(rulebook.overlays),
        "parameters": {
            name: {
                "unit": p.unit,
                "values": [
                    [s.isoformat(), _canonical(v)] for s, v in zip(p.starts, p.values, strict=True)
                ],
            }
            for name, p in sorted(rulebook.parameters.items())
        },
        "rules": rulebook.rules_source,
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in sorted(value.items())}
    return None if value is None else str(value)


def load_rulebook(name_or_path: str | Path, overlays: tuple[str, ...] = ()) -> Rulebook:
    """Load a shipped rulebook by name (`cn`, `eu`) or any rulebook directory, then apply the
    named overlays in order."""
    directory = Path(name_or_path)
    if not directory.is_dir():
        directory = RULEBOOKS_DIR / str(name_or_path)
    if not directory.is_dir():
        known = sorted(p.name for p in RULEBOOKS_DIR.iterdir() if (p / "rules.py").is_file())
        raise RulebookError(
            str(name_or_path), "(rulebook)", f"no such rulebook (shipped: {', '.join(known)})"
        )
    parameters: dict[str, Parameter] = {}
    for path in sorted((directory / "parameters").glob("*.yaml")):
        raw = read_yaml(path)
        if not isinstance(raw, dict):
            raise RulebookError(str(path), "(file)", "a parameter file is a mapping of names")
        for name, body in raw.items():
            if name in parameters:
                raise RulebookError(str(path), name, "defined in two parameter files")
            parameters[name] = parse_parameter(name, body, str(path))
    rules_path = directory / "rules.py"
    module = _import_rules(directory.name, rules_path)
    rule_set = getattr(module, "rules", None)
    if not isinstance(rule_set, RuleSet):
        raise RulebookError(str(rules_path), "rules", "the module defines `rules = RuleSet()`")
    # The version covers every Python file of the rulebook, since rules.py may gather rules
    # registered in sibling modules.
    source = "".join(
        f"# {path.name}\n{path.read_text(encoding='utf-8')}"
        for path in sorted(directory.glob("*.py"))
    )
    rulebook = Rulebook(
        directory.name, parameters, tuple(rule_set.rules), source, directory=directory
    )
    for overlay in overlays:
        rulebook = rulebook.with_overlay(rulebook.overlay_named(overlay))
    return rulebook


def _import_rules(name: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise RulebookError(str(path), "(file)", "a rulebook has a rules.py")
    if path.parent.parent == RULEBOOKS_DIR:
        # Shipped rulebooks are packages, so their rules may live in several modules.
        return importlib.import_module(f"tianping.rules.rulebooks.{name}.rules")
    module_name = f"_tianping_rulebook_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RulebookError(str(path), "(file)", "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[module_name]
        raise
    return module


def rule_source(spec: RuleSpec) -> str:
    """The rule function's source, for `rules show`."""
    try:
        return inspect.getsource(spec.function)
    except (OSError, TypeError):
        return ""
