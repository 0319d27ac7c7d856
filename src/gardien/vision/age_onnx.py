"""Apparent age from an exported ONNX model: regression, or a distribution over age bins.

No age model ships with gardien; an operator exports an open one and points at it. The contract:

- **Input**: one tensor, float32, N x 3 x H x W, RGB (``channel_order="bgr"`` for models trained
  on BGR), each crop resized to ``size`` (default 224, or the model's own static size) without
  keeping its aspect, scaled to [0, 1], then ``(x - mean) / std`` per channel (default ImageNet's
  mean and std). A model whose batch dimension is fixed at 1 is run once per crop.
- **Output** (the first one), ``output`` says which:

  - ``"regression"``: one value per crop (shape N or N x 1), the age in years. Each
    P(age < limit) is then 1.0 or 0.0.
  - ``"logits"`` or ``"probabilities"``: N x len(bins) over ``bins``, whole-year ranges with both
    ends included, e.g. ``[(0, 2), (3, 9), (10, 19), (20, 29), ..., (70, None)]``; softmax is
    applied to logits. The age is the expected value over bin midpoints; P(age < limit) is the
    mass of the bins below the limit plus the share of the bin the limit falls in.

  Default: ``"logits"`` when bins are given, else ``"regression"``.

Options can also come from a JSON sidecar next to the model, ``<model>.json`` (``age.onnx`` ->
``age.json``), so that a model is one file pair; keyword options override it. Keys: ``size``
(int or [height, width]), ``mean``, ``std``, ``channel_order``, ``bins`` (``[[0, 2], ...,
[70, null]]``), ``output``, ``margin``, ``limits``. An unknown key is an error, so a typo can't
silently fall back to a default.

Given face regions, each is cropped with ``margin`` (a fraction of the box added on every side,
default 0.25, clipped to the image) and read on its own; otherwise the whole image is read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gardien.media import RGBArray
from gardien.vision import _ages
from gardien.vision._support import (
    checked_rgb,
    crops,
    open_onnx_session,
    resize_rgb,
    static_dim,
)
from gardien.vision.registry import register_age_estimator
from gardien.vision.signals import AgeEstimate, Region, VisionError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224
#: Share of a face box added on each side before cropping.
DEFAULT_MARGIN = 0.25
OUTPUT_KINDS = ("regression", "logits", "probabilities")
SIDECAR_KEYS = frozenset(
    {"size", "mean", "std", "channel_order", "bins", "output", "margin", "limits"}
)

INSTALL = "pip install 'gardien[onnx]'"


def read_sidecar(model_path: Path) -> dict[str, Any]:
    """The options in ``<model>.json``, or none when there is no such file."""
    path = model_path.with_suffix(".json")
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VisionError(f"{path}: cannot read the model's options: {exc}") from None
    if not isinstance(data, dict):
        raise VisionError(f"{path}: expected a JSON object of options")
    unknown = sorted(set(data) - SIDECAR_KEYS)
    if unknown:
        known = ", ".join(sorted(SIDECAR_KEYS))
        raise VisionError(f"{path}: unknown option(s) {', '.join(unknown)}; known: {known}")
    return data


class OnnxAgeEstimator:
    """Apparent age per face (or for the whole image) from an ONNX model; see the module doc."""

    name = "onnx"

    def __init__(
        self,
        model_path: Path | str,
        *,
        providers: Sequence[str] | None = None,
        size: int | Sequence[int] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        channel_order: str | None = None,
        bins: Sequence[Sequence[int | None]] | None = None,
        output: str | None = None,
        margin: float | None = None,
        limits: Sequence[int] | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        who = str(self.model_path)
        given: dict[str, Any] = {
            "size": size,
            "mean": mean,
            "std": std,
            "channel_order": channel_order,
            "bins": bins,
            "output": output,
            "margin": margin,
            "limits": limits,
        }
        options = read_sidecar(self.model_path)
        options.update({k: v for k, v in given.items() if v is not None})
        self._session = open_onnx_session(self.model_path, providers, INSTALL)

        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise VisionError(f"{who}: expected one N x 3 x H x W input")
        self._input = str(inputs[0].name)
        shape = inputs[0].shape
        self._one_at_a_time = static_dim(shape[0]) == 1
        model_hw = (static_dim(shape[2]), static_dim(shape[3]))
        self.size = _size(options.get("size"), model_hw, who)
        self.mean = _triple(options.get("mean", IMAGENET_MEAN), "mean", who)
        self.std = _triple(options.get("std", IMAGENET_STD), "std", who)
        if (self.std == 0).any():
            raise VisionError(f"{who}: std has a zero")
        self.channel_order = options.get("channel_order", "rgb")
        if self.channel_order not in ("rgb", "bgr"):
            raise VisionError(f"{who}: channel_order must be 'rgb' or 'bgr'")
        raw_bins = options.get("bins")
        self.bins = None if raw_bins is None else _ages.checked_bins(raw_bins, who)
        self.output = options.get("output", "regression" if self.bins is None else "logits")
        if self.output not in OUTPUT_KINDS:
            raise VisionError(f"{who}: output must be one of {', '.join(OUTPUT_KINDS)}")
        if (self.output == "regression") != (self.bins is None):
            raise VisionError(f"{who}: output {self.output!r} needs bins, and only it does")
        self.margin = float(options.get("margin", DEFAULT_MARGIN))
        if not 0.0 <= self.margin <= 2.0:
            raise VisionError(f"{who}: margin {self.margin} is not in [0, 2]")
        self.limits = _ages.checked_limits(options.get("limits", _ages.DEFAULT_LIMITS), who)

    def estimate(self, image: RGBArray, regions: list[Region] | None = None) -> list[AgeEstimate]:
        pixels = checked_rgb(image, self.name)
        parts = crops(pixels, regions, self.margin)
        if not parts:
            return []
        batch = np.stack([self._tensor(crop) for crop, _ in parts])
        if self._one_at_a_time:
            rows = np.concatenate([self._run(batch[i : i + 1]) for i in range(len(parts))])
        else:
            rows = self._run(batch)
        who = str(self.model_path)
        if self.bins is None:
            ages = rows[:, 0]
            if not np.isfinite(ages).all():
                raise VisionError(f"{who}: the model produced NaN or infinite ages")
            return [
                _ages.from_age(float(a), self.limits, region, self.name)
                for a, (_, region) in zip(ages, parts, strict=True)
            ]
        probabilities = _ages.checked_distribution(rows, self.output, who)
        return [
            _ages.from_probabilities(p, self.bins, self.limits, region, self.name)
            for p, (_, region) in zip(probabilities, parts, strict=True)
        ]

    def _tensor(self, crop: RGBArray) -> npt.NDArray[np.float32]:
        height, width = self.size
        pixels = resize_rgb(crop, width, height).astype(np.float32) / np.float32(255.0)
        if self.channel_order == "bgr":
            pixels = pixels[:, :, ::-1]
        normalised = (pixels - self.mean) / self.std
        return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)

    def _run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """The first output as ``batch x values``, checked against what ``output`` promises."""
        who = str(self.model_path)
        try:
            out = np.asarray(self._session.run(None, {self._input: batch})[0])
        except Exception as exc:
            raise VisionError(f"{who}: inference failed: {exc}") from None
        n = batch.shape[0]
        if out.ndim == 1 and self.bins is None:
            out = out[:, np.newaxis]
        if out.ndim != 2 or out.shape[0] != n:
            raise VisionError(
                f"{who}: output shape {list(out.shape)}, expected [{n}, "
                f"{1 if self.bins is None else len(self.bins)}]"
            )
        width = 1 if self.bins is None else len(self.bins)
        if out.shape[1] != width:
            what = "one age" if self.bins is None else f"{width} bins"
            raise VisionError(f"{who}: output has {out.shape[1]} values per image, expected {what}")
        return out.astype(np.float64)


def _size(raw: object, model_hw: tuple[int | None, int | None], who: str) -> tuple[int, int]:
    """``(height, width)`` from the option, else the model's static size, else the default."""
    if raw is None:
        height, width = model_hw
        if height is not None and width is not None:
            return height, width
        return DEFAULT_SIZE, DEFAULT_SIZE
    if isinstance(raw, int) and not isinstance(raw, bool):
        size = (raw, raw)
    elif (
        isinstance(raw, list | tuple)
        and len(raw) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
    ):
        size = (int(raw[0]), int(raw[1]))
    else:
        raise VisionError(f"{who}: size {raw!r} is not an int or [height, width]")
    if min(size) <= 0:
        raise VisionError(f"{who}: size {raw!r} is not positive")
    for given, fixed in zip(size, model_hw, strict=True):
        if fixed is not None and given != fixed:
            raise VisionError(f"{who}: size {raw!r} but the model takes {list(model_hw)}")
    return size


def _triple(raw: object, what: str, who: str) -> npt.NDArray[np.float32]:
    try:
        values = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        values = np.zeros(0, dtype=np.float32)
    if values.shape != (3,) or not np.isfinite(values).all():
        raise VisionError(f"{who}: {what} must be three numbers, one per channel")
    return values


def _factory(**options: Any) -> OnnxAgeEstimator:
    if "model_path" not in options:
        raise VisionError("age estimator 'onnx' needs model_path")
    return OnnxAgeEstimator(**options)


register_age_estimator("onnx", _factory)
