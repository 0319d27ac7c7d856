"""Korean typos read one letter (jamo) at a time, and kana read without voicing marks."""

from __future__ import annotations

from gardien.text.hangul import HangulTypos, one_letter_apart
from gardien.text.kana import devoiced
from gardien.text.lexicon import TermEntry


def _entry(key: str, mode: str = "prefix") -> TermEntry:
    return TermEntry(key, key, "minor", "ko", mode)  # type: ignore[arg-type]


def test_one_letter_apart() -> None:
    assert one_letter_apart("여중샹", "여중생")  # vowel
    assert one_letter_apart("어린니", "어린이")  # initial consonant
    assert one_letter_apart("나채", "나체")  # two syllables: a vowel that sounds the same
    assert not one_letter_apart("잠자", "잠지")  # two syllables: a vowel that does not
    assert not one_letter_apart("누구", "누드")  # two letters of one syllable
    assert not one_letter_apart("여중생", "여중생")  # identical is no typo
    assert not one_letter_apart("여중", "여중생")  # syllable counts differ


def test_candidates_take_one_particle_and_skip_real_words() -> None:
    typos = HangulTypos([_entry("여중생"), _entry("어린이", "word"), _entry("나체")])
    assert [(n, e.key) for n, e in typos.candidates("여중샹이", set())] == [(3, "여중생")]
    assert typos.candidates("여중샹이랑", set()) == []  # two syllables after the term
    assert typos.candidates("여중샹", {"여중샹"}) == []  # a real word is no typo
    assert [(n, e.key) for n, e in typos.candidates("어린니", set())] == [(3, "어린이")]
    assert typos.candidates("어린니가", set()) == []  # a whole-word term takes no particle
    assert [e.key for _, e in typos.candidates("나채", set())] == ["나체"]
    assert typos.candidates("나", set()) == []


def test_devoiced() -> None:
    assert devoiced("ヌード") == "ヌート"
    assert devoiced("ポルノ") == "ホルノ"
    assert devoiced("ランドセル") == "ラントセル"
    assert devoiced("エロ") == "エロ"  # nothing to drop
