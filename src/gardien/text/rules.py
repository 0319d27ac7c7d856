"""Composition: from matched terms and ages to category scores and findings.

Prompts are comma lists, so a minor reference and a sexual term anywhere in the positive prompt
make ``sexual/minors``; nearness is only asked of a youth adjective and the person it describes.
The negative prompt is read for what it steers away from: adult markers there, with a sexual prompt
that leans young, are a signal of their own. Terms in the negative prompt are never a request.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from itertools import accumulate

from gardien.core.categories import MINORS, SEXUAL, SEXUAL_MINORS
from gardien.core.verdict import Finding
from gardien.text.matcher import AgeHit, Hit, Matcher, Scan
from gardien.text.normalize import FOLD, Folded, fold

CODED = 1.0
MINOR = 0.95
AGE_MINOR = 0.95
YOUTH_PERSON = 0.9
EXPLICIT = 1.0
SUGGESTIVE = 0.7
#: Negative prompt asserts adulthood (``adult``, ``mature``, an age of 18+).
TRICK_STRONG = 0.8
#: Negative prompt only leans adult (``old``, ``wrinkles``): review, not block.
TRICK_WEAK = 0.4
#: A minor in the prompt and clothing or censorship in the negative prompt: block.
UNDRESSING = 0.8
KIN_EXPLICIT = 0.8
KIN_SUGGESTIVE = 0.7
#: An explicit prompt with this many young-looking descriptors and nothing adult: review.
LEANING_DESCRIPTORS = 3
LEANING_YOUNG = 0.4
#: Words between a youth adjective and its person noun, at most.
YOUTH_REACH = 3
_REACH_CHARS = 200
#: Findings kept per field and concept; the rest are counted in one summary finding.
MAX_FINDINGS_PER_CONCEPT = 16

_SEXUAL_WEIGHT = {"sexual_explicit": EXPLICIT, "sexual_suggestive": SUGGESTIVE}
#: Concepts that only qualify other terms: no finding of their own.
_SILENT = frozenset({"clothing", "absence", "costume", "thing", "abuse", "awareness", "uniform"})


@dataclass
class Field:
    """What was found in one field of the request (prompt or negative prompt)."""

    name: str
    folded: Folded
    scan: Scan
    matcher: Matcher

    @property
    def original(self) -> str:
        return self.folded.original

    @property
    def text(self) -> str:
        return self.folded.text

    def of(self, concept: str) -> list[Hit]:
        return [h for h in self.scan.hits if h.entry.concept == concept]


@dataclass
class Composition:
    scores: dict[str, float] = field(
        default_factory=lambda: {SEXUAL: 0.0, SEXUAL_MINORS: 0.0, MINORS: 0.0}
    )
    findings: list[Finding] = field(default_factory=list)
    minor_refs: list[tuple[float, str]] = field(default_factory=list)
    sexual_refs: list[tuple[float, str]] = field(default_factory=list)
    #: Findings not built because their concept was over the cap, by (field, concept, kind).
    omitted: Counter[tuple[str | None, str | None, str]] = field(default_factory=Counter)

    def raise_score(self, category: str, score: float) -> None:
        if score > self.scores[category]:
            self.scores[category] = score


def _rule(out: Composition, score: float, detail: str, field: str, concept: str) -> None:
    """Raise sexual/minors to ``score`` and say which rule did it. A rule that raises it names a
    possible minor, so ``minors`` rises with it (a verdict never says sexual/minors without one)."""
    out.raise_score(SEXUAL_MINORS, score)
    out.raise_score(MINORS, score)
    out.findings.append(
        Finding(
            kind="rule",
            category=SEXUAL_MINORS,
            score=score,
            detail=detail,
            field=field,
            concept=concept,
        )
    )


def _term_finding(f: Field, hit: Hit, score: float, category: str | None) -> Finding:
    start, end = hit.original_span
    e = hit.entry
    return Finding(
        kind="term",
        category=category,
        score=score,
        detail=f"{e.concept} term {e.term!r} ({e.language})",
        field=f.name,
        start=start,
        end=end,
        text=f.original[start:end],
        concept=e.concept,
        term=e.term,
        language=e.language,
        via=hit.view.name,
    )


def _age_finding(f: Field, age: AgeHit, category: str | None, score: float) -> Finding:
    start, end = f.folded.span(age.start, age.end)
    kind = "minor" if age.value < 18 else "adult"
    return Finding(
        kind="age",
        category=category,
        score=score,
        detail=f"age {age.value} ({kind}, {age.language})",
        field=f.name,
        start=start,
        end=end,
        text=f.original[start:end],
        concept="age_minor" if age.value < 18 else "age_adult",
        language=age.language,
    )


def _youth_pairs(f: Field) -> list[tuple[Hit, Hit]]:
    """Youth adjectives within reach of a person noun they can describe."""
    youths = f.of("youth")
    persons = f.of("person")
    if not youths or not persons:
        return []
    located = sorted(((*p.view.base_span(p.start, p.end), p) for p in persons), key=lambda t: t[0])
    starts = [a for a, _, _ in located]
    text = f.text
    pairs = []
    for y in youths:
        ya, yb = y.view.base_span(y.start, y.end)
        # persons that start near the adjective: three words rarely span 200 characters
        lo = bisect_left(starts, ya - _REACH_CHARS)
        hi = bisect_right(starts, yb + _REACH_CHARS)
        for pa, pb, p in located[lo:hi]:
            if not f.matcher.pairs_across(y.entry, p.entry):
                continue
            if yb <= pa:
                gap = text.count(" ", yb, pa)
            elif pb <= ya:
                gap = text.count(" ", pb, ya)
            else:
                continue
            if gap <= YOUTH_REACH:
                pairs.append((y, p))
                break
    return pairs


_BARE_AGE = re.compile(r"[\s,/(\[{、，]*(\d{1,2}|[^\W\d_]{2,20})[\s)\]}]*(?:[,;|、，。]|$)")
# "chica de 13", "menina de 12", "ragazza di 13", Dutch "jongen van 9": "of <number>" after a person
# is an age wherever it stands in the item; a unit after the number makes it a measure.
_OF_AGE = re.compile(
    r"\s+(?:de|di|da|del|van)\s+(\d{1,2})(?![\d/%]|[.,:]? ?\d)"
    r"(?!\s*(?:cm|mm|m|kg|g|h|min|x|€|\$)\b)",
    re.IGNORECASE,
)


# A birth year: "born in 2015", "b. 2014", "née en 2013", "nacida en 2014", "geboren 2015",
# "Jahrgang 2014", "urodzona w 2013", "рождена в 2014", "2014 doğumlu", "2014年生まれ",
# "2015年出生", "2014년생". Read on the folded text (lower case, accents and punctuation gone).
_BIRTH_YEAR = re.compile(
    r"(?<!\w)(?:born(?: in)?|b|nee?s?(?: en)?|nacid[oa]s?(?: en)?|nat[oa](?: nel)?|"
    r"nascid[oa]s?(?: em)?|geboren(?: im jahr| in)?|jahrgang|urodzon[aey](?: w)?|"
    r"рожден[аоы]?(?: в)?|родил[аи]?сь(?: в)?) ((?:19|20)\d\d)(?!\d)"
    r"|(?<!\d)((?:19|20)\d\d) ?(?:dogumlu|年生まれ|年出生|年生|년생)"
)


def _birth_years(f: Field) -> list[tuple[int, int, int, str]]:
    """(start, end) in the original text, the age the birth year gives this year, and the text.

    The age depends on today's date: a verdict on "born in 2010" changes when that person comes
    of age, as it should."""
    this_year = date.today().year
    found = []
    for m in _BIRTH_YEAR.finditer(f.text):
        year = int(m.group(1) or m.group(2))
        if year <= this_year:
            start, end = f.folded.span(m.start(), m.end())
            found.append((start, end, this_year - year, f.original[start:end]))
    return found


#: What ends a prompt's list item, in the original text.
_ITEM_END = re.compile(r"[,;|()\[\]{}<>\n、，。：:]")
#: Longest list item read for a youth word used as a noun.
_ITEM_CHARS = 400


def _youth_as_nouns(f: Field) -> list[Hit]:
    """Youth words used as nouns: ``piccola in costume adamitico``, ``goła mała`` (the little
    one). Only where the list item holds nothing else but sexual terms and numbers, so that a
    youth word describing a thing (``small house, nude``) is never read this way. Linear: each
    item is looked at once, whatever the number of hits."""
    youths = f.of("youth")
    if not youths:
        return []
    sexual = f.of("sexual_explicit") + f.of("sexual_suggestive")
    if not sexual or f.of("person"):
        return []
    text = f.original
    ends = [m.start() for m in _ITEM_END.finditer(text)]
    by_item: dict[int, list[Hit]] = {}
    for y in youths:
        by_item.setdefault(bisect_right(ends, y.original_span[0]), []).append(y)
    sexual_by_item: dict[int, list[Hit]] = {}
    for h in sexual:
        sexual_by_item.setdefault(bisect_right(ends, h.original_span[0]), []).append(h)
    found = []
    for item, ys in by_item.items():
        if item not in sexual_by_item:
            continue
        lo = ends[item - 1] + 1 if item > 0 else 0
        hi = ends[item] if item < len(ends) else len(text)
        if hi - lo > _ITEM_CHARS:
            continue
        covered = bytearray(hi - lo)
        for h in (*ys, *sexual_by_item[item]):
            a, b = h.original_span
            if lo <= a < hi:
                covered[a - lo : min(b, hi) - lo] = b"\x01" * (min(b, hi) - a)
        if not any(text[i].isalpha() and not covered[i - lo] for i in range(lo, hi)):
            found.append(ys[0])
    return found


def _bare_ages(f: Field) -> list[tuple[Hit, int, str]]:
    """A number standing alone right after a person noun: ``girl, 12``, ``Mädchen (12)``, or
    after "of" in Romance languages and Dutch: ``chica de 13``, ``jongen van 9``.

    Read only where it ends a comma-list item, so ``girl, 2 dogs`` is a count and ``girl:1.2`` a
    weight, not an age. The text after the noun is read without invisible characters and in
    NFKC (``⑫``, ``¹²``, fullwidth digits).
    """
    found = []
    for hit in f.of("person"):
        _, end = hit.original_span
        tail = "".join(c for c in f.original[end : end + 40] if FOLD[ord(c)] != "")
        tail = unicodedata.normalize("NFKC", tail)
        # "of <number>" is read on the matching form, where look-alike letters are folded
        folded_end = hit.view.base_span(hit.start, hit.end)[1]
        m = _BARE_AGE.match(tail) or _OF_AGE.match(f.text, folded_end, folded_end + 40)
        if m is None:
            continue
        raw = m.group(1)
        if raw.isascii() and raw.isdigit():
            value = int(raw)
        else:
            ages = f.matcher.ages.get(hit.entry.language)
            value = ages.numbers.get(fold(raw).strip(), 0) if ages else 0
        if 0 < value < 100:
            found.append((hit, value, raw))
    return found


def compose(positive: Field, negative: Field | None) -> Composition:
    """Scores and findings for one request."""
    # The passes that qualify terms run only where their words occur (most prompts: none).
    present = {h.entry.concept for h in positive.scan.hits}
    positive = _without_lone_terms(positive)
    for concepts, qualify in _QUALIFIERS:
        if concepts <= present:
            positive = qualify(positive)
    negative = None if negative is None else _without_lone_terms(negative)
    out = Composition()
    _positive(positive, out)
    _leaning_young(positive, out)
    if present & {"kin", "child_leaning"}:
        _kin_nude(positive, out)
    if negative is not None:
        _negative_trick(positive, negative, out)
        _undressing_negative(positive, negative, out)
    out.findings = _capped(out.findings, out.omitted)
    return out


def _without_lone_terms(f: Field) -> Field:
    """``f`` without the terms that count only next to a minor, a person or an age (``nu``:
    French and Portuguese "naked", Dutch "now") where no such word stands beside them."""
    hits = f.scan.hits
    if not any(h.entry.next_to for h in hits):
        return f
    wanted = {h.entry.next_to for h in hits if h.entry.next_to}
    neighbours = {concepts: _Spans(f, concepts) for concepts in wanted}
    kept = [h for h in hits if not h.entry.next_to or neighbours[h.entry.next_to].beside(h)]
    return replace(f, scan=replace(f.scan, hits=kept))


def _without_costumes(f: Field) -> Field:
    """``f`` without the pupil nouns that name a costume: a ``uniform`` noun beside a costume
    word (``cosplay d'écolière``, ``przebrana za uczennicę``) in a prompt that states an adult
    (``adult``, an age of 18 or more) and no age under 18. Other minor nouns always stand: an
    adult "dressed as a little girl" is age play, a sexualised depiction of a child."""
    hits = f.scan.hits
    ages = f.scan.ages
    if any(a.value < 18 for a in ages):
        return f
    if not (f.of("adult") or any(a.value >= 18 for a in ages)):
        return f
    costume = _Spans(f, ("costume",))
    uniforms = {h.entry.key for h in hits if h.entry.concept == "uniform"}
    kept = [
        h
        for h in hits
        if h.entry.concept != "minor" or h.entry.key not in uniforms or not costume.beside(h)
    ]
    return replace(f, scan=replace(f.scan, hits=kept))


def _without_campaigns(f: Field) -> Field:
    """``f`` without the sexual and coded words that name the crime a campaign fights: beside
    an ``abuse`` noun (``sexual abuse``, ``sexuellen Missbrauch``, ``儿童性侵害``), with an
    ``awareness`` word in the same list item, at most CAMPAIGN_REACH words away (``poster
    against child sexual abuse``, ``campaña contra el abuso sexual infantil``, ``预防``). Nudity
    still counts, and so does ``child sexual abuse, photo, campaign`` (another item)."""
    hits = f.scan.hits
    awareness = [h for h in hits if h.entry.concept == "awareness"]
    abuse = [h for h in hits if h.entry.concept == "abuse"]
    if not awareness or not abuse:
        return f
    spans = _Spans(f, ("abuse",))
    named = [h.view.base_span(h.start, h.end) for h in abuse]
    text, original = f.text, f.original

    def campaign_near(h: Hit) -> bool:
        a, b = h.view.base_span(h.start, h.end)
        for w in awareness:
            c, d = w.view.base_span(w.start, w.end)
            between = text[d:a] if d <= a else text[b:c]
            if len(between.split()) > CAMPAIGN_REACH:
                continue
            if _one_item(original, h, w):
                return True
        return False

    kept = []
    for h in hits:
        if h.entry.concept in ("coded", *_SEXUAL_WEIGHT):
            a, b = h.view.base_span(h.start, h.end)
            inside = any(lo < b and a < hi for lo, hi in named)  # 性侵 inside 儿童性侵害
            if (inside or spans.beside(h)) and campaign_near(h):
                continue
        kept.append(h)
    return replace(f, scan=replace(f.scan, hits=kept))


#: Words between a campaign word and the crime it names (``contra el abuso sexual``).
CAMPAIGN_REACH = 6


def _without_sexy_things(f: Field) -> Field:
    """``f`` without the sexual words that describe a thing: ``a sexy red sports car``, ``un
    coche rojo muy sexy``, ``性感的红色跑车``, ``undressing her doll``. The thing must be the
    nearest term on its side in the same list item, at most THING_REACH words away, with no
    preposition between (``sexy on a car`` is a pose, ``nude with a doll`` a nude child) and so
    no person in between either."""
    hits = f.scan.hits
    near_terms = sorted(
        (*h.view.base_span(h.start, h.end), i)
        for i, h in enumerate(hits)
        if h.entry.concept not in ("clothing", "costume", "adult_leaning", "youth_leaning")
    )
    text, original = f.text, f.original
    prepositions = f.matcher.prepositions
    excused = set()
    for h in hits:
        if h.entry.concept not in _SEXUAL_WEIGHT:
            continue
        a, b = h.view.base_span(h.start, h.end)
        after = [t for t in near_terms if t[0] >= b][:1]
        before = [t for t in near_terms if t[1] <= a][-1:]
        for side in (after, before):
            if not side or hits[side[0][2]].entry.concept != "thing":
                continue
            thing = hits[side[0][2]]
            lo, hi = (b, side[0][0]) if side is after else (side[0][1], a)
            words = text[lo:hi].split()
            if len(words) > THING_REACH or any(w in prepositions for w in words):
                continue
            if _one_item(original, h, thing):
                excused.add(id(h))
    if not excused:
        return f
    kept = [h for h in hits if id(h) not in excused]
    return replace(f, scan=replace(f.scan, hits=kept))


#: Words that may stand between a suggestive word and the thing it describes (``sexy red
#: sports car``, ``rojo muy sexy``).
THING_REACH = 3


def _one_item(original: str, a: Hit, b: Hit) -> bool:
    """Whether no list separator stands between two hits, read on the original text: the
    normalisation drops the commas that end a list item."""
    (a_lo, a_hi), (b_lo, b_hi) = a.original_span, b.original_span
    gap = original[a_hi:b_lo] if a_hi <= b_lo else original[b_hi:a_lo]
    return not any(c in _SEPARATORS for c in gap)


def _with_absent_clothing(f: Field) -> Field:
    """``f`` with a clothing word beside an absence word read as explicit nudity: ``sans 👗``,
    ``без 👗``, ``👙なし``, ``옷 ❌``. Emoji and short words make no phrase the lexicons can
    list, and a writer who spells out the garment as an emoji leaves nothing else to match.
    Only the same list item is read (``👗, no 🎩`` is no nudity), on the original text, since
    normalisation drops the commas."""
    clothing = f.of("clothing")
    absence = f.matcher.absence
    if not absence:
        return f
    text, folded = f.original, f.text
    undressed = []
    for h in clothing:
        # First on the normalised text (cheap, no commas: it finds more), then on the original.
        a, b = h.view.base_span(h.start, h.end)
        if not (
            _absence_at(folded[max(0, a - _NEAR) : a], absence, last=True)
            or _absence_at(folded[b : b + _NEAR], absence, last=False)
        ):
            continue
        a, b = h.original_span
        before = _SEPARATOR.split(text[max(0, a - _NEAR) : a])[-1]
        after = _SEPARATOR.split(text[b : b + _NEAR])[0]
        if _absence_at(fold(before), absence, last=True) or _absence_at(
            fold(after), absence, last=False
        ):
            entry = replace(h.entry, term=f"no {h.entry.term}", concept="sexual_explicit")
            undressed.append(Hit(entry, h.start, h.end, h.view))
    if not undressed:
        return f
    return replace(f, scan=replace(f.scan, hits=[*f.scan.hits, *undressed]))


def _absence_at(snippet: str, absence: frozenset[str], last: bool) -> bool:
    """Whether ``snippet`` ends (``last``) or starts with an absence word, stepping over one
    other symbol (``zonder 👕👖``). Han and kana are read glued (``没穿衣服``, ``服なしの``)."""
    tokens = _TOKEN.findall(snippet)
    if last:
        tokens.reverse()
    for skip in (0, 1):
        rest = tokens[skip:]
        if not rest:
            return False
        for n in (1, 2):
            words = rest[:n]
            if len(words) < n:
                break
            if last:
                words.reverse()
            if " ".join(words) in absence:
                return True
        word = rest[0]
        glued = word[-1 if last else 0] >= "\u3040"  # Han, kana, Hangul: the word is glued on
        if glued and any(
            (word.endswith(k) if last else word.startswith(k)) for k in absence if k[0] >= "\u3040"
        ):
            return True
        if word.isalnum() and not word.isdigit():
            return False  # a word that is no absence word stands between
    return False


#: What ends a list item, how far on either side of a garment an absence word is looked for,
#: and the words and symbols read there.
_SEPARATORS = ",;|\n，、；。"
_SEPARATOR = re.compile(f"[{re.escape(_SEPARATORS)}]")
_NEAR = 32
_TOKEN = re.compile(r"\w+|[^\w\s]")


class _Spans:
    """Where the hits of some concepts (and ages) lie, to ask what stands beside a word."""

    def __init__(self, f: Field, concepts: tuple[str, ...]) -> None:
        hits = f.scan.hits
        spans = [h.view.base_span(h.start, h.end) for h in hits if h.entry.concept in concepts]
        if "age" in concepts:
            spans.extend((a.start, a.end) for a in f.scan.ages)
        spans.sort()
        self.text = f.text
        self.starts = [a for a, _ in spans]
        self.reach = list(accumulate((b for _, b in spans), max))

    def _any_in(self, lo: int, hi: int) -> bool:
        i = bisect_left(self.starts, hi)
        return lo < hi and i > 0 and self.reach[i - 1] > lo

    def beside(self, hit: Hit) -> bool:
        """Whether the word before or after ``hit`` holds a wanted hit. Numbers that are not
        an age are stepped over: SD weights leave ``(nu:1.3)`` as ``nu 1 3``, and so are LoRA
        versions (``<lora:jongetjes_v1:0.8> bloot``)."""
        a, b = hit.view.base_span(hit.start, hit.end)
        return self._word_holds(a, -1) or self._word_holds(b, 1)

    def _word_holds(self, p: int, step: int) -> bool:
        text, n = self.text, len(self.text)
        for _ in range(_NUMBERS_SKIPPED + 1):
            gap, start = 0, p
            while 0 < p < n and gap < _GAP and not text[p if step > 0 else p - 1].isalnum():
                p += step
                gap += 1
            if self._any_in(min(start, p), max(start, p)):
                return True  # a hit among the symbols between: an emoji (👦 bloot)
            q = p
            while 0 <= q - (step < 0) < n and abs(q - p) < _WORD:
                if not text[q if step > 0 else q - 1].isalnum():
                    break
                q += step
            lo, hi = min(p, q), max(p, q)
            if lo == hi:
                return False
            if self._any_in(lo, hi):
                return True
            if not _STEPPED_OVER.fullmatch(text, lo, hi):
                return False
            p = q
        return False


#: Punctuation and spaces skipped to reach the word beside a term, the longest word read, and
#: how many bare numbers (SD weights, LoRA versions: 1 3, v2) are stepped over.
_STEPPED_OVER = re.compile(r"v?\d+")
_GAP = 8
_WORD = 64
_NUMBERS_SKIPPED = 3


def _capped(
    findings: list[Finding], omitted: Counter[tuple[str | None, str | None, str]]
) -> list[Finding]:
    """At most MAX_FINDINGS_PER_CONCEPT findings per field and concept, plus a count of the rest
    (those cut here and those never built), so a hostile prompt that repeats a term can't make a
    verdict of a million findings, nor hide how many there were."""
    if len(findings) <= MAX_FINDINGS_PER_CONCEPT and not omitted:
        return findings
    seen: Counter[tuple[str | None, str | None, str]] = Counter(omitted)
    kept: list[Finding] = []
    for f in findings:
        key = (f.field, f.concept, f.kind)
        seen[key] += 1
        if seen[key] - omitted[key] <= MAX_FINDINGS_PER_CONCEPT:
            kept.append(f)
    for (fld, concept, kind), n in seen.items():
        if n > MAX_FINDINGS_PER_CONCEPT:
            kept.append(
                Finding(
                    kind="summary",
                    category=None,
                    score=0.0,
                    detail=f"{n - MAX_FINDINGS_PER_CONCEPT} more {kind} findings of {concept}",
                    field=fld,
                    concept=concept,
                )
            )
    return kept


def _positive(f: Field, out: Composition) -> None:
    shown: Counter[str] = Counter()  # findings per concept; the rest are only counted

    def show(concept: str) -> bool:
        """Build a finding only while under the cap (building one maps offsets); count the rest."""
        shown[concept] += 1
        if shown[concept] <= MAX_FINDINGS_PER_CONCEPT:
            return True
        out.omitted[(f.name, concept, "term")] += 1
        return False

    for hit in f.scan.hits:
        concept = hit.entry.concept
        if concept == "coded":
            out.raise_score(SEXUAL_MINORS, CODED)
            out.raise_score(MINORS, CODED)
            out.raise_score(SEXUAL, CODED)
            if show(concept):
                out.findings.append(_term_finding(f, hit, CODED, SEXUAL_MINORS))
        elif concept == "minor":
            out.minor_refs.append((MINOR, hit.entry.term))
            if show(concept):
                out.findings.append(_term_finding(f, hit, MINOR, MINORS))
        elif concept in _SEXUAL_WEIGHT:
            weight = _SEXUAL_WEIGHT[concept]
            out.sexual_refs.append((weight, hit.entry.term))
            if show(concept):
                out.findings.append(_term_finding(f, hit, weight, SEXUAL))
        elif concept not in _SILENT and show(concept):
            out.findings.append(_term_finding(f, hit, 0.0, None))
    ages = list(f.scan.ages)
    if out.sexual_refs and not out.minor_refs and f.of("person"):
        for hit, value, raw in _bare_ages(f):
            ages.append(AgeHit(value, -1, -1, hit.entry.language, raw))
            start, end = hit.original_span
            out.findings.append(
                Finding(
                    kind="age",
                    category=MINORS if value < 18 else None,
                    score=AGE_MINOR if value < 18 else 0.0,
                    detail=f"number {raw!r} right after person {hit.entry.term!r} read as age "
                    f"{value}",
                    field=f.name,
                    start=start,
                    end=end,
                    text=f.original[start:end],
                    concept="age_minor" if value < 18 else "age_adult",
                    language=hit.entry.language,
                )
            )
            if value < 18:
                out.minor_refs.append((AGE_MINOR, raw))
    if out.sexual_refs and not out.minor_refs:
        for start, end, value, raw in _birth_years(f):
            ages.append(AgeHit(value, -1, -1, "common", raw))
            out.findings.append(
                Finding(
                    kind="age",
                    category=MINORS if value < 18 else None,
                    score=AGE_MINOR if value < 18 else 0.0,
                    detail=f"birth year {raw!r} read as age {value}",
                    field=f.name,
                    start=start,
                    end=end,
                    text=raw,
                    concept="age_minor" if value < 18 else "age_adult",
                )
            )
            if value < 18:
                out.minor_refs.append((AGE_MINOR, raw))
    adult_age = [a for a in ages if a.value >= 18]
    minor_age = [a for a in ages if a.value < 18]
    for y, p in _youth_pairs(f):
        detail = f"youth adjective {y.entry.term!r} describes person {p.entry.term!r}"
        if adult_age and not minor_age:
            # "young girl, 19 years old": the stated age decides. A minor noun or a minor age
            # is never cancelled this way.
            out.findings.append(
                Finding(
                    kind="rule",
                    category=None,
                    score=0.0,
                    detail=f"{detail}, but the prompt states an adult age ({adult_age[0].text!r})",
                    field=f.name,
                    concept="youth+person",
                    language=y.entry.language,
                )
            )
            continue
        out.minor_refs.append((YOUTH_PERSON, f"{y.entry.term} + {p.entry.term}"))
        out.findings.append(
            Finding(
                kind="rule",
                category=MINORS,
                score=YOUTH_PERSON,
                detail=detail,
                field=f.name,
                concept="youth+person",
                language=y.entry.language,
            )
        )
    if not adult_age:
        for y in _youth_as_nouns(f):
            out.minor_refs.append((YOUTH_PERSON, y.entry.term))
            out.findings.append(
                Finding(
                    kind="rule",
                    category=MINORS,
                    score=YOUTH_PERSON,
                    detail=f"youth word {y.entry.term!r} stands as a noun (the little one) in a "
                    "list item that holds nothing but it and sexual terms",
                    field=f.name,
                    concept="youth_noun",
                    language=y.entry.language,
                )
            )
    for age in f.scan.ages:
        if age.value < 18:
            out.minor_refs.append((AGE_MINOR, age.text))
            out.findings.append(_age_finding(f, age, MINORS, AGE_MINOR))
        else:
            out.findings.append(_age_finding(f, age, None, 0.0))
    if out.minor_refs:
        out.raise_score(MINORS, max(w for w, _ in out.minor_refs))
    if out.sexual_refs:
        out.raise_score(SEXUAL, max(w for w, _ in out.sexual_refs))
    if out.minor_refs and out.sexual_refs:
        mw, mterm = max(out.minor_refs)
        sw, sterm = max(out.sexual_refs)
        detail = f"minor reference {mterm!r} with sexual term {sterm!r} in the prompt"
        _rule(out, min(mw, sw), detail, f.name, "minor+sexual")


def _asserts_adult(pos: Field) -> bool:
    return bool(
        pos.of("adult") or pos.of("adult_leaning") or any(a.value >= 18 for a in pos.scan.ages)
    )


def _leaning_young(pos: Field, out: Composition) -> None:
    """An explicit prompt piling up young-looking descriptors (``nude, flat chest, pigtails``)
    with no minor named and no adult asserted: too close to call, so a person reviews it."""
    if out.minor_refs or not any(w >= EXPLICIT for w, _ in out.sexual_refs):
        return
    descriptors = {h.entry.key for h in pos.of("youth") + pos.of("youth_leaning")}
    if len(descriptors) < LEANING_DESCRIPTORS or _asserts_adult(pos):
        return
    detail = (
        f"explicit prompt with {len(descriptors)} young-looking descriptors "
        f"({', '.join(sorted(descriptors)[:4])}) and no adult asserted"
    )
    _rule(out, LEANING_YOUNG, detail, pos.name, "leaning_young")


def _undressing_negative(pos: Field, neg: Field, out: Composition) -> None:
    """A minor in the prompt, with clothing or censorship pushed into the negative prompt
    (``little girl, 9 years old`` / negative ``clothes, underwear, censored``): a request for a
    nude child that names no nudity. A negative prompt that also pushes away explicit content
    (``nsfw, nude, clothes``) is steering away from nudity, not towards it; underwear and other
    suggestive words there are part of the trick, so they do not count as pushing away."""
    clothing = neg.of("clothing")
    if not clothing or neg.of("sexual_explicit"):
        return
    kin = _maybe_children(pos)
    if not (out.minor_refs or kin) and not _adult_pushed_away(pos, neg):
        return
    people = kin or pos.of("person")
    fallback = (UNDRESSING, people[0].entry.term if people else "?")
    mw, mterm = max(out.minor_refs) if out.minor_refs else fallback
    score = min(mw, UNDRESSING)
    words = ", ".join(repr(h.entry.term) for h in clothing[:4])
    detail = (
        f"minor reference {mterm!r} with clothing or censorship in the negative prompt ({words})"
    )
    _rule(out, score, detail, neg.name, "negative_prompt_undressing")
    for hit in clothing[:MAX_FINDINGS_PER_CONCEPT]:
        out.findings.append(_term_finding(neg, hit, 0.0, None))


def _adult_pushed_away(pos: Field, neg: Field) -> bool:
    """A person in the prompt (``garota, 1girl``) whose adulthood the negative prompt pushes
    away (``adulta, mulher, madura``) and who asserts nothing adult herself: with clothing
    pushed away too, the request is for a nude child."""
    if not pos.of("person") or _asserts_adult(pos):
        return False
    return bool(neg.of("adult") or any(a.value >= 18 for a in neg.scan.ages))


def _kin_nude(pos: Field, out: Composition) -> None:
    """A noun that may name a child or an adult (a kinship noun such as daughter or niece, or
    ``child_leaning`` words such as 女の子) with a sexual term, and nothing that says the person
    is an adult: counted as a possible child. Suggestive terms count too (``sexy daughter``):
    writers of every evaluation set read them as requests about a child."""
    if out.minor_refs:
        return
    kin = _maybe_children(pos)
    if not kin or _asserts_adult(pos):
        return
    explicit = pos.of("sexual_explicit")
    sexual = explicit or pos.of("sexual_suggestive")
    if not sexual:
        return
    strength = "explicit" if explicit else "suggestive"
    detail = (
        f"{kin[0].entry.term!r}, which may name a child, with {strength} term "
        f"{sexual[0].entry.term!r} and no adult marker"
    )
    _rule(out, KIN_EXPLICIT if explicit else KIN_SUGGESTIVE, detail, pos.name, "kin+sexual")


def _maybe_children(pos: Field) -> list[Hit]:
    return [h for h in pos.scan.hits if h.entry.concept in ("kin", "child_leaning")]


def _negative_trick(pos: Field, neg: Field, out: Composition) -> None:
    """A sexual prompt leaning young, with adulthood pushed into the negative prompt."""
    if not out.sexual_refs or _asserts_adult(pos):
        return
    youth_terms = pos.of("youth") + pos.of("youth_leaning")
    leaning = youth_terms + pos.of("person")
    strong = neg.of("adult")
    adult_ages = [a for a in neg.scan.ages if a.value >= 18]
    weak = neg.of("adult_leaning")
    if not leaning and len({h.entry.key for h in strong}) + bool(adult_ages) < 2:
        # With no young-leaning word, only adulthood pushed away twice over says who is left:
        # ``nude, portrait`` / negative ``adult, mature, (over 18:1.4)``.
        return
    if strong or adult_ages:
        score = TRICK_STRONG
    elif weak and youth_terms:
        score = TRICK_WEAK
    else:
        return
    markers = [h.entry.term for h in strong + weak] + [a.text for a in adult_ages]
    young = ", ".join(repr(h.entry.term) for h in leaning[:3]) or "no adult in it"
    detail = (
        f"sexual prompt leaning young ({young})"
        f" with adult markers in the negative prompt ({', '.join(map(repr, markers[:4]))})"
    )
    _rule(out, score, detail, neg.name, "negative_prompt_trick")
    for hit in strong + weak:
        out.findings.append(_term_finding(neg, hit, 0.0, None))
    for age in adult_ages:
        out.findings.append(_age_finding(neg, age, None, 0.0))


#: The passes that qualify a prompt's terms, in order, each with the concepts it needs.
_QUALIFIERS: tuple[tuple[frozenset[str], Callable[[Field], Field]], ...] = (
    (frozenset({"costume"}), _without_costumes),
    (frozenset({"abuse", "awareness"}), _without_campaigns),
    (frozenset({"thing"}), _without_sexy_things),
    (frozenset({"clothing"}), _with_absent_clothing),
)
