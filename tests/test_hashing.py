"""Hashing: file digests, PDQ agreement with python-threatexchange, the fixes, robustness."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from threatexchange.signal_type.pdq import pdq_hasher

from gardien.hashing import (
    DIHEDRAL_ORDER,
    ImageHashes,
    hash_bytes,
    hash_file,
    pdq_dihedral_of_pixels,
    pdq_of_pixels,
    unletterbox,
)
from gardien.media import MediaError, decode_image

RGB = npt.NDArray[np.uint8]
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def textured(height: int = 300, width: int = 400, seed: int = 0) -> RGB:
    """Blobs, stripes and a little noise: a photo-like synthetic image with PDQ quality 100."""
    rng = np.random.default_rng(seed)
    coarse = (rng.random((9, 12, 3)) * 255).astype(np.uint8)
    blobs = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    stripes = 40 * np.sin(x / (7 + seed % 5) + y / 11)[:, :, np.newaxis]
    noise = rng.normal(0, 6, (height, width, 3))
    pixels: RGB = np.clip(blobs * 0.7 + stripes + noise + 30, 0, 255).astype(np.uint8)
    return pixels


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


# --- digests and the record ------------------------------------------------------------------


def test_digests_are_of_the_file_bytes(tmp_path: Path) -> None:
    data = encode(Image.fromarray(textured()), "JPEG", quality=90)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    hashes = hash_file(path)
    assert hashes.md5 == hashlib.md5(data).hexdigest()
    assert hashes.sha256 == hashlib.sha256(data).hexdigest()
    assert hashes == hash_bytes(data)
    assert HEX64.match(hashes.pdq)
    assert 0 <= hashes.pdq_quality <= 100


def test_to_dict() -> None:
    hashes = ImageHashes(pdq="0" * 64, pdq_quality=87, md5="m", sha256="s")
    assert hashes.to_dict() == {"pdq": "0" * 64, "pdq_quality": 87, "md5": "m", "sha256": "s"}
    with pytest.raises(AttributeError):
        hashes.pdq = "1" * 64  # type: ignore[misc]


def test_same_pixels_different_bytes() -> None:
    # Metadata changes the file digests, not the PDQ.
    img = Image.fromarray(textured())
    plain = hash_bytes(encode(img, "PNG"))
    tagged = hash_bytes(encode(img, "PNG", pnginfo=_text_chunk("comment", "hello")))
    assert plain.pdq == tagged.pdq
    assert plain.sha256 != tagged.sha256


def _text_chunk(key: str, value: str) -> object:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


def test_hash_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n" * 10)
    where = re.escape(str(path))
    with pytest.raises(MediaError, match=rf"^{where}: not a recognised image"):
        hash_file(path)
    with pytest.raises(MediaError, match=rf"^{where}: 130 bytes, over the limit of 100$"):
        hash_file(path, max_bytes=100)
    png = tmp_path / "small.png"
    png.write_bytes(encode(Image.fromarray(textured(20, 20)), "PNG"))
    with pytest.raises(MediaError, match="400 pixels, over the limit of 399"):
        hash_file(png, max_pixels=399)


# --- PDQ agreement with threatexchange -------------------------------------------------------


@pytest.mark.parametrize(("fmt", "options"), [("JPEG", {"quality": 85}), ("PNG", {})])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pdq_equals_threatexchange_on_rgb(
    tmp_path: Path, fmt: str, options: dict[str, object], seed: int
) -> None:
    path = tmp_path / f"img.{fmt.lower()}"
    data = encode(Image.fromarray(textured(seed=seed)), fmt, **options)
    path.write_bytes(data)
    ours = hash_file(path)
    assert (ours.pdq, ours.pdq_quality) == pdq_hasher.pdq_from_file(path)
    assert (ours.pdq, ours.pdq_quality) == pdq_hasher.pdq_from_bytes(data)
    assert ours.pdq_quality >= 80


def test_pdq_hex_has_leading_zeros_and_bit_order() -> None:
    # Compare the packbits conversion with threatexchange's string one on many pixel arrays,
    # including one whose hash starts with a zero nibble.
    rng = np.random.default_rng(5)
    seen_leading_zero = False
    for _ in range(40):
        rgb = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
        ours = pdq_of_pixels(rgb)
        assert ours == pdq_hasher._pdq_from_numpy_array(rgb)
        seen_leading_zero |= ours[0].startswith("0")
    assert seen_leading_zero


def test_pdq_of_pixels_rejects_wrong_arrays() -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        pdq_of_pixels(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        pdq_of_pixels(np.zeros((8, 8, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        pdq_of_pixels(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="empty"):
        pdq_of_pixels(np.zeros((0, 8, 3), dtype=np.uint8))


# --- where gardien deliberately differs ------------------------------------------------------


def test_palette_hashed_through_its_palette() -> None:
    img = Image.fromarray(textured()).quantize(256)  # palette order unrelated to brightness
    assert img.mode == "P"
    data = encode(img, "PNG")
    ours = hash_bytes(data)
    assert ours.pdq == pdq_of_pixels(np.asarray(img.convert("RGB")))[0]
    # threatexchange hashes the palette indices: an unrelated hash.
    theirs, _ = pdq_hasher.pdq_from_bytes(data)
    assert hamming(ours.pdq, theirs) > 64
    # ... while ours stays close to the full-colour original.
    assert hamming(ours.pdq, pdq_of_pixels(textured())[0]) <= 31


def test_sixteen_bit_hashed_by_high_byte() -> None:
    grey8 = textured()[:, :, 1]
    grey16 = grey8.astype(np.uint16) * 257
    data = encode(Image.frombytes("I;16", (400, 300), grey16.astype("<u2").tobytes()), "PNG")
    ours = hash_bytes(data)
    assert ours.pdq == pdq_of_pixels(np.dstack([grey8] * 3))[0]
    assert ours.pdq_quality >= 80
    # Pillow's RGB conversion under threatexchange clips at 255: an almost white image.
    theirs, their_quality = pdq_hasher.pdq_from_bytes(data)
    assert their_quality < 50
    assert hamming(ours.pdq, theirs) > 31


def test_cmyk_hashed_as_rgb() -> None:
    img = Image.fromarray(textured()).convert("CMYK")
    data = encode(img, "JPEG", quality=95)
    ours = hash_bytes(data)
    assert ours.pdq == pdq_of_pixels(decode_image(data))[0]
    assert hamming(ours.pdq, pdq_of_pixels(textured())[0]) <= 31
    # threatexchange reads C, M, Y as R, G, B: an inverted image, so nearly every bit flips.
    theirs, _ = pdq_hasher.pdq_from_bytes(data)
    assert hamming(ours.pdq, theirs) > 200


# --- robustness ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_near_duplicate_within_threshold(seed: int) -> None:
    src = textured(600, 800, seed=seed)
    original = hash_bytes(encode(Image.fromarray(src), "PNG"))
    assert original.pdq_quality >= 80
    small = Image.fromarray(src).resize((400, 300), Image.Resampling.LANCZOS)
    copy = hash_bytes(encode(small, "JPEG", quality=40))
    assert hamming(original.pdq, copy.pdq) <= 31
    other = hash_bytes(encode(Image.fromarray(textured(600, 800, seed=seed + 10)), "PNG"))
    assert hamming(original.pdq, other.pdq) > 64


def test_dihedral_variants() -> None:
    rgb = textured(768, 1024, seed=4)
    variants = pdq_dihedral_of_pixels(rgb)
    assert len(variants) == len(DIHEDRAL_ORDER) == 8
    assert variants[0] == pdq_of_pixels(rgb)
    assert all(HEX64.match(h) and q == variants[0][1] for h, q in variants)
    transforms = [
        rgb,
        np.rot90(rgb, 1),
        np.rot90(rgb, 2),
        np.rot90(rgb, -1),
        rgb[::-1],
        rgb[:, ::-1],
        rgb.transpose(1, 0, 2),
        np.rot90(rgb, 2).transpose(1, 0, 2),
    ]
    hashes = [pdq_of_pixels(np.ascontiguousarray(t))[0] for t in transforms]
    for k, (variant, _) in enumerate(variants):
        distances = [hamming(variant, h) for h in hashes]
        # Variant k approximates the hash of transform k, and no other.
        assert distances[k] <= 40, (DIHEDRAL_ORDER[k], distances)
        assert min(d for i, d in enumerate(distances) if i != k) > 80, DIHEDRAL_ORDER[k]


# --- unletterbox -----------------------------------------------------------------------------


def test_unletterbox_removes_bars_of_any_colour() -> None:
    src = textured(120, 160)
    boxed = np.zeros((200, 160, 3), dtype=np.uint8)
    boxed[40:160] = src
    assert np.array_equal(unletterbox(boxed), src)
    pillar = np.full((120, 220, 3), 250, dtype=np.uint8)
    pillar[:, 30:190] = src
    pillar[:, :30] += np.random.default_rng(0).integers(0, 4, (120, 30, 1), dtype=np.uint8)
    assert np.array_equal(unletterbox(pillar), src)


def test_unletterbox_recovers_the_hash() -> None:
    src = textured(300, 400, seed=6)
    boxed = np.zeros((400, 400, 3), dtype=np.uint8)
    boxed[50:350] = src
    plain = pdq_of_pixels(src)[0]
    assert hamming(pdq_of_pixels(boxed)[0], plain) > 31
    assert pdq_of_pixels(np.ascontiguousarray(unletterbox(boxed)))[0] == plain


def test_unletterbox_keeps_content() -> None:
    src = textured(120, 160)
    assert unletterbox(src) is src or np.array_equal(unletterbox(src), src)
    flat = np.full((50, 50, 3), 9, dtype=np.uint8)
    assert np.array_equal(unletterbox(flat), flat)
    # A smooth vertical gradient: every row is flat, but the rows differ in colour, so only
    # the rows within the tolerance of each edge go (2.6 levels a row: 7 rows each side).
    sky = np.repeat(np.linspace(0, 255, 100, dtype=np.uint8)[:, None, None], 80, axis=1)
    sky = np.repeat(sky, 3, axis=2)
    assert unletterbox(sky).shape == (86, 80, 3)
    with pytest.raises(ValueError, match="tolerance"):
        unletterbox(src, tolerance=300)
