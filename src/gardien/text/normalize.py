"""Normalisation of prompt text into a matching form, with offsets back into the original.

Every character of the input is folded on its own (NFKD, diacritics and invisible characters
removed, case folded, look-alike letters folded to Latin, punctuation to a space); runs of spaces
are then collapsed. The fold is a ``str.translate`` table filled on first sight of each code
point, so the common path runs in C. Offsets are computed only when a finding needs them.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import chain, repeat

from gardien.text.confusables import latin_lookalike

#: Characters that leetspeak uses inside words; kept by the fold so that the leet views see them.
LEET_SYMBOLS = frozenset("@$!|+€")
# Combining marks that carry meaning in Japanese kana (voiced and semi-voiced marks).
_KEEP_MARKS = frozenset("\u3099\u309a")
# Invisible letters (category Lo) used to hide text.
_INVISIBLE_LETTERS = frozenset("\u3164\u115f\u1160\uffa0\u2800")
_CACHE_LIMIT = 200_000

_SPACES = re.compile(" {2,}")


def _fold_one(ch: str) -> str:
    """Fold one character of an NFKD expansion."""
    if ch in _KEEP_MARKS:
        return ch
    if "\u3041" <= ch <= "\u3096" or ch in "\u309d\u309e":
        return _fold_one(chr(ord(ch) + 0x60))  # hiragana as katakana: ぽるの is ポルノ
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me", "Cf", "Cs", "Co", "Cn") or ch in _INVISIBLE_LETTERS:
        return ""
    if ch == "_" or (cat[0] in ("Z", "P", "C") and ch not in LEET_SYMBOLS):
        return " "
    if ch.isascii():
        if ch.isalnum() or ch in LEET_SYMBOLS:
            return ch.lower()
        return " "  # ASCII symbols such as < > = ^ ~ ` are syntax, not text
    if cat == "Sk" and 0x1F3FB <= ord(ch) <= 0x1F3FF:  # emoji skin tones
        return ""
    # Look-alikes first: a Greek capital Ν impersonates N, though its small form ν looks like v.
    own = latin_lookalike(ch)
    if own is not None:
        return own
    return "".join(latin_lookalike(c) or c for c in ch.casefold())


def fold_char(ch: str) -> str:
    """The matching form of one input character: zero, one or more characters."""
    decomposed = unicodedata.normalize("NFKD", ch)
    out = "".join(_fold_one(c) for c in decomposed)
    return unicodedata.normalize("NFC", out) if len(out) > 1 else out


class _FoldTable(dict[int, str]):
    """``str.translate`` table that folds each code point on first use."""

    def __missing__(self, cp: int) -> str:
        folded = fold_char(chr(cp))
        if len(self) < _CACHE_LIMIT:
            self[cp] = folded
        return folded


FOLD = _FoldTable()


def fold(text: str) -> str:
    """The matching form of ``text`` (no offsets). Lexicon terms go through this too."""
    return _SPACES.sub(" ", text.translate(FOLD))


def _sources(text: str) -> list[int] | None:
    """Source index of each character of ``text.translate(FOLD)``; None when it is one to one.

    Equal lengths don't prove that (a zero-width character dropped and ß expanded cancel out);
    every distinct character folding to exactly one character does (always so for ASCII)."""
    if text.isascii() or all(len(FOLD[ord(c)]) == 1 for c in set(text)):
        return None
    lengths = map(len, map(FOLD.__getitem__, map(ord, text)))
    return list(chain.from_iterable(map(repeat, range(len(text)), lengths)))


def kept_after_collapse(runs: re.Pattern[str], text: str) -> list[int]:
    """Positions of ``text`` that survive replacing each match of ``runs`` by its first
    character, in order: the source of each character of the collapsed text."""
    kept: list[int] = []
    prev = 0
    for m in runs.finditer(text):
        kept.extend(range(prev, m.start() + 1))
        prev = m.end()
    kept.extend(range(prev, len(text)))
    return kept


# Characters that compose with the one before them into a syllable or voiced kana: Hangul
# conjoining vowels and finals, and kana voicing marks. Text typed in that decomposed form (NFD)
# is composed before folding, so that it matches the lexicons.
_COMPOSERS = "\u1160-\u11ff\u3099\u309a"
_COMPOSING = re.compile(f"[{_COMPOSERS}]")
_CLUSTER = re.compile(f"[^{_COMPOSERS}]?[{_COMPOSERS}]+")


def _compose(text: str) -> tuple[str, list[int], list[int]]:
    """NFC of each cluster (a character and the composing characters after it), with each output
    character's span in ``text``; the text between clusters is copied in C-level slices."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    prev = 0
    for m in _CLUSTER.finditer(text):
        a, b = m.span()
        out.append(text[prev:a])
        starts.extend(range(prev, a))
        ends.extend(range(prev + 1, a + 1))
        piece = unicodedata.normalize("NFC", m.group())
        out.append(piece)
        starts.extend([a] * len(piece))
        ends.extend([b] * len(piece))
        prev = b
    out.append(text[prev:])
    starts.extend(range(prev, len(text)))
    ends.extend(range(prev + 1, len(text) + 1))
    return "".join(out), starts, ends


@dataclass
class Folded:
    """A text and its matching form, with offsets computed on demand.

    ``source(p)`` maps a position of the matching form to its source character without building a
    table of every position: collapsed space runs are few, so a bisect over them does, plus the
    fold's per-character lengths where some character folded to zero or several characters.
    Decomposed Hangul and kana are composed first (``composed``), with a map back.
    """

    original: str
    text: str
    composed: str | None = field(default=None, repr=False)
    _composed_span: tuple[list[int], list[int]] | None = field(default=None, repr=False)
    _map: tuple[list[int], list[int], list[int] | None] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, original: str) -> Folded:
        if _COMPOSING.search(original) is None:
            return cls(original, fold(original))
        composed, starts, ends = _compose(original)
        return cls(original, fold(composed), composed, (starts, ends))

    def _mapping(self) -> tuple[list[int], list[int], list[int] | None]:
        if self._map is None:
            source_text = self.original if self.composed is None else self.composed
            translated = source_text.translate(FOLD)
            sources = _sources(source_text)
            kept_at: list[int] = []  # position, in the matching form, of each run's kept space
            shift: list[int] = [0]  # characters dropped by the runs so far
            for m in _SPACES.finditer(translated):
                kept_at.append(m.start() - shift[-1])
                shift.append(shift[-1] + m.end() - m.start() - 1)
            self._map = (kept_at, shift, sources)
        return self._map

    def _source(self, p: int) -> int:
        kept_at, shift, sources = self._mapping()
        t = p + shift[bisect_left(kept_at, p)]
        return sources[t] if sources is not None else t

    def source(self, p: int) -> int:
        """Index in the original text of the character at position ``p`` of the matching form."""
        i = self._source(p)
        return i if self._composed_span is None else self._composed_span[0][i]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of the matching form back to a span of the original text."""
        if start >= end or not self.text:
            return (0, 0)
        a = self.source(start)
        last = self._source(end - 1)
        b = last + 1 if self._composed_span is None else self._composed_span[1][last]
        original = self.original
        # Take in trailing characters that folded to nothing (combining marks, zero-width).
        while b < len(original) and FOLD[ord(original[b])] == "":
            b += 1
        return a, b
