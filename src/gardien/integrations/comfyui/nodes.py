"""ComfyUI nodes: screen prompts, check images, and stop a workflow that was not allowed.

The classes follow ComfyUI's node contract (``INPUT_TYPES``, ``RETURN_TYPES``, ``RETURN_NAMES``,
``FUNCTION``, ``CATEGORY``) and need nothing from ComfyUI, so they are tested without it. Verdicts
travel between nodes as JSON strings (:meth:`gardien.core.Verdict.to_dict`), which ComfyUI can
show, save with a workflow, or pass to any node that takes a STRING.

A workflow is guarded by wiring it so that the gate runs first: Prompt Guard → Gate → the text
encoders (the gate passes the prompt on), and VAE Decode → Image Guard → Gate → Save Image.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from gardien.core.errors import GardienError
from gardien.core.verdict import Verdict
from gardien.integrations._common import (
    IntegrationError,
    build_image_guard,
    check_image,
    check_size,
    describe,
    detectors_from_env,
    max_pixels_of,
    require_detectors,
    to_rgb,
)
from gardien.media import DEFAULT_MAX_PIXELS, RGBArray
from gardien.text import PromptGuard
from gardien.vision.guard import ImageGuard

CATEGORY = "gardien"
PROMPT_POLICIES = ["child-safety", "strict"]
IMAGE_POLICIES = ["generation", "child-safety", "strict"]

ImageGuardFactory = Callable[[tuple[str, ...], str], ImageGuard]


class GardienBlocked(GardienError):
    """Raised by the gate to stop a workflow; ComfyUI shows the message in its error dialog."""


def default_image_guard(detectors: tuple[str, ...], policy: str) -> ImageGuard:
    """Detectors loaded by name from the vision registry; raises if any fails to load."""
    return build_image_guard(detectors, policy=policy)


#: What the Image Guard node calls to get its guard: ``(detector names, policy) -> ImageGuard``.
#: Replace it to build guards another way; names come from the node's ``detectors`` input, else
#: GARDIEN_DETECTORS, else "nudenet". Guards are kept per (factory, names, policy).
image_guard_factory: ImageGuardFactory = default_image_guard

_lock = threading.Lock()
_image_guards: dict[tuple[object, tuple[str, ...], str], ImageGuard] = {}
_prompt_guards: dict[str, PromptGuard] = {}


def image_guard(detectors: str = "", policy: str = "generation") -> ImageGuard:
    """The image guard for a node's ``detectors`` text (comma-separated names) and policy."""
    names = tuple(n.strip() for n in detectors.split(",") if n.strip()) or detectors_from_env()
    key = (image_guard_factory, names, policy)
    with _lock:
        guard = _image_guards.get(key)
        if guard is None:
            guard = require_detectors(image_guard_factory(names, policy))
            _image_guards[key] = guard
        return guard


def prompt_guard(policy: str = "child-safety") -> PromptGuard:
    with _lock:
        guard = _prompt_guards.get(policy)
        if guard is None:
            guard = _prompt_guards[policy] = PromptGuard(policy)
        return guard


def clear_caches() -> None:
    """Forget loaded guards (after changing the factory, GARDIEN_DETECTORS or a model file)."""
    with _lock:
        _image_guards.clear()
        _prompt_guards.clear()


def _multiline(default: str = "") -> tuple[str, dict[str, Any]]:
    return ("STRING", {"multiline": True, "default": default})


class GardienPromptGuard:
    """Screens a prompt and its negative prompt before anything is generated."""

    DESCRIPTION = (
        "Screens a prompt and its negative prompt for sexual content involving minors, in any "
        "language and however disguised. Wire 'allowed' and 'verdict' into a gardien Gate, and "
        "the gate's prompt outputs into the text encoders, so a refused prompt is never encoded."
    )
    CATEGORY = CATEGORY
    FUNCTION = "check"
    RETURN_TYPES = ("STRING", "BOOLEAN", "STRING", "STRING")
    RETURN_NAMES = ("verdict", "allowed", "prompt", "negative")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, Any]]:
        return {
            "required": {"prompt": _multiline(), "negative": _multiline()},
            "optional": {"policy": (PROMPT_POLICIES, {"default": PROMPT_POLICIES[0]})},
        }

    def check(
        self, prompt: str, negative: str, policy: str = PROMPT_POLICIES[0]
    ) -> tuple[str, bool, str, str]:
        verdict = prompt_guard(policy).check(prompt, negative)
        return (_json(verdict.to_dict()), verdict.allowed, prompt, negative)


class GardienImageGuard:
    """Checks each generated image; images that are not allowed come out black."""

    DESCRIPTION = (
        "Checks each image for sexual content with any sign of a minor (with the prompt's "
        "signals when given). Images that are not allowed are replaced by black ones; wire "
        "'all_allowed' and 'verdicts' into a gardien Gate to stop the workflow instead."
    )
    CATEGORY = CATEGORY
    FUNCTION = "check"
    RETURN_TYPES = ("IMAGE", "STRING", "BOOLEAN")
    RETURN_NAMES = ("images", "verdicts", "all_allowed")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, Any]]:
        return {
            "required": {"images": ("IMAGE",)},
            "optional": {
                "prompt": _multiline(),
                "negative": _multiline(),
                "detectors": ("STRING", {"multiline": False, "default": ""}),
                "policy": (IMAGE_POLICIES, {"default": IMAGE_POLICIES[0]}),
            },
        }

    def check(
        self,
        images: Any,
        prompt: str = "",
        negative: str = "",
        detectors: str = "",
        policy: str = IMAGE_POLICIES[0],
    ) -> tuple[Any, str, bool]:
        if getattr(images, "ndim", None) != 4:
            raise IntegrationError(
                f"gardien Image Guard expects an IMAGE batch [B, H, W, C], got "
                f"{type(images).__name__} of shape {tuple(getattr(images, 'shape', ()))}"
            )
        guard = image_guard(detectors, policy)
        prompt_verdict = prompt_guard().check(prompt, negative) if prompt or negative else None
        verdicts = [
            check_image(
                guard,
                partial(_pixels, images, i, max_pixels_of(guard)),
                prompt_verdict=prompt_verdict,
                name=f"image {i}",
            )
            for i in range(images.shape[0])
        ]
        out = images
        if not all(v.allowed for v in verdicts):
            out = images.clone()
            for i, verdict in enumerate(verdicts):
                if not verdict.allowed:
                    out[i] = 0
        return (out, verdicts_json(verdicts), all(v.allowed for v in verdicts))


class GardienGate:
    """Stops the workflow, with the reason, unless the guard before it allowed its input."""

    DESCRIPTION = (
        "Stops the workflow with an error that says what was blocked and why, unless 'allowed' "
        "is true (and the verdict, when connected, allows). Passes the prompt, negative prompt "
        "and images through, so the nodes after it run only once it has passed."
    )
    CATEGORY = CATEGORY
    FUNCTION = "gate"
    OUTPUT_NODE = True  # runs even when nothing is connected to its outputs
    RETURN_TYPES = ("STRING", "STRING", "IMAGE")
    RETURN_NAMES = ("prompt", "negative", "images")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, Any]]:
        return {
            "required": {"allowed": ("BOOLEAN", {"forceInput": True})},
            "optional": {
                "verdict": ("STRING", {"forceInput": True}),
                "prompt": ("STRING", {"forceInput": True}),
                "negative": ("STRING", {"forceInput": True}),
                "images": ("IMAGE",),
            },
        }

    def gate(
        self,
        allowed: bool,
        verdict: str | None = None,
        prompt: str | None = None,
        negative: str | None = None,
        images: Any = None,
    ) -> tuple[str, str, Any]:
        reasons = blocked_reasons(allowed, verdict)
        if reasons:
            raise GardienBlocked("gardien stopped this workflow: " + "; ".join(reasons))
        return ("" if prompt is None else prompt, "" if negative is None else negative, images)


def blocked_reasons(allowed: Any, verdict: str | None) -> list[str]:
    """Why the gate must stop: empty only when ``allowed`` is true and every verdict allows.

    A verdict that can't be read stops the workflow too: the gate never passes what it can't
    check.
    """
    reasons: list[str] = []
    entries: Sequence[Any] = []
    if verdict is not None and verdict.strip():
        try:
            parsed = json.loads(verdict)
        except json.JSONDecodeError as exc:
            return [f"the verdict input is not JSON ({exc}); connect a gardien guard's verdict"]
        entries = parsed if isinstance(parsed, list) else [parsed]
        single = not isinstance(parsed, list)
        for i, entry in enumerate(entries):
            label = "the prompt" if single else f"image {i}"
            if not isinstance(entry, dict) or "decision" not in entry:
                reasons.append(f"{label}: the verdict input is not a gardien verdict")
            elif entry["decision"] != "allow":
                reasons.append(f"{label} was not allowed: {describe(entry)}")
    if allowed is not True and not reasons:
        reasons.append(
            "the guard did not allow its input ('allowed' is false; connect its verdict output "
            "to the gate to see why)"
        )
    return reasons


def _pixels(images: Any, index: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> RGBArray:
    """Image ``index`` of a ComfyUI IMAGE batch (``[B, H, W, C]`` floats in [0, 1]).

    The size is checked from the shape before anything is converted (a 64-megapixel float image
    costs seconds and gigabytes to convert), and the pixels must be floats: an integer batch
    (0..255 from a custom node) breaks the IMAGE contract, and casting it would check a white
    image while the original went on.
    """
    item = images[index]
    shape = tuple(getattr(item, "shape", ()))
    if len(shape) in (2, 3):
        check_size(shape[0], shape[1], max_pixels, name=f"image {index}")
    if hasattr(item, "detach"):
        if not item.is_floating_point():
            raise IntegrationError(
                f"image {index} holds {item.dtype} pixels; a ComfyUI IMAGE holds floats in "
                "[0, 1], and an integer one can't be read as that"
            )
        import torch

        item = item.detach().to(device="cpu", dtype=torch.float32).numpy()
    elif not np.issubdtype(np.asarray(item).dtype, np.floating):
        raise IntegrationError(
            f"image {index} holds {np.asarray(item).dtype} pixels; a ComfyUI IMAGE holds floats "
            "in [0, 1]"
        )
    return to_rgb(item)


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def verdicts_json(verdicts: Sequence[Verdict]) -> str:
    """Verdicts as the Image Guard node writes them."""
    return _json([v.to_dict() for v in verdicts])


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "GardienPromptGuard": GardienPromptGuard,
    "GardienImageGuard": GardienImageGuard,
    "GardienGate": GardienGate,
}

NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "GardienPromptGuard": "gardien Prompt Guard",
    "GardienImageGuard": "gardien Image Guard",
    "GardienGate": "gardien Gate",
}
