"""A stand-in credit model for tests of the lending service and its routes: it answers every
application with the same score, probability of default and reasons, so a test is about the
service (consent, rules, pricing, money) and not about a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


@dataclass(frozen=True)
class _Reason:
    reason_id: str
    text_en: str
    text_zh: str


@dataclass
class FixedScorer:
    """Answers every application with the same score and probability of default."""

    score_points: int = 700
    pd: float = 0.02
    seen_sources: list[frozenset[str]] = field(default_factory=list)

    def score(self, features: Any, allowed_sources: Any) -> Any:
        sources = frozenset(allowed_sources)
        self.seen_sources.append(sources)
        return type(
            "Scored",
            (),
            {
                "score_points": self.score_points,
                "pd": self.pd,
                "reasons": (
                    _Reason("R-INCOME-LOW", "Income is low for the amount", "收入相对金额偏低"),
                    _Reason("R-HISTORY-SHORT", "Short payment history", "支付历史较短"),
                ),
                "model_version": "fixed-1",
                "used_sources": tuple(sorted(sources)),
                "fallback_used": "platform_payments" not in sources,
            },
        )()


def rate_text(recovered: int, written_off: int) -> str:
    """A recovery rate as the portfolio reports it, computed apart from it: six decimal
    places, rounded half up."""
    return str((Decimal(recovered) / written_off).quantize(Decimal("0.000001"), ROUND_HALF_UP))
