"""Finding lexicon terms and ages in normalised text, however the text is disguised.

One Aho-Corasick automaton (pyahocorasick) holds every term of every lexicon, so a prompt is scanned
once, in C, whatever the number of languages. Disguises that change the text's shape are undone in
*views* of the normalised text, each built only when the text shows that disguise:

- ``leet``: digits and symbols read as letters (``ch1ld``, ``n@ked``), twice, for 1 as i and as l;
- ``stretch``: runs of a repeated letter squeezed (``chiiiild``), matched against squeezed terms;
- ``spacing``: runs of single letters joined (``n u d e``, ``c-h-i-l-d``);
- ``glued``: words that terms tile exactly (``nakedchild``), from matches inside words;
- ``jamo``: Korean typed letter by letter (``ㅇㅏㄹㅁㅗㅁ``) composed into syllables, and
  Korean stretched with vowel syllables (``로리이이``, ``모옴``) folded back;
- ``typo``: one edit from a term (``chlid``), looked for only when one half of a pair is present.

Each hit keeps a map back to the original text.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import accumulate, chain, pairwise

import ahocorasick

from gardien.text.hangul import HANGUL_WORD, HangulTypos
from gardien.text.kana import (
    MIN_VOICING_SLIP,
    devoiced_terms,
    is_kana,
    long_mark_terms,
    voicing_slips,
)
from gardien.text.lexicon import (
    CONCEPTS,
    SIDE_WORDS,
    Ages,
    LexiconFile,
    TermEntry,
    parse_term,
    umlaut_spellings,
)
from gardien.text.normalize import FOLD, Folded, fold, kept_after_collapse

# Leetspeak read as letters; "1" and "|" stand for i or l, so there are two readings.
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "!": "i", "+": "t", "€": "e"}  # fmt: skip
_LEET_I = str.maketrans({**_LEET, "1": "i", "|": "i"})
_LEET_L = str.maketrans({**_LEET, "1": "l", "|": "l"})
#: Both at once, the commonest mixed use: "1" for i, "|" for l (ch1qui||4, 91r|).
_LEET_IL = str.maketrans({**_LEET, "1": "i", "|": "l"})
#: In Cyrillic text, 4 stands for ч, 6 for б, 9 for я and a Latin u for и (д3в40нк@: девчонка;
#: г0л@9 шк0льнuц@).
_LEET_CYRILLIC = str.maketrans(
    {**_LEET, "1": "i", "|": "i", "4": "ч", "6": "б", "9": "я", "u": "и"}
)
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LEET_TRIGGER = re.compile(r"[^\W\d][0-9@$!|+€]|[0-9@$|+€][^\W\d]")
_LEET_TRIGGER_ASCII = re.compile(r"[a-z][0-9@$!|+]|[0-9@$|+][a-z]")  # normalised: lower case
_STRETCH_TRIGGER = re.compile(r"([^\W\d])\1\1")
_ANY_TRIPLE = re.compile(r"(.)\1\1")
_STRETCH_RUNS = re.compile(r"([^\W\d])\1{2,}")
# Digits that spell letters in an age unit: inside a word (y34r), or a lone 0 opening one (0ld).
# Numbers themselves (12yo, 10) stay numbers.
_AGE_LEET = re.compile(
    r"(?<=[^\W\d])\d+(?=[^\W\d])|(?<![^\W_])0(?=[^\W\d]{2})|(?<=[^\W\d]{2})\d(?!\w)"
)
_RUN = re.compile(r"([^\W\d])\1+")
# Han and kana have no spaces between words, so spaces between single characters disguise a
# word even inside a run ("裸の小 学 生"): such characters are joined wherever they stand.
_CJK = "[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]"
_SPACED = re.compile(rf"(?<![^\W_])(?:[^\W_] ){{2,}}[^\W_](?![^\W_])|{_CJK}(?: {_CJK})+")
# Cheap test for _SPACED, run on " " + text: a literal first character lets the engine skip ahead.
_SPACED_TRIGGER = re.compile(r" [^\W_] [^\W_] [^\W_](?![^\W_])")
# Searched only in non-ASCII text: an alternative in the trigger above would cost it its literal.
_CJK_SPACED_TRIGGER = re.compile(f"{_CJK} {_CJK}")
_CAMEL = re.compile(r"[a-z][A-Z]")
_TYPO_TOKEN = re.compile(r"[^\W\d_\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]{4,32}")
# The same on ASCII text, where it is much cheaper to run (folded text is lower case).
_TYPO_TOKEN_ASCII = re.compile(r"[a-zA-Z]{4,32}")
#: Concepts whose terms are looked for with one typo, and the shortest such term.
TYPO_CONCEPTS = ("coded", "minor", "youth", "kin", "sexual_explicit", "sexual_suggestive")
TYPO_MIN_TERM = 4
_SEXUAL_TYPOS = frozenset({"sexual_explicit", "sexual_suggestive"})
#: Kinship nouns are weaker evidence (a daughter may be adult): only long ones are read with a
#: typo (sobrinah, siostrzenia), never short ones that real words sit next to (filho: film).
TYPO_MIN_KIN = 7
#: A multi-word term is read with one of its words mistyped when that word has this many letters,
#: in terms of at most this many words.
TYPO_MIN_PHRASE_WORD = 5
MAX_PHRASE_WORDS = 3
#: Distinct Korean words read for typos in one field; a text with more is not fully examined.
MAX_HANGUL_TYPO_WORDS = 4096
_TYPO_CACHE = 100_000
#: Kana that may follow a kana term read with a voicing slip: particles (はたかの), in the
#: katakana that normalisation turns all kana into; other kana continue another word
#: (はたから, "from the side").
_PARTICLES = frozenset("ノヲガニデトハモヤヘナネヨァィゥェォッーャュョ")
_CJK = r"\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"


#: Shortest multi-word term read with its spaces taken out in spaced-out letters.
_MIN_GLUED_PHRASE = 6

#: Version and model tags glued after a term in LoRA and model names (``loliv2``, ``lolixl``).
_VERSION_TAIL = re.compile(r"(?:v\d|xl(?![a-z])|sdxl|pony(?![a-z])|lora(?![a-z])|\d+(?![a-z]))")

#: Context scanned on each side of a disguised spot; longer than any lexicon term.
_WINDOW = 48


def _windows(spots: Iterator[re.Match[str]], n: int) -> list[tuple[int, int]] | None:
    """Merged windows around the spots where a disguise shows, or None to scan everything."""
    out: list[tuple[int, int]] = []
    for m in spots:
        lo, hi = max(0, m.start() - _WINDOW), min(n, m.end() + _WINDOW)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    if sum(hi - lo for lo, hi in out) > n // 2:
        return None
    return out


# Korean written letter by letter (ㅇㅏㄹㅁㅗㅁ for 알몸): the fold turns compatibility jamo into
# conjoining ones, and this view composes them back into syllables.
# A Latin "r" after an initial consonant stands for ㅏ, which it looks like (ㅇr동 for 아동).
_JAMO_TRIGGER = re.compile("[\u1100-\u1112][\u1161-\u1175r]")
# Initial consonant index -> final consonant index, for the consonants that can close a syllable.
_INITIAL_TO_FINAL = {0: 1, 1: 2, 2: 4, 3: 7, 5: 8, 6: 16, 7: 17, 9: 19, 10: 20, 11: 21, 12: 22,
                     14: 23, 15: 24, 16: 25, 17: 26, 18: 27}  # fmt: skip


def _initial(ch: str) -> int | None:
    i = ord(ch) - 0x1100
    return i if 0 <= i <= 18 else None


def _vowel(ch: str) -> int | None:
    if ch == "r":
        return 0  # ㅏ, written as the Latin letter it looks like; only read after a consonant
    i = ord(ch) - 0x1161
    return i if 0 <= i <= 20 else None


#: camelCase switches read as spaces in one prompt, at most (LoRA names hold a few).
MAX_CAMEL_SPLITS = 4096


def _automaton(table: Mapping[str, object]) -> ahocorasick.Automaton:
    """An Aho-Corasick automaton over ``table``'s keys, each yielding its value."""
    automaton = ahocorasick.Automaton()
    for key, value in table.items():
        automaton.add_word(key, value)
    automaton.make_automaton()
    return automaton


def _camel_view(folded: Folded) -> View | None:
    """The text with a space at each switch from lower to upper case inside a word, so that
    phrases written as LoRA names match: ``senzaVeli`` as ``senza veli``, ``sinRopa``."""
    original, text = folded.original, folded.text
    splits: list[int] = []
    for m in _CAMEL.finditer(original):
        if len(splits) >= MAX_CAMEL_SPLITS:
            break
        target = m.start() + 1
        lo, hi = 0, len(text)
        while lo < hi:  # the first position of the matching form at or after ``target``
            mid = (lo + hi) // 2
            if folded.source(mid) < target:
                lo = mid + 1
            else:
                hi = mid
        if 0 < lo < len(text) and text[lo - 1].isalpha() and text[lo].isalpha():
            splits.append(lo)
    if not splits:
        return None
    pieces: list[str] = []
    to_base: list[int] = []
    prev = 0
    for p in splits:
        pieces.append(text[prev:p])
        to_base.extend(range(prev, p))
        pieces.append(" ")
        to_base.append(p)
        prev = p
    pieces.append(text[prev:])
    to_base.extend(range(prev, len(text)))
    return View("camel", "".join(pieces), folded, to_base)


def _word_breaks(gaps: list[str]) -> tuple[set[int], set[int]]:
    """The letters of a spaced run (``gaps[k]``, the separators between letters k and k + 1)
    that start a new word: after a gap unlike both its neighbours, when it is also unlike the
    usual one or its neighbours are alike (``s e m  r o u p a``, ``b . e . z  u . b . r . a``,
    ``o.b.e.n o.h.n.e``); and, second, where one even spacing gives way to another. There the
    gap between the two words may take either spacing (``b r u g k l a s s e r u . i . t . g``
    but ``n . u . d . e s.c.h.o.o.l``), so the break is at letter k or k + 1: the caller reads
    both."""
    n = len(gaps)
    usual = Counter(gaps).most_common(1)[0][0]
    isolated, turns = set(), set()
    for k in range(1, n + 1):
        gap = gaps[k - 1]
        left = gaps[k - 2] if k >= 2 else None
        right = gaps[k] if k < n else None
        unlike = gap != left and gap != right and n > 1
        # at either end of the run, the word beyond the gap must go on in one spacing
        settled = (left is not None or (k + 1 < n and right == gaps[k + 1])) and (
            right is not None or (k >= 3 and left == gaps[k - 3] and k - 1 not in isolated)
        )
        if unlike and settled and (gap != usual or left == right):
            isolated.add(k)
        elif (
            right is not None and k + 1 < n and gap != right == gaps[k + 1] and left in (None, gap)
        ):
            turns.add(k)
    return isolated, turns


def _jamo_view(folded: Folded, spots: list[tuple[int, int]]) -> View:
    """Hangul letters composed into syllables (initial + vowel, and a final consonant when the
    next letter is not a vowel), then stretched syllables merged. Only ``spots`` (windows of the
    normalised text) are rewritten; the rest is copied as it is."""
    text = folded.text
    pieces: list[str] = []
    to_base: list[int] = []
    composed: set[int] = set()
    prev = 0
    for lo, hi in spots:
        pieces.append(text[prev:lo])
        to_base.extend(range(prev, lo))
        out, bases, marks = _compose_hangul(text, lo, hi)
        composed.update(len(to_base) + k for k in marks)
        pieces.extend(out)
        to_base.extend(bases)
        prev = hi
    pieces.append(text[prev:])
    to_base.extend(range(prev, len(text)))
    view = View("jamo", "".join(pieces), folded, to_base)
    view.composed = frozenset(composed)
    return view


def _compose_hangul(text: str, lo: int, hi: int) -> tuple[list[str], list[int], set[int]]:
    out: list[str] = []
    to_base: list[int] = []
    composed: set[int] = set()
    i = lo
    while i < hi:
        if _initial(text[i]) is None:
            # copy up to the next letter pair in one slice (composed syllables are most text)
            m = _JAMO_TRIGGER.search(text, i, hi)
            j = hi if m is None else m.start()
            if j > i:
                out.extend(text[i:j])
                to_base.extend(range(i, j))
                i = j
                continue
        lead = _initial(text[i])
        vowel = _vowel(text[i + 1]) if lead is not None and i + 1 < hi else None
        if lead is None or vowel is None:
            out.append(text[i])
            to_base.append(i)
            i += 1
            continue
        j, tail = i + 2, 0
        if j < hi:
            closing = _initial(text[j])
            if closing in _INITIAL_TO_FINAL and (j + 1 >= hi or _vowel(text[j + 1]) is None):
                tail, j = _INITIAL_TO_FINAL[closing], j + 1
        composed.add(len(out))
        out.append(chr(0xAC00 + (lead * 21 + vowel) * 28 + tail))
        to_base.append(i)
        i = j
    return _merge_stretched_syllables(out, to_base, composed)


# Korean stretches a word with vowel-only syllables (로리이이, 모옴, 소녀어). The sound a vowel ends
# on, by vowel index: a syllable of initial ㅇ and a simple vowel that repeats the sound the
# syllable before ended on is a stretch of it.
_VOWEL_END = ["a", "ae", "a", "ae", "eo", "e", "eo", "e", "o", "a", "ae", "e", "o", "u", "eo",
              "e", "i", "u", "eu", "i", "i"]  # fmt: skip
_SIMPLE_VOWELS = frozenset({0, 1, 4, 5, 8, 13, 18, 20})  # ㅏ ㅐ ㅓ ㅔ ㅗ ㅜ ㅡ ㅣ
# A syllable followed by one with initial ㅇ (U+C544-U+C78F: 아 to 잏).
_HANGUL_STRETCH_TRIGGER = "[\uac00-\ud7a3][\uc544-\uc78f]"
_HANGUL_TRIGGER = re.compile(f"{_JAMO_TRIGGER.pattern}|{_HANGUL_STRETCH_TRIGGER}")


def _syllable(ch: str) -> tuple[int, int, int] | None:
    code = ord(ch) - 0xAC00
    if not 0 <= code < 11172:
        return None
    return code // 588, (code % 588) // 28, code % 28


def _merge_stretched_syllables(
    out: list[str], to_base: list[int], composed: set[int]
) -> tuple[list[str], list[int], set[int]]:
    """Fold 로리이이 into 로리 and 모옴 into 몸, in one pass; merged positions count as composed.
    Only syllables of initial ㅇ can merge, so the rest is copied in slices, not one by one."""
    text = "".join(out)  # one character per entry
    new_out: list[str] = []
    new_base: list[int] = []
    merged: list[int] = []  # positions of ``out`` folded into the syllable before them
    into: set[int] = set()  # positions of ``new_out`` that absorbed a stretch
    done = 0  # out[:done] is copied
    for m in _SILENT_INITIAL.finditer(text, 1):
        k = m.start()
        new_out.extend(out[done:k])
        new_base.extend(to_base[done:k])
        done = k
        cur = _syllable(out[k])
        prev = _syllable(new_out[-1]) if new_out else None
        if (
            prev is not None
            and cur is not None
            and prev[2] == 0
            and cur[1] in _SIMPLE_VOWELS
            and _VOWEL_END[prev[1]] == _VOWEL_END[cur[1]]
        ):
            lead, vowel, _ = prev
            new_out[-1] = chr(0xAC00 + (lead * 21 + vowel) * 28 + cur[2])
            into.add(len(new_out) - 1)
            merged.append(k)
            done = k + 1
    if not merged:
        return out, to_base, composed
    new_out.extend(out[done:])
    new_base.extend(to_base[done:])
    gone = set(merged)
    new_composed = {k - bisect_left(merged, k) for k in composed if k not in gone}
    return new_out, new_base, new_composed | into


#: Syllables of initial ㅇ and a simple vowel (아 to 잏), the only ones that can stretch the
#: syllable before them, when that one has no final consonant.
_SILENT_INITIAL = re.compile(
    "(?<=["
    + "".join(chr(c) for c in range(0xAC00, 0xD7A4, 28))
    + "])["
    + "".join(f"{chr(0xC544 + v * 28)}-{chr(0xC544 + v * 28 + 27)}" for v in sorted(_SIMPLE_VOWELS))
    + "]"
)


#: Longer texts scan disguise views only around the spots that show the disguise.
_LONG = 4096


def _view_windows(
    view: View, spots: Iterator[re.Match[str]], n: int
) -> list[tuple[int, int]] | None:
    """``_windows`` over the normalised text, mapped into a view's own positions."""
    windows = _windows(spots, n)
    if windows is None or view.to_base is None:
        return windows
    to_base = view.to_base
    return [(bisect_left(to_base, lo), bisect_left(to_base, hi)) for lo, hi in windows]


def _stretched(text: str) -> bool:
    """Whether a letter appears three times in a row (``chiiild``). A backreference to any
    character is much cheaper for the regex engine than one to a letter, so it goes first."""
    return _ANY_TRIPLE.search(text) is not None and _STRETCH_TRIGGER.search(text) is not None


def squeeze(text: str) -> str:
    """Collapse runs of a repeated letter to one letter."""
    return _RUN.sub(r"\1", text)


@dataclass
class View:
    """A variant of the normalised text, with a map from its positions to the normalised text."""

    name: str
    text: str
    folded: Folded
    to_base: list[int] | None = None  # None: same positions as the normalised text
    boundaries: frozenset[int] = frozenset()  # extra word boundaries (inside joined letter runs)
    windows: list[tuple[int, int]] | None = None  # only these parts need scanning (None: all)
    camel: bool = False  # the original may switch from lower to upper case inside a word
    composed: frozenset[int] = frozenset()  # positions of syllables composed from letters

    def base_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the normalised text that a span of this view comes from."""
        if self.to_base is None:
            return start, end
        a = self.to_base[start]
        b = self.to_base[end] if end < len(self.to_base) else len(self.folded.text)
        if self.name != "jamo":  # a composed syllable spans up to three letters
            b = self.to_base[end - 1] + 1
        if self.name == "stretch":  # take in the rest of a squeezed run
            base = self.folded.text
            while b < len(base) and base[b] == base[b - 1]:
                b += 1
        return a, b

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        return self.folded.span(*self.base_span(start, end))


@dataclass(frozen=True, slots=True)
class PhraseWord:
    """Word ``index`` of a multi-word term, indexed for the typo pass."""

    entry: TermEntry
    words: tuple[str, ...]
    index: int


#: What a word could be a typo of: terms, and words of multi-word terms.
_Candidates = tuple[tuple["TermEntry", ...], tuple[PhraseWord, ...]]


@dataclass(slots=True)
class Hit:
    entry: TermEntry
    start: int  # in the view
    end: int
    view: View

    @property
    def original_span(self) -> tuple[int, int]:
        return self.view.original_span(self.start, self.end)


@dataclass(slots=True)
class AgeHit:
    value: int
    start: int  # in the normalised text
    end: int
    language: str
    text: str


@dataclass
class AgeMatcher:
    language: str
    pattern: re.Pattern[str]
    number: re.Pattern[str]
    numbers: dict[str, int]
    objects: frozenset[str]
    below: tuple[str, ...] = ()
    disclaimers: tuple[str, ...] = ()


#: Raw automaton matches examined per field, over all views. No real prompt comes near it; an input
#: that does is reported as truncated, and the guard fails closed on it.
MAX_MATCHES = 20_000
#: Ages read per field; further ones add nothing to a verdict.
MAX_AGES = 1_000


@dataclass
class Scan:
    hits: list[Hit] = field(default_factory=list)
    ages: list[AgeHit] = field(default_factory=list)
    #: More than MAX_MATCHES matches: the input was not fully examined.
    truncated: bool = False
    matches: int = 0


def _fold_pattern(pattern: str) -> str:
    """Normalise the literal non-ASCII characters of a regex the way text is normalised."""
    return "".join(c if c.isascii() else fold(c) for c in pattern)


def _compile_ages(language: str, ages: Ages) -> AgeMatcher:
    numbers = {fold(k).strip(): v for k, v in ages.numbers.items()}
    words = sorted(numbers, key=len, reverse=True)
    num = r"(?:\d{1,3}" + "".join("|" + re.escape(w) for w in words) + ")"
    body = "|".join(_fold_pattern(p).replace("{n}", num) for p in ages.patterns)
    edge = rf"[^\W{_CJK}]"
    pattern = re.compile(rf"(?<!{edge})(?:{body})(?!{edge})")
    objects = frozenset(fold(o).strip() for o in ages.objects)
    below = tuple(fold(w).strip() for w in ages.below)
    disclaimers = tuple(fold(w).strip() for w in ages.disclaimers)
    return AgeMatcher(language, pattern, re.compile(num), numbers, objects, below, disclaimers)


class Matcher:
    """Every lexicon compiled into automata and age patterns."""

    def __init__(
        self,
        lexicons: list[LexiconFile],
        not_typos: frozenset[str] = frozenset(),
        spellings: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self.lexicons = lexicons
        #: How the real words of not_typos are written (see bundled_not_typo_spellings).
        self.spellings = {
            word: frozenset(_as_written(w) for w in spelled)
            for word, spelled in (spellings or {}).items()
        }
        #: Real words only ever written with accents: typed in ASCII, they shield nothing.
        self._accent_only = frozenset(
            w for w, spelled in self.spellings.items() if w not in spelled
        )
        self.entries: list[TermEntry] = []
        self.ages: dict[str, AgeMatcher] = {}
        self.not_typos: set[str] = set(not_typos)
        # Exceptions belong to the word, not to the lexicon that lists them: "nude" as a colour
        # is cancelled whichever lexicon the word "nude" comes from.
        self.exceptions: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        #: Terms that count only next to a hit of these concepts (or an age).
        self.next_to: dict[str, tuple[str, ...]] = {}
        for lex in lexicons:
            for rule in lex.exceptions:
                key = fold(rule.term).strip()
                fb, pb = self.exceptions.get(key, ((), ()))
                self.exceptions[key] = (
                    fb + tuple(fold(w).strip() for w in rule.followed_by),
                    pb + tuple(fold(w).strip() for w in rule.preceded_by),
                )
                if rule.next_to:
                    self.next_to[key] = (*self.next_to.get(key, ()), *rule.next_to)
        for lex in lexicons:
            self._add_lexicon(lex)
        #: "Without" words, read only beside a clothing word (gardien.text.rules): kept out of
        #: the automata, where short ones (no, ni, sin) would match inside every other word.
        self.absence = frozenset(e.key for e in self.entries if e.concept == "absence")
        #: Prepositions, read likewise only between a suggestive word and a thing.
        self.prepositions = frozenset(e.key for e in self.entries if e.concept == "preposition")
        self.entries = [e for e in self.entries if e.concept not in SIDE_WORDS]
        #: German terms also spelled with ae, oe, ue, ss (see umlaut_spellings).
        self.entries.extend(self._spelled(umlaut_spellings(self.entries)))
        #: Terms written backwards, added to the automaton (see reversed_terms).
        self.backwards = [e for e in reversed_terms(self.entries) if e.key not in self.not_typos]
        #: Kana terms without their voicing marks, added likewise (see devoiced_terms).
        self.devoiced = self._spelled(devoiced_terms(self.entries))
        self.entries.extend(self.backwards)
        self.entries.extend(self.devoiced)
        #: Katakana terms with ー written as a hyphen or 一 (see long_mark_terms).
        self.entries.extend(long_mark_terms(self.entries))
        self._automaton = self._build(lambda key: key)
        self._squeezed = self._build(squeeze)
        #: Multi-word terms with their spaces taken out, read only in spaced-out letters, where
        #: two words joined by the letters' own separator run together ("s e m r o u p a").
        glued_phrases: dict[str, list[TermEntry]] = {}
        for e in self.entries:
            parts = e.key.split(" ")
            if len(parts) > 1 and all(w.isalpha() for w in parts) and e.concept in TYPO_CONCEPTS:
                key = "".join(parts)
                if len(key) >= _MIN_GLUED_PHRASE and key not in self.not_typos:
                    term = f"{e.term} (letters spaced out)"
                    glued_phrases.setdefault(key, []).append(replace(e, term=term, key=key))
        self._glued_phrases = _automaton({k: tuple(v) for k, v in glued_phrases.items()})
        self._keys = {e.key for e in self.entries}
        #: Words never read as typos: terms themselves, and known real words.
        self._typo_skip = self._keys | self.not_typos
        #: For each normalised term, the concepts it has in each language.
        self.concepts_of: dict[str, dict[str, set[str]]] = {}
        for entry in self.entries:
            by_lang = self.concepts_of.setdefault(entry.key, {})
            by_lang.setdefault(entry.language, set()).add(entry.concept)

        self.typo_index: dict[str, list[TermEntry]] = {}
        self._typo_cache: dict[str, list[TermEntry]] = {}
        self._typo_by_concepts: dict[tuple[str, ...], dict[str, _Candidates]] = {}
        #: Words known to be no typo of any term of these concepts.
        self._hopeless: dict[tuple[str, ...], set[str]] = {}
        # Terms as written: a typo of a term written backwards (``down`` for ``doon``) is noise.
        derived = {id(e) for e in (*self.backwards, *self.devoiced)}
        #: Terms made by the engine (backwards, devoiced): never pieces of a glued word
        #: (``jongskes`` is no ``jong`` + ``seks`` backwards).
        self._derived = frozenset(derived)
        #: Words never read as glued terms: real words, and terms in their own right.
        self._glue_skip = self.not_typos | self._keys
        for entry in self.entries:
            key = entry.key
            if (
                id(entry) not in derived
                and entry.concept in TYPO_CONCEPTS
                and entry.mode == "word"
                and len(key) >= (TYPO_MIN_KIN if entry.concept == "kin" else TYPO_MIN_TERM)
                and key.isalpha()
            ):
                for variant in {key, *deletions(key)}:
                    self.typo_index.setdefault(variant, []).append(entry)
        #: Words of multi-word terms, for a phrase with one word mistyped (``zonder lkeren``).
        self.phrase_index: dict[str, list[PhraseWord]] = {}
        for entry in self.entries:
            words = tuple(entry.key.split(" "))
            if (
                len(words) < 2
                or len(words) > MAX_PHRASE_WORDS
                or not all(w.isalpha() for w in words)
                or id(entry) in derived
                or entry.concept not in TYPO_CONCEPTS
                or entry.mode != "word"
            ):
                continue
            for i, word in enumerate(words):
                if len(word) >= TYPO_MIN_PHRASE_WORD and word.isalpha():
                    for variant in {word, *deletions(word)}:
                        self.phrase_index.setdefault(variant, []).append(
                            PhraseWord(entry, words, i)
                        )
        self.hangul_typos = HangulTypos(e for e in self.entries if e.concept in TYPO_CONCEPTS)
        #: Kana terms with one voicing slip (see voicing_slips), read in the typo pass.
        slips: dict[str, list[TermEntry]] = {}
        for entry in self.entries:
            if (
                id(entry) not in derived
                and entry.concept in TYPO_CONCEPTS
                and len(entry.key) >= MIN_VOICING_SLIP
                and all(is_kana(c) for c in entry.key)
            ):
                for slip in voicing_slips(entry.key) - self._typo_skip:
                    slips.setdefault(slip, []).append(entry)
        self._kana_slips = _automaton({k: (len(k), tuple(v)) for k, v in slips.items()})

    def _add_lexicon(self, lex: LexiconFile) -> None:
        for concept in CONCEPTS:
            for raw in getattr(lex.terms, concept):
                key, mode = parse_term(raw)
                fb, pb = self.exceptions.get(key, ((), ()))
                near = self.next_to.get(key, ())
                self.entries.append(TermEntry(raw, key, concept, lex.language, mode, fb, pb, near))
        if lex.ages is not None:
            self.ages[lex.language] = _compile_ages(lex.language, lex.ages)
            for unit in lex.ages.units:
                key, mode = parse_term(unit)
                self.entries.append(TermEntry(unit, key, "age_unit", lex.language, mode))
        self.not_typos.update(fold(w).strip() for w in lex.not_typos)

    def _spelled(self, variants: list[TermEntry]) -> list[TermEntry]:
        """Terms the engine spells another way (devoiced kana, ae for ä), unless that spelling is
        a real word, carrying the exceptions listed for that spelling, if any (``ヌート``)."""
        return [
            replace(e, followed_by=fb, preceded_by=pb)
            for e in variants
            if e.key not in self.not_typos
            for fb, pb in [self.exceptions.get(e.key, (e.followed_by, e.preceded_by))]
        ]

    def _build(self, keyfn: Callable[[str], str]) -> ahocorasick.Automaton:
        table: dict[str, list[TermEntry]] = {}
        for entry in self.entries:
            table.setdefault(keyfn(entry.key), []).append(entry)
        return _automaton({key: tuple(entries) for key, entries in table.items()})

    # -- scanning ---------------------------------------------------------------------------

    def scan(self, folded: Folded) -> Scan:
        base = View("base", folded.text, folded)
        original = folded.original
        base.camel = bool(_CAMEL.search(original)) or (
            not original.isascii() and original.lower() != original
        )
        result = Scan()
        result.hits = list(self._scan(base, self._automaton, result))
        text = folded.text
        ascii_text = text.isascii()  # most prompts: ASCII patterns search them several times faster
        others: list[tuple[View, ahocorasick.Automaton]] = []
        if (_LEET_TRIGGER_ASCII if ascii_text else _LEET_TRIGGER).search(text):
            tables = [_LEET_I, _LEET_L] if ("1" in text or "|" in text) else [_LEET_I]
            if "1" in text and "|" in text:
                tables.append(_LEET_IL)
            if not ascii_text and any(d in text for d in "469") and _CYRILLIC.search(text):
                tables.append(_LEET_CYRILLIC)
            windows = (
                _windows(_LEET_TRIGGER.finditer(text), len(text)) if len(text) > _LONG else None
            )
            for table in tables:
                view = View("leet", text.translate(table), folded, camel=base.camel)
                view.windows = windows
                others.append((view, self._automaton))
        if _stretched(text):
            view = self._squeeze_view(folded)
            if len(text) > _LONG:
                view.windows = _view_windows(view, _STRETCH_RUNS.finditer(text), len(text))
            others.append((view, self._squeezed))
        if _SPACED_TRIGGER.search(" " + text) or (
            not ascii_text and _CJK_SPACED_TRIGGER.search(text)
        ):
            view, turned = self._spacing_view(folded)
            others.append((view, self._automaton))
            others.append((view, self._glued_phrases))
            if turned:
                others.append((self._spacing_view(folded, later=True)[0], self._automaton))
        if base.camel:
            camel = _camel_view(folded)
            if camel is not None:
                others.append((camel, self._automaton))
        if not ascii_text and _HANGUL_TRIGGER.search(text):
            spots = (
                _windows(_HANGUL_TRIGGER.finditer(text), len(text)) if len(text) > _LONG else None
            )
            others.append((_jamo_view(folded, spots or [(0, len(text))]), self._automaton))
        if others:
            # Drop what a view finds a second time, comparing spans of the normalised text.
            seen = {(h.entry, h.start, h.end) for h in result.hits}
            for view, automaton in others:
                for hit in self._scan(view, automaton, result):
                    ident = (hit.entry, *view.base_span(hit.start, hit.end))
                    if ident not in seen:
                        seen.add(ident)
                        result.hits.append(hit)
        units = [h for h in result.hits if h.entry.concept == "age_unit"]
        if units:
            result.hits = [h for h in result.hits if h.entry.concept != "age_unit"]
            texts = [folded.text]
            if any(u.view.name == "leet" for u in units) or any(
                v.name == "leet" for v, _ in others
            ):
                # "10 y34r 0ld", "tw3lve year old": read leetspeak, keep the number a number
                texts.append(_AGE_LEET.sub(lambda m: m.group().translate(_LEET_I), folded.text))
            result.ages, cut = self._ages(texts, units)
            result.ages = [w for a in result.ages if (w := _whole_years(folded, a)) is not None]
            result.truncated = result.truncated or cut
            spaced = [u for u in units if u.view.name == "spacing"]
            if spaced:
                # "1 0  y e a r  o l d": read the age where the spacing view joined it
                view = spaced[0].view
                more, cut = self._ages([view.text], spaced, in_view=True)
                known = {(a.start, a.end) for a in result.ages}
                for age in more:
                    start, end = view.base_span(age.start, age.end)
                    if (start, end) not in known:
                        result.ages.append(replace(age, start=start, end=end))
                result.truncated = result.truncated or cut
        if len(result.hits) > 1 or result.ages:
            result.hits = _prune(result.hits, result.ages)
        return result

    def _scan(self, view: View, automaton: ahocorasick.Automaton, result: Scan) -> Iterator[Hit]:
        text = view.text
        n = len(text)
        squeezed = view.name == "stretch"
        matches = (
            automaton.iter(text)
            if view.windows is None
            else chain.from_iterable(
                ((lo + last, entries) for last, entries in automaton.iter(text[lo:hi]))
                for lo, hi in view.windows
            )
        )
        glue = view.to_base is None  # words glued together are looked for in same-position views
        pieces: list[tuple[int, int, TermEntry, bool, bool]] = []
        hangul_ends: set[int] = set()  # where accepted Hangul terms end: 여고생|누드
        for last, entries in matches:
            result.matches += 1
            if result.matches > MAX_MATCHES:
                result.truncated = True
                break
            end = last + 1
            for entry in entries:
                klen = len(squeeze(entry.key)) if squeezed else len(entry.key)
                start = end - klen
                mode = entry.mode
                left = mode not in ("word", "prefix") or self._boundary(view, start, n)
                right = mode not in ("word", "suffix") or self._boundary(view, end, n)
                if left and not right and _VERSION_TAIL.match(text, end):
                    right = True  # a model tag glued on: loliv2, lolixl, nudepony
                hangul = mode == "prefix" and _is_hangul(entry.key[0])
                if hangul and not left and start in hangul_ends:
                    left = True  # Korean glues nouns: a term right after another term starts one
                if not (left and right):
                    if (
                        glue
                        and mode == "word"
                        and klen >= _MIN_GLUED
                        and entry.concept != "age_unit"
                        and entry.key.isalpha()
                        and id(entry) not in self._derived
                    ):
                        pieces.append((start, end, entry, left, right))
                    continue
                if (entry.followed_by or entry.preceded_by) and _excepted(entry, text, start, end):
                    continue
                if not _view_accepts(view, start, end):
                    continue
                if hangul and len(entry.key) >= 2:
                    hangul_ends.add(end)
                yield Hit(entry, start, end, view)
        if len(pieces) > 1:
            glued_view = View("glued", text, view.folded, camel=view.camel)
            yield from _glued(pieces, glued_view, self._glue_skip)

    @staticmethod
    def _boundary(view: View, p: int, n: int) -> bool:
        if p <= 0 or p >= n:
            return True
        text = view.text
        a, b = text[p - 1], text[p]
        if not a.isalnum() or not b.isalnum() or a.isdigit() != b.isdigit():
            return True
        if (a >= "\u3040") != (b >= "\u3040"):
            return True  # Latin or Cyrillic glued to Han, kana or Hangul: nude少女, luolu的侄女
        if p in view.boundaries:
            return True
        if view.camel and view.to_base is None:
            # kidStyle: a switch from lower to upper case in the original is a word boundary
            folded = view.folded
            i, j = folded.source(p - 1), folded.source(p)
            return i != j and folded.original[i].islower() and folded.original[j].isupper()
        return False

    @staticmethod
    def _squeeze_view(folded: Folded) -> View:
        text = folded.text
        return View("stretch", _RUN.sub(r"\1", text), folded, kept_after_collapse(_RUN, text))

    @staticmethod
    def _spacing_view(folded: Folded, later: bool = False) -> tuple[View, bool]:
        """Spaced letter runs joined into words. With ``later``, a break where the spacing
        changes goes one letter later (see _word_breaks). Also says whether any such break
        was placed, so that the caller reads the other placement too."""
        text = folded.text
        turned = False
        pieces: list[str] = []
        to_base: list[int] = []
        joined: list[range] = []
        prev = 0
        for m in _SPACED.finditer(text):
            pieces.append(text[prev : m.start()])
            to_base.extend(range(prev, m.start()))
            first = len(to_base)
            positions = range(m.start(), m.end(), 2)
            # Where the gap between letters changes, a word ends in the original ("s e m  r o u
            # p a", "b r u g k l a s s e r u . i . t . g . e . k . l . e . e . d", "b . e . z
            # u . b . r . a . n . i . a"): keep a space there, so phrases still match.
            original = folded.original
            a, b = folded.source(m.start()), folded.source(m.end() - 1)
            separators = set(original[a + 1 : b : 2])
            if b - a == m.end() - m.start() - 1 and len(separators) == 1:
                # every letter one same separator apart: one word ("n u d e", "n.u.d.e")
                gaps = [separators.pop()] * (len(positions) - 1)
            else:
                gaps = [
                    "".join(
                        c for c in original[folded.source(p) + 1 : folded.source(q)] if FOLD[ord(c)]
                    )
                    for p, q in pairwise(positions)
                ]
            isolated, turns = _word_breaks(gaps)
            turned = turned or bool(turns)
            breaks = isolated | ({k + 1 for k in turns} if later else turns)
            for k, p in enumerate(positions):
                if k in breaks:
                    pieces.append(" ")
                    to_base.append(p - 1)
                pieces.append(text[p])
                to_base.append(p)
            joined.append(range(first + 1, len(to_base)))
            prev = m.end()
        pieces.append(text[prev:])
        to_base.extend(range(prev, len(text)))
        boundaries = frozenset(chain.from_iterable(joined))
        return View("spacing", "".join(pieces), folded, to_base, boundaries), turned

    def typo_candidates(self, word: str) -> list[TermEntry]:
        """Terms that ``word`` could be a typo of. A word and its term share a script: a Latin
        word is no typo of a Russian term whose normalised form happens to look Latin."""
        cached = self._typo_cache.get(word)
        if cached is not None:
            return cached
        ascii_word = word.isascii()
        found = []
        for variant in (word, *deletions(word)):
            for entry in self.typo_index.get(variant, ()):
                if entry.key.isascii() == ascii_word and one_edit(word, entry.key):
                    found.append(entry)
        if len(self._typo_cache) < _TYPO_CACHE:  # words repeat across prompts; bounded memory
            self._typo_cache[word] = found
        return found

    def phrase_candidates(self, word: str) -> list[PhraseWord]:
        """Words of multi-word terms that ``word`` could be a typo of, in the same script."""
        ascii_word = word.isascii()
        return [
            p
            for variant in (word, *deletions(word))
            for p in self.phrase_index.get(variant, ())
            if p.words[p.index].isascii() == ascii_word and one_edit(word, p.words[p.index])
        ]

    def pairs_across(self, youth: TermEntry, person: TermEntry) -> bool:
        """Whether a youth word can describe a person noun of another language: not if the
        person's language gives the youth word another meaning (``petite`` is a youth adjective
        in French, a body type in English, so ``petite girl`` is no pair)."""
        if youth.language == person.language or "common" in (youth.language, person.language):
            return True
        other = self.concepts_of.get(youth.key, {}).get(person.language, set())
        return not (other - {"youth"})

    def typos(self, folded: Folded, scan: Scan, concepts: tuple[str, ...]) -> list[Hit]:
        """Words one edit (insertion, deletion, substitution, transposition) from a term.

        Run only when a request holds one half of a pair, so its cost is rare. A word that is a
        lexicon term, or a known real word (``not_typos``), is never read as a typo.
        """
        text = folded.text
        view = View("typo", text, folded)
        found: list[Hit] = []
        skip = self._typo_skip
        cache = self._typo_by_concepts.setdefault(concepts, {})
        # Most words of a prompt are real words or terms: set difference in C leaves the rest.
        token = _TYPO_TOKEN_ASCII if text.isascii() else _TYPO_TOKEN
        hopeful: dict[str, tuple[TermEntry, ...]] = {}
        phrases: dict[str, tuple[PhraseWord, ...]] = {}
        hopeless = self._hopeless.setdefault(concepts, set())
        present = set(token.findall(text))
        # A real word typed otherwise than it is written (pelda for példa) shields nothing.
        misspelt = self._misspelt_real_words(folded, token, present) if self.spellings else set()
        unshielded = {text[a:b] for a, b in misspelt}
        for w in ((present - skip) | unshielded) - hopeless:
            terms, words = self._typo_entries(w, concepts, cache)
            if not (terms or words):
                if len(hopeless) < _TYPO_CACHE:  # most words: set difference in C skips them
                    hopeless.add(w)
                continue
            if terms:
                hopeful[w] = terms
            if words:
                phrases[w] = words
        _one_half_each(hopeful)
        if phrases:
            found.extend(self._phrase_typos(text, view, token, phrases))
        if hopeful:
            taken = sorted(h.view.base_span(h.start, h.end) for h in scan.hits)
            taken_starts = [a for a, _ in taken]
            taken_reach = list(accumulate((b for _, b in taken), max))
            for m in token.finditer(text):
                found_terms = hopeful.get(m.group())
                if not found_terms:
                    continue
                if m.group() in skip and m.span() not in misspelt:
                    continue  # this occurrence is the real word, as written
                # skip words that overlap a hit already found
                i = bisect_left(taken_starts, m.end())
                if i and taken_reach[i - 1] > m.start():
                    continue
                found.extend(Hit(e, m.start(), m.end(), view) for e in found_terms)
        if not text.isascii():
            found.extend(self._hangul_typos(text, view, concepts, scan))
            found.extend(
                Hit(e, last + 1 - n, last + 1, view)
                for last, (n, entries) in self._kana_slips.iter(text)
                if last + 1 == len(text)
                or not is_kana(text[last + 1])
                or text[last + 1] in _PARTICLES
                for e in entries
                if e.concept in concepts and not _excepted(e, text, last + 1 - n, last + 1)
            )
        return found

    def _misspelt_real_words(
        self, folded: Folded, token: re.Pattern[str], present: set[str]
    ) -> set[tuple[int, int]]:
        """Spans of words of not_typos whose original spelling is none of the real word's."""
        original = folded.original
        if original.isascii():  # most prompts: typed as folded, so only accent-only words count
            known = present & self._accent_only
            if not known:
                return set()
            return {m.span() for m in token.finditer(folded.text) if m.group() in known}
        known = present & self.spellings.keys()
        if not known:
            return set()
        out = set()
        for m in token.finditer(folded.text):
            word = m.group()
            if word not in known:
                continue
            a, b = folded.span(*m.span())
            if _as_written(original[a:b]) not in self.spellings[word]:
                out.add(m.span())
        return out

    def _phrase_typos(
        self,
        text: str,
        view: View,
        token: re.Pattern[str],
        hopeful: dict[str, tuple[PhraseWord, ...]],
    ) -> Iterator[Hit]:
        """Multi-word terms with one word one edit off (``zonder lkeren``, ``anadan oğma``,
        ``elementry schooler``): the other words must stand right beside it, as written."""
        n = len(text)
        for m in token.finditer(text):
            for p in hopeful.get(m.group(), ()):
                before = " ".join(p.words[: p.index])
                after = " ".join(p.words[p.index + 1 :])
                start = m.start() - len(before) - 1 if before else m.start()
                end = m.end() + len(after) + 1 if after else m.end()
                if start < 0 or end > n:
                    continue
                if before and text[start : m.start()] != before + " ":
                    continue
                if after and text[m.end() : end] != " " + after:
                    continue
                if (start and text[start - 1].isalnum()) or (end < n and text[end].isalnum()):
                    continue
                yield Hit(p.entry, start, end, view)

    def _hangul_typos(
        self, text: str, view: View, concepts: tuple[str, ...], scan: Scan
    ) -> Iterator[Hit]:
        """Korean words one letter (jamo) from a Hangul term (see gardien.text.hangul). Past
        MAX_HANGUL_TYPO_WORDS distinct words the scan is marked truncated (a review)."""
        skip = self._typo_skip
        words = [w for w in dict.fromkeys(HANGUL_WORD.findall(text)) if w not in skip]
        if len(words) > MAX_HANGUL_TYPO_WORDS:
            scan.truncated = True
            del words[MAX_HANGUL_TYPO_WORDS:]
        hopeful = {
            w: c
            for w in words
            if (
                c := [
                    (n, e)
                    for n, e in self.hangul_typos.candidates(w, skip)
                    if e.concept in concepts
                ]
            )
        }
        if not hopeful:
            return
        for m in HANGUL_WORD.finditer(text):
            for length, entry in hopeful.get(m.group(), ()):
                yield Hit(entry, m.start(), m.start() + length, view)

    def _typo_entries(
        self, word: str, concepts: tuple[str, ...], cache: dict[str, _Candidates]
    ) -> _Candidates:
        """The terms of ``concepts`` that ``word`` could be a typo of, one per key, and the
        words of multi-word terms it could be a typo of (cached)."""
        candidates = cache.get(word)
        if candidates is None:
            by_key: dict[str, TermEntry] = {}
            for entry in self.typo_candidates(word):
                if entry.concept in concepts:
                    by_key.setdefault(entry.key, entry)
            phrases = {
                (p.entry.key, p.index): p
                for p in self.phrase_candidates(word)
                if p.entry.concept in concepts
            }
            candidates = (tuple(by_key.values()), tuple(phrases.values()))
            if len(cache) < _TYPO_CACHE:  # words repeat across prompts; bounded memory
                cache[word] = candidates
        return candidates

    def _ages(
        self, texts: list[str], units: list[Hit], *, in_view: bool = False
    ) -> tuple[list[AgeHit], bool]:
        """Ages near age units, read in each of ``texts`` (same positions: the normalised text
        and its leet reading; or, ``in_view``, the text of the units' own view). Windows around
        the units are merged per language, so each part of a text is searched once per language
        however many units it holds. The flag says the MAX_AGES limit cut the search short."""
        n = len(texts[0])
        windows: dict[str, list[list[int]]] = {}
        for start, end, language in sorted(
            (
                *((u.start, u.end) if in_view else u.view.base_span(u.start, u.end)),
                u.entry.language,
            )
            for u in units
        ):
            if language not in self.ages:
                continue
            lo, hi = max(0, start - _WINDOW), min(n, end + _WINDOW)
            spans = windows.setdefault(language, [])
            if spans and lo <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], hi)
            else:
                spans.append([lo, hi])
        found: dict[tuple[int, int], AgeHit] = {}
        for language, spans in windows.items():
            matcher = self.ages[language]
            for text in texts:
                for lo, hi in spans:
                    for m in matcher.pattern.finditer(text, lo, hi):
                        if len(found) >= MAX_AGES:
                            return list(found.values()), True
                        if (m.start(), m.end()) in found:
                            continue
                        age = self._age(text, m, matcher)
                        if age is not None:
                            found[(m.start(), m.end())] = age
        return list(found.values()), False

    def _age(self, text: str, m: re.Match[str], matcher: AgeMatcher) -> AgeHit | None:
        number = matcher.number.search(m.group())
        if number is None:
            return None
        raw = number.group()
        value = int(raw) if raw.isdigit() else matcher.numbers.get(raw, -1)
        if not 0 < value < 120 or self._is_object_age(text, m.start(), m.end(), matcher):
            return None
        if value > 1 and self._is_upper_bound(text, m.start(), m.end(), matcher):
            value -= 1  # "under 18", "18歳未満": the person is younger than the number
        return AgeHit(value, m.start(), m.end(), matcher.language, m.group())

    @staticmethod
    def _is_upper_bound(text: str, start: int, end: int, matcher: AgeMatcher) -> bool:
        """The age is a bound from above: ``under 18``, ``младше 18``, ``18 yaş altı``."""
        if not matcher.below:
            return False
        before = text[max(0, start - 24) : start].rstrip()
        after = text[end : end + 24].lstrip()
        for word in matcher.below:
            if before.endswith(word) and (
                len(before) == len(word) or not before[-len(word) - 1].isalnum()
            ):
                # "no one under 18" disclaims minors; it describes no one
                lead = text[max(0, start - 24 - len(word)) : start].rstrip()[: -len(word)]
                return (
                    not lead.rstrip().endswith(matcher.disclaimers) if matcher.disclaimers else True
                )
            if after.startswith(word) and (
                len(after) == len(word) or not after[len(word)].isalnum() or not word.isascii()
            ):
                return True
        return False

    @staticmethod
    def _is_object_age(text: str, start: int, end: int, matcher: AgeMatcher) -> bool:
        """An age that describes a thing: the word right after it, or right before it, is one of
        the language's objects (``8 year old oak``, ``whisky aged 12 years``). Only the adjacent
        words count, so an object elsewhere in the prompt can't cancel a person's age."""
        before = text[max(0, start - 40) : start].split()
        if before and before[-1] in matcher.objects:
            return True
        after = text[end : end + 40].split()
        return bool(after) and after[0] in matcher.objects


#: Shortest term also read written backwards (``dlihc`` for ``child``).
MIN_REVERSED = 4
_REVERSED_CONCEPTS = ("coded", "minor", "sexual_explicit")


def reversed_terms(entries: list[TermEntry]) -> list[TermEntry]:
    """Single-word terms written backwards (``dlihc dekan``), as entries of their own: one
    automaton finds them in the same pass, so the disguise costs nothing to look for. A backward
    form that is itself a term, or a real word (``not_typos``; filtered by the caller), is left
    out."""
    keys = {e.key for e in entries}
    out = []
    for e in entries:
        back = e.key[::-1]
        if (
            e.concept in _REVERSED_CONCEPTS
            and e.mode == "word"
            and len(e.key) >= MIN_REVERSED
            and e.key.isalpha()
            and back != e.key
            and back not in keys
        ):
            out.append(
                TermEntry(f"{e.term} (written backwards)", back, e.concept, e.language, "word")
            )
    return out


#: Shortest term read inside a word made of glued terms.
_MIN_GLUED = 3


def _is_hangul(char: str) -> bool:
    return "\uac00" <= char <= "\ud7a3"


def _as_written(typed: str) -> str:
    """A word as its writer spelled it, accents kept: width and look-alike letters (Cyrillic
    а) folded, invisible characters dropped, lower case. ``Mätchen`` -> ``mätchen``."""
    out = []
    for c in unicodedata.normalize("NFKC", typed):
        if "LATIN" in unicodedata.name(c, ""):
            out.append(c.lower())
        else:
            out.append(FOLD[ord(c)])
    return unicodedata.normalize("NFC", "".join(out))


def _one_half_each(hopeful: dict[str, tuple[TermEntry, ...]]) -> None:
    """A word that reads as a typo of both halves of a pair (``галая``: малая, small, or голая,
    naked) keeps the half whose partner another word supplies; alone it supplies neither, since
    one word is never a request on its own (``bubis``: bubi, pubis)."""
    ambiguous = []
    sexual_elsewhere = minor_elsewhere = False
    for w, terms in hopeful.items():
        sexual = {e.concept in _SEXUAL_TYPOS for e in terms}
        if len(sexual) == 2:
            ambiguous.append(w)
        elif True in sexual:
            sexual_elsewhere = True
        else:
            minor_elsewhere = True
    for w in ambiguous:
        kept = tuple(
            e
            for e in hopeful[w]
            if (minor_elsewhere if e.concept in _SEXUAL_TYPOS else sexual_elsewhere)
        )
        if kept:
            hopeful[w] = kept
        else:
            del hopeful[w]


def _glued(
    pieces: list[tuple[int, int, TermEntry, bool, bool]], view: View, real_words: set[str]
) -> Iterator[Hit]:
    """Words made of lexicon terms glued together (``nakedchild``, ``littlegirl``), found from
    the matches that failed a word boundary. A word counts only if terms of one language tile it
    exactly, from its start to its end (so ``childhood`` or ``therapist`` never do), and it is
    not a real word (``mankind``, ``Dickson``: the generated list of real words)."""
    by_start: dict[int, list[tuple[int, int, TermEntry, bool, bool]]] = {}
    for piece in pieces:
        by_start.setdefault(piece[0], []).append(piece)

    def chains(
        piece: tuple[int, int, TermEntry, bool, bool], depth: int
    ) -> Iterator[list[tuple[int, int, TermEntry, bool, bool]]]:
        if piece[4]:  # ends the word
            yield [piece]
            return
        if depth == 0:
            return
        for nxt in by_start.get(piece[1], ()):
            if not nxt[3]:  # does not start a word: it continues this one
                for rest in chains(nxt, depth - 1):
                    yield [piece, *rest]

    emitted: set[tuple[int, int, TermEntry]] = set()
    for piece in pieces:
        if not piece[3] or piece[4]:  # must start the word and not end it
            continue
        for chain_ in chains(piece, 3):
            languages = {p[2].language for p in chain_} - {"common"}
            if len(languages) > 1 or view.text[chain_[0][0] : chain_[-1][1]] in real_words:
                continue
            for start, end, entry, _, _ in chain_:
                if (start, end, entry) in emitted:
                    continue
                if (entry.followed_by or entry.preceded_by) and _excepted(
                    entry, view.text, start, end
                ):
                    continue
                emitted.add((start, end, entry))
                yield Hit(entry, start, end, view)


def _whole_years(folded: Folded, age: AgeHit) -> AgeHit | None:
    """The age, read in whole years when its number is the fraction of a decimal (``13.5 years``,
    ``21,5 jaar``): the fold turned the point into a space, so the pattern read ``5 years``."""
    digit = re.search(r"\d", folded.text[age.start : age.end])
    if digit is None:
        return age
    i = folded.source(age.start + digit.start())
    original = folded.original
    if i < 2 or original[i - 1] not in ".," or not original[i - 2].isdigit():
        return age
    j = i - 1
    while j > 0 and original[j - 1].isdigit() and i - 1 - j < 3:
        j -= 1
    whole = int(original[j : i - 1])
    return replace(age, value=whole) if 0 < whole < 120 else None


def _prune(hits: list[Hit], ages: list[AgeHit]) -> list[Hit]:
    """Drop hits that say nothing new: inside an age (``old`` in ``12 years old``), inside a longer
    hit of the same concept (``girl`` in ``1girl``), the same span and concept in another
    language, or youth inside an adult term (``male``, Polish "small", in ``mature_male``).
    Linear after sorting, whatever the number of hits."""
    spans = sorted(
        ((h, *h.view.base_span(h.start, h.end)) for h in hits), key=lambda t: (t[1], t[1] - t[2])
    )
    age_spans = sorted((a.start, a.end) for a in ages)
    kept: list[Hit] = []
    reach: dict[str, int] = {}  # furthest end of a kept span, per concept
    age_i, age_reach = 0, -1
    for hit, a, b in spans:
        while age_i < len(age_spans) and age_spans[age_i][0] <= a:
            age_reach = max(age_reach, age_spans[age_i][1])
            age_i += 1
        if b <= age_reach:
            continue
        concept = hit.entry.concept
        if b <= reach.get(concept, -1):
            continue
        if concept in _YOUTH and b <= reach.get("adult", -1):
            continue
        reach[concept] = b
        kept.append(hit)
    return kept


_YOUTH = ("youth", "youth_leaning")


def deletions(word: str) -> list[str]:
    return [word[:i] + word[i + 1 :] for i in range(len(word))]


def one_edit(a: str, b: str) -> bool:
    """True if a and b differ by exactly one insertion, deletion, substitution or transposition."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i, j = diff[0], diff[-1]
        return len(diff) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


def _excepted(entry: TermEntry, text: str, start: int, end: int) -> bool:
    cjk = entry.mode == "substring"
    if entry.followed_by:
        rest = text[end : end + 64]
        if (
            entry.mode == "prefix"
            and _is_hangul(entry.key[0])
            and rest.startswith(entry.followed_by)
        ):
            return True  # the rest of the same Hangul word: 아기 in 아기자기 (cute)
        if cjk:
            if rest.lstrip(" ").startswith(entry.followed_by):
                return True
        elif rest.startswith(" ") and rest.startswith(entry.followed_by, 1):
            hangul = _is_hangul(entry.key[0])  # the next word may carry a particle: 키의
            for w in entry.followed_by:
                if rest.startswith(w, 1) and (hangul or not _alnum_at(rest, 1 + len(w))):
                    return True
    if entry.preceded_by:
        before = text[max(0, start - 64) : start]
        if cjk:
            if before.rstrip(" ").endswith(entry.preceded_by):
                return True
        elif before.endswith(" "):
            body = before[:-1]
            if body.endswith(entry.preceded_by):
                for w in entry.preceded_by:
                    if body.endswith(w) and not _alnum_at(body, len(body) - len(w) - 1):
                        return True
    return False


def _alnum_at(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isalnum()


def _view_accepts(view: View, start: int, end: int) -> bool:
    """Hits in a disguise view count only where the disguise was there."""
    if view.name == "spacing":
        # at least two letters of the hit come from a joined run
        return sum(1 for p in range(start + 1, end) if p in view.boundaries) >= 1
    if view.name == "jamo":
        return any(p in view.composed for p in range(start, end))
    if view.name == "stretch":
        # the hit covers a run of three or more of one letter in the normalised text
        a, b = view.base_span(start, end)
        return _STRETCH_TRIGGER.search(view.folded.text, a, b) is not None
    return True
