"""The image guard with stub detectors: composition, the unknown-age rule, failing closed.

Detectors here are stubs whose signals the test controls (DESIGN.md: no sexual imagery of anyone
is created or stored); the images are blank synthetic arrays.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gardien.core import Decision
from gardien.media import RGBArray
from gardien.vision import AgeEstimate, ImageGuard, Region, Signal, SignalMapError, load_signal_map

BLANK = np.zeros((64, 48, 3), dtype=np.uint8)
FACE = Region(10, 5, 20, 20)


class Stub:
    def __init__(self, *signals: Signal, name: str = "stub") -> None:
        self.name = name
        self.signals = list(signals)
        self.seen: list[tuple[int, ...]] = []

    def detect(self, image: RGBArray) -> list[Signal]:
        self.seen.append(image.shape)
        return self.signals


class Ages:
    name = "ages"

    def __init__(self, *ages: float) -> None:
        self.ages = ages
        self.regions: list[list[Region] | None] = []

    def estimate(self, image: RGBArray, regions: list[Region] | None = None) -> list[AgeEstimate]:
        self.regions.append(regions)
        return [AgeEstimate(a, {}) for a in self.ages]


class Broken:
    name = "broken"

    def detect(self, image: RGBArray) -> list[Signal]:
        raise RuntimeError("model file is corrupt")

    def estimate(self, image: RGBArray, regions: list[Region] | None = None) -> list[AgeEstimate]:
        raise RuntimeError("model file is corrupt")


EXPOSED = Signal("FEMALE_BREAST_EXPOSED", 0.9, Region(1, 2, 3, 4))
FACE_SIGNAL = Signal("FACE_FEMALE", 0.8, FACE)


def test_blank_image_with_no_signals_is_allowed() -> None:
    verdict = ImageGuard([Stub()]).check(BLANK)
    assert verdict.decision is Decision.ALLOW
    assert verdict.category_scores == {"sexual": 0.0, "sexual/minors": 0.0, "minors": 0.0}


def test_explicit_nudity_without_an_age_model_fails_closed() -> None:
    verdict = ImageGuard([Stub(EXPOSED)]).check(BLANK)
    assert verdict.decision is Decision.BLOCK
    assert verdict.categories["sexual/minors"]
    assert any(f.concept == "unknown_age" for f in verdict.findings)
    shown = [f for f in verdict.findings if f.concept == "FEMALE_BREAST_EXPOSED"]
    assert shown and shown[0].region == (1, 2, 3, 4)


def test_adult_apparent_age_allows_adult_nudity_under_generation_policy() -> None:
    guard = ImageGuard([Stub(EXPOSED, FACE_SIGNAL)], age_estimator=Ages(34.0))
    verdict = guard.check(BLANK)
    assert verdict.decision is Decision.ALLOW
    assert verdict.categories["sexual"] and not verdict.categories["sexual/minors"]


def test_face_regions_go_to_the_age_estimator() -> None:
    ages = Ages(34.0)
    ImageGuard([Stub(EXPOSED, FACE_SIGNAL)], age_estimator=ages).check(BLANK)
    assert ages.regions == [[FACE]]


@pytest.mark.parametrize("age", [8.0, 16.0, 22.0])  # 22: under the Challenge-25 margin
def test_possible_minor_with_nudity_is_blocked(age: float) -> None:
    guard = ImageGuard([Stub(EXPOSED, FACE_SIGNAL)], age_estimator=Ages(34.0, age))
    verdict = guard.check(BLANK)
    assert verdict.decision is Decision.BLOCK
    assert verdict.categories["sexual/minors"]


def test_minor_without_nudity_is_allowed() -> None:
    verdict = ImageGuard([Stub(FACE_SIGNAL)], age_estimator=Ages(7.0)).check(BLANK)
    assert verdict.decision is Decision.ALLOW
    assert verdict.categories["minors"] and not verdict.categories["sexual/minors"]


def test_ignored_signals_do_not_count() -> None:
    """A bare chest or bare feet (a child at the beach) is not sexual."""
    stub = Stub(Signal("MALE_BREAST_EXPOSED", 0.95), Signal("FEET_EXPOSED", 0.9), FACE_SIGNAL)
    verdict = ImageGuard([stub], age_estimator=Ages(6.0)).check(BLANK)
    assert verdict.decision is Decision.ALLOW
    assert verdict.category_scores["sexual"] == 0.0


def test_prompt_minor_with_nudity_blocks_even_with_an_adult_face() -> None:
    guard = ImageGuard([Stub(EXPOSED, FACE_SIGNAL)], age_estimator=Ages(30.0))
    verdict = guard.check(BLANK, prompt="portrait of a 10 year old")
    assert verdict.decision is Decision.BLOCK
    assert any(f.concept == "prompt" for f in verdict.findings)


def test_blocked_prompt_blocks_the_image() -> None:
    verdict = ImageGuard([Stub()]).check(BLANK, prompt="nude 12 year old girl, photo")
    assert verdict.decision is Decision.BLOCK
    assert verdict.categories["sexual/minors"]


@pytest.mark.parametrize("policy", ["generation", "child-safety"])
def test_detector_failure_never_allows(policy: str) -> None:
    verdict = ImageGuard([Broken()], policy=policy).check(BLANK)
    assert verdict.decision is not Decision.ALLOW
    assert any(f.kind == "error" and "corrupt" in f.detail for f in verdict.findings)


def test_age_estimator_failure_is_unknown_age() -> None:
    verdict = ImageGuard([Stub(EXPOSED)], age_estimator=Broken(), policy="child-safety").check(
        BLANK
    )
    assert verdict.decision is Decision.BLOCK  # nudity with an age that could not be read
    assert any(f.kind == "error" for f in verdict.findings)


@pytest.mark.parametrize(
    "signals",
    [
        [Signal("FEMALE_BREAST_EXPOSED", 1.5)],
        [Signal("FEMALE_BREAST_EXPOSED", float("nan"))],
        ["not a signal"],
    ],
)
def test_detector_answering_nonsense_is_an_error(signals: list[Signal]) -> None:
    verdict = ImageGuard([Stub(*signals)]).check(BLANK)
    assert verdict.decision is Decision.BLOCK  # generation policy: on_error = block
    assert any(f.kind == "error" for f in verdict.findings)


def test_undecodable_images_are_errors(tmp_path: Path) -> None:
    guard = ImageGuard([Stub()])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    for image in (bad, b"", b"GIF89a broken", np.zeros((4, 4), dtype=np.uint8)):
        verdict = guard.check(image)  # type: ignore[arg-type]
        assert verdict.decision is Decision.BLOCK
        assert verdict.findings[0].kind == "error"


def test_encoded_images_are_decoded_safely(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, format="PNG")
    stub = Stub()
    path = tmp_path / "red.png"
    path.write_bytes(buf.getvalue())
    guard = ImageGuard([stub])
    assert guard.check(buf.getvalue()).decision is Decision.ALLOW
    assert guard.check(path).decision is Decision.ALLOW
    assert stub.seen == [(30, 40, 3), (30, 40, 3)]
    bomb = ImageGuard([stub], max_pixels=100)
    assert bomb.check(buf.getvalue()).decision is Decision.BLOCK


def test_signal_map_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text('[signals]\nFOO = "spicy"\n', encoding="utf-8")
    with pytest.raises(SignalMapError, match=r"signals\.FOO"):
        load_signal_map(path)
    assert load_signal_map()["FEMALE_GENITALIA_EXPOSED"] == "explicit"
