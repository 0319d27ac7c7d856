"""Lexicon files: schema, loading and validation. The format is described in docs/lexicons.md."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gardien.core.errors import LexiconError
from gardien.text.kana import devoiced
from gardien.text.normalize import fold

Concept = Literal[
    "coded",
    "minor",
    "youth",
    "person",
    "sexual_explicit",
    "sexual_suggestive",
    "adult",
    "adult_leaning",
    "youth_leaning",
    "clothing",
    "kin",
    "child_leaning",
    "absence",
    "costume",
    "thing",
    "preposition",
    "abuse",
    "awareness",
    "uniform",
]
CONCEPTS: tuple[Concept, ...] = get_args(Concept)
#: What an exception's ``next_to`` may name: a concept, or an age.
#: Words read only beside other terms, never matched on their own (gardien.text.matcher): no
#: term can wait for one, so an exception naming them would cancel its term everywhere.
SIDE_WORDS: tuple[str, ...] = ("absence", "preposition")
NEIGHBOURS: tuple[str, ...] = (*(c for c in CONCEPTS if c not in SIDE_WORDS), "age")
Mode = Literal["word", "prefix", "suffix", "substring"]

_MIN_STEM = 4


class Terms(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coded: list[str] = Field(default_factory=list)
    minor: list[str] = Field(default_factory=list)
    youth: list[str] = Field(default_factory=list)
    person: list[str] = Field(default_factory=list)
    sexual_explicit: list[str] = Field(default_factory=list)
    sexual_suggestive: list[str] = Field(default_factory=list)
    adult: list[str] = Field(default_factory=list)
    adult_leaning: list[str] = Field(default_factory=list)
    youth_leaning: list[str] = Field(default_factory=list)
    #: Clothing and censorship words: in a negative prompt they ask for nudity.
    clothing: list[str] = Field(default_factory=list)
    #: Kinship nouns that may name a child (daughter, niece): also listed as ``person``.
    kin: list[str] = Field(default_factory=list)
    #: Words for a girl or boy that mostly name children but also adults (女の子, Mädel): read
    #: like ``kin``. Also listed as ``person``.
    child_leaning: list[str] = Field(default_factory=list)
    #: "Without" and "no" (sans, ohne, без, なし, ❌): beside a ``clothing`` word they mean nudity.
    absence: list[str] = Field(default_factory=list)
    #: Costume words (cosplay, dressed as, déguisée en): a minor noun beside one, in a prompt
    #: that states an adult, names the costume, not the person.
    costume: list[str] = Field(default_factory=list)
    #: Things that "sexy" or "hot" describe without sexualising anyone (a car, a cake): a
    #: suggestive word right beside one describes it.
    thing: list[str] = Field(default_factory=list)
    #: Prepositions (on, with, sur, auf): "sexy on a car" is a pose, not a sexy car.
    preposition: list[str] = Field(default_factory=list)
    #: Nouns naming the crime (abuse, exploitation, Missbrauch, 性侵害): a sexual word beside one,
    #: in a prompt with an ``awareness`` word, names what a campaign fights.
    abuse: list[str] = Field(default_factory=list)
    #: Campaign and prevention words (campaign, prevention, hotline, poster against, 预防).
    awareness: list[str] = Field(default_factory=list)
    #: Minor nouns that name a uniform as well as a pupil (schoolgirl, écolière, 女子高生): the
    #: only minor nouns a costume word can turn into a costume.
    uniform: list[str] = Field(default_factory=list)


class Ages(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Words that mark an age (``years``, ``ans``, ``歳``); they trigger the patterns nearby.
    units: list[str] = Field(min_length=1)
    patterns: list[str] = Field(min_length=1)
    numbers: dict[str, int] = Field(default_factory=dict)
    objects: list[str] = Field(default_factory=list)
    #: Words right before an age (``under``, ``moins de``) or right after it (``未満``, ``altı``)
    #: that make it an upper bound: ``under 18`` is read as 17, a minor.
    below: list[str] = Field(default_factory=list)
    #: Words right before a ``below`` word that make the bound a disclaimer (``no one under 18``).
    disclaimers: list[str] = Field(default_factory=list)

    @field_validator("patterns")
    @classmethod
    def _patterns_use_n(cls, patterns: list[str]) -> list[str]:
        for i, p in enumerate(patterns):
            if "{n}" not in p:
                raise ValueError(f"[{i}] {p!r}: a pattern must contain {{n}}")
            try:
                re.compile(p.replace("{n}", "(?:1)"))
            except re.error as exc:
                raise ValueError(f"[{i}] {p!r}: not a valid regular expression: {exc}") from None
        return patterns


class ExceptionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    term: str
    followed_by: list[str] = Field(default_factory=list)
    preceded_by: list[str] = Field(default_factory=list)
    #: The term counts only right next to one of these: concepts, or "age".
    next_to: list[str] = Field(default_factory=list)

    @field_validator("next_to")
    @classmethod
    def _known_neighbours(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(NEIGHBOURS))
        if unknown:
            raise ValueError(f"unknown {unknown}; use {', '.join(NEIGHBOURS)}")
        return value


class LexiconFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(pattern=r"^(?:[a-z]{2,3}|common)$")
    name: str
    terms: Terms
    ages: Ages | None = None
    exceptions: list[ExceptionRule] = Field(default_factory=list)
    #: Real words one edit away from a lexicon term, which must never be read as its typo.
    not_typos: list[str] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TermEntry:
    """One lexicon term, compiled for matching."""

    term: str  # as written in the lexicon
    key: str  # normalised form that is searched for
    concept: str
    language: str
    mode: Mode
    followed_by: tuple[str, ...] = ()
    preceded_by: tuple[str, ...] = ()
    next_to: tuple[str, ...] = ()


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return 0x3040 <= cp <= 0x30FF or 0x3400 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF


def _is_hangul(ch: str) -> bool:
    cp = ord(ch)
    return 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F


def parse_term(raw: str) -> tuple[str, Mode]:
    """Normalised key and match mode of a term written with optional ``*`` or ``=`` markers."""
    if raw.startswith("="):
        # whole word only, where the script would match at a word's start (Hangul) or anywhere
        key = fold(raw[1:]).strip()
        if not key or "*" in raw or "=" in raw[1:]:
            raise ValueError(f"{raw!r}: '=' takes a plain term: '=아이'")
        return key, "word"
    head = raw.startswith("*")
    tail = raw.endswith("*") and len(raw) > 1
    key = fold(raw.strip("*")).strip()
    if not key:
        raise ValueError(f"{raw!r}: empty after normalisation")
    if "*" in key:
        raise ValueError(f"{raw!r}: '*' may only start or end a term")
    mode: Mode
    if head and tail:
        mode = "substring"
    elif tail:
        mode = "prefix"
    elif head:
        mode = "suffix"
    elif any(_is_cjk(c) for c in key):
        mode = "substring"
    elif any(_is_hangul(c) for c in key):
        mode = "prefix"
    else:
        mode = "word"
    if (head or tail) and len(key) < _MIN_STEM and not any(_is_cjk(c) for c in key):
        raise ValueError(f"{raw!r}: a stem or tail needs at least {_MIN_STEM} characters")
    return key, mode


def _validate(data: object, source: str) -> LexiconFile:
    try:
        lexicon = LexiconFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise LexiconError(f"{source}: {problems}") from None
    for concept in CONCEPTS:
        for i, raw in enumerate(getattr(lexicon.terms, concept)):
            try:
                parse_term(raw)
            except ValueError as exc:
                raise LexiconError(f"{source}: terms.{concept}[{i}]: {exc}") from None
    known = {parse_term(t)[0] for c in CONCEPTS for t in getattr(lexicon.terms, c)}
    known |= {devoiced(k) for k in known}  # ヌート (ヌード without its marks) may take exceptions
    for i, rule in enumerate(lexicon.exceptions):
        if fold(rule.term).strip() not in known:
            raise LexiconError(
                f"{source}: exceptions[{i}].term: {rule.term!r} is not a term of this lexicon"
            )
        if not rule.followed_by and not rule.preceded_by and not rule.next_to:
            raise LexiconError(
                f"{source}: exceptions[{i}]: needs followed_by, preceded_by or next_to"
            )
    return lexicon


def load_lexicon_file(path: Path) -> LexiconFile:
    """Read and validate one lexicon file; errors name the file and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LexiconError(f"{path}: not valid TOML: {exc}") from None
    return _validate(data, str(path))


def bundled_lexicon_paths() -> list[Path]:
    folder = resources.files("gardien.text") / "lexicons"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))


def _not_typo_lines() -> list[tuple[str, str | None]]:
    path = resources.files("gardien.text") / "lexicons" / "not_typos.txt"
    if not path.is_file():
        return []
    out: list[tuple[str, str | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        word, _, spellings = line.partition("\t")
        out.append((word.strip(), spellings.strip() if spellings else None))
    return out


def bundled_not_typos() -> frozenset[str]:
    """Real words one edit from a bundled term (generated by tools/build_not_typos.py)."""
    return frozenset(word for word, _ in _not_typo_lines())


def bundled_not_typo_spellings() -> dict[str, frozenset[str]]:
    """How each real word of not_typos.txt is written, where known (``pelda``: ``példa``): a
    word typed otherwise (``pelda`` without its accent, ``mätchen`` for ``matchen``) is not that
    real word, and may be read as a typo."""
    return {
        word: frozenset(spellings.split(","))
        for word, spellings in _not_typo_lines()
        if spellings is not None
    }


def load_lexicons(paths: list[Path] | None = None) -> list[LexiconFile]:
    """The bundled lexicons, or the given files."""
    return [load_lexicon_file(p) for p in (paths or bundled_lexicon_paths())]


_UMLAUTS = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)


def umlaut_spellings(entries: list[TermEntry]) -> list[TermEntry]:
    """German terms with ä, ö, ü or ß, written as ASCII does (``Maedchen``, ``nackte Maedels``,
    LoRA names): folding alone reads ``Mädchen`` as ``madchen``, never ``maedchen``."""
    keys = {e.key for e in entries}
    out = []
    for e in entries:
        if e.language != "de" or not any(c in "äöüÄÖÜß" for c in e.term):
            continue
        spelled = e.term.translate(_UMLAUTS)
        key, mode = parse_term(spelled)
        if key not in keys:
            keys.add(key)
            out.append(replace(e, term=f"{e.term} ({spelled.strip('=*')})", key=key, mode=mode))
    return out
