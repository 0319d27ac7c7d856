"""Kana written without their voicing marks: ``ヌート`` for ``ヌード``, ``ほるの`` for ``ポルノ``.

Dropping the dakuten (゛) or handakuten (゜) is the kana typo, and a cheap disguise: the word
still reads, but no longer matches. Terms written in katakana (loanwords: ヌード, ポルノ) are
added a second time with their marks removed, as entries of the same automaton (one pass finds
both). Hiragana terms are not: kana terms match anywhere, and without its marks a native word is
part of everyday grammar (こども -> ことも, as in することもある).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # lexicon.py imports devoiced() from here
    from gardien.text.lexicon import TermEntry

_MARKS: Final = ("\u3099", "\u309a")
#: Shortest kana term also read without its voicing marks: shorter ones collide with real words.
MIN_DEVOICED: Final = 3
_DEVOICED_CONCEPTS: Final = ("coded", "minor", "sexual_explicit")


#: Shortest kana term read with a voicing slip in the typo pass.
MIN_VOICING_SLIP: Final = 3


def is_kana(ch: str) -> bool:
    return "\u3041" <= ch <= "\u30ff"


def voicing_slips(key: str) -> set[str]:
    """``key`` with the voicing mark of one of its kana dropped, added or swapped (``はたか`` and
    ``はだが`` for ``はだか``): the kana typo, read in the typo pass only, where one half of a pair
    is already present, since a bare slip can land inside everyday words (はたから)."""
    out = set()
    for i, ch in enumerate(key):
        if not is_kana(ch):
            continue
        base = devoiced(ch)
        for form in (base, unicodedata.normalize("NFC", base + _MARKS[0])):
            form2 = unicodedata.normalize("NFC", base + _MARKS[1])
            for f in (form, form2):
                if len(f) == 1 and f != ch:
                    out.add(key[:i] + f + key[i + 1 :])
    out.discard(key)
    return out


def devoiced(text: str) -> str:
    """``text`` with the voicing marks of its kana removed (same length once recomposed)."""
    bare = unicodedata.normalize("NFD", text)
    for mark in _MARKS:
        bare = bare.replace(mark, "")
    return unicodedata.normalize("NFC", bare)


def _is_katakana(ch: str) -> bool:
    return "\u30a0" <= ch <= "\u30ff"


def devoiced_terms(entries: Iterable[TermEntry]) -> list[TermEntry]:
    """Katakana terms of at least MIN_DEVOICED characters, without their voicing marks, where
    that changes them and the result is not itself a term (real words are filtered by the
    caller)."""
    entries = list(entries)
    keys = {e.key for e in entries}
    out = []
    for e in entries:
        if e.concept not in _DEVOICED_CONCEPTS or len(e.key) < MIN_DEVOICED:
            continue
        if not all(_is_katakana(c) for c in e.term):
            continue
        bare = devoiced(e.key)
        if bare != e.key and bare not in keys:
            keys.add(bare)
            term = f"{e.term} (voicing marks dropped)"
            out.append(replace(e, term=term, key=bare, followed_by=(), preceded_by=()))
    return out


#: What stands in for the katakana long mark ー in a disguised word: a hyphen (folded to a
#: space) or the kanji 一 ("one"): ヌ-ド, ヌ一ド.
_LONG_MARK_STAND_INS: Final = (" ", "一")


def long_mark_terms(entries: Iterable[TermEntry]) -> list[TermEntry]:
    """Katakana terms with a long mark ー, written with a hyphen or 一 in its place (``ヌ-ド``,
    ``ヌ一ド``): a look-alike the confusables data does not know, since ー is no letter."""
    entries = list(entries)
    keys = {e.key for e in entries}
    out = []
    for e in entries:
        if e.concept not in _DEVOICED_CONCEPTS or len(e.key) < MIN_DEVOICED or "ー" not in e.key:
            continue
        if not all(_is_katakana(c) for c in e.key):
            continue
        for stand_in in _LONG_MARK_STAND_INS:
            key = e.key.replace("ー", stand_in)
            if key not in keys:
                keys.add(key)
                term = f"{e.term} (long mark written {stand_in.strip() or '-'})"
                out.append(replace(e, term=term, key=key, followed_by=(), preceded_by=()))
    return out
