"""The second stage: a model that reviews what the rules leave uncertain.

The rules are fast and explainable, but a prompt can be uncertain for them: a weak signal that the
policy sends to review, or a request in a language no lexicon covers. A ``PromptClassifier`` (an LLM
judge, an embedding classifier, or an OpenAI-compatible moderation endpoint) can be given those
prompts. It returns category scores in [0, 1] under the same names as the guard's categories, plus
findings that explain them. The guard merges them by taking the higher score per category, so a
classifier can raise a decision but never lower one the rules reached.

No backend ships yet; the protocol is what one must implement::

    class MyJudge:
        name = "my-judge"

        def classify(self, prompt: str, negative_prompt: str = "") -> Classification:
            ...

    guard = PromptGuard(classifier=MyJudge())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gardien.core.verdict import Finding


@dataclass(frozen=True)
class Classification:
    """A classifier's opinion: scores per category, and why."""

    category_scores: dict[str, float]
    findings: tuple[Finding, ...] = field(default=())


@runtime_checkable
class PromptClassifier(Protocol):
    """A model that scores a prompt. Called only for prompts the rules leave uncertain."""

    name: str

    def classify(self, prompt: str, negative_prompt: str = "") -> Classification:
        """Score the prompt. Raising is allowed: the guard then fails closed (review)."""
        ...
