"""``gardien image check``: one JSON line per image, error records, fail-closed loading.

Detectors are stubs registered under test names, whose signals the test controls (DESIGN.md:
no sexual imagery of anyone is created or stored); the images are benign synthetic scenes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from gardien.cli import main
from gardien.media import RGBArray
from gardien.vision import AgeEstimate, Region, Signal, VisionError, registry
from tests.hashing_fixtures import save, scene
from tests.test_provenance import textured

EXPOSED = Signal("FEMALE_BREAST_EXPOSED", 0.9, Region(1, 2, 3, 4))
FACE = Signal("FACE_FEMALE", 0.8, Region(10, 5, 30, 30))  # readable: >= MIN_FACE_PIXELS


class Stub:
    def __init__(self, name: str, *signals: Signal) -> None:
        self.name = name
        self.signals = list(signals)

    def detect(self, image: RGBArray) -> list[Signal]:
        return self.signals


class Broken:
    name = "test-broken"

    def detect(self, image: RGBArray) -> list[Signal]:
        raise RuntimeError("model file is corrupt")


class Ages:
    name = "test-ages"

    def __init__(self, **options: Any) -> None:
        self.options = options
        Ages.loaded.append(options)

    loaded: list[dict[str, Any]] = []  # noqa: RUF012 - reset by the fixture

    def estimate(self, image: RGBArray, regions: list[Region] | None = None) -> list[AgeEstimate]:
        return [AgeEstimate(34.0, {})]


@pytest.fixture(autouse=True)
def stubs(monkeypatch: pytest.MonkeyPatch) -> None:
    registry.detector_names()  # the bundled backends register first; the stubs go over them
    detectors = registry._DETECTORS
    monkeypatch.setitem(detectors, "test-clean", lambda: Stub("test-clean"))
    monkeypatch.setitem(detectors, "test-nude", lambda: Stub("test-nude", EXPOSED, FACE))
    monkeypatch.setitem(detectors, "test-broken", Broken)
    monkeypatch.setitem(registry._ESTIMATORS, "onnx", Ages)
    Ages.loaded = []


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A folder: a PNG and a JPEG (one in a subfolder), a corrupt file and an empty one."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    save(scene(1), folder / "a.png")
    save(scene(2), folder / "sub" / "b.jpg", quality=90)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["image", "check", *args], catch_exceptions=False)


def records(result: Result) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {Path(r["path"]).name: r for r in lines}


def test_one_line_per_image_and_error_records(images: Path) -> None:
    result = run("--detector", "test-clean", str(images))
    assert result.exit_code == 0, result.output
    got = records(result)
    assert list(got) == ["a.png", "corrupt.png", "empty.jpg", "b.jpg"]  # walk order
    for name in ("a.png", "b.jpg"):
        assert set(got[name]) == {"path", "decision", "categories", "category_scores", "findings"}
        assert got[name]["decision"] == "allow"
        assert got[name]["category_scores"] == {"sexual": 0.0, "sexual/minors": 0.0, "minors": 0.0}
    assert got["b.jpg"]["path"] == str(images / "sub" / "b.jpg")
    for name in ("corrupt.png", "empty.jpg"):
        assert set(got[name]) == {"path", "decision", "error"}
        assert got[name]["decision"] == "block"  # the generation policy's on_error
        assert name in got[name]["error"]
    assert "empty file" in got["empty.jpg"]["error"]
    assert "checked 4 images (allow: 2, block: 2); 2 could not be fully checked" in result.stderr
    assert "no age model" in result.stderr


def test_files_and_missing_paths_are_reported(images: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    result = run("--detector", "test-clean", str(images / "a.png"), str(missing))
    assert result.exit_code == 0
    got = records(result)
    assert got["a.png"]["decision"] == "allow"
    assert (
        got["missing.png"]["decision"] == "block" and "no such file" in got["missing.png"]["error"]
    )


def test_policy_decides_error_records(images: Path, tmp_path: Path) -> None:
    result = run("--detector", "test-clean", "--policy", "child-safety", str(images))
    assert records(result)["corrupt.png"]["decision"] == "review"  # child-safety: on_error review
    policy = tmp_path / "mine.toml"
    policy.write_text(
        'name = "mine"\non_error = "review"\n'
        '[thresholds."sexual/minors"]\nreview = 0.3\nblock = 0.5\n'
        "[thresholds.sexual]\nreview = 0.5\nblock = 0.8\n",
        encoding="utf-8",
    )
    model = tmp_path / "age.onnx"
    model.write_bytes(b"stub")
    result = run("--detector", "test-nude", "--age-backend", "onnx", "--age-model", str(model),
                 "--policy", str(policy), str(images / "a.png"))  # fmt: skip
    (record,) = records(result).values()
    assert record["decision"] == "block"  # sexual 0.9 >= 0.8 in this policy; an adult face
    assert not record["categories"]["sexual/minors"]
    assert "policy mine" in result.stderr


def test_a_policy_that_does_not_load_is_an_error(images: Path, tmp_path: Path) -> None:
    policy = tmp_path / "lax.toml"
    policy.write_text('name = "lax"\non_error = "allow"\n', encoding="utf-8")
    result = run("--detector", "test-clean", "--policy", str(policy), str(images))
    assert result.exit_code != 0 and result.stdout == ""
    assert "on_error" in result.stderr


def test_nudity_without_an_age_model_blocks(images: Path) -> None:
    result = run("--detector", "test-nude", str(images / "a.png"))
    (record,) = records(result).values()
    assert record["decision"] == "block"
    assert record["categories"]["sexual/minors"]
    concepts = {f.get("concept") for f in record["findings"]}
    assert {"FEMALE_BREAST_EXPOSED", "unknown_age"} <= concepts
    assert "region" in record["findings"][0]


def test_age_model_is_loaded_from_the_path_given(images: Path, tmp_path: Path) -> None:
    model = tmp_path / "age.onnx"
    model.write_bytes(b"stub")
    result = run("--detector", "test-nude", "--age-backend", "onnx", "--age-model", str(model),
                 str(images / "a.png"))  # fmt: skip
    assert Ages.loaded == [{"model_path": str(model)}]
    (record,) = records(result).values()
    assert record["decision"] == "allow"  # adult apparent age, generation policy
    assert "age model: onnx" in result.stderr


def test_age_options_go_together(images: Path) -> None:
    result = run("--detector", "test-clean", "--age-backend", "onnx", str(images))
    assert result.exit_code == 2 and "--age-model" in result.stderr
    result = run("--detector", "test-clean", "--age-model", str(images), str(images))
    assert result.exit_code == 2 and "--age-backend" in result.stderr
    result = run("--detector", "test-clean", "--negative-prompt", "blurry", str(images))
    assert result.exit_code == 2 and "--prompt" in result.stderr


def test_a_blocked_prompt_blocks_every_image(images: Path) -> None:
    result = run("--detector", "test-clean", "--prompt", "nude 12 year old girl, photo",
                 "--policy", "child-safety", str(images))  # fmt: skip
    assert result.exit_code == 0
    got = records(result)
    assert {r["decision"] for r in got.values()} == {"block"}
    assert got["a.png"]["categories"]["sexual/minors"]
    assert any(f.get("concept") == "prompt" for f in got["a.png"]["findings"])
    assert "error" in got["corrupt.png"]  # still an error record, blocked by the prompt too


def test_the_prompt_is_judged_under_the_command_policy(images: Path) -> None:
    """An adult explicit prompt passes the generation policy, and is blocked under strict."""
    image = str(images / "a.png")
    prompt = ["--detector", "test-clean", "--prompt", "explicit sex, nude adult woman, 30"]
    (loose,) = records(run(*prompt, "--policy", "generation", image)).values()
    (strict,) = records(run(*prompt, "--policy", "strict", image)).values()
    assert loose["decision"] == "allow"
    assert strict["decision"] == "block"


def test_a_benign_prompt_changes_nothing(images: Path) -> None:
    result = run("--detector", "test-clean", "--prompt", "a lighthouse at dusk, oil painting",
                 "--negative-prompt", "blurry", str(images / "a.png"))  # fmt: skip
    (record,) = records(result).values()
    assert record["decision"] == "allow"


def test_a_failing_detector_gives_a_full_record_with_an_error(images: Path) -> None:
    result = run("--detector", "test-clean", "--detector", "test-broken", str(images / "a.png"))
    assert result.exit_code == 0
    (record,) = records(result).values()
    assert record["decision"] == "block"
    assert "model file is corrupt" in record["error"]
    assert {"categories", "category_scores", "findings"} <= set(record)


def test_default_detector_that_cannot_load_stops_the_command(
    images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> Stub:
        raise VisionError("NudeNet is not installed")

    monkeypatch.setitem(registry._DETECTORS, "nudenet", missing)
    result = run(str(images))
    assert result.exit_code == 1 and result.stdout == ""
    assert "cannot load detector 'nudenet'" in result.stderr
    assert "pip install 'gardien[nudenet]'" in result.stderr
    assert "No image was checked" in result.stderr


def test_unknown_detector_stops_the_command(images: Path) -> None:
    result = run("--detector", "no-such-detector", str(images))
    assert result.exit_code == 1 and result.stdout == ""
    assert "unknown detector 'no-such-detector'" in result.stderr


def test_max_pixels_refuses_large_images(images: Path) -> None:
    result = run("--detector", "test-clean", "--max-pixels", "1000", str(images / "a.png"))
    (record,) = records(result).values()
    assert record["decision"] == "block" and "over the limit of 1000" in record["error"]


def test_provenance_findings_and_no_provenance(tmp_path: Path) -> None:
    imwatermark = pytest.importorskip("imwatermark")
    pixels = textured(0)
    encoder = imwatermark.WatermarkEncoder()
    encoder.set_watermark("bytes", b"SDV2")
    marked = np.ascontiguousarray(encoder.encode(pixels[:, :, ::-1].copy(), "dwtDct")[:, :, ::-1])
    path = save(marked, tmp_path / "generated.png")
    (record,) = records(run("--detector", "test-clean", str(path))).values()
    assert record["decision"] == "allow"  # provenance never changes a decision
    (finding,) = record["findings"]
    assert finding["kind"] == "provenance" and "SD 2.x" in finding["detail"]
    result = run("--detector", "test-clean", "--no-provenance", str(path))
    (record,) = records(result).values()
    assert record["findings"] == [] and "provenance: none" in result.stderr


def test_empty_folder_and_help(tmp_path: Path) -> None:
    result = run("--detector", "test-clean", str(tmp_path))
    assert result.exit_code == 0 and result.stdout == ""
    assert "checked 0 images (none)" in result.stderr
    listed = CliRunner().invoke(main, ["--help"])
    assert "image" in listed.stdout


def test_an_animation_not_fully_checked_is_counted(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), (i, i, i)) for i in range(20)]
    path = tmp_path / "long.gif"
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=50)
    result = run("--detector", "test-clean", "--policy", "child-safety", str(path))
    (record,) = records(result).values()
    assert record["decision"] == "review"  # child-safety: on_error review
    assert any(f["concept"] == "frames" for f in record["findings"])
    assert "1 could not be fully checked" in result.stderr
