"""What the diffusers and ComfyUI integrations share: reading pixels, screening a call's
conditioning, and building the image guard from the environment.

Images are synthetic arrays; detectors and estimators are stubs (DESIGN.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gardien.core import Decision
from gardien.integrations import IntegrationError, build_image_guard
from gardien.integrations._common import (
    check_image,
    check_size,
    screen_prompt_fields,
    to_rgb,
)
from gardien.media import MediaError, RGBArray
from gardien.text import PromptGuard
from gardien.vision import ImageGuard, Signal, registry
from gardien.vision.signals import VisionError

GREY = np.full((8, 8, 3), 0.5, dtype=np.float32)


class Nothing:
    """A detector that sees nothing: any refusal below comes from reading the pixels."""

    name = "nothing"

    def detect(self, image: RGBArray) -> list[Signal]:
        return []


@pytest.fixture(scope="module")
def prompt_guard() -> PromptGuard:
    return PromptGuard()


# -- pixels


@pytest.mark.parametrize(
    ("pixels", "signed", "reason"),
    [
        (GREY * 255, False, "outside the expected"),  # 0..255 read as [0, 1]: all white
        (GREY * 2 - 1.5, False, "outside the expected"),  # [-1, 1] read as [0, 1]
        (GREY * 255, True, "outside the expected"),
        (np.full((8, 8, 3), np.nan, np.float32), False, "NaN or infinite"),  # not black-allowed
        (np.full((8, 8, 3), np.nan, np.float16), True, "NaN or infinite"),
        (np.where(np.eye(8)[:, :, None] > 0, np.inf, GREY), False, "NaN or infinite"),
        (np.full((8, 8, 3), 128, np.int64), False, "expected float or uint8"),
    ],
)
def test_pixels_of_another_scale_are_refused(pixels: Any, signed: bool, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        to_rgb(pixels, signed=signed)
    verdict = check_image(
        ImageGuard([Nothing()]),
        lambda: to_rgb(pixels, signed=signed),
        prompt_verdict=None,
        name="image 0",
    )
    assert verdict.decision is not Decision.ALLOW
    assert verdict.findings[0].kind == "error" and reason in verdict.findings[0].detail


def test_pixels_within_range_are_read() -> None:
    assert (to_rgb(GREY) == 128).all()
    assert (to_rgb(np.zeros((4, 4, 3), np.float16), signed=True) == 128).all()
    # rounding past [0, 1], and a raw VAE's overshoot past [-1, 1], are clipped as diffusers would
    assert (to_rgb(np.full((4, 4, 3), 1.01, np.float32)) == 255).all()
    assert (to_rgb(np.full((4, 4, 3), -1.6, np.float32), signed=True) == 0).all()
    assert (to_rgb(np.full((4, 4, 3), 200, np.uint8)) == 200).all()  # uint8 is unambiguous
    assert to_rgb(np.zeros((0, 4, 3), np.float32)).shape == (0, 4, 3)


def test_size_is_checked_from_the_shape() -> None:
    check_size(100, 100, 10_000)
    with pytest.raises(MediaError, match="image 3: 101x100 exceeds 10000 pixels"):
        check_size(100, 101, 10_000, name="image 3")


# -- conditioning that isn't text


@pytest.mark.parametrize(
    "fields",
    [
        {"image_embeds": np.zeros((1, 1280))},  # Kandinsky 2.2 / unCLIP decoders
        {"image_embeddings": np.zeros((1, 16, 24, 24))},  # Wuerstchen / Stable Cascade decoders
        {"image_embeds": np.zeros((1, 1280)), "negative_image_embeds": np.zeros((1, 1280))},
        {"prompt": "", "image_embeds": np.zeros((1, 1280))},
        {"prompt": ["", " "], "negative_prompt": "blurry", "text_embeds": np.zeros((2, 8))},
        {"prompt_embeds": np.zeros((1, 77, 32))},
    ],
)
def test_embeddings_without_text_are_a_failed_check(
    fields: dict[str, Any], prompt_guard: PromptGuard
) -> None:
    verdicts = screen_prompt_fields(prompt_guard, fields)
    assert verdicts and all(v.decision is not Decision.ALLOW for v in verdicts)
    details = [f.detail for v in verdicts for f in v.findings if f.kind == "error"]
    assert details and all("given in place of text" in d for d in details)
    named = sorted(k for k in fields if "embed" in k)
    assert all(name in details[0] for name in named)


def test_image_embeddings_beside_text_leave_the_text_to_decide(prompt_guard: PromptGuard) -> None:
    fields = {"prompt": "a cat on a chair", "ip_adapter_image_embeds": [np.zeros((1, 1024))]}
    assert [v.decision for v in screen_prompt_fields(prompt_guard, fields)] == [Decision.ALLOW]
    fields = {"prompt": "a cat on a chair", "prompt_embeds": np.zeros((1, 77, 32))}
    assert screen_prompt_fields(prompt_guard, fields)[0].decision is not Decision.ALLOW
    # None is "not given"
    fields = {"prompt": "a cat on a chair", "image_embeds": None, "prompt_embeds": None}
    assert screen_prompt_fields(prompt_guard, fields)[0].decision is Decision.ALLOW


# -- the image guard from the environment


class Estimator:
    name = "ages"

    def __init__(self, **options: Any) -> None:
        self.options = options

    def estimate(self, image: RGBArray, regions: Any = None) -> list[Any]:
        return []


@pytest.fixture
def stub_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for nudenet and the two built-in estimators (which need real models), taking
    the same options as theirs."""
    registry.detector_names()  # the built-ins register first, then are replaced below

    def onnx(**options: Any) -> Estimator:
        if "model_path" not in options:
            raise VisionError("age estimator 'onnx' needs model_path")
        return Estimator(**options)

    def transformers(**options: Any) -> Estimator:
        if "model" not in options:
            raise VisionError("age estimator 'transformers' needs model")
        return Estimator(**options)

    monkeypatch.setitem(registry._DETECTORS, "nudenet", lambda **options: Nothing())
    monkeypatch.setitem(registry._ESTIMATORS, "onnx", onnx)
    monkeypatch.setitem(registry._ESTIMATORS, "transformers", transformers)
    for name in ("GARDIEN_DETECTORS", "GARDIEN_AGE_ESTIMATOR", "GARDIEN_AGE_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("name", "option"), [("onnx", "model_path"), ("transformers", "model")])
def test_age_estimator_gets_its_model_from_the_environment(
    stub_registry: None, monkeypatch: pytest.MonkeyPatch, name: str, option: str
) -> None:
    monkeypatch.setenv("GARDIEN_AGE_ESTIMATOR", name)
    monkeypatch.setenv("GARDIEN_AGE_MODEL", "/models/age")
    guard = build_image_guard()
    assert isinstance(guard.age_estimator, Estimator)
    assert guard.age_estimator.options == {option: "/models/age"}
    guard = build_image_guard(age_estimator=name, age_model="/elsewhere")
    assert isinstance(guard.age_estimator, Estimator)
    assert guard.age_estimator.options == {option: "/elsewhere"}


def test_age_estimator_without_its_model_says_what_to_set(
    stub_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARDIEN_AGE_ESTIMATOR", "onnx")
    with pytest.raises(IntegrationError) as info:
        build_image_guard()
    message = str(info.value)
    assert "needs model_path" in message and "set GARDIEN_AGE_MODEL" in message
    assert "detector's extra" not in message  # the detectors loaded: that is not the problem
    monkeypatch.setenv("GARDIEN_AGE_ESTIMATOR", "")
    monkeypatch.setenv("GARDIEN_AGE_MODEL", "/models/age.onnx")
    with pytest.raises(IntegrationError, match="GARDIEN_AGE_MODEL is set but no age estimator"):
        build_image_guard()
    monkeypatch.delenv("GARDIEN_AGE_MODEL")
    assert build_image_guard().age_estimator is None


def test_detector_failure_names_the_detectors(
    stub_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARDIEN_DETECTORS", "nudenet, no-such-detector")
    with pytest.raises(IntegrationError, match="install the detector's extra") as info:
        build_image_guard()
    assert "GARDIEN_AGE_MODEL" not in str(info.value)


def test_onnx_age_estimator_loads_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The real 'onnx' estimator, from a tiny model the test builds (it answers 40 years)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from gardien.vision.age_onnx import OnnxAgeEstimator
    from tests.test_vision_models import constant_model

    path = constant_model(tmp_path / "age.onnx", np.array([40.0], np.float32))
    registry.detector_names()
    monkeypatch.setitem(registry._DETECTORS, "nudenet", lambda **options: Nothing())
    monkeypatch.delenv("GARDIEN_DETECTORS", raising=False)
    monkeypatch.setenv("GARDIEN_AGE_ESTIMATOR", "onnx")
    monkeypatch.setenv("GARDIEN_AGE_MODEL", str(path))
    guard = build_image_guard()
    assert isinstance(guard.age_estimator, OnnxAgeEstimator)
    assert guard.check(np.full((32, 32, 3), 90, np.uint8)).decision is Decision.ALLOW
