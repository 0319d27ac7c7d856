"""NudeNet's 320n nudity detector, run through onnxruntime with our own pre- and post-processing.

Why not call ``nudenet.NudeDetector``: it needs OpenCV, keeps only the best class of each box, and
runs one class-agnostic NMS, so an exposed-body-part box that overlaps a covered one or a face
can vanish. Here every class score above ``min_score`` is kept (one signal per class and box), NMS
runs per class, and the only runtime dependency is onnxruntime; the ``nudenet`` package serves
only as the place the model file ships (it is never imported).

Model contract (an Ultralytics YOLOv8 export; see the model's own metadata):

- input ``images``: float32, N x 3 x S x S, RGB scaled to [0, 1], S = 320. The image is resized
  so its long side is S, keeping its aspect, and placed at the top left of a black square: the
  padding NudeNet uses, so that scores stay comparable with NudeNet's. NudeNet 3.4.2 feeds BGR
  through a double channel swap (notAI-tech/NudeNet#203); the network was trained on RGB, as
  every Ultralytics model is and as NudeNet itself fed it before that change, so RGB here.
- output: 1 x (4 + 18) x A (A = 2100 anchors at 320): per anchor the box centre x, centre y,
  width and height in input pixels, then one independent (sigmoid) score per class, in
  :data:`LABELS` order.
"""

from __future__ import annotations

import ast
import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gardien.media import RGBArray
from gardien.vision._support import checked_rgb, open_onnx_session, resize_rgb, static_dim
from gardien.vision.registry import register_detector
from gardien.vision.signals import Region, Signal, VisionError

#: NudeNet 320n's classes, in the order of the model's score rows.
LABELS: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)

#: Scores under this are dropped. Lower than NudeNet's 0.25 so the guard's own threshold
#: (``MIN_SIGNAL_SCORE``) decides, and near misses still show as findings.
DEFAULT_MIN_SCORE = 0.2
#: Boxes of the same class overlapping more than this are one detection (NudeNet's value).
DEFAULT_IOU = 0.45
DEFAULT_INPUT_SIZE = 320
#: At most this many signals per image (Ultralytics' ``max_det``).
MAX_DETECTIONS = 300
#: At most this many candidates enter NMS, best first: a broken model scoring every anchor
#: high must not make NMS quadratic in 37,800 boxes.
MAX_CANDIDATES = 3000

INSTALL = "pip install 'gardien[nudenet]'"


def default_model_path() -> Path:
    """The 320n model inside the installed ``nudenet`` package, found without importing it."""
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        raise VisionError(
            f"the nudenet package, which ships the 320n model, is not installed: {INSTALL} "
            "(or pass model_path)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "320n.onnx"
        if candidate.is_file():
            return candidate
    where = ", ".join(spec.submodule_search_locations)
    raise VisionError(f"{where}: the nudenet package has no 320n.onnx; reinstall it")


class NudeNetDetector:
    """Body-part and face boxes from NudeNet's 320n model, as signals named after its classes.

    ``FACE_FEMALE`` / ``FACE_MALE`` boxes are what the image guard hands the age estimator.
    """

    name = "nudenet"

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        providers: Sequence[str] | None = None,
        min_score: float = DEFAULT_MIN_SCORE,
        iou_threshold: float = DEFAULT_IOU,
        input_size: int | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        if not 0.0 < min_score <= 1.0:
            raise VisionError(f"nudenet: min_score {min_score!r} is not in (0, 1]")
        if not 0.0 < iou_threshold <= 1.0:
            raise VisionError(f"nudenet: iou_threshold {iou_threshold!r} is not in (0, 1]")
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.min_score = float(min_score)
        self.iou_threshold = float(iou_threshold)
        self._session = open_onnx_session(self.model_path, providers, INSTALL)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise VisionError(f"{self.model_path}: expected one N x 3 x H x W input")
        self._input = str(inputs[0].name)
        meta = self._session.get_modelmeta().custom_metadata_map
        self.labels = tuple(labels) if labels else _metadata_labels(meta) or LABELS
        size = input_size or _static_square(inputs[0].shape) or _metadata_size(meta)
        self.input_size = int(size or DEFAULT_INPUT_SIZE)
        if self.input_size <= 0:
            raise VisionError(f"{self.model_path}: input size {self.input_size} is not positive")
        outputs = self._session.get_outputs()
        rows = static_dim(outputs[0].shape[1]) if len(outputs[0].shape) == 3 else None
        if rows is not None and rows != 4 + len(self.labels):
            raise VisionError(
                f"{self.model_path}: output has {rows} rows per anchor; "
                f"{len(self.labels)} classes need {4 + len(self.labels)}"
            )

    def detect(self, image: RGBArray) -> list[Signal]:
        pixels = checked_rgb(image, self.name)
        batch, scale_x, scale_y = self._prepare(pixels)
        try:
            outputs = self._session.run(None, {self._input: batch})
        except Exception as exc:
            raise VisionError(f"{self.model_path}: inference failed: {exc}") from None
        height, width = pixels.shape[:2]
        return self._decode(outputs[0], scale_x, scale_y, width, height)

    def _prepare(self, pixels: RGBArray) -> tuple[npt.NDArray[np.float32], float, float]:
        """Letterbox into the top left of a black square; the scale back to image pixels."""
        height, width = pixels.shape[:2]
        size = self.input_size
        long_side = max(width, height)
        new_w = max(1, round(width * size / long_side))
        new_h = max(1, round(height * size / long_side))
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[:new_h, :new_w] = resize_rgb(pixels, new_w, new_h)
        batch = canvas.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / np.float32(255.0)
        return np.ascontiguousarray(batch), width / new_w, height / new_h

    def _decode(
        self, output: Any, scale_x: float, scale_y: float, width: int, height: int
    ) -> list[Signal]:
        out = np.asarray(output)
        classes = len(self.labels)
        if out.ndim != 3 or out.shape[0] != 1 or out.shape[1] != 4 + classes:
            raise VisionError(
                f"{self.model_path}: output shape {list(out.shape)}, expected [1, {4 + classes}, N]"
            )
        rows = out[0].T.astype(np.float64)  # anchors x (4 + classes)
        if not np.isfinite(rows).all():
            raise VisionError(f"{self.model_path}: the model produced NaN or infinite values")
        scores = np.clip(rows[:, 4:], 0.0, 1.0)
        anchor, cls = np.nonzero(scores >= self.min_score)
        if anchor.size == 0:
            return []
        conf = scores[anchor, cls]
        if conf.size > MAX_CANDIDATES:
            best = np.argsort(-conf, kind="stable")[:MAX_CANDIDATES]
            anchor, cls, conf = anchor[best], cls[best], conf[best]
        cx, cy, bw, bh = rows[anchor, :4].T
        # Centre/size in input pixels -> corners in image pixels, clipped to the image (boxes
        # may reach into the padding).
        x0 = np.clip((cx - bw / 2) * scale_x, 0, width)
        y0 = np.clip((cy - bh / 2) * scale_y, 0, height)
        x1 = np.clip((cx + bw / 2) * scale_x, 0, width)
        y1 = np.clip((cy + bh / 2) * scale_y, 0, height)
        boxes = np.stack([x0, y0, x1, y1], axis=1)
        keep = _nms_per_class(boxes, conf, cls, self.iou_threshold)[:MAX_DETECTIONS]
        return [
            Signal(
                name=self.labels[int(cls[i])],
                score=float(conf[i]),
                region=_region(boxes[i], width, height),
                detector=self.name,
            )
            for i in keep
        ]


def _nms_per_class(
    boxes: npt.NDArray[np.float64],
    scores: npt.NDArray[np.float64],
    classes: npt.NDArray[np.intp],
    iou_threshold: float,
) -> list[int]:
    """Greedy NMS within each class; indices of the kept boxes, best score first."""
    # Shifting each class's boxes far apart lets one pass handle every class.
    offset = (boxes.max() + 1.0) * classes.astype(np.float64)
    x0, y0, x1, y1 = (boxes + offset[:, None]).T
    areas = (x1 - x0) * (y1 - y0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0, None)
        h = np.clip(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return keep


def _region(box: npt.NDArray[np.float64], width: int, height: int) -> Region:
    """The smallest whole-pixel box holding ``box``, at least one pixel, inside the image."""
    x = min(math.floor(box[0]), width - 1)
    y = min(math.floor(box[1]), height - 1)
    right = min(max(math.ceil(box[2]), x + 1), width)
    bottom = min(max(math.ceil(box[3]), y + 1), height)
    return Region(x, y, right - x, bottom - y)


def _metadata_labels(meta: dict[str, str]) -> tuple[str, ...] | None:
    """Class names from an Ultralytics export's ``names`` metadata (``{0: 'A', 1: 'B'}``)."""
    raw = meta.get("names")
    if not raw:
        return None
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if not isinstance(names, dict) or sorted(names) != list(range(len(names))):
        return None
    if not all(isinstance(v, str) for v in names.values()):
        return None
    return tuple(names[i] for i in range(len(names)))


def _metadata_size(meta: dict[str, str]) -> int | None:
    """The square input size from an Ultralytics export's ``imgsz`` metadata (``[320, 320]``)."""
    try:
        size = ast.literal_eval(meta.get("imgsz", ""))
    except (ValueError, SyntaxError):
        return None
    if isinstance(size, list) and len(size) == 2 and size[0] == size[1]:
        return size[0] if isinstance(size[0], int) and size[0] > 0 else None
    return None


def _static_square(shape: Sequence[object]) -> int | None:
    height, width = static_dim(shape[2]), static_dim(shape[3])
    return height if height is not None and height == width else None


def _factory(**options: Any) -> NudeNetDetector:
    return NudeNetDetector(**options)


register_detector("nudenet", _factory)
