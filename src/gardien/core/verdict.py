"""Verdicts and findings: what a guard decided, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from gardien.core.categories import CATEGORIES, FLAG_THRESHOLD


class Decision(StrEnum):
    """What the caller should do. Ordered: allow < review < block."""

    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def strictest(cls, *decisions: Decision) -> Decision:
        return max(decisions, key=lambda d: d.rank, default=cls.ALLOW)


_RANK = {Decision.ALLOW: 0, Decision.REVIEW: 1, Decision.BLOCK: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that fired: a lexicon term, an age, a rule, a limit or an error.

    ``start``/``end`` are offsets into the original text of ``field`` (``prompt`` or
    ``negative_prompt``), so a reviewer sees exactly what matched, whatever the disguise.
    """

    kind: str  # term | age | rule | limit | error
    category: str | None
    score: float
    detail: str
    field: str | None = None
    start: int | None = None
    end: int | None = None
    text: str | None = None
    concept: str | None = None
    term: str | None = None
    language: str | None = None
    via: str | None = None  # how it was found: base, leet, stretch, spacing, typo; or a detector
    #: In an image: the box (left, top, width, height, in pixels) the finding refers to.
    region: tuple[int, int, int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A guard's answer, shaped like OpenAI's moderation result plus a decision and findings."""

    decision: Decision
    category_scores: dict[str, float]
    findings: tuple[Finding, ...] = ()
    policy: str = ""
    categories: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.categories:
            flags = {c: self.category_scores.get(c, 0.0) >= FLAG_THRESHOLD for c in CATEGORIES}
            object.__setattr__(self, "categories", flags)

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "categories": dict(self.categories),
            "category_scores": {k: round(v, 4) for k, v in self.category_scores.items()},
            "findings": [f.to_dict() for f in self.findings],
            "policy": self.policy,
        }
