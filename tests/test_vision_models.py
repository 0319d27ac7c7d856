"""The model backends: NudeNet 320n through onnxruntime, and the ONNX and transformers age models.

Per DESIGN.md, no image here shows a person. The real NudeNet model only ever sees benign
synthetic images (blank, gradients, coloured squares), which checks that it loads, runs and is
decoded into well-formed signals. Positive paths use tiny models built by the tests with
onnx.helper (or a random tiny ViT) whose outputs the tests set: a "detection" is a constant
tensor, an "age" a constant or a linear function of a crop's mean colour.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from gardien.core import Decision
from gardien.vision import (
    AgeEstimate,
    ImageGuard,
    Region,
    Signal,
    VisionError,
    load_age_estimator,
    load_detector,
)

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import NodeProto, TensorProto, ValueInfoProto, helper, numpy_helper  # noqa: E402

from gardien.vision.age_onnx import OnnxAgeEstimator  # noqa: E402
from gardien.vision.nudity import LABELS, NudeNetDetector  # noqa: E402

HAVE_NUDENET = importlib.util.find_spec("nudenet") is not None
needs_nudenet = pytest.mark.skipif(not HAVE_NUDENET, reason="nudenet (ships 320n) not installed")

BINS = [(0, 2), (3, 9), (10, 19), (20, 29), (30, None)]


# -- tiny ONNX models


def _save(
    path: Path,
    nodes: list[NodeProto],
    inputs: list[ValueInfoProto],
    outputs: list[ValueInfoProto],
    initializers: list[TensorProto] | None = None,
) -> Path:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=initializers or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _image_input(name: str = "images", shape: list[int | str] | None = None) -> ValueInfoProto:
    return helper.make_tensor_value_info(
        name, TensorProto.FLOAT, shape or ["batch", 3, "height", "width"]
    )


def constant_model(
    path: Path, value: npt.NDArray[np.float32], *, per_image: bool = False, input_name: str = "x"
) -> Path:
    """A model whose output is ``value`` whatever the image (it still reads the input).

    ``per_image`` adds a batch axis in front, repeated for each image in the batch.
    """
    const = numpy_helper.from_array(value.astype(np.float32), "const")
    mean_axes = [1, 2, 3] if per_image else [0, 1, 2, 3]
    nodes = [
        helper.make_node("ReduceMean", [input_name], ["m"], axes=mean_axes, keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
    ]
    if per_image:  # z: [N] -> [N, 1, ...] so the constant is broadcast per image
        axes = numpy_helper.from_array(np.arange(1, value.ndim + 1, dtype=np.int64), "axes")
        nodes += [
            helper.make_node("Unsqueeze", ["z", "axes"], ["zz"]),
            helper.make_node("Add", ["zz", "const"], ["out"]),
        ]
        extra = [axes]
        shape: list[int | str] = ["batch", *value.shape]
    else:
        nodes.append(helper.make_node("Add", ["z", "const"], ["out"]))
        extra = []
        shape = list(value.shape)
    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    return _save(
        path,
        nodes,
        [_image_input(input_name)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
        [const, zero, *extra],
    )


def linear_model(
    path: Path, weights: np.ndarray, *, batch: int | str = "batch", size: int = 0
) -> Path:
    """``mean colour of the crop (R, G, B) @ weights``: N x K, so a colour sets the output."""
    shape: list[int | str] = [batch, 3, size or "height", size or "width"]
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["out"]),
    ]
    w = numpy_helper.from_array(weights.astype(np.float32), "w")
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, weights.shape[1]])
    return _save(path, nodes, [_image_input("x", shape)], [out], [w])


def yolo_output(*boxes: tuple[float, float, float, float, dict[str, float]]) -> np.ndarray:
    """A YOLOv8 output [1, 4 + 18, anchors] holding these (cx, cy, w, h, {label: score}) rows."""
    out = np.zeros((1, 4 + len(LABELS), max(8, len(boxes))), dtype=np.float32)
    for i, (cx, cy, w, h, scores) in enumerate(boxes):
        out[0, :4, i] = (cx, cy, w, h)
        for label, score in scores.items():
            out[0, 4 + LABELS.index(label), i] = score
    return out


def two_colour_image() -> np.ndarray:
    """100 x 200: left half pure red, right half pure blue."""
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[:, :100, 0] = 255
    image[:, 100:, 2] = 255
    return image


RAW = {"mean": [0, 0, 0], "std": [1, 1, 1]}  # tensors are the crop's pixels / 255
ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
RED_FACE = Region(20, 20, 40, 40)
BLUE_FACE = Region(130, 20, 40, 40)


# -- NudeNet, the real shipped model on benign synthetic images


@pytest.fixture(scope="module")
def nudenet() -> NudeNetDetector:
    if not HAVE_NUDENET:
        pytest.skip("nudenet (ships 320n) not installed")
    return NudeNetDetector()


def _benign_images() -> dict[str, np.ndarray]:
    gradient = np.zeros((240, 320, 3), dtype=np.uint8)
    gradient[..., 0] = np.linspace(0, 255, 320, dtype=np.uint8)[None, :]
    gradient[..., 2] = np.linspace(255, 0, 240, dtype=np.uint8)[:, None]
    square = np.full((200, 200, 3), 255, dtype=np.uint8)
    square[50:150, 60:140] = (30, 160, 40)
    return {
        "blank": np.zeros((64, 64, 3), dtype=np.uint8),
        "gradient": gradient,
        "square": square,
        "tall": np.full((211, 37, 3), 128, dtype=np.uint8),
        "wide": np.full((20, 500, 3), 200, dtype=np.uint8),
        "tiny": np.full((2, 3, 3), 90, dtype=np.uint8),
    }


@needs_nudenet
@pytest.mark.parametrize("kind", sorted(_benign_images()))
def test_shipped_320n_runs_on_benign_synthetic_images(nudenet: NudeNetDetector, kind: str) -> None:
    image = _benign_images()[kind]
    signals = nudenet.detect(image)
    assert isinstance(signals, list)
    height, width = image.shape[:2]
    for s in signals:
        assert isinstance(s, Signal) and s.name in LABELS and s.detector == "nudenet"
        assert 0.0 <= s.score <= 1.0
        assert s.region is not None and s.region.clipped(width, height) == s.region


@needs_nudenet
def test_shipped_320n_is_found_in_the_nudenet_package_and_read_from_its_metadata(
    nudenet: NudeNetDetector,
) -> None:
    assert nudenet.model_path.name == "320n.onnx" and nudenet.model_path.parent.name == "nudenet"
    assert nudenet.labels == LABELS and nudenet.input_size == 320
    assert isinstance(load_detector("nudenet"), NudeNetDetector)


@needs_nudenet
def test_one_session_serves_threads(nudenet: NudeNetDetector) -> None:
    images = list(_benign_images().values())
    expected = [nudenet.detect(i) for i in images]
    results: dict[int, list[Signal]] = {}

    def run(k: int) -> None:
        results[k] = nudenet.detect(images[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[k] for k in range(len(images))] == expected


# -- NudeNet decoding, with a tiny model whose output the test sets


@pytest.fixture
def detections(tmp_path: Path) -> Path:
    output = yolo_output(
        # best box of its class, in input pixels (320 space): centre (100, 60), 40 x 20
        (100, 60, 40, 20, {"FEMALE_BREAST_EXPOSED": 0.9, "BUTTOCKS_COVERED": 0.5}),
        # the same place, same class, lower score: one detection after NMS
        (101, 61, 40, 20, {"FEMALE_BREAST_EXPOSED": 0.8}),
        # overlapping, another class: kept (NMS is per class)
        (100, 60, 38, 22, {"FACE_FEMALE": 0.7}),
        # under min_score: dropped
        (200, 200, 10, 10, {"FEET_EXPOSED": 0.1}),
        # reaching into the padding under a 640 x 480 image (content is 320 x 240): clipped
        (300, 230, 40, 40, {"BELLY_EXPOSED": 0.6}),
    )
    return constant_model(tmp_path / "yolo.onnx", output, input_name="images")


def test_decoding_maps_boxes_to_image_pixels_per_class(detections: Path) -> None:
    detector = NudeNetDetector(model_path=detections)
    assert detector.labels == LABELS and detector.input_size == 320
    signals = detector.detect(np.zeros((480, 640, 3), dtype=np.uint8))
    found = {(s.name, round(s.score, 3)): s.region for s in signals}
    assert found == {
        # scale 640 / 320 = 2: (100 - 20) * 2 = 160, (60 - 10) * 2 = 100, 80 x 40
        ("FEMALE_BREAST_EXPOSED", 0.9): Region(160, 100, 80, 40),
        ("BUTTOCKS_COVERED", 0.5): Region(160, 100, 80, 40),
        ("FACE_FEMALE", 0.7): Region(162, 98, 76, 44),
        ("BELLY_EXPOSED", 0.6): Region(560, 420, 80, 60),
    }
    assert [s.score for s in signals] == sorted((s.score for s in signals), reverse=True)
    assert all(s.detector == "nudenet" for s in signals)


def test_decoding_of_non_square_and_tiny_images(detections: Path) -> None:
    detector = NudeNetDetector(model_path=detections, min_score=0.85)
    # tall 400 x 800: long side 800 -> scale 2.5 both ways
    (tall,) = detector.detect(np.zeros((800, 400, 3), dtype=np.uint8))
    assert tall.name == "FEMALE_BREAST_EXPOSED" and tall.region == Region(200, 125, 100, 50)
    # 3 x 2: the box lies outside the image content and is clamped to at least one pixel
    (tiny,) = detector.detect(np.zeros((2, 3, 3), dtype=np.uint8))
    assert tiny.region is not None and tiny.region.clipped(3, 2) == tiny.region


def test_options_through_the_registry(detections: Path) -> None:
    detector = load_detector("nudenet", model_path=detections, min_score=0.55, iou_threshold=0.99)
    names = sorted(s.name for s in detector.detect(np.zeros((320, 320, 3), dtype=np.uint8)))
    # iou 0.99 keeps the near-duplicate breast box; min_score 0.55 drops BUTTOCKS_COVERED 0.5
    assert names == [
        "BELLY_EXPOSED",
        "FACE_FEMALE",
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
    ]


def test_nan_output_and_wrong_output_shape_are_errors(tmp_path: Path) -> None:
    nan = yolo_output((10, 10, 5, 5, {"FACE_MALE": 0.9}))
    nan[0, 0, 0] = np.nan
    detector = NudeNetDetector(model_path=constant_model(tmp_path / "nan.onnx", nan))
    with pytest.raises(VisionError, match=r"nan\.onnx: .*NaN"):
        detector.detect(np.zeros((32, 32, 3), dtype=np.uint8))
    wrong = constant_model(tmp_path / "rows.onnx", np.zeros((1, 10, 8), np.float32))
    with pytest.raises(VisionError, match=r"rows\.onnx: output has 10 rows"):
        NudeNetDetector(model_path=wrong)


def test_detector_refuses_what_is_not_an_rgb_array(detections: Path) -> None:
    detector = NudeNetDetector(model_path=detections)
    with pytest.raises(VisionError, match="H x W x 3 uint8"):
        detector.detect(np.zeros((10, 10), dtype=np.uint8))


def test_missing_and_garbage_model_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(VisionError, match=r"missing\.onnx: model file not found"):
        NudeNetDetector(model_path=missing)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(VisionError, match=r"garbage\.onnx: not a usable ONNX model"):
        NudeNetDetector(model_path=garbage)
    with pytest.raises(VisionError, match=r"garbage\.onnx"):
        OnnxAgeEstimator(garbage)
    with pytest.raises(VisionError, match="min_score"):
        NudeNetDetector(model_path=missing, min_score=0)


# -- ONNX age models


def test_regression_model_reads_each_face_crop(tmp_path: Path) -> None:
    # mean colour (1, 0, 0) -> 10 years; (0, 0, 1) -> 70 years
    path = linear_model(tmp_path / "age.onnx", np.array([[10.0], [40.0], [70.0]]))
    (tmp_path / "age.json").write_text(json.dumps({**RAW, "size": 16}))
    estimator = load_age_estimator("onnx", model_path=path)
    assert isinstance(estimator, OnnxAgeEstimator) and estimator.size == (16, 16)
    red, blue = estimator.estimate(two_colour_image(), [RED_FACE, BLUE_FACE])
    assert red.region == RED_FACE and blue.region == BLUE_FACE
    assert red.age == pytest.approx(10.0, abs=1e-4) and blue.age == pytest.approx(70.0, abs=1e-4)
    assert red.p_under[18] == 1.0 and red.p_under[25] == 1.0
    assert blue.p_under[18] == 0.0 and blue.p_under[25] == 0.0
    assert red.estimator == "onnx"
    # the whole image averages the two halves: (10 + 70) / 2
    (whole,) = estimator.estimate(two_colour_image())
    assert whole.region is None and whole.age == pytest.approx(40.0, abs=1e-3)


def test_crop_margin_is_clipped_and_a_region_outside_the_image_gives_nothing(
    tmp_path: Path,
) -> None:
    path = linear_model(tmp_path / "age.onnx", np.array([[10.0], [40.0], [70.0]]))
    # margin 1.0 around a red face near the middle reaches into the blue half
    wide = OnnxAgeEstimator(path, margin=1.0, size=16, mean=ZERO, std=ONE)
    (mixed,) = wide.estimate(two_colour_image(), [Region(70, 30, 20, 20)])
    assert 10.0 < mixed.age < 70.0
    (edge,) = wide.estimate(two_colour_image(), [Region(0, 0, 20, 20)])  # clipped at 0: all red
    assert edge.age == pytest.approx(10.0, abs=1e-4)
    assert wide.estimate(two_colour_image(), [Region(500, 500, 10, 10)]) == []


def test_bins_model_gives_probabilities_under_limits(tmp_path: Path) -> None:
    # red -> logits favouring (10, 19); blue -> the open bin (30+)
    weights = np.zeros((3, len(BINS)))
    weights[0, 2] = 30.0
    weights[2, 4] = 30.0
    path = linear_model(tmp_path / "bins.onnx", weights)
    sidecar = {**RAW, "size": 8, "bins": [list(b) for b in BINS], "output": "logits"}
    (tmp_path / "bins.json").write_text(json.dumps(sidecar))
    estimator = OnnxAgeEstimator(path)
    red, blue = estimator.estimate(two_colour_image(), [RED_FACE, BLUE_FACE])
    assert red.age == pytest.approx(15.0, abs=1e-3)  # middle of [10, 20)
    assert red.p_under[13] == pytest.approx(0.3, abs=1e-4)  # 3 of the bin's 10 years
    assert red.p_under[18] == pytest.approx(0.8, abs=1e-4)
    assert red.p_under[25] == pytest.approx(1.0, abs=1e-4)
    assert blue.age == pytest.approx(40.0, abs=1e-3)  # open bin counted as [30, 50)
    assert blue.p_under[25] == pytest.approx(0.0, abs=1e-4)


def test_probabilities_output_and_the_bin_arithmetic(tmp_path: Path) -> None:
    probs = np.array([0.1, 0.2, 0.3, 0.4, 0.0], dtype=np.float32)
    path = constant_model(tmp_path / "p.onnx", probs, per_image=True)
    estimator = OnnxAgeEstimator(path, bins=BINS, output="probabilities", size=8)
    a, b = estimator.estimate(two_colour_image(), [RED_FACE, BLUE_FACE])
    assert a.p_under == b.p_under
    # 0.1 + 0.2 + 0.3 * 8/10; 0.1 + 0.2 + 0.3 + 0.4 * 5/10
    assert a.p_under[18] == pytest.approx(0.54, abs=1e-6)
    assert a.p_under[25] == pytest.approx(0.8, abs=1e-6)
    assert a.p_under[30] == pytest.approx(1.0, abs=1e-6)
    assert a.age == pytest.approx(0.1 * 1.5 + 0.2 * 6.5 + 0.3 * 15 + 0.4 * 25, abs=1e-5)
    assert sorted(a.p_under) == [13, 16, 18, 21, 25, 30]


def test_fixed_batch_of_one_runs_each_crop_alone(tmp_path: Path) -> None:
    path = linear_model(tmp_path / "one.onnx", np.array([[10.0], [40.0], [70.0]]), batch=1, size=24)
    estimator = OnnxAgeEstimator(path, mean=ZERO, std=ONE)
    assert estimator.size == (24, 24)  # the model's own static size
    ages = [e.age for e in estimator.estimate(two_colour_image(), [RED_FACE, BLUE_FACE])]
    assert ages == pytest.approx([10.0, 70.0], abs=1e-4)
    with pytest.raises(VisionError, match="the model takes"):
        OnnxAgeEstimator(path, size=32)


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        (np.full((1, 2, 2), 30.0), {}, "output shape"),
        (np.array([np.nan]), {}, "NaN"),
        (np.array([[20.0, 30.0]]), {}, "expected one age"),
        (np.array([[0.5, 0.6, 0.1, 0.0, 0.0]]), {"output": "probabilities"}, "not probabilities"),
        (np.array([[0.0, 1.0]]), {"output": "logits"}, "expected 5 bins"),
    ],
)
def test_bad_model_outputs_are_errors(
    tmp_path: Path, value: np.ndarray, options: dict[str, str], message: str
) -> None:
    path = constant_model(tmp_path / "bad.onnx", value.astype(np.float32))
    estimator = OnnxAgeEstimator(path, size=8, bins=BINS if options else None, **options)
    with pytest.raises(VisionError, match=message):
        estimator.estimate(two_colour_image())


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ({"sise": 224}, "unknown option"),
        ({"bins": [[0, 10], [5, 20]]}, "overlap"),
        ({"bins": [[0, 2.5]]}, "whole years"),
        ({"output": "logits"}, "needs bins"),
        ({"mean": [0.5]}, "three numbers"),
        ({"std": [1, 0, 1]}, "zero"),
        ({"channel_order": "grb"}, "channel_order"),
        ({"limits": [18, -1]}, "age limit"),
    ],
)
def test_bad_options_are_errors_naming_the_model(
    tmp_path: Path, sidecar: dict[str, object], message: str
) -> None:
    path = constant_model(tmp_path / "m.onnx", np.array([30.0], dtype=np.float32))
    (tmp_path / "m.json").write_text(json.dumps(sidecar))
    with pytest.raises(VisionError, match=message) as caught:
        OnnxAgeEstimator(path)
    assert "m.json" in str(caught.value) or "m.onnx" in str(caught.value)


def test_registry_requires_a_model_path() -> None:
    with pytest.raises(VisionError, match="needs model_path"):
        load_age_estimator("onnx")


# -- end to end through the image guard


@needs_nudenet
def test_guard_with_shipped_nudenet_and_onnx_age_allows_a_benign_image(
    nudenet: NudeNetDetector, tmp_path: Path
) -> None:
    ages = OnnxAgeEstimator(constant_model(tmp_path / "age.onnx", np.array([40.0], np.float32)))
    guard = ImageGuard([nudenet], age_estimator=ages)
    for image in _benign_images().values():
        verdict = guard.check(image)
        assert verdict.decision is Decision.ALLOW, verdict.findings
        assert not any(f.kind == "error" for f in verdict.findings)


def test_guard_reads_the_age_of_the_face_the_detector_found(
    detections: Path, tmp_path: Path
) -> None:
    """Synthetic detections (breast + face box) and a colour-coded age model: the face box is
    over the red (age 10) part of the image, so the guard blocks as sexual/minors."""
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    image[:, :, 2] = 255  # blue: 70 years
    image[90:150, 150:250] = (255, 0, 0)  # red around the face box (162, 98, 76, 44): 10 years
    path = linear_model(tmp_path / "age.onnx", np.array([[10.0], [40.0], [70.0]]))
    ages = OnnxAgeEstimator(path, margin=0.0, size=16, mean=ZERO, std=ONE)
    verdict = ImageGuard([NudeNetDetector(model_path=detections)], age_estimator=ages).check(image)
    assert verdict.decision is Decision.BLOCK
    assert verdict.categories["sexual/minors"]
    (age,) = [f for f in verdict.findings if f.concept == "apparent_age"]
    assert age.region == (162, 98, 76, 44) and "apparent age 10.0" in age.detail
    # the same detections with an adult face: generation policy allows adult nudity
    image[90:150, 150:250] = (0, 0, 255)
    adult = ImageGuard([NudeNetDetector(model_path=detections)], age_estimator=ages).check(image)
    assert adult.decision is Decision.ALLOW


# -- transformers age models


@pytest.fixture(scope="module")
def vit_age_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny ViT over six age ranges, with the classifier set so "10-19" dominates."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    labels = ["0-2", "3-9", "10-19", "20-29", "30-69", "more than 70"]
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(VIT_BIAS))
    path = tmp_path_factory.mktemp("vit-age")
    model.save_pretrained(path)
    processor_class = getattr(transformers, "ViTImageProcessorPil", transformers.ViTImageProcessor)
    processor_class(size={"height": 32, "width": 32}).save_pretrained(path)
    return Path(path)


VIT_BIAS = [0.0, 1.0, 4.0, 2.0, 0.5, 0.0]


def _softmax(x: list[float]) -> np.ndarray:
    e = np.exp(np.array(x) - max(x))
    return e / e.sum()


def test_transformers_backend_reads_age_ranges_from_labels(vit_age_model: Path) -> None:
    from gardien.vision.age_transformers import TransformersAgeEstimator

    estimator = load_age_estimator("transformers", model=vit_age_model)
    assert isinstance(estimator, TransformersAgeEstimator)
    assert estimator.bins == ((0, 2), (3, 9), (10, 19), (20, 29), (30, 69), (70, None))
    red, blue = estimator.estimate(two_colour_image(), [RED_FACE, BLUE_FACE])
    (whole,) = estimator.estimate(two_colour_image())
    assert isinstance(red, AgeEstimate) and red.region == RED_FACE and whole.region is None
    p = _softmax(VIT_BIAS)  # the classifier ignores the image: logits are its bias
    assert p.argmax() == 2  # "10-19" dominates
    expected_18 = p[0] + p[1] + p[2] * 0.8
    expected_25 = p[0] + p[1] + p[2] + p[3] * 0.5
    for e in (red, blue, whole):
        assert e.p_under[18] == pytest.approx(expected_18, abs=1e-5)
        assert e.p_under[25] == pytest.approx(expected_25, abs=1e-5)
        assert e.p_under[30] == pytest.approx(p[:4].sum(), abs=1e-5)
    mids = np.array([1.5, 6.5, 15.0, 25.0, 50.0, 80.0])
    assert red.age == pytest.approx(float((p * mids).sum()), abs=1e-4)
    assert red.estimator == "transformers"


def test_transformers_backend_never_downloads(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from gardien.vision.age_transformers import TransformersAgeEstimator

    with pytest.raises(VisionError, match="no local image-classification model"):
        TransformersAgeEstimator(tmp_path)  # an empty directory
    with pytest.raises(VisionError, match="nothing is downloaded"):
        TransformersAgeEstimator("gardien-tests/no-such-age-model")  # not in the local cache


def test_transformers_backend_refuses_labels_that_are_not_ages(
    vit_age_model: Path, tmp_path: Path
) -> None:
    from gardien.vision.age_transformers import TransformersAgeEstimator

    config = json.loads((vit_age_model / "config.json").read_text())
    config["id2label"] = {str(i): name for i, name in enumerate(["cat", "dog", "a", "b", "c", "d"])}
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in vit_age_model.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(VisionError, match="cannot read an age range from label 'cat'"):
        TransformersAgeEstimator(broken)
    # explicit bins replace unreadable labels
    estimator = TransformersAgeEstimator(
        broken, bins=[(0, 2), (3, 9), (10, 19), (20, 29), (30, 69), (70, None)]
    )
    assert len(estimator.estimate(two_colour_image())) == 1


# -- missing extras


def test_missing_extras_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, detections: Path
) -> None:
    import gardien.vision.nudity as nudity

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        nudity.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "nudenet" else real_find_spec(name, *a),
    )
    with pytest.raises(VisionError, match=r"pip install 'gardien\[nudenet\]'"):
        NudeNetDetector()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(VisionError, match=r"onnxruntime is not installed: pip install"):
        NudeNetDetector(model_path=detections)
    with pytest.raises(VisionError, match=r"onnxruntime is not installed: pip install"):
        OnnxAgeEstimator(detections)
    monkeypatch.setitem(sys.modules, "transformers", None)
    from gardien.vision.age_transformers import TransformersAgeEstimator

    with pytest.raises(VisionError, match=r"pip install 'gardien\[transformers\]'"):
        TransformersAgeEstimator(detections.parent)
