"""Stable Diffusion watermark reading: gardien's numpy decoder against invisible-watermark's.

Makes synthetic textured images (no real imagery), half of them marked with invisible-watermark's
own encoder (SD 1.x, SD 2.x and SDXL messages in turn), and reads the three messages from each,
one thread, with each implementation: gardien's ``StableDiffusionWatermarkReader`` (one pass for
all three) and ``imwatermark.WatermarkDecoder`` (one decode per message, as a caller would).
Prints milliseconds per image, the import time of each, and whether every decoded bit agreed
(expected: all). Needs invisible-watermark installed; asserts nothing.

    .venv/bin/python bench/bench_watermark.py [--images N] [--size PIXELS]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
import numpy.typing as npt

from gardien.vision.provenance import (
    SDXL_MESSAGE,
    STABLE_DIFFUSION_WATERMARKS,
    StableDiffusionWatermarkReader,
    decode_bits,
    dwtdct_block_bits,
)
from one_core import pin_one_core

Pixels = npt.NDArray[np.uint8]


def textured(seed: int, size: int) -> Pixels:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([x * 160 / size, y * 160 / size, (x + y) * 40 / size], -1) + 48
    return np.clip(base + rng.uniform(-40, 40, base.shape), 0, 255).astype(np.uint8)


def import_seconds(module: str) -> float:
    """Seconds to import a module in a fresh interpreter (the cost a CLI run pays once)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    import imwatermark

    print(f"watermark reading, {args.images} images of {args.size}x{args.size}; {pin_one_core()}")
    messages = [
        ("bits", [int(b) for b in bin(SDXL_MESSAGE)[2:]]),
        ("bytes", b"StableDiffusionV1"),
        ("bytes", b"SDV2"),
    ]
    images = []
    for i in range(args.images):
        pixels = textured(i, args.size)
        if i % 2:
            kind, message = messages[i // 2 % 3]
            encoder = imwatermark.WatermarkEncoder()
            encoder.set_watermark(kind, message)
            bgr = encoder.encode(np.ascontiguousarray(pixels[:, :, ::-1]), "dwtDct")
            pixels = np.ascontiguousarray(bgr[:, :, ::-1])
        images.append(pixels)

    reader = StableDiffusionWatermarkReader()
    start = time.perf_counter()
    found = sum(bool(reader.read(None, pixels)) for pixels in images)
    ours = (time.perf_counter() - start) / len(images)

    lengths = [("bytes" if m.label.startswith("SD ") else "bits", len(m.bits)) for m in
               STABLE_DIFFUSION_WATERMARKS]  # fmt: skip
    agree = True
    start = time.perf_counter()
    theirs_bits = []
    for pixels in images:
        bgr = np.ascontiguousarray(pixels[:, :, ::-1])
        decoded = [imwatermark.WatermarkDecoder(k, n).decode(bgr, "dwtDct") for k, n in lengths]
        theirs_bits.append(decoded)
    theirs = (time.perf_counter() - start) / len(images)
    for pixels, decoded in zip(images, theirs_bits, strict=True):
        blocks = dwtdct_block_bits(pixels)
        for (kind, n), value in zip(lengths, decoded, strict=True):
            bits = np.unpackbits(np.frombuffer(value, np.uint8)) if kind == "bytes" else value
            agree &= bool(np.array_equal(np.asarray(bits, dtype=bool), decode_bits(blocks, n)))

    print(f"  gardien          {1000 * ours:8.1f} ms/image  (found a mark in {found})")
    print(f"  invisible-wm     {1000 * theirs:8.1f} ms/image  ({theirs / ours:.1f}x)")
    print(f"  every decoded bit the same: {agree}")
    print(
        f"  import: gardien.vision.provenance {import_seconds('gardien.vision.provenance'):.2f} s, "
        f"imwatermark {import_seconds('imwatermark'):.2f} s"
    )


if __name__ == "__main__":
    main()
