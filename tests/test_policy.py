"""Policies map scores to decisions, and can never relax sexual/minors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gardien.core import Decision, PolicyError, load_policy


def test_child_safety_blocks_sexual_minors_only() -> None:
    policy = load_policy("child-safety")
    assert policy.decide({"sexual/minors": 0.95}) is Decision.BLOCK
    assert policy.decide({"sexual/minors": 0.4}) is Decision.REVIEW
    assert policy.decide({"sexual": 1.0, "minors": 1.0}) is Decision.ALLOW


def test_strict_also_screens_sexual() -> None:
    policy = load_policy("strict")
    assert policy.decide({"sexual": 1.0}) is Decision.BLOCK
    assert policy.decide({"sexual": 0.7}) is Decision.REVIEW
    assert policy.decide({"minors": 1.0}) is Decision.ALLOW


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_custom_policy_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'name = "mine"\n[thresholds."sexual/minors"]\nreview = 0.2\nblock = 0.3\n'
        "[thresholds.minors]\nreview = 0.5\n",
    )
    policy = load_policy(path)
    assert policy.decide({"minors": 0.9}) is Decision.REVIEW
    assert policy.decide({"sexual/minors": 0.3}) is Decision.BLOCK


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('name = "x"\n', "thresholds.sexual/minors.block"),
        ('name = "x"\n[thresholds."sexual/minors"]\nreview = 0.3\nblock = 0.9\n', "block"),
        ('name = "x"\n[thresholds."sexual/minors"]\nreview = 0.6\nblock = 0.5\n', "review"),
        ('name = "x"\n[thresholds."sexual/minors"]\nreview = 0.3\n', "block"),
        (
            'name = "x"\non_error = "allow"\n'
            '[thresholds."sexual/minors"]\nreview = 0.3\nblock = 0.5\n',
            "on_error",
        ),
        (
            'name = "x"\n[thresholds."sexual/minors"]\nreview = 0.3\nblock = 0.5\n'
            "[thresholds.violence]\nblock = 0.5\n",
            "unknown categories",
        ),
    ],
)
def test_no_policy_can_switch_off_sexual_minors(tmp_path: Path, body: str, field: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(path) in str(err.value)
    assert field in str(err.value)


def test_missing_and_invalid_policy_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such policy"):
        load_policy(tmp_path / "absent.toml")
    bad = _write(tmp_path, "name = \n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(bad)
