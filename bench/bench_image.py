"""Image guard benchmark: gardien's ImageGuard with NudeNet against NudeNet's own ``detect``.

Writes N synthetic benign images (gradients, blobs, stripes, noise; no real imagery) as JPEG and
PNG into a temporary folder, then, on one core, times per file:

* NudeNet's own ``NudeDetector().detect(path)`` (OpenCV decoding, its pre- and post-processing);
* ``ImageGuard([NudeNetDetector()]).check(path)`` with the generation policy: safe decoding
  (limits checked before decoding), the same 320n model, every class kept, the decision;
* the same guard with the provenance readers (C2PA, Stable Diffusion watermarks).

The guard's overhead is its time over NudeNet's, per image. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_image.py [--images N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from bench_hashing import synthetic_image
from gardien.core import Decision
from gardien.vision import ImageGuard
from gardien.vision.nudity import NudeNetDetector
from gardien.vision.provenance import default_provenance_readers
from one_core import pin_one_core


def write_images(folder: Path, count: int) -> list[Path]:
    paths = []
    sizes = [(512, 512), (1024, 768), (768, 1024)]
    for i in range(count):
        width, height = sizes[i % len(sizes)]
        pixels = synthetic_image(i, width, height)
        fmt = "JPEG" if i % 2 == 0 else "PNG"
        path = folder / f"img{i:03d}.{fmt.lower()}"
        Image.fromarray(pixels).save(path, format=fmt, quality=90)
        paths.append(path)
    return paths


def per_image(run: Callable[[Path], object], paths: list[Path], rounds: int) -> list[float]:
    """Median seconds per image over ``rounds`` passes (after one warm-up pass)."""
    for p in paths[:3]:
        run(p)
    times: dict[Path, list[float]] = {p: [] for p in paths}
    for _ in range(rounds):
        for p in paths:
            t0 = time.perf_counter()
            run(p)
            times[p].append(time.perf_counter() - t0)
    return [statistics.median(v) for v in times.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {pin_one_core()}")
    try:
        from nudenet import NudeDetector
    except ImportError:
        print("nudenet is not installed: pip install 'gardien[nudenet]'")
        sys.exit(1)

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), args.images)
        theirs = NudeDetector()
        detector = NudeNetDetector()
        guard = ImageGuard([detector], policy="generation")
        readers, _ = default_provenance_readers()
        guard_prov = ImageGuard([detector], policy="generation", provenance=readers)

        decisions = [guard.check(p).decision for p in paths]
        allowed = sum(d is Decision.ALLOW for d in decisions)
        print(
            f"{len(paths)} synthetic benign images (JPEG and PNG, 512x512 to 1024x768): "
            f"{allowed}/{len(paths)} allowed by the guard"
        )

        n = args.rounds
        rows = [
            ("NudeNet NudeDetector.detect", per_image(lambda p: theirs.detect(str(p)), paths, n)),
            ("gardien ImageGuard + NudeNet", per_image(guard.check, paths, n)),
            ("  + provenance readers", per_image(guard_prov.check, paths, n)),
        ]
    base = statistics.mean(rows[0][1])
    for name, times in rows:
        mean = statistics.mean(times)
        overhead = (mean - base) / base * 100
        print(
            f"{name:<32} {1 / mean:7.1f} images/s  mean {mean * 1000:6.1f} ms"
            f"  p50 {statistics.median(times) * 1000:6.1f} ms"
            + ("" if name.startswith("NudeNet") else f"  overhead {overhead:+5.1f}%")
        )


if __name__ == "__main__":
    main()
