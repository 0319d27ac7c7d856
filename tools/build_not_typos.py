"""Regenerate src/gardien/text/lexicons/not_typos.txt: real words the engine must not read as
disguised terms.

The typo pass reads a word one edit away from a term as that term (``chlid`` -> ``child``), and
words made of glued terms as those terms (``nakedchild``). Real words of either kind (``chill``,
``vestita`` next to ``svestita``; ``mankind``, ``Dickson``) must not be. This script takes
the most frequent words of many languages from wordfreq, keeps those one edit from a typo-eligible
term of the bundled lexicons, and writes them out. Run it after changing a lexicon:

    .venv/bin/pip install 'gardien[tools]' && .venv/bin/python tools/build_not_typos.py
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import wordfreq

from gardien.text.hangul import is_syllables
from gardien.text.lexicon import TermEntry, load_lexicons
from gardien.text.matcher import Matcher, reversed_terms
from gardien.text.normalize import Folded, fold

LANGUAGES = [
    "en",
    "fr",
    "es",
    "de",
    "it",
    "pt",
    "nl",
    "pl",
    "ru",
    "tr",
    "ro",
    "sv",
    "da",
    "nb",
    "fi",
    "cs",
    "sk",
    "hu",
    "ca",
    "id",
    "ms",
    "uk",
    "bg",
    "sr",
    "hr",
    "sl",
    "lt",
    "lv",
    "vi",
    "fil",
]
TOP = 60_000
#: The languages gardien screens. English, the language of most prompts, is read down to rare
#: words ("sundress" is no typo of "undress"); deeper lists of the others bring in their common
#: misspellings as words ("adolecente"), which must stay readable as typos.
SUPPORTED = {"en", "fr", "es", "de", "it", "pt", "nl", "pl", "ru", "tr"}
TOP_SUPPORTED = 60_000
TOP_ENGLISH = 150_000
#: Other languages' words count only where common: a rare Norwegian "fillete" must not shield
#: the French typo of "fillette".
TOP_OTHER = 30_000
#: A word far rarer than a term one edit away, in the term's own language, is that term
#: misspelt (wordfreq counts frequent misspellings: "litle", "menia"), not a word to protect.
MISSPELLING_GAP = 3.0
MISSPELLING_MAX_ZIPF = 3.0
OUT = Path(__file__).resolve().parent.parent / "src/gardien/text/lexicons/not_typos.txt"


_SEXUAL = {"coded", "sexual_explicit", "sexual_suggestive"}
_MINOR = {"coded", "minor"}


def glued(matcher: Matcher, word: str) -> bool:
    """Whether the engine would read ``word`` as lexicon terms glued together. A real word that
    glues a sexual term to a minor one (``kindersex``) is left out: it is what the glue is for."""
    concepts = {
        h.entry.concept for h in matcher.scan(Folded.of(word)).hits if h.view.name == "glued"
    }
    if concepts & _SEXUAL and concepts & _MINOR:
        print(f"kept readable as glued terms: {word}")
        return False
    return bool(concepts)


def misspelling(raw: str, lang: str, candidates: list[TermEntry]) -> bool:
    """Whether ``raw`` (a word of ``lang``) is a misspelling of one of its ``candidates``."""
    have = wordfreq.zipf_frequency(raw, lang)
    if have >= MISSPELLING_MAX_ZIPF:
        return False
    return any(
        e.language == lang
        and max(wordfreq.zipf_frequency(e.term, lang), wordfreq.zipf_frequency(e.key, lang)) - have
        >= MISSPELLING_GAP
        for e in candidates
    )


def korean_near_terms(matcher: Matcher, keys: set[str]) -> set[str]:
    """Korean words one letter (jamo) from a Hangul term, read whole: wordfreq's Korean list is
    split into morphemes, so its entries are the nouns and stems a prompt's words start with."""
    found = set()
    for raw in wordfreq.top_n_list("ko", TOP):
        word = fold(raw).strip()
        if word in keys or not is_syllables(word):
            continue
        if any(n == len(word) for n, _ in matcher.hangul_typos.candidates(word, keys)):
            found.add(word)
    return found


def main() -> None:
    matcher = Matcher(load_lexicons())
    added = {id(e) for e in (*matcher.backwards, *matcher.devoiced)}
    terms = [e for e in matcher.entries if id(e) not in added]
    keys = {e.key for e in terms}
    backwards = {e.key for e in reversed_terms(terms)}  # before real words are filtered out
    found: set[str] = set()
    #: How each real word is written in its languages (accents, case aside): a word typed
    #: otherwise is no shield (pelda is not the Hungarian példa).
    spellings: dict[str, set[str]] = {}
    for lang in LANGUAGES:
        try:
            top = TOP_ENGLISH if lang == "en" else TOP_SUPPORTED if lang in SUPPORTED else TOP_OTHER
            words = wordfreq.top_n_list(lang, top)
        except LookupError:
            continue
        for raw in words:
            word = fold(raw).strip()
            if len(word) < 4 or not word.isalpha() or word in keys or " " in word:
                continue
            candidates = matcher.typo_candidates(word)
            candidates += [p.entry for p in matcher.phrase_candidates(word)]
            if candidates and misspelling(raw, lang, candidates):
                candidates = []
            if word in backwards or candidates or glued(matcher, word):
                found.add(word)
                spellings.setdefault(word, set()).add(unicodedata.normalize("NFC", raw).lower())
    found |= korean_near_terms(matcher, keys)
    devoiced = {e.key for e in matcher.devoiced}  # kana terms without their voicing marks
    found |= {w for w in map(fold, wordfreq.top_n_list("ja", TOP)) if w.strip() in devoiced}
    header = (
        "# Real words one edit from a lexicon term or from a word of a multi-word term, made of\n"
        "# lexicon terms glued together, or a term written backwards or without its voicing\n"
        "# marks: never read as such. Frequent misspellings of a term are left out. After a tab:\n"
        "# how the word is written; typed otherwise (without its accent), it shields nothing.\n"
        "# Generated by tools/build_not_typos.py from wordfreq: "
        f"top {TOP_ENGLISH:,} words in English, {TOP_SUPPORTED:,} in the other supported "
        f"languages, {TOP_OTHER:,} in "
        f"{len(LANGUAGES) - len(SUPPORTED)} others, {TOP:,} in Korean and Japanese. "
        "Do not edit by hand.\n"
    )
    lines = [
        f"{w}\t{','.join(sorted(spellings[w]))}" if w in spellings else w for w in sorted(found)
    ]
    OUT.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(found)} words -> {OUT}")


if __name__ == "__main__":
    main()
