"""The image guard with stub detectors: composition, the unknown-age rule, failing closed.

Detectors here are stubs whose signals the test controls (DESIGN.md: no sexual imagery of anyone
is created or stored); the images are blank synthetic arrays.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gardien.core import Decision
from gardien.core.verdict import Finding, Verdict
from gardien.media import RGBArray
from gardien.vision import (
    AgeEstimate,
    ImageGuard,
    Region,
    Signal,
    SignalMapError,
    VisionError,
    load_signal_map,
)
from gardien.vision.guard import MAX_FACES, MAX_SIGNAL_FINDINGS

BLANK = np.zeros((64, 48, 3), dtype=np.uint8)
FACE = Region(10, 5, 30, 30)  # inside BLANK, and at least MIN_FACE_PIXELS a side


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


# -- issue 4 review: ways the guard failed open


def test_whole_image_age_never_proves_an_adult() -> None:
    """No face: the age model reads the whole image; an adult reading must not allow nudity."""
    ages = Ages(35.0)
    verdict = ImageGuard([Stub(EXPOSED)], age_estimator=ages).check(BLANK)
    assert ages.regions == [None]  # it was asked, and may still raise minors
    assert verdict.decision is Decision.BLOCK
    (unknown,) = [f for f in verdict.findings if f.concept == "unknown_age"]
    assert "no face" in unknown.detail
    assert any("never proves an adult" in f.detail for f in verdict.findings)


def test_whole_image_age_can_still_raise_minors() -> None:
    verdict = ImageGuard([Stub(FACE_SIGNAL)], age_estimator=Ages(7.0)).check(BLANK)
    assert verdict.categories["minors"]
    no_face = ImageGuard([Stub()], age_estimator=Ages(7.0)).check(BLANK)
    assert no_face.category_scores["minors"] == 1.0


@pytest.mark.parametrize(
    "face",
    [
        Region(47, 63, 1, 1),  # one pixel
        Region(10, 5, 23, 40),  # under MIN_FACE_PIXELS wide
        Region(500, 500, 40, 40),  # outside the image
        Region(40, 50, 30, 30),  # mostly outside: 8 x 14 pixels inside
    ],
)
def test_unreadable_faces_leave_the_age_unknown(face: Region) -> None:
    ages = Ages(35.0)
    stub = Stub(EXPOSED, Signal("FACE_FEMALE", 0.9, face))
    verdict = ImageGuard([stub], age_estimator=ages).check(BLANK)
    assert verdict.decision is Decision.BLOCK
    assert any(f.concept == "unreadable_face" for f in verdict.findings)
    assert any(f.concept == "unknown_age" for f in verdict.findings)


def test_a_small_face_beside_a_readable_one_still_leaves_the_age_unknown() -> None:
    small = Signal("FACE_MALE", 0.9, Region(0, 50, 10, 10))
    verdict = ImageGuard([Stub(EXPOSED, FACE_SIGNAL, small)], age_estimator=Ages(40.0))
    assert verdict.check(BLANK).decision is Decision.BLOCK


def test_faces_are_clipped_to_the_image() -> None:
    ages = Ages(40.0)
    edge = Signal("FACE_FEMALE", 0.9, Region(-5, -5, 35, 35))
    verdict = ImageGuard([Stub(EXPOSED, edge)], age_estimator=ages).check(BLANK)
    assert ages.regions == [[Region(0, 0, 30, 30)]]
    assert verdict.decision is Decision.ALLOW


def test_an_age_model_that_skips_a_face_leaves_the_age_unknown() -> None:
    other = Signal("FACE_MALE", 0.9, Region(10, 30, 30, 30))
    verdict = ImageGuard([Stub(EXPOSED, FACE_SIGNAL, other)], age_estimator=Ages(40.0))
    found = verdict.check(BLANK)
    assert found.decision is Decision.BLOCK
    assert any(f.concept == "unanswered_face" for f in found.findings)


@pytest.mark.parametrize("policy", ["generation", "child-safety", "strict"])
@pytest.mark.parametrize(
    ("score", "least"), [(0.35, Decision.REVIEW), (0.45, Decision.REVIEW), (0.5, Decision.BLOCK)]
)
def test_unknown_age_is_decided_whatever_the_policy(
    policy: str, score: float, least: Decision
) -> None:
    """With no age read, the explicit score decides as sexual/minors would under the strictest
    thresholds any policy may set (review from 0.35, block from 0.5)."""
    signal = Signal("MALE_GENITALIA_EXPOSED", score)
    verdict = ImageGuard([Stub(signal)], policy=policy).check(BLANK)
    assert verdict.decision.rank >= least.rank
    (unknown,) = [f for f in verdict.findings if f.concept == "unknown_age"]
    assert f"at least {least.value} whatever the policy" in unknown.detail


def test_weak_explicit_signal_with_no_age_is_not_a_finding_of_unknown_age() -> None:
    """NudeNet scores textures at 0.2-0.35 now and then: below the review threshold they count
    towards ``sexual`` only, so a benign synthetic image is not held."""
    verdict = ImageGuard([Stub(Signal("FEMALE_BREAST_EXPOSED", 0.32))]).check(BLANK)
    assert verdict.decision is Decision.ALLOW
    assert not any(f.concept == "unknown_age" for f in verdict.findings)


def test_explicit_under_min_signal_score_is_not_counted() -> None:
    verdict = ImageGuard([Stub(Signal("MALE_GENITALIA_EXPOSED", 0.2))]).check(BLANK)
    assert verdict.decision is Decision.ALLOW and not verdict.findings


def animation(fmt: str, frames: list[Image.Image], **options: object) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], **options)
    return buf.getvalue()


class Grey:
    """Reports explicit nudity on a mid-grey image: stands in for a nudity model."""

    name = "grey"

    def __init__(self) -> None:
        self.means: list[float] = []

    def detect(self, image: RGBArray) -> list[Signal]:
        self.means.append(float(image.mean()))
        return [Signal("FEMALE_GENITALIA_EXPOSED", 0.95)] if 100 <= image.mean() <= 160 else []


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("GIF", {"duration": 100, "loop": 0}),
        ("PNG", {"duration": 100}),
        ("WEBP", {"duration": 100, "lossless": True}),
        ("TIFF", {}),
    ],
)
def test_every_frame_is_checked(fmt: str, options: dict[str, object]) -> None:
    black, dark = Image.new("RGB", (32, 24)), Image.new("RGB", (32, 24), (20, 20, 20))
    grey = Image.new("RGB", (32, 24), (128, 128, 128))
    detector = Grey()
    verdict = ImageGuard([detector]).check(animation(fmt, [black, dark, grey], **options))
    assert verdict.decision is Decision.BLOCK
    assert len(detector.means) == 3
    shown = [f for f in verdict.findings if f.concept == "FEMALE_GENITALIA_EXPOSED"]
    assert shown and shown[0].detail.startswith("frame 2: ")


def test_frames_beyond_the_limit_fail_closed() -> None:
    frames = [Image.new("RGB", (16, 16), (i, i, i)) for i in range(20)]
    detector = Grey()
    guard = ImageGuard([detector], policy="child-safety", max_frames=4)
    verdict = guard.check(animation("GIF", frames, duration=100))
    assert len(detector.means) == 4
    assert verdict.decision is Decision.REVIEW  # child-safety: on_error is review
    (limit,) = [f for f in verdict.findings if f.concept == "frames"]
    assert limit.kind == "limit" and "4 of 20 frames" in limit.detail
    budget = ImageGuard([Grey()], policy="child-safety", max_total_pixels=16 * 16 * 3)
    assert budget.check(animation("GIF", frames, duration=100)).decision is Decision.REVIEW


def test_a_single_opaque_frame_is_checked_once_with_plain_findings() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(buf, format="PNG")
    detector = Grey()
    verdict = ImageGuard([detector]).check(buf.getvalue())
    assert len(detector.means) == 1
    assert verdict.findings[0].detail.startswith("grey: ")


def test_transparent_images_are_checked_as_a_viewer_sees_them() -> None:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 128  # stored black; on a white page a viewer sees mid-grey
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    detector = Grey()
    verdict = ImageGuard([detector]).check(buf.getvalue())
    assert detector.means == [0.0, 127.0, 0.0]  # stored, over white, over black
    assert verdict.decision is Decision.BLOCK
    shown = [f for f in verdict.findings if f.concept == "FEMALE_GENITALIA_EXPOSED"]
    assert shown[0].detail.startswith("frame 0 (over white): ")


@pytest.mark.parametrize(
    "estimate",
    [
        AgeEstimate(8.0, {25: 0.0}),  # a child's age, certainly not under 25
        AgeEstimate(8.0, {18: 1.0, 25: 0.0}),  # P(under 25) below P(under 18)
        AgeEstimate(30.0, {18: 0.5, 25: 0.2}),
        AgeEstimate(30.0, {25: 1.5}),
    ],
)
def test_self_contradictory_age_estimates_are_refused(estimate: AgeEstimate) -> None:
    class Fixed:
        name = "fixed"

        def estimate(
            self, image: RGBArray, regions: list[Region] | None = None
        ) -> list[AgeEstimate]:
            return [estimate]

    verdict = ImageGuard([Stub(EXPOSED, FACE_SIGNAL)], age_estimator=Fixed()).check(BLANK)
    assert verdict.decision is Decision.BLOCK
    assert any(f.kind == "error" and "fixed" in f.detail for f in verdict.findings)


def test_consistent_age_distributions_are_accepted() -> None:
    class Fixed:
        name = "fixed"

        def estimate(
            self, image: RGBArray, regions: list[Region] | None = None
        ) -> list[AgeEstimate]:
            return [AgeEstimate(30.0, {18: 0.05, 25: 0.2, 30: 0.5})]

    verdict = ImageGuard([Stub(EXPOSED, FACE_SIGNAL)], age_estimator=Fixed()).check(BLANK)
    assert not any(f.kind == "error" for f in verdict.findings)


@pytest.mark.parametrize(
    "name", ["EXPOSED_GENITALIA_F", "female_genitalia_exposed", "FEMALE_GENITALIA_EXPOSED ", "porn"]
)
def test_unknown_signal_names_give_at_least_review(name: str) -> None:
    verdict = ImageGuard([Stub(Signal(name, 0.99))]).check(BLANK)
    assert verdict.decision is Decision.REVIEW
    (rule,) = [f for f in verdict.findings if f.concept == "unmapped_signal"]
    assert repr(name) in rule.detail
    low = ImageGuard([Stub(Signal(name, 0.1))]).check(BLANK)
    assert low.decision is Decision.ALLOW


def test_a_signal_map_needs_an_explicit_class(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text('[signals]\nFACE_FEMALE = "face"\n', encoding="utf-8")
    with pytest.raises(SignalMapError, match="explicit"):
        load_signal_map(path)


def test_a_signal_map_cannot_lower_a_bundled_explicit_class(tmp_path: Path) -> None:
    with pytest.raises(SignalMapError, match="FEMALE_GENITALIA_EXPOSED"):
        ImageGuard([Stub()], signal_map={"FEMALE_GENITALIA_EXPOSED": "ignore"})
    path = tmp_path / "map.toml"
    path.write_text('[signals]\nX = "explicit"\nANUS_EXPOSED = "suggestive"\n', encoding="utf-8")
    with pytest.raises(SignalMapError, match="ANUS_EXPOSED"):
        load_signal_map(path)
    # A map for another detector keeps NudeNet's explicit classes, and adds its own.
    guard = ImageGuard([Stub(EXPOSED)], signal_map={"nsfw": "explicit", "FEET_EXPOSED": "face"})
    assert guard.signal_map["FEMALE_BREAST_EXPOSED"] == "explicit"
    assert guard.check(BLANK).decision is Decision.BLOCK
    with pytest.raises(SignalMapError, match="spicy"):
        ImageGuard([Stub()], signal_map={"X": "spicy"})  # type: ignore[dict-item]


@pytest.mark.parametrize("age", [17, 1, 0, -3, 20.5, True])
def test_challenge_age_under_18_is_refused(age: int) -> None:
    with pytest.raises(VisionError, match="challenge_age"):
        ImageGuard([Stub()], challenge_age=age)
    assert ImageGuard([Stub()], challenge_age=18).challenge_age == 18


def test_a_guard_without_detectors_is_refused() -> None:
    with pytest.raises(VisionError, match="at least one detector"):
        ImageGuard()
    with pytest.raises(VisionError, match="at least one detector"):
        ImageGuard([])


def test_a_guard_whose_detectors_were_removed_fails_closed() -> None:
    guard = ImageGuard([Stub()])
    guard.detectors.clear()
    verdict = guard.check(BLANK)
    assert verdict.decision is Decision.BLOCK
    assert any("no detectors" in f.detail for f in verdict.findings)


def test_a_prompt_that_raised_the_decision_is_explained() -> None:
    prompt = Verdict(
        Decision.REVIEW,
        {"sexual": 0.0, "sexual/minors": 0.0, "minors": 0.0},
        (Finding("error", None, 0.0, "prompt_embeds given in place of text"),),
    )
    verdict = ImageGuard([Stub()]).check(BLANK, prompt_verdict=prompt)
    assert verdict.decision is Decision.REVIEW
    (rule,) = [f for f in verdict.findings if f.concept == "prompt_decision"]
    assert "review" in rule.detail
    assert any("prompt_embeds" in f.detail for f in verdict.findings)
    blocked = replace(prompt, decision=Decision.BLOCK)
    failed = ImageGuard([Stub()], policy="child-safety").check(b"junk", prompt_verdict=blocked)
    assert failed.decision is Decision.BLOCK  # on_error review, raised by the prompt
    assert any(f.concept == "prompt_decision" for f in failed.findings)
    assert any("prompt_embeds" in f.detail for f in failed.findings)
    lower = ImageGuard([Stub()]).check(b"junk", prompt_verdict=prompt)  # on_error block
    assert not any(f.concept == "prompt_decision" for f in lower.findings)


def test_faces_given_to_the_age_model_are_capped() -> None:
    big = np.zeros((400, 400, 3), dtype=np.uint8)
    faces = [Signal("FACE_FEMALE", 0.9, Region(i * 5, i * 5, 30 + i, 30 + i)) for i in range(40)]
    ages = Ages(40.0)
    verdict = ImageGuard([Stub(*faces)], age_estimator=ages).check(big)
    (given,) = ages.regions
    assert given is not None and len(given) == MAX_FACES
    assert min(r.width for r in given) == 30 + 40 - MAX_FACES  # the largest kept
    assert verdict.decision is Decision.REVIEW
    assert any(f.kind == "limit" and f.concept == "faces" for f in verdict.findings)


def test_signal_findings_are_capped_in_all() -> None:
    stub = Stub(*(Signal(f"X{i}", 0.5) for i in range(500)), EXPOSED)
    verdict = ImageGuard([stub]).check(BLANK)
    signals = [f for f in verdict.findings if f.kind == "signal"]
    assert len(signals) == MAX_SIGNAL_FINDINGS
    (summary,) = [f for f in verdict.findings if f.concept == "signals"]
    assert f"{501 - MAX_SIGNAL_FINDINGS} more signals" in summary.detail
    assert signals[0].concept == "FEMALE_BREAST_EXPOSED"  # highest scores first
    assert verdict.decision is Decision.BLOCK


def test_the_prompt_is_judged_under_the_guard_policy() -> None:
    prompt = "explicit sex, nude adult woman, 30"
    assert ImageGuard([Stub()], policy="generation").check(BLANK, prompt=prompt).allowed
    strict = ImageGuard([Stub()], policy="strict")
    assert strict.check(BLANK, prompt=prompt).decision is Decision.BLOCK
    assert strict.screen_prompt(prompt).decision is Decision.BLOCK
