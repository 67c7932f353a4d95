"""Which rulebook a process enforces: configuration, not code.

The settings `rulebook` and `rulebook_overlays` of `tianping.config.Settings` choose it, from
the TOML settings file or from two environment variables:

    TIANPING_RULEBOOK            a shipped rulebook (`cn`, `eu`) or a rulebook directory;
                                 default `cn`
    TIANPING_RULEBOOK_OVERLAYS   overlay names applied in order, comma-separated
                                 (`interest-cap-15-4,class-ii-cap`); default none

A rulebook with overlays is written as a label, `name+overlay+overlay` (the form decisions
record), which `parse_label` reads back for `tianping rules diff cn cn+interest-cap-15-4`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from tianping.config import load_settings
from tianping.rules.checks import load_checked_rulebook
from tianping.rules.errors import RulebookError
from tianping.rules.rulebook import Rulebook

RULEBOOK_ENV_VAR = "TIANPING_RULEBOOK"
OVERLAYS_ENV_VAR = "TIANPING_RULEBOOK_OVERLAYS"
DEFAULT_RULEBOOK = "cn"


@dataclass(frozen=True, slots=True)
class RulesSettings:
    """The rulebook a process enforces and the overlays applied to it, in order."""

    rulebook: str = DEFAULT_RULEBOOK
    rulebook_overlays: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "+".join((self.rulebook, *self.rulebook_overlays))


def _overlay_names(text: str, source: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(","))
    if names == ("",):
        return ()
    if any(not name for name in names):
        raise RulebookError(source, "(overlays)", "an empty overlay name (a stray comma?)")
    return names


def rules_settings(environ: Mapping[str, str] | None = None) -> RulesSettings:
    """The rules settings: from the process's `Settings` (environment and settings file), or,
    when `environ` is given, from those variables alone."""
    if environ is None:
        settings = load_settings()
        return RulesSettings(settings.rulebook, settings.rulebook_overlays)
    rulebook = environ.get(RULEBOOK_ENV_VAR, "").strip() or DEFAULT_RULEBOOK
    overlays = _overlay_names(environ.get(OVERLAYS_ENV_VAR, ""), OVERLAYS_ENV_VAR)
    return RulesSettings(rulebook, overlays)


def parse_label(label: str) -> tuple[str, tuple[str, ...]]:
    """`cn+a+b` -> ("cn", ("a", "b")): a rulebook label as decisions and diffs write it."""
    name, *overlays = (part.strip() for part in label.split("+"))
    if not name or any(not overlay for overlay in overlays):
        raise RulebookError(label, "(label)", "a label is NAME or NAME+OVERLAY[+OVERLAY...]")
    return name, tuple(overlays)


@lru_cache(maxsize=16)
def cached_rulebook(name: str, overlays: tuple[str, ...] = ()) -> Rulebook:
    """A rulebook loaded once per process and name: servers answer many requests from one.

    Rulebooks are immutable, so sharing one between threads and requests is safe. The load
    also runs the checks of `tianping.rules.checks`, so a rule reading a parameter it does not
    declare fails here rather than on the first command that reaches the read.
    """
    return load_checked_rulebook(name, overlays)


def configured_rulebook(settings: RulesSettings | None = None) -> Rulebook:
    """The rulebook the settings choose (read from the environment when omitted)."""
    chosen = settings or rules_settings()
    return cached_rulebook(chosen.rulebook, chosen.rulebook_overlays)
