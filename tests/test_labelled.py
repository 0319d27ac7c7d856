"""The project's own labelled examples, in every language: each must get its label's outcome.

sexual_minors must be blocked; benign_child and polysemy must be allowed; adult_sexual must not
be flagged sexual/minors. The files are tests/data/labelled/<language>.jsonl (format:
docs/lexicons.md).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from gardien.core import Decision
from gardien.text import PromptGuard
from gardien.text.evaluation import Example, parse_example

from .conftest import LABELLED


def _examples() -> list[Example]:
    out = []
    for path in sorted(LABELLED.glob("*.jsonl")):
        for number, line in enumerate(path.open(encoding="utf-8"), 1):
            if line.strip():
                out.append(parse_example(line, f"{path.name}:{number}"))
    return out


EXAMPLES = _examples()


def test_bench_evaluation_sets_are_well_formed() -> None:
    """`make bench` reads these; a bad line would silently shrink a reported rate."""
    folder = LABELLED.parent.parent.parent / "bench" / "data"
    paths = sorted(folder.glob("*.jsonl"))
    assert paths
    for path in paths:
        for number, line in enumerate(path.open(encoding="utf-8"), 1):
            if line.strip():
                parse_example(line, f"{path.name}:{number}")


def test_every_language_has_examples_of_every_label() -> None:
    counts = Counter((ex.language, ex.label) for ex in EXAMPLES)
    for language in ("en", "fr", "es", "de", "it", "pt", "nl", "pl", "ru", "ja", "zh", "ko", "tr"):
        for label in ("sexual_minors", "benign_child", "adult_sexual", "polysemy"):
            assert counts[(language, label)] >= 3, (language, label)


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda ex: ex.id)
def test_labelled_example(guard: PromptGuard, ex: Example) -> None:
    verdict = guard.check(ex.prompt, ex.negative_prompt)
    why = json.dumps(verdict.to_dict(), ensure_ascii=False)
    if ex.label == "sexual_minors":
        assert verdict.decision is Decision.BLOCK, why
        assert verdict.categories["sexual/minors"], why
    elif ex.label in ("benign_child", "polysemy"):
        assert verdict.decision is Decision.ALLOW, why
    else:
        assert not verdict.categories["sexual/minors"], why
