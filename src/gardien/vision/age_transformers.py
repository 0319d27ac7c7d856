"""Apparent age from a Hugging Face image-classification model over age ranges, loaded locally.

``model`` is a local directory (``save_pretrained`` output) or a model id already in the local
Hugging Face cache: loading always passes ``local_files_only=True``, so nothing is downloaded,
ever; a model that isn't on disk is an error. The image processor saved with the model does the
resizing and normalisation.

The classes must be age ranges: ``config.id2label`` values such as "0-2", "3-9", "10-19",
"20-29", ..., "more than 70" or "70+" (read as whole-year bins, see :mod:`gardien.vision._ages`),
or pass ``bins`` explicitly, one per class in class-id order. P(age < limit) is the mass of the
bins below the limit plus the share of the bin it falls in, as for the ONNX backend's bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gardien.media import RGBArray
from gardien.vision import _ages
from gardien.vision._support import checked_rgb, crops
from gardien.vision.registry import register_age_estimator
from gardien.vision.signals import AgeEstimate, Region, VisionError

#: Share of a face box added on each side before cropping (as the ONNX backend).
DEFAULT_MARGIN = 0.25

INSTALL = "pip install 'gardien[transformers]'"


class TransformersAgeEstimator:
    """Apparent age per face (or for the whole image) from a local image classifier."""

    name = "transformers"

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        bins: Sequence[Sequence[int | None]] | None = None,
        margin: float = DEFAULT_MARGIN,
        limits: Sequence[int] = _ages.DEFAULT_LIMITS,
    ) -> None:
        # torch and transformers take seconds to import; only a loaded estimator pays for them.
        try:
            import torch
            import transformers
        except ImportError:
            raise VisionError(f"transformers or torch is not installed: {INSTALL}") from None
        self.model = str(model)
        self._torch = torch
        if isinstance(model, Path) or self.model.startswith(("/", ".", "~")):
            if not Path(model).expanduser().is_dir():
                raise VisionError(f"{self.model}: no such model directory")
            model = Path(model).expanduser()
        try:
            self._processor = transformers.AutoImageProcessor.from_pretrained(  # type: ignore[no-untyped-call]
                str(model), local_files_only=True
            )
            network = transformers.AutoModelForImageClassification.from_pretrained(
                str(model), local_files_only=True
            )
        except Exception as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise VisionError(
                f"{self.model}: no local image-classification model "
                f"(looked on disk only, nothing is downloaded): {detail}"
            ) from None
        self._network: Any = network.eval().to(device)
        self.device = device
        labels: dict[int, str] = dict(network.config.id2label)
        if sorted(labels) != list(range(len(labels))):
            raise VisionError(f"{self.model}: class ids are not 0..{len(labels) - 1}")
        if bins is not None:
            self.bins = _ages.checked_bins(bins, self.model)
        else:
            found = [_ages.bin_from_label(labels[i], self.model) for i in range(len(labels))]
            self.bins = _ages.checked_bins(found, self.model)
        if len(self.bins) != len(labels):
            raise VisionError(f"{self.model}: {len(self.bins)} bins for {len(labels)} classes")
        if not 0.0 <= margin <= 2.0:
            raise VisionError(f"{self.model}: margin {margin} is not in [0, 2]")
        self.margin = float(margin)
        self.limits = _ages.checked_limits(limits, self.model)

    def estimate(self, image: RGBArray, regions: list[Region] | None = None) -> list[AgeEstimate]:
        pixels = checked_rgb(image, self.name)
        parts = crops(pixels, regions, self.margin)
        if not parts:
            return []
        # PIL images, not arrays: the processor would guess the channel axis of a 3 x 3 crop.
        images = [Image.fromarray(np.ascontiguousarray(crop)) for crop, _ in parts]
        torch = self._torch
        try:
            inputs = self._processor(images=images, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                logits = self._network(**inputs).logits
            rows = logits.float().cpu().numpy().astype(np.float64)
        except Exception as exc:
            raise VisionError(f"{self.model}: inference failed: {exc}") from None
        if rows.ndim != 2 or rows.shape != (len(parts), len(self.bins)):
            raise VisionError(f"{self.model}: logits of shape {list(rows.shape)}")
        probabilities = _ages.checked_distribution(rows, "logits", self.model)
        return [
            _ages.from_probabilities(p, self.bins, self.limits, region, self.name)
            for p, (_, region) in zip(probabilities, parts, strict=True)
        ]


def _factory(**options: Any) -> TransformersAgeEstimator:
    if "model" not in options:
        raise VisionError("age estimator 'transformers' needs model (a local path or cached id)")
    return TransformersAgeEstimator(**options)


register_age_estimator("transformers", _factory)
