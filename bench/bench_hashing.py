"""Image hashing benchmark: gardien.hashing.hash_file against python-threatexchange's PDQ hasher.

Writes N synthetic textured JPEGs (1024x768 by default; gradients, blobs, stripes, noise, no
real imagery) into a temporary folder, then hashes the same files on one thread with each
implementation and prints images per second and how far the two PDQ hashes are apart (expected:
0 bits on RGB JPEGs). gardien's figure includes MD5 and SHA-256 and its safety checks; the
threatexchange one is PDQ only. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_hashing.py [--images N]
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from PIL import Image
from threatexchange.signal_type.pdq import pdq_hasher

from gardien.hashing import hash_bytes, hash_file
from one_core import pin_one_core

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.hashing_fixtures import near_duplicate, scene

from gardien.media import decode_image, read_media

T = TypeVar("T")


def synthetic_image(index: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """A photo-like synthetic picture; the mix of content varies with index."""
    rng = np.random.default_rng(index)
    coarse = (rng.random((rng.integers(3, 20), rng.integers(3, 20), 3)) * 255).astype(np.uint8)
    blobs = np.asarray(
        Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), np.float32
    )
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(4, 60)
    stripes = np.sin((x * np.cos(angle) + y * np.sin(angle)) / period)[:, :, np.newaxis]
    gradient = (x / width * rng.uniform(-80, 80) + y / height * rng.uniform(-80, 80))[..., None]
    noise = rng.normal(0, rng.uniform(0, 25), (height, width, 3))
    mix = blobs * rng.uniform(0.3, 1.0) + stripes * rng.uniform(0, 60) + gradient + noise
    if index % 7 == 0:  # some nearly grey pictures
        mix = mix.mean(axis=2, keepdims=True) + mix * 0.05
    pixels: npt.NDArray[np.uint8] = np.clip(mix + rng.uniform(0, 60), 0, 255).astype(np.uint8)
    return pixels


def write_images(folder: Path, count: int, width: int, height: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"img_{i:05d}.jpg"
        Image.fromarray(synthetic_image(i, width, height)).save(path, "JPEG", quality=85)
        paths.append(path)
    return paths


def timed(fn: Callable[[Path], T], paths: Sequence[Path]) -> tuple[float, list[T]]:
    for path in paths[:5]:  # warm caches, imports, Pillow plugins
        fn(path)
    start = time.perf_counter()
    results = [fn(path) for path in paths]
    return time.perf_counter() - start, results


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def gardien_pdq(path: Path) -> tuple[str, int]:
    hashes = hash_file(path)
    return hashes.pdq, hashes.pdq_quality


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=200, help="how many images (200)")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=768)
    args = parser.parse_args(argv)
    if args.images < 1:
        parser.error("--images must be at least 1")

    pinned = pin_one_core()
    print(f"Image hashing: {args.images} synthetic {args.width}x{args.height} JPEGs (q85)")
    print(f"  Python {platform.python_version()}, {platform.machine()}, {pinned}")
    with tempfile.TemporaryDirectory(prefix="gardien-bench-") as tmp:
        start = time.perf_counter()
        paths = write_images(Path(tmp), args.images, args.width, args.height)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(f"  wrote {megabytes:.1f} MB in {time.perf_counter() - start:.1f}s\n")

        print(f"  {'implementation':<38} {'images/s':>9} {'ms/image':>9}")

        def row(label: str, seconds: float) -> None:
            rate = len(paths) / seconds
            print(f"  {label:<38} {rate:>9.1f} {1000 * seconds / len(paths):>9.2f}")

        seconds, ours = timed(gardien_pdq, paths)
        row("gardien hash_file (PDQ+MD5+SHA-256)", seconds)
        seconds, theirs = timed(pdq_hasher.pdq_from_file, paths)
        row("threatexchange pdq_from_file", seconds)
        seconds, _ = timed(lambda p: decode_image(read_media(p)).shape, paths)
        row("gardien read+decode only", seconds)
        near = [near_duplicate_distance(p, h[0]) for p, h in zip(paths, ours, strict=True)]

    bits = [hamming(a[0], b[0]) for a, b in zip(ours, theirs, strict=True)]
    same_quality = sum(a[1] == b[1] for a, b in zip(ours, theirs, strict=True))
    print(
        f"\n  PDQ agreement over {len(bits)} images: max {max(bits)} bits, "
        f"mean {sum(bits) / len(bits):.3f} bits, identical {bits.count(0)}/{len(bits)}, "
        f"quality identical {same_quality}/{len(bits)}"
    )
    print("  Near-duplicates (half size, JPEG q40) against their originals, PDQ bits apart:")
    report_near("textured (noise, stripes)", near)
    scenes = [scene(1000 + i, (args.width, args.height)) for i in range(len(paths))]
    report_near("scenes (shapes, gradients)", [near_pixels_distance(p) for p in scenes])
    return 0


def report_near(label: str, distances: list[int]) -> None:
    distances = sorted(distances)
    within = sum(d <= 31 for d in distances)
    print(
        f"    {label:<28} within 31: {within}/{len(distances)}, "
        f"median {distances[len(distances) // 2]}, p95 {distances[int(len(distances) * 0.95)]}, "
        f"max {distances[-1]}"
    )


def near_pixels_distance(pixels: npt.NDArray[np.uint8]) -> int:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return hamming(hash_bytes(out.getvalue()).pdq, hash_bytes(near_duplicate(pixels)).pdq)


def near_duplicate_distance(path: Path, original: str) -> int:
    """PDQ distance between an image file and its half-size, JPEG quality 40 copy."""
    pixels = np.asarray(Image.open(path).convert("RGB"))
    return hamming(original, hash_bytes(near_duplicate(pixels)).pdq)


if __name__ == "__main__":
    sys.exit(main())
