"""Policies: data that maps category scores to decisions.

The guard decides what it sees; the policy chooses what to do about it. ``sexual/minors`` can be
made stricter by a policy, never switched off or relaxed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gardien.core.categories import CATEGORIES, FLAG_THRESHOLD, SEXUAL_MINORS
from gardien.core.errors import PolicyError
from gardien.core.verdict import Decision

#: ``sexual/minors`` always blocks at or below this score, whatever the policy says.
SEXUAL_MINORS_MAX_BLOCK = FLAG_THRESHOLD
#: ...and always goes to review at or below this one.
SEXUAL_MINORS_MAX_REVIEW = 0.35


class Thresholds(BaseModel):
    """Scores at which a category goes to review or block (``None``: never)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    review: float | None = Field(default=None, ge=0.0, le=1.0)
    block: float | None = Field(default=None, ge=0.0, le=1.0)

    def decide(self, score: float) -> Decision:
        if self.block is not None and score >= self.block:
            return Decision.BLOCK
        if self.review is not None and score >= self.review:
            return Decision.REVIEW
        return Decision.ALLOW


class Policy(BaseModel):
    """A named mapping from categories to decisions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    #: Decision when a guard fails or an input can't be screened (too long, undecodable).
    on_error: Decision = Decision.REVIEW
    thresholds: dict[str, Thresholds] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sexual_minors_is_never_relaxed(self) -> Policy:
        unknown = sorted(set(self.thresholds) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"thresholds: unknown categories {unknown}; known: {list(CATEGORIES)}")
        if self.on_error is Decision.ALLOW:
            raise ValueError("on_error: must be 'review' or 'block'; a failed check never allows")
        sm = self.thresholds.get(SEXUAL_MINORS)
        if sm is None or sm.block is None or sm.block > SEXUAL_MINORS_MAX_BLOCK:
            raise ValueError(
                f"thresholds.{SEXUAL_MINORS}.block: must be set and <= {SEXUAL_MINORS_MAX_BLOCK}; "
                f"no policy can switch off {SEXUAL_MINORS}"
            )
        if sm.review is None or sm.review > SEXUAL_MINORS_MAX_REVIEW:
            raise ValueError(
                f"thresholds.{SEXUAL_MINORS}.review: must be set and <= {SEXUAL_MINORS_MAX_REVIEW}"
            )
        return self

    def decide(self, scores: Mapping[str, float]) -> Decision:
        return Decision.strictest(
            *(t.decide(scores.get(cat, 0.0)) for cat, t in self.thresholds.items())
        )


BUILTIN_POLICIES = ("child-safety", "strict", "generation")


def _parse(data: dict[str, object], source: str) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg']}" for e in exc.errors()
        )
        raise PolicyError(f"{source}: {problems}") from None


def load_policy(name_or_path: str | Path = "child-safety") -> Policy:
    """Load a bundled policy by name, or a TOML policy file by path."""
    text = str(name_or_path)
    if text in BUILTIN_POLICIES:
        raw = resources.files("gardien.core.policies").joinpath(f"{text}.toml").read_bytes()
        return _parse(tomllib.loads(raw.decode("utf-8")), f"policy {text!r}")
    path = Path(text)
    if not path.is_file():
        raise PolicyError(
            f"{text}: no such policy file; built-in policies are {', '.join(BUILTIN_POLICIES)}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    return _parse(data, str(path))
