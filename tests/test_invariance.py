"""Property tests: disguises that a person reads straight through never change a verdict."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gardien.text import PromptGuard

from .test_labelled import EXAMPLES

_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u034f"]
# Latin letters and the Cyrillic or Greek letters that impersonate them.
_LOOKALIKES = {
    "a": "а",
    "c": "с",
    "e": "е",
    "i": "і",
    "o": "о",
    "p": "р",
    "x": "х",
    "y": "у",
    "k": "к",
    "n": "ո",
    "h": "һ",
    "d": "ԁ",
}

_GUARD = PromptGuard()
_LATIN = [ex for ex in EXAMPLES if ex.prompt.isascii()]
_ANY = EXAMPLES


def _decision(prompt: str, negative: str) -> str:
    return _GUARD.check(prompt, negative).decision.value


_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(st.sampled_from(_ANY), st.data())
@_settings
def test_zero_width_characters_never_change_a_verdict(ex: object, data: st.DataObject) -> None:
    prompt = ex.prompt  # type: ignore[attr-defined]
    chars = list(prompt)
    for _ in range(data.draw(st.integers(1, 8))):
        chars.insert(data.draw(st.integers(0, len(chars))), data.draw(st.sampled_from(_INVISIBLE)))
    disguised = "".join(chars)
    negative = ex.negative_prompt  # type: ignore[attr-defined]
    assert _decision(disguised, negative) == _decision(prompt, negative)


@given(st.sampled_from(_LATIN), st.data())
@_settings
def test_lookalike_letters_never_change_a_verdict(ex: object, data: st.DataObject) -> None:
    prompt = ex.prompt  # type: ignore[attr-defined]
    swap = data.draw(st.sets(st.sampled_from(sorted(_LOOKALIKES))))
    disguised = "".join(_LOOKALIKES[c] if c in swap else c for c in prompt)
    negative = ex.negative_prompt  # type: ignore[attr-defined]
    assert _decision(disguised, negative) == _decision(prompt, negative)


# camelCase carries word boundaries in LoRA names (kidStyle), so upper-casing those loses them.
_CASE_BLIND = [ex for ex in EXAMPLES if ex.obfuscation != "lora"]


@given(st.sampled_from(_ANY))
@_settings
def test_fullwidth_never_changes_a_verdict(ex: object) -> None:
    prompt = ex.prompt  # type: ignore[attr-defined]
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in prompt)
    negative = ex.negative_prompt  # type: ignore[attr-defined]
    assert _decision(fullwidth, negative) == _decision(prompt, negative)


@given(st.sampled_from(_CASE_BLIND))
@_settings
def test_case_never_changes_a_verdict(ex: object) -> None:
    prompt = ex.prompt  # type: ignore[attr-defined]
    negative = ex.negative_prompt  # type: ignore[attr-defined]
    assert _decision(prompt.upper(), negative) == _decision(prompt, negative)
    assert _decision(prompt.lower(), negative) == _decision(prompt, negative)
