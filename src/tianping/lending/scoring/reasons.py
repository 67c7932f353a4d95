"""The governed, versioned library of adverse-action reason statements.

Each reason has a stable id (`R-UTIL-HIGH`), an English and a Chinese statement and belongs to
one library version. Decisions quote reasons by id with the library version, so a statement
that is reworded later never changes what an old decision said (ECOA/Reg B adverse-action
notices, PIPL Art. 24 explanations). Dataset schemas map every model feature to one id; the
mapping is checked when a model is built, so no decision can produce an unmapped reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tianping.lending.scoring.errors import ReasonLibraryInvalid

__all__ = [
    "DEFAULT_LIBRARY_PATH",
    "MAX_REASONS",
    "ReasonLibrary",
    "ReasonStatement",
    "load_default_library",
]

DEFAULT_LIBRARY_PATH = Path(__file__).resolve().parent / "reason_library.yaml"
MAX_REASONS = 500
MAX_STATEMENT_LENGTH = 300
REASON_ID_PATTERN = re.compile(r"^R-[A-Z0-9]+(?:-[A-Z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class ReasonStatement:
    reason_id: str
    text_en: str
    text_zh: str


@dataclass(frozen=True, slots=True)
class ReasonLibrary:
    version: str
    statements: Mapping[str, ReasonStatement]

    def __post_init__(self) -> None:
        if not self.version:
            raise ReasonLibraryInvalid("reason library has no version")
        if len(self.statements) > MAX_REASONS:
            raise ReasonLibraryInvalid(f"reason library holds more than {MAX_REASONS} reasons")
        for reason_id, statement in self.statements.items():
            if not REASON_ID_PATTERN.match(reason_id) or statement.reason_id != reason_id:
                raise ReasonLibraryInvalid(f"malformed reason id {reason_id!r}")
            for text in (statement.text_en, statement.text_zh):
                if not text or len(text) > MAX_STATEMENT_LENGTH:
                    raise ReasonLibraryInvalid(f"reason {reason_id!r} has a bad statement")

    def get(self, reason_id: str) -> ReasonStatement:
        try:
            return self.statements[reason_id]
        except KeyError:
            raise ReasonLibraryInvalid(f"unknown reason id {reason_id!r}") from None

    def check_mapping(self, reason_ids: Iterable[str]) -> None:
        """Raise unless every id a model maps a feature to is in this library."""
        missing = sorted(set(reason_ids) - set(self.statements))
        if missing:
            raise ReasonLibraryInvalid(f"features map to unknown reason ids: {missing}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ReasonLibrary:
        if not isinstance(data, Mapping) or not isinstance(data.get("reasons"), list):
            raise ReasonLibraryInvalid("reason library must hold a list of reasons")
        statements: dict[str, ReasonStatement] = {}
        for raw in data["reasons"]:
            if not isinstance(raw, Mapping):
                raise ReasonLibraryInvalid("each reason must be a mapping")
            reason_id = str(raw.get("id", ""))
            if reason_id in statements:
                raise ReasonLibraryInvalid(f"reason id {reason_id!r} appears twice")
            statements[reason_id] = ReasonStatement(
                reason_id, str(raw.get("en", "")), str(raw.get("zh", ""))
            )
        return cls(version=str(data.get("version", "")), statements=statements)

    @classmethod
    def load(cls, path: str | Path) -> ReasonLibrary:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return cls.from_mapping(data)


def load_default_library() -> ReasonLibrary:
    """The library shipped with the package (reason_library.yaml)."""
    return ReasonLibrary.load(DEFAULT_LIBRARY_PATH)
