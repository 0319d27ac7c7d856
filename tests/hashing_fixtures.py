"""Benign synthetic images and random hashes shared by the hashing tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> NDArray[np.uint8]:
    """A benign synthetic scene: coloured shapes over gradients, slightly blurred.

    Shapes give PDQ the large structure photos have, so re-encoded copies stay near (8 to 26
    bits at half size and JPEG quality 40 over 40 seeds), as they do for real photos.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    channels = [
        (x * rng.uniform(0.2, 0.8) + y * rng.uniform(0.2, 0.8) + rng.integers(0, 80)) % 256
        for _ in range(3)
    ]
    image = Image.fromarray(np.stack(channels, -1).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(-40, w)), int(rng.integers(-40, h))
        box = [x0, y0, x0 + int(rng.integers(20, 160)), y0 + int(rng.integers(20, 120))]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return np.asarray(image.filter(ImageFilter.GaussianBlur(1.5)))


def save(pixels: NDArray[np.uint8], path: Path, **options: object) -> Path:
    Image.fromarray(pixels).save(path, **options)
    return path


def near_duplicate(pixels: NDArray[np.uint8]) -> bytes:
    """Half size and JPEG quality 40: what a re-share does to an image."""
    image = Image.fromarray(pixels)
    small = image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=40)
    return out.getvalue()


def random_hashes(seed: int, n: int, width: int = 32) -> NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (n, width), dtype=np.uint8)


def flip_bits(row: NDArray[np.uint8], bits: list[int]) -> NDArray[np.uint8]:
    out = row.copy()
    for bit in bits:
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def write_list(path: Path, rows: NDArray[np.uint8], prefix: str = "") -> Path:
    path.write_text("".join(f"{prefix}{bytes(r).hex()}\n" for r in rows), encoding="utf-8")
    return path
