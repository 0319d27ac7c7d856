"""Lexicons are data: every bundled file validates, and bad files are refused with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gardien.core import LexiconError
from gardien.text import PromptGuard
from gardien.text.lexicon import CONCEPTS, bundled_lexicon_paths, load_lexicon_file

REQUIRED = {"en", "fr", "es", "de", "it", "pt", "nl", "pl", "ru", "ja", "zh", "ko", "tr"}


def test_every_required_language_has_a_lexicon() -> None:
    languages = {load_lexicon_file(p).language for p in bundled_lexicon_paths()}
    assert languages >= REQUIRED | {"common"}


@pytest.mark.parametrize("path", bundled_lexicon_paths(), ids=lambda p: p.stem)
def test_bundled_lexicon_is_complete(path: Path) -> None:
    lex = load_lexicon_file(path)
    assert lex.language == path.stem
    if lex.language == "common":
        return
    for concept in ("coded", "minor", "sexual_explicit", "sexual_suggestive", "adult"):
        assert getattr(lex.terms, concept), f"{path.name}: no {concept} terms"
    assert lex.ages is not None, f"{path.name}: no [ages]"
    assert lex.ages.numbers, f"{path.name}: no spelled numbers"


def _lexicon(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "xx.toml"
    path.write_text('language = "xx"\nname = "Test"\n' + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[terms]\nminor = [""]\n', "terms.minor[0]"),
        ('[terms]\nminor = ["ab*"]\n', "terms.minor[0]"),
        ('[terms]\nminor = ["=kid*"]\n', "terms.minor[0]"),
        (
            '[terms]\nminor = ["kid"]\n[[exceptions]]\nterm = "kid"\nnext_to = ["colour"]\n',
            "exceptions.0.next_to",
        ),
        (  # absence words are never matched alone: a term waiting for one would never count
            '[terms]\nminor = ["kid"]\n[[exceptions]]\nterm = "kid"\nnext_to = ["absence"]\n',
            "exceptions.0.next_to",
        ),
        ('[terms]\nsexy = ["x"]\n', "terms.sexy"),
        (
            '[terms]\nminor = ["kid"]\n[[exceptions]]\nterm = "goat"\nfollowed_by = ["x"]\n',
            "exceptions[0].term",
        ),
        ('[terms]\nminor = ["kid"]\n[ages]\nunits = ["yo"]\npatterns = ["("]\n', "ages.patterns"),
        (
            '[terms]\nminor = ["kid"]\n[ages]\nunits = ["yo"]\npatterns = ["yo"]\n',
            "must contain {n}",
        ),
        ("[terms\n", "not valid TOML"),
    ],
)
def test_bad_lexicon_names_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    path = _lexicon(tmp_path, body)
    with pytest.raises(LexiconError) as err:
        load_lexicon_file(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_a_new_language_is_a_new_file(tmp_path: Path) -> None:
    path = _lexicon(
        tmp_path,
        '[terms]\nminor = ["bambinx"]\nsexual_explicit = ["nudx*"]\n'
        '[ages]\nunits = ["anz"]\npatterns = ["{n} anz"]\n[ages.numbers]\n"duodek" = 12\n',
    )
    guard = PromptGuard(lexicons=[path])
    assert guard.languages == ["xx"]
    assert guard.check("bambinx nudxa").categories["sexual/minors"]
    assert guard.check("duodek anz, nudx").categories["sexual/minors"]
    assert not guard.check("bambinx").categories["sexual/minors"]


def test_equals_marks_a_whole_word(tmp_path: Path) -> None:
    """Hangul terms match at a word's start; '=' keeps one to the whole word (아이, not 아이돌)."""
    path = _lexicon(tmp_path, '[terms]\nminor = ["=아이"]\nsexual_explicit = ["누드"]\n')
    guard = PromptGuard(lexicons=[path])
    assert guard.check("누드 아이, 사진").categories["sexual/minors"]
    assert not guard.check("누드 아이돌, 사진").categories["minors"]


def test_concepts_are_the_documented_ones() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "lexicons.md").read_text()
    for concept in CONCEPTS:
        assert f"`{concept}`" in doc
