"""The prompt guard: normalise, match lexicons, compose rules, apply the policy."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from gardien.core.categories import CATEGORIES, SEXUAL_MINORS
from gardien.core.policy import Policy, load_policy
from gardien.core.verdict import Decision, Finding, Verdict
from gardien.text.classifier import PromptClassifier
from gardien.text.lexicon import (
    bundled_not_typo_spellings,
    bundled_not_typos,
    load_lexicon_file,
    load_lexicons,
)
from gardien.text.matcher import MAX_AGES, MAX_MATCHES, Matcher
from gardien.text.normalize import Folded
from gardien.text.rules import Field, compose

#: Longest prompt (prompt plus negative prompt, in characters) that is screened. Longer ones go to
#: review: a prompt is never truncated and screened in part.
DEFAULT_MAX_CHARS = 262_144
#: Prompts up to this long (most SD prompts) are searched for a pair written with two typos
#: (nued chlid); this costs about a fifth of the throughput on typical prompts (make bench).
DOUBLE_TYPO_MAX_CHARS = 2000
#: The concepts read with typos for each half of a pair.
_MINOR_HALF = ("minor", "youth", "kin")
_SEXUAL_HALF = ("sexual_explicit", "sexual_suggestive")


class PromptGuard:
    """Screens text-to-image prompts. Pure: the same input and lexicons give the same verdict."""

    def __init__(
        self,
        policy: Policy | str | Path = "child-safety",
        *,
        lexicons: list[Path] | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        classifier: PromptClassifier | None = None,
    ) -> None:
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        if lexicons:
            files, not_typos = [load_lexicon_file(p) for p in lexicons], frozenset[str]()
            spellings: dict[str, frozenset[str]] = {}
        else:
            files, not_typos = load_lexicons(), bundled_not_typos()
            spellings = bundled_not_typo_spellings()
        self.matcher = Matcher(files, not_typos, spellings)
        self.languages = sorted({lex.language for lex in files})
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        self.max_chars = max_chars
        self.classifier = classifier

    def check(self, prompt: str, negative_prompt: str = "") -> Verdict:
        """Screen one prompt and its negative prompt. Never raises on content; fails closed."""
        if not isinstance(prompt, str) or not isinstance(negative_prompt, str):
            return self._failed("prompt and negative_prompt must be strings", "input")
        length = len(prompt) + len(negative_prompt)
        if length > self.max_chars:
            return self._failed(
                f"input is {length} characters, over the limit of {self.max_chars}; "
                "it was not screened (a prompt is never screened in part)",
                "limit",
            )
        try:
            verdict = self._check(prompt, negative_prompt)
        except Exception as exc:
            return self._failed(f"prompt guard error: {type(exc).__name__}: {exc}", "error")
        if self.classifier is not None and verdict.decision is Decision.REVIEW:
            verdict = self._second_stage(prompt, negative_prompt, verdict)
        return verdict

    def check_many(self, requests: Iterable[tuple[str, str]]) -> Iterator[Verdict]:
        for prompt, negative in requests:
            yield self.check(prompt, negative)

    def _check(self, prompt: str, negative_prompt: str) -> Verdict:
        pos_folded = Folded.of(prompt)
        pos = Field("prompt", pos_folded, self.matcher.scan(pos_folded), self.matcher)
        neg = None
        if negative_prompt:
            neg_folded = Folded.of(negative_prompt)
            neg = Field("negative_prompt", neg_folded, self.matcher.scan(neg_folded), self.matcher)
        result = compose(pos, neg)
        missing = self._missing_halves(result.scores, len(prompt))
        if missing:
            # Halves of the pair are missing: look again for typos of them (chlid, naekd).
            typos = self.matcher.typos(pos_folded, pos.scan, missing)
            if typos:
                pos.scan.hits.extend(typos)
                result = compose(pos, neg)
        scores = {c: result.scores.get(c, 0.0) for c in CATEGORIES}
        decision = self.policy.decide(scores)
        findings = result.findings
        truncated = [f for f in (pos, neg) if f is not None and f.scan.truncated]
        if truncated:
            # Too many matches to examine them all: never allow what was not fully read.
            decision = Decision.strictest(decision, self.policy.on_error)
            findings.extend(
                Finding(
                    kind="limit",
                    category=None,
                    score=0.0,
                    detail=f"{f.name} holds over {MAX_MATCHES} lexicon matches or {MAX_AGES} "
                    "ages; it was not fully examined",
                    field=f.name,
                )
                for f in truncated
            )
        return Verdict(
            decision=decision,
            category_scores=scores,
            findings=tuple(findings),
            policy=self.policy.name,
        )

    @staticmethod
    def _missing_halves(scores: dict[str, float], length: int) -> tuple[str, ...]:
        """The concepts whose typos are worth looking for. With one half of the pair present,
        the other; with neither, both, in prompts up to DOUBLE_TYPO_MAX_CHARS (the pass costs
        about a microsecond a word once its words are cached)."""
        if scores[SEXUAL_MINORS] >= 0.5:
            return ()
        has_minor, has_sexual = scores["minors"] > 0, scores["sexual"] > 0
        if has_minor != has_sexual:
            return _SEXUAL_HALF if has_minor else _MINOR_HALF
        if not has_minor and length <= DOUBLE_TYPO_MAX_CHARS:
            return _MINOR_HALF + _SEXUAL_HALF
        return ()

    def _failed(self, why: str, kind: str) -> Verdict:
        return Verdict(
            decision=self.policy.on_error,
            category_scores={c: 0.0 for c in CATEGORIES},
            findings=(Finding(kind=kind, category=None, score=0.0, detail=why),),
            policy=self.policy.name,
        )

    def _second_stage(self, prompt: str, negative: str, verdict: Verdict) -> Verdict:
        assert self.classifier is not None
        name = getattr(self.classifier, "name", type(self.classifier).__name__)
        try:
            opinion = self.classifier.classify(prompt, negative)
            theirs = {c: _score(opinion.category_scores.get(c, 0.0)) for c in CATEGORIES}
            extra = tuple(opinion.findings)
        except Exception as exc:
            # A classifier that fails, or answers nonsense, leaves the rules' review in place.
            finding = Finding(
                kind="error",
                category=None,
                score=0.0,
                detail=f"classifier {name!r} failed: {type(exc).__name__}: {exc}",
            )
            return Verdict(
                verdict.decision,
                verdict.category_scores,
                (*verdict.findings, finding),
                verdict.policy,
            )
        scores = {c: max(verdict.category_scores.get(c, 0.0), theirs[c]) for c in CATEGORIES}
        decision = Decision.strictest(verdict.decision, self.policy.decide(scores))
        return Verdict(decision, scores, (*verdict.findings, *extra), verdict.policy)


def _score(value: object) -> float:
    """A classifier's score, refused unless it is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"score {value!r} is not a number")
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(f"score {value!r} is outside [0, 1]")
    return float(value)
