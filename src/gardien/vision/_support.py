"""Helpers the model backends share: checking and resizing pixels, cropping faces, ONNX sessions.

Kept free of heavy imports: onnxruntime is imported only when a session is opened, so that
``import gardien.vision`` works without any model extra installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from gardien.media import RGBArray
from gardien.vision.signals import Region, VisionError

FloatArray = npt.NDArray[np.float32]


def checked_rgb(image: object, who: str) -> RGBArray:
    """The image as an H x W x 3 uint8 array, or a VisionError saying what it was instead."""
    if not isinstance(image, np.ndarray):
        raise VisionError(f"{who}: expected an RGB array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise VisionError(
            f"{who}: expected an H x W x 3 uint8 RGB array, got shape {image.shape} {image.dtype}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise VisionError(f"{who}: empty image")
    return image


def resize_rgb(image: RGBArray, width: int, height: int) -> RGBArray:
    """Bilinear resize with Pillow (antialiased when shrinking, unlike OpenCV's INTER_LINEAR)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    pil = Image.fromarray(np.ascontiguousarray(image))
    resized = pil.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def with_margin(region: Region, margin: float, width: int, height: int) -> Region | None:
    """``region`` grown by ``margin`` times its size on every side, clipped to the image.

    Age models are trained on faces with some hair and chin around them; a tight detector box
    reads older or younger than the model expects.
    """
    dx = round(region.width * margin)
    dy = round(region.height * margin)
    grown = Region(region.x - dx, region.y - dy, region.width + 2 * dx, region.height + 2 * dy)
    return grown.clipped(width, height)


def crops(
    image: RGBArray, regions: Sequence[Region] | None, margin: float
) -> list[tuple[RGBArray, Region | None]]:
    """The parts of ``image`` an age model reads: each region with its margin, or the whole image.

    A region wholly outside the image gives no crop (so no estimate), never the whole image.
    """
    if regions is None:
        return [(image, None)]
    height, width = image.shape[:2]
    out: list[tuple[RGBArray, Region | None]] = []
    for region in regions:
        box = with_margin(region, margin, width, height)
        if box is None:
            continue
        crop = image[box.y : box.y + box.height, box.x : box.x + box.width]
        out.append((crop, region))
    return out


def open_onnx_session(path: Path, providers: Sequence[str] | None, install: str) -> Any:
    """An onnxruntime session on ``path``, or a VisionError that names the file.

    One session serves every call: onnxruntime documents ``InferenceSession.run`` as safe to call
    from several threads at once, so backends share it without a lock.
    """
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError:
        raise VisionError(f"onnxruntime is not installed: {install}") from None
    if not path.is_file():
        raise VisionError(f"{path}: model file not found")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: unused-initialiser warnings are noise here
    try:
        return onnxruntime.InferenceSession(
            str(path),
            sess_options=options,
            providers=list(providers) if providers else ["CPUExecutionProvider"],
        )
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VisionError(f"{path}: not a usable ONNX model: {detail}") from None


def static_dim(value: object) -> int | None:
    """A tensor dimension from onnxruntime's shape list, or None when it is symbolic."""
    return value if isinstance(value, int) and value > 0 else None
