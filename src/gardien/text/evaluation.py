"""Measuring the prompt guard on labelled prompts, so operators can check it on their own data."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gardien.core.categories import SEXUAL_MINORS
from gardien.core.errors import InputError
from gardien.core.verdict import Decision, Verdict
from gardien.text.guard import PromptGuard

#: Label -> (what is counted, whether counting it is the goal).
#: ``sexual_minors`` counts recall; the others count false positives.
LABELS = {
    "sexual_minors": "flagged sexual/minors (recall)",
    "benign_child": "flagged or not allowed (false positives)",
    "polysemy": "not allowed (false positives)",
    "adult_sexual": "flagged sexual/minors (false positives)",
    "benign": "flagged sexual/minors (false positives)",
}


@dataclass(frozen=True)
class Example:
    id: str
    label: str
    prompt: str
    negative_prompt: str = ""
    language: str = "?"
    obfuscation: str = "none"


def counted(label: str, verdict: Verdict) -> bool:
    """Whether a verdict counts for its label (a hit for recall, an error for the others)."""
    flagged = verdict.categories.get(SEXUAL_MINORS, False)
    if label in ("sexual_minors", "adult_sexual", "benign"):
        return flagged
    if label == "benign_child":
        return flagged or verdict.decision is not Decision.ALLOW
    return verdict.decision is not Decision.ALLOW  # polysemy


def parse_example(line: str, where: str) -> Example:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object")
    for key in ("prompt", "label"):
        if not isinstance(obj.get(key), str):
            raise InputError(f"{where}: field {key!r} must be a string")
    if obj["label"] not in LABELS:
        raise InputError(f"{where}: field 'label': {obj['label']!r} is not one of {list(LABELS)}")
    neg = obj.get("negative_prompt")
    if neg is None:
        neg = ""
    if not isinstance(neg, str):
        raise InputError(f"{where}: field 'negative_prompt' must be a string")
    return Example(
        id=str(obj.get("id", where)),
        label=obj["label"],
        prompt=obj["prompt"],
        negative_prompt=neg,
        language=str(obj.get("language", "?")),
        obfuscation=str(obj.get("obfuscation", "none")),
    )


@dataclass
class Tally:
    total: int = 0
    counted: int = 0

    @property
    def rate(self) -> float:
        return self.counted / self.total if self.total else 0.0


@dataclass
class Report:
    by_label: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_language: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_obfuscation: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    misses: list[tuple[Example, Verdict]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, ex: Example, verdict: Verdict) -> None:
        hit = counted(ex.label, verdict)
        for tally in (
            self.by_label[ex.label],
            self.by_language[(ex.label, ex.language)],
            self.by_obfuscation[(ex.label, ex.obfuscation)],
        ):
            tally.total += 1
            tally.counted += hit
        wrong = not hit if ex.label == "sexual_minors" else hit
        if wrong:
            self.misses.append((ex, verdict))

    def to_dict(self) -> dict[str, Any]:
        def table(d: dict[Any, Tally]) -> dict[str, Any]:
            return {
                (k if isinstance(k, str) else "/".join(k)): {
                    "total": t.total,
                    "counted": t.counted,
                    "rate": round(t.rate, 4),
                }
                for k, t in sorted(d.items())
            }

        return {
            "by_label": table(self.by_label),
            "by_language": table(self.by_language),
            "by_obfuscation": table(self.by_obfuscation),
            "misses": [
                {"id": ex.id, "label": ex.label, "decision": v.decision.value}
                for ex, v in self.misses
            ],
            "errors": self.errors,
        }


def read_examples(lines: Iterable[str], source: str) -> Iterator[Example | InputError]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield parse_example(line, f"{source}:{number}")
        except InputError as exc:
            yield exc


def evaluate(guard: PromptGuard, examples: Iterable[Example | InputError]) -> Report:
    report = Report()
    for ex in examples:
        if isinstance(ex, InputError):
            report.errors.append(str(ex))
            continue
        report.add(ex, guard.check(ex.prompt, ex.negative_prompt))
    return report
