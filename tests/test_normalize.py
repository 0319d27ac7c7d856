"""Normalisation: the matching form, and offsets that point back into the original text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gardien.text.normalize import _COMPOSING, FOLD, Folded, fold


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ｎｕｄｅ  ＣＨＩＬＤ", "nude child"),  # fullwidth
        ("n\u200bu\u00add\u202ee", "nude"),  # zero-width, soft hyphen, bidi control
        ("сhіld", "child"),  # Cyrillic look-alikes
        ("ɴᴜᴅᴇ ᴄʜɪʟᴅ", "nude child"),  # small capitals
        ("Ⓝⓤⓓⓔ 𝐧𝐮𝐝𝐞", "nude nude"),  # enclosed and mathematical letters
        ("🇳🇺🇩🇪", "nude"),  # regional indicator letters
        ("élève ß İstanbul ı", "eleve ss istanbul i"),  # diacritics, case folding
        ("(nude:1.3), spread_legs", " nude 1 3 spread legs"),  # SD weights, Danbooru tags
        ("12-year-old, 12 y/o", "12 year old 12 y o"),
        ("n@k3d", "n@k3d"),  # leet symbols survive for the leet view
        ("裸体の少女、12歳", "裸体ノ少女 12歳"),  # Han untouched; hiragana read as katakana
        ("じどう ぽるの", "ジドウ ポルノ"),  # hiragana read as katakana
        ("아이돌", "아이돌"),  # Hangul untouched
        ("👧🏻", "👧"),  # skin tone dropped
    ],
)
def test_fold(raw: str, expected: str) -> None:
    assert fold(raw) == expected


def test_cyrillic_words_fold_consistently() -> None:
    # Russian is folded the same way in text and lexicon, so it still matches itself.
    assert fold("голая девочка") == fold("ГОЛАЯ ДЕВОЧКА")
    assert fold("ё") == fold("е")


_INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e"])


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=80), st.data())
@settings(max_examples=200)
def test_invisible_characters_never_change_the_fold(text: str, data: st.DataObject) -> None:
    chars = list(text)
    for _ in range(data.draw(st.integers(0, 10))):
        pos = data.draw(st.integers(0, len(chars)))
        chars.insert(pos, data.draw(_INVISIBLE))
    assert fold("".join(chars)) == fold(text)


def _reference_offsets(text: str) -> tuple[str, list[int]]:
    """Character by character, the slow obvious way: the oracle for the fast paths."""
    out: list[tuple[str, int]] = []
    for i, c in enumerate(text):
        for ch in FOLD[ord(c)]:
            if ch == " " and out and out[-1][0] == " ":
                continue
            out.append((ch, i))
    return "".join(ch for ch, _ in out), [i for _, i in out]


_TRICKY = st.text(
    alphabet=st.sampled_from(list("aB ,ßﬁİǅ\u200b\u0301\U0001f3fd👧ＮｕǄ1_-")),
    max_size=60,
)


@given(st.one_of(st.text(max_size=200), _TRICKY))
@settings(max_examples=400)
def test_offsets_agree_with_a_reference(text: str) -> None:
    assume(_COMPOSING.search(text) is None)  # composed text has its own test below
    folded = Folded.of(text)
    expected_text, expected_starts = _reference_offsets(text)
    assert folded.text == expected_text
    assert [folded.source(p) for p in range(len(folded.text))] == expected_starts


def test_span_maps_back_to_original() -> None:
    original = "a (Ｎ\u200bＵＤＥ:1.2) photo"
    f = Folded.of(original)
    start = f.text.index("nude")
    a, b = f.span(start, start + 4)
    assert original[a:b] == "Ｎ\u200bＵＤＥ"


@pytest.mark.parametrize("text", ["알몸 어린이, 사진", "ガキ ヌード", "ガール、12歳", "ゴスロリ"])
def test_decomposed_hangul_and_kana_fold_like_composed(text: str) -> None:
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    folded = Folded.of(decomposed)
    assert folded.text == fold(text)
    # every span maps back onto whole decomposed characters of the original
    a, b = folded.span(0, len(folded.text))
    assert unicodedata.normalize("NFC", decomposed[a:b]) == text.strip()
