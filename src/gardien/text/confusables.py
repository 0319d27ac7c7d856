"""Look-alike letters folded to Latin, from Unicode's confusables data.

The data comes from confusable_homoglyphs, which ships Unicode's ``confusables.txt`` as JSON. Only
non-ASCII letters whose prototype is a single ASCII letter are folded: Cyrillic ``а`` becomes ``a``,
but digits keep their value (ages need them) and CJK, kana and Hangul are never touched.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from confusable_homoglyphs.confusables import confusables_data

_NEVER_FOLD = (
    (0x1100, 0x11FF),  # Hangul jamo
    (0x2E80, 0x9FFF),  # CJK radicals, kana, CJK ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF61, 0xFFDC),  # halfwidth kana and Hangul
    (0x20000, 0x3FFFF),  # CJK extensions
)


# Letters that confusables.txt leaves out but that are used to disguise Latin words.
_BY_NAME = re.compile(
    r"LATIN LETTER SMALL CAPITAL ([A-Z])|REGIONAL INDICATOR SYMBOL LETTER ([A-Z])"
    r"|LATIN SMALL LETTER ([A-Z]) WITH .*|LATIN CAPITAL LETTER ([A-Z]) WITH .*"
)


def _by_name(char: str) -> str | None:
    match = _BY_NAME.fullmatch(unicodedata.name(char, ""))
    if match is None:
        return None
    return next(g for g in match.groups() if g).lower()


@cache
def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for char, homoglyphs in confusables_data.items():
        if len(char) != 1 or char.isascii() or not unicodedata.category(char).startswith("L"):
            continue
        cp = ord(char)
        if any(lo <= cp <= hi for lo, hi in _NEVER_FOLD):
            continue
        for glyph in homoglyphs:
            target = glyph["c"].casefold()
            if len(target) == 1 and target.isascii() and target.isalpha():
                table[char] = target
                break
    # A small letter whose capital impersonates a Latin capital folds like that capital (Cyrillic
    # н/Н -> h, к/К -> k, т/Т -> t), so that case folding never separates the two forms.
    for char in list(table):
        small = char.lower()
        if small != char and small not in table and len(small) == 1:
            table[small] = table[char]
    return table


#: Kanji used in place of katakana they look like (工口 for エロ, 口リ for ロリ), and rare
#: variant characters used for 裸, 幼 and 女 (祼, 躶, 倮, 祄, 㓜, 攵). Folded both in text and
#: in lexicons, so real words still match.
_CJK_LOOKALIKES = {
    "工": "エ",
    "口": "ロ",
    "祼": "裸",
    "躶": "裸",
    "倮": "裸",
    "祄": "裸",
    "㓜": "幼",
    "攵": "女",  # a radical shaped like 女: 幼攵
}
# Small kana read as their full-size forms (ょぅじょ for ようじょ), in text and lexicons alike.
_CJK_LOOKALIKES.update(
    zip(
        "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ",
        "あいうえおつやゆよわかけアイウエオツヤユヨワカケ",
        strict=True,
    )
)


#: Strokes that pass for a Latin l as well as an i (Cyrillic palochka in ``coӏegiaӏa``): folded
#: to "|", which leetspeak already reads both ways.
_I_OR_L = {"\u04cf": "|", "\u04c0": "|", "\u01c0": "|", "\u2223": "|"}


def latin_lookalike(char: str) -> str | None:
    """The ASCII letter (or, for a few kanji, the kana) that ``char`` impersonates, or None."""
    if char.isascii():
        return None
    if char in _I_OR_L:
        return _I_OR_L[char]
    if char in _CJK_LOOKALIKES:
        return _CJK_LOOKALIKES[char]
    found = _table().get(char)
    return found if found is not None else _by_name(char)
