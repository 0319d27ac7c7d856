"""The ComfyUI nodes, run as ComfyUI would run them, without ComfyUI installed.

Images are random synthetic tensors; what the detectors "see" is set by stubs (DESIGN.md).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gardien.integrations import IntegrationError, comfyui  # noqa: E402
from gardien.integrations.comfyui import nodes  # noqa: E402
from gardien.media import RGBArray  # noqa: E402
from gardien.vision import ImageGuard, Signal  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COMFY_TYPES = {"STRING", "BOOLEAN", "IMAGE", "INT", "FLOAT"}
BLOCKED = "nude 12 year old girl, photo"  # clinical form a filter must catch
CHILD = "portrait of a 10 year old child"


class Stub:
    def __init__(self, *signals: Signal) -> None:
        self.name = "stub"
        self.signals = list(signals)
        self.seen: list[tuple[int, ...]] = []

    def detect(self, image: RGBArray) -> list[Signal]:
        assert image.dtype == np.uint8 and image.shape[2] == 3
        self.seen.append(image.shape)
        return self.signals


class Broken:
    name = "broken"

    def detect(self, image: RGBArray) -> list[Signal]:
        raise RuntimeError("model file is corrupt")


@pytest.fixture
def factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Replace the node's detector factory; the test sets ``state["detectors"]``."""
    state: dict[str, Any] = {"detectors": [Stub()], "calls": []}

    def make(names: tuple[str, ...], policy: str) -> ImageGuard:
        state["calls"].append((names, policy))
        return ImageGuard(state["detectors"], policy=policy)

    monkeypatch.setattr(nodes, "image_guard_factory", make)
    nodes.clear_caches()
    yield state
    nodes.clear_caches()


def batch(count: int = 2, size: int = 8) -> Any:
    torch.manual_seed(0)
    return torch.rand(count, size, size + 2, 3)  # ComfyUI IMAGE: [B, H, W, C], floats in [0, 1]


# -- the contract


def test_mappings_follow_the_node_contract() -> None:
    assert set(comfyui.NODE_CLASS_MAPPINGS) == set(comfyui.NODE_DISPLAY_NAME_MAPPINGS)
    assert set(comfyui.NODE_CLASS_MAPPINGS) == {
        "GardienPromptGuard",
        "GardienImageGuard",
        "GardienGate",
    }
    for cls in comfyui.NODE_CLASS_MAPPINGS.values():
        spec = cls.INPUT_TYPES()
        assert set(spec) <= {"required", "optional", "hidden"} and "required" in spec
        for group in ("required", "optional"):
            for name, entry in spec.get(group, {}).items():
                assert isinstance(entry, tuple) and 1 <= len(entry) <= 2, name
                kind = entry[0]
                assert (isinstance(kind, list) and kind) or kind in COMFY_TYPES, name
                if len(entry) == 2:
                    assert isinstance(entry[1], dict)
        assert isinstance(cls.RETURN_TYPES, tuple) and set(cls.RETURN_TYPES) <= COMFY_TYPES
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES)
        assert cls.CATEGORY == "gardien"
        assert callable(getattr(cls(), cls.FUNCTION))
        params = cls.__dict__[cls.FUNCTION].__code__.co_varnames[1:]
        assert set(spec["required"]) | set(spec.get("optional", {})) <= set(params)
    assert comfyui.GardienGate.OUTPUT_NODE is True
    prompt_inputs = comfyui.GardienPromptGuard.INPUT_TYPES()["required"]
    assert prompt_inputs["prompt"] == ("STRING", {"multiline": True, "default": ""})


def test_drop_in_folder_re_exports_the_same_nodes() -> None:
    """Loaded the way ComfyUI loads a custom_nodes folder: a module from its __init__.py."""
    init = ROOT / "comfyui" / "gardien_nodes" / "__init__.py"
    spec = importlib.util.spec_from_file_location("gardien_nodes", init)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gardien_nodes"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["gardien_nodes"]
    assert module.NODE_CLASS_MAPPINGS is comfyui.NODE_CLASS_MAPPINGS
    assert module.NODE_DISPLAY_NAME_MAPPINGS is comfyui.NODE_DISPLAY_NAME_MAPPINGS


# -- prompt guard node


def test_prompt_node_passes_a_clean_prompt_through() -> None:
    node = comfyui.GardienPromptGuard()
    verdict, allowed, prompt, negative = node.check("a red bicycle", "blurry")
    assert allowed is True and (prompt, negative) == ("a red bicycle", "blurry")
    assert json.loads(verdict)["decision"] == "allow"


def test_prompt_node_flags_and_the_gate_stops() -> None:
    verdict, allowed, prompt, negative = comfyui.GardienPromptGuard().check(BLOCKED, "")
    assert allowed is False
    assert json.loads(verdict)["categories"]["sexual/minors"]
    with pytest.raises(comfyui.GardienBlocked) as info:
        comfyui.GardienGate().gate(allowed, verdict, prompt, negative)
    message = str(info.value)
    assert message.startswith("gardien stopped this workflow: the prompt was not allowed: block")
    assert "sexual/minors" in message and "12 year old" in message


# -- image guard node


def test_image_node_checks_every_image(factory: dict[str, Any]) -> None:
    stub = Stub()
    factory["detectors"] = [stub]
    images = batch(3)
    out, verdicts, all_allowed = comfyui.GardienImageGuard().check(images)
    assert all_allowed is True and out is images
    assert stub.seen == [(8, 10, 3)] * 3
    assert [v["decision"] for v in json.loads(verdicts)] == ["allow"] * 3
    assert factory["calls"] == [(("nudenet",), "generation")]  # the default names, loaded once
    comfyui.GardienImageGuard().check(images)
    assert len(factory["calls"]) == 1


def test_image_node_blanks_what_it_blocks(factory: dict[str, Any]) -> None:
    factory["detectors"] = [Stub(Signal("FEMALE_BREAST_EXPOSED", 0.9))]
    images = batch(2)
    out, verdicts, all_allowed = comfyui.GardienImageGuard().check(images, detectors="a, b")
    assert factory["calls"] == [(("a", "b"), "generation")]
    assert all_allowed is False
    assert out.shape == images.shape and out.dtype == images.dtype and not out.any()
    assert images.any()  # the input batch is not changed in place
    with pytest.raises(comfyui.GardienBlocked, match=r"image 0 was not allowed: block"):
        comfyui.GardienGate().gate(all_allowed, verdicts, images=out)


def test_image_node_reads_the_prompt(factory: dict[str, Any]) -> None:
    factory["detectors"] = [Stub(Signal("FEMALE_GENITALIA_COVERED", 0.9))]
    node = comfyui.GardienImageGuard()
    images = batch(1)
    _, verdicts, _ = node.check(images, prompt=CHILD, policy="child-safety")
    assert json.loads(verdicts)[0]["categories"]["sexual/minors"]
    _, verdicts, allowed = node.check(images, prompt="a woman at the beach", policy="child-safety")
    assert allowed and not json.loads(verdicts)[0]["categories"]["sexual/minors"]


def test_image_node_fails_closed_when_a_detector_fails(factory: dict[str, Any]) -> None:
    factory["detectors"] = [Broken()]
    out, verdicts, all_allowed = comfyui.GardienImageGuard().check(batch(2))
    assert all_allowed is False and not out.any()
    for verdict in json.loads(verdicts):
        assert verdict["decision"] == "block"
        assert any("corrupt" in f["detail"] for f in verdict["findings"])


def test_image_node_without_a_detector_stops_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes.clear_caches()
    monkeypatch.setenv("GARDIEN_DETECTORS", "no-such-detector")
    with pytest.raises(IntegrationError, match="gardien cannot check images: 'no-such-detector'"):
        comfyui.GardienImageGuard().check(batch(1))
    blind = ImageGuard([Stub()])
    blind.detectors.clear()  # ImageGuard([]) is refused at once; require_detectors still checks
    monkeypatch.setattr(nodes, "image_guard_factory", lambda names, policy: blind)
    with pytest.raises(IntegrationError, match="no detectors"):
        comfyui.GardienImageGuard().check(batch(1))
    nodes.clear_caches()


def test_image_node_refuses_what_is_not_an_image_batch(factory: dict[str, Any]) -> None:
    with pytest.raises(IntegrationError, match=r"\[B, H, W, C\]"):
        comfyui.GardienImageGuard().check(torch.rand(8, 8, 3))


# -- gate


def test_gate_passes_allowed_inputs_through() -> None:
    images = batch(1)
    verdict, allowed, prompt, negative = comfyui.GardienPromptGuard().check("a cat", "")
    out = comfyui.GardienGate().gate(allowed, verdict, prompt, negative, images)
    assert out[0] == "a cat" and out[1] == "" and out[2] is images
    assert comfyui.GardienGate().gate(True) == ("", "", None)


@pytest.mark.parametrize(
    ("allowed", "verdict", "reason"),
    [
        (False, None, "'allowed' is false"),
        (True, "not json", "not JSON"),
        (True, json.dumps({"something": "else"}), "not a gardien verdict"),
        (True, json.dumps({"decision": "review", "findings": []}), "was not allowed: review"),
        ("yes", None, "'allowed' is false"),  # only a real True passes
    ],
)
def test_gate_fails_closed(allowed: Any, verdict: str | None, reason: str) -> None:
    with pytest.raises(comfyui.GardienBlocked, match=reason):
        comfyui.GardienGate().gate(allowed, verdict)


# -- pixels outside the IMAGE contract


@pytest.mark.parametrize(
    ("images", "reason"),
    [
        ((batch(2) * 255).round().to(torch.uint8), "holds torch.uint8 pixels"),
        (batch(2) * 255, "outside the expected"),  # floats in 0..255: all white if clipped
        (batch(2) * 2 - 1, "outside the expected"),  # [-1, 1]: the dark half black if clipped
        (torch.full((2, 8, 10, 3), float("nan")), "NaN or infinite"),
        (batch(2).half().masked_fill(torch.eye(8, 10)[None, :, :, None] > 0, float("inf")), "NaN"),
    ],
)
def test_image_node_refuses_pixels_outside_the_contract(
    factory: dict[str, Any], images: Any, reason: str
) -> None:
    stub = Stub()  # sees nothing: would allow whatever it is shown
    factory["detectors"] = [stub]
    before = images.clone()
    out, verdicts, all_allowed = comfyui.GardienImageGuard().check(images)
    assert all_allowed is False and out is not images and not out.any()
    assert torch.equal(images.nan_to_num(), before.nan_to_num())  # not changed in place
    for verdict in json.loads(verdicts):
        assert verdict["decision"] == "block"  # the generation policy's on_error
        assert any(reason in f["detail"] for f in verdict["findings"] if f["kind"] == "error")
    assert stub.seen == []
    with pytest.raises(comfyui.GardienBlocked, match="cannot read the image"):
        comfyui.GardienGate().gate(all_allowed, verdicts, images=out)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_image_node_reads_half_precision(factory: dict[str, Any], dtype: str) -> None:
    stub = Stub()
    factory["detectors"] = [stub]
    _, _, all_allowed = comfyui.GardienImageGuard().check(batch(2).to(getattr(torch, dtype)))
    assert all_allowed is True and stub.seen == [(8, 10, 3)] * 2


def test_image_node_refuses_an_oversized_image_before_converting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    converted: list[tuple[int, ...]] = []

    def to_rgb(image: Any, **kwargs: Any) -> RGBArray:
        converted.append(tuple(image.shape))
        return nodes_to_rgb(image, **kwargs)

    nodes_to_rgb = nodes.to_rgb
    monkeypatch.setattr(nodes, "to_rgb", to_rgb)
    monkeypatch.setattr(
        nodes, "image_guard_factory", lambda names, policy: ImageGuard([Stub()], max_pixels=100)
    )
    nodes.clear_caches()
    small, big = batch(1, size=8), torch.rand(1, 16, 16, 3)  # 80 and 256 pixels
    assert comfyui.GardienImageGuard().check(small)[2] is True
    out, verdicts, all_allowed = comfyui.GardienImageGuard().check(big)
    assert all_allowed is False and not out.any()
    assert "16x16 exceeds 100 pixels" in json.loads(verdicts)[0]["findings"][0]["detail"]
    assert converted == [(8, 10, 3)]  # the big one was refused from its shape alone
    nodes.clear_caches()
