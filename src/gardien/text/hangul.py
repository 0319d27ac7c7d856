"""Korean typos, read one jamo at a time.

A Hangul syllable is one character made of an initial consonant, a vowel and an optional final
consonant, so a Korean typo (``여중샹`` for ``여중생``, ``나채`` for ``나체``, ``어린니`` for
``어린이``) changes one letter inside a syllable: an edit distance over characters sees a whole
syllable replaced and cannot tell a slip from another word. Here a word is a typo of a term when
the two have the same number of syllables and differ in one letter of one syllable. Two-syllable
terms accept only slips that rarely make another word: a vowel that sounds the same (ㅔ/ㅐ/ㅖ/ㅒ,
ㅚ/ㅙ/ㅞ), a y-glide added or lost (ㅜ/ㅠ: 여즁생), a vowel with one stroke more or less (ㅗ/ㅙ:
알뫔), a nasal final for another (알몽, 알몬); any other change turns many of them into real words
(누드 → 누구, 잠지 → 잠자, 아들 → 이들), and wordfreq's Korean list, split into morphemes, cannot
list them all in not_typos.txt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from gardien.text.lexicon import TermEntry

#: Runs of composed Hangul syllables: the words the Korean typo pass reads.
HANGUL_WORD: Final = re.compile(r"[\uac00-\ud7a3]{2,16}")
_FIRST: Final = 0xAC00
_LAST: Final = 0xD7A3
#: Shortest term, in syllables, read with a typo.
MIN_SYLLABLES: Final = 2
#: Syllables that may follow a typo'd term in the same word: one particle (이, 가, 를, 들...).
MAX_TAIL: Final = 1
#: Vowels (indices in a syllable's code) that sound alike in today's Korean: ㅐㅒㅔㅖ, ㅙㅚㅞ.
_SAME_SOUND: Final = ({1, 3, 5, 7}, {10, 11, 15})
#: Vowel slips that rarely make another word: a y-glide added or lost (ㅜ/ㅠ, ㅗ/ㅛ: 여즁생),
#: one stroke more or less (ㅗ -> ㅘ ㅙ ㅚ, ㅜ -> ㅝ ㅞ ㅟ, ㅡ -> ㅢ: 알뫔; ㅡ -> ㅜ: 누두).
#: Slips to a neighbouring key (ㅏ/ㅣ, ㅓ/ㅏ) are left out: they make everyday words
#: (아들 -> 이들, 작은 -> 적은).
_VOWEL_SLIPS: Final = frozenset(
    frozenset(p)
    for p in (
        (13, 17), (8, 12), (13, 18),
        (8, 9), (8, 10), (8, 11), (13, 14), (13, 15), (13, 16), (18, 19),
    )
)  # fmt: skip
#: Final consonants that are slips of one another: the nasals ㄴ ㅁ ㅇ (알몽, 알몬).
_FINAL_SLIPS: Final = frozenset(frozenset(p) for p in ((16, 4), (4, 21), (16, 21)))


def is_syllables(text: str) -> bool:
    return bool(text) and all(_FIRST <= ord(c) <= _LAST for c in text)


def _letters(syllable: str) -> tuple[int, int, int]:
    code = ord(syllable) - _FIRST
    return code // 588, (code % 588) // 28, code % 28


def one_letter_apart(a: str, b: str) -> bool:
    """Same number of syllables, one letter different in one of them; for two syllables, only a
    vowel that sounds the same."""
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) != 1:
        return False
    x, y = _letters(a[diff[0]]), _letters(b[diff[0]])
    changed = [k for k in range(3) if x[k] != y[k]]
    if len(changed) != 1:
        return False
    if len(a) > MIN_SYLLABLES:
        return True
    k = changed[0]
    pair = frozenset((x[k], y[k]))
    if k == 1:
        return pair in _VOWEL_SLIPS or any(x[1] in g and y[1] in g for g in _SAME_SOUND)
    return k == 2 and pair in _FINAL_SLIPS


class HangulTypos:
    """Index of Hangul terms by each syllable left out, so that a word's candidates are found
    with one dictionary lookup per syllable."""

    def __init__(self, entries: Iterable[TermEntry]) -> None:
        self._index: dict[str, list[TermEntry]] = {}
        self.longest = 0
        # One syllable at most differs, so a typo keeps the term's first or its second syllable:
        # a word with neither is no typo of any term (most words, read with two set lookups).
        self._firsts: set[str] = set()
        self._seconds: set[str] = set()
        for entry in entries:
            key = entry.key
            if len(key) < MIN_SYLLABLES or not is_syllables(key):
                continue
            self.longest = max(self.longest, len(key))
            self._firsts.add(key[0])
            self._seconds.add(key[1])
            for i in range(len(key)):
                self._index.setdefault(key[:i] + "?" + key[i + 1 :], []).append(entry)

    def candidates(self, word: str, skip: set[str] | frozenset[str]) -> list[tuple[int, TermEntry]]:
        """``(length, term)`` pairs: the first ``length`` syllables of ``word`` are a typo of
        ``term``, followed by at most one particle (none for whole-word terms). A prefix that
        is a real word or a term (``skip``) is no typo."""
        found: list[tuple[int, TermEntry]] = []
        if len(word) < MIN_SYLLABLES or (
            word[0] not in self._firsts and word[1] not in self._seconds
        ):
            return found
        for length in range(max(MIN_SYLLABLES, len(word) - MAX_TAIL), self.longest + 1):
            if length > len(word):
                break
            head = word[:length]
            if head in skip:
                continue
            for i in range(length):
                for entry in self._index.get(head[:i] + "?" + head[i + 1 :], ()):
                    whole = length == len(word)
                    if (whole or entry.mode != "word") and one_letter_apart(head, entry.key):
                        found.append((length, entry))
        return found
