"""Image hashes as hash lists define them: PDQ of the pixels, MD5 and SHA-256 of the file bytes.

PDQ (Meta's perceptual hash, 256 bits) is computed with ``pdqhash``, the same binding
python-threatexchange uses, on pixels decoded by :mod:`gardien.media`; on RGB images the result
is bit for bit python-threatexchange's ``pdq_hasher``. Where the two differ it is because
gardien decodes what a person sees: palette images through their palette (threatexchange hashes
the raw palette indices), 16-bit images by their high byte (Pillow, under threatexchange,
clips them to 255), CMYK converted to RGB (threatexchange hashes C, M, Y as if R, G, B).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pdqhash

from gardien.media import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, decode_image, read_media

__all__ = [
    "DIHEDRAL_ORDER",
    "ImageHashes",
    "file_digests",
    "hash_bytes",
    "hash_file",
    "hashes_of",
    "pdq_dihedral_of_pixels",
    "pdq_of_pixels",
    "unletterbox",
]

RGBArray = npt.NDArray[np.uint8]

DIHEDRAL_ORDER: Final = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_x",
    "flip_y",
    "flip_plus1",
    "flip_minus1",
)
"""Order of :func:`pdq_dihedral_of_pixels`, as Meta's reference hasher names the variants.

Variant k approximates the PDQ of the image transformed by, in numpy terms (the tests check
it): rotate90 ``np.rot90(a, 1)`` (90 degrees anticlockwise), rotate180 ``np.rot90(a, 2)``,
rotate270 ``np.rot90(a, -1)`` (90 degrees clockwise), flip_x ``a[::-1]`` (upside down, about the
x axis), flip_y ``a[:, ::-1]`` (mirror, about the y axis), flip_plus1 ``a.transpose(1, 0, 2)``
(about the main diagonal), flip_minus1 ``np.rot90(a, 2).transpose(1, 0, 2)`` (about the
anti-diagonal). Approximates: the variants are derived from the one DCT, so they can differ
from hashing the transformed pixels by a few to a few dozen bits, depending on size and texture.
"""


@dataclass(frozen=True)
class ImageHashes:
    """The hashes of one image. ``pdq`` is 64 lowercase hex digits; quality is 0..100.

    PDQ quality below about 50 means a flat or featureless image whose PDQ matches are
    unreliable; hash-sharing programmes drop such hashes.
    """

    pdq: str
    pdq_quality: int
    md5: str
    sha256: str

    def to_dict(self) -> dict[str, str | int]:
        return {
            "pdq": self.pdq,
            "pdq_quality": self.pdq_quality,
            "md5": self.md5,
            "sha256": self.sha256,
        }


def _check_rgb(rgb: RGBArray) -> None:
    # pdqhash reads raw memory: a wrong dtype or shape would hash garbage, not fail.
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 array, got {rgb.dtype} {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"empty image {rgb.shape}")


def _bits_to_hex(bits: npt.NDArray[np.integer]) -> str:
    # pdqhash gives 256 ints, most significant bit first, as threatexchange's hex reads them.
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def pdq_of_pixels(rgb: RGBArray) -> tuple[str, int]:
    """PDQ hash (64 lowercase hex digits) and quality (0..100) of an HxWx3 uint8 RGB array."""
    _check_rgb(rgb)
    bits, quality = pdqhash.compute(rgb)
    return _bits_to_hex(bits), int(quality)


def pdq_dihedral_of_pixels(rgb: RGBArray) -> list[tuple[str, int]]:
    """PDQ of the 8 rotations and mirrors of an image, in :data:`DIHEDRAL_ORDER`.

    One pass costs little more than one hash; matching any of the 8 against a list catches
    copies that were rotated or mirrored. The first entry is :func:`pdq_of_pixels`. Quality is
    the same for all eight.
    """
    _check_rgb(rgb)
    variants, quality = pdqhash.compute_dihedral(rgb)
    q = int(quality)
    return [(_bits_to_hex(bits), q) for bits in variants]


def hash_bytes(
    data: bytes, *, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageHashes:
    """Hashes of an image file's bytes; raises :class:`gardien.media.MediaError` if undecodable.

    MD5 and SHA-256 are of the bytes exactly as given (that is how hash lists define them), PDQ
    of the decoded pixels, EXIF orientation not applied (see :mod:`gardien.media`).
    """
    return hashes_of(data, decode_image(data, name=name, max_pixels=max_pixels))


def file_digests(data: bytes) -> tuple[str, str]:
    """MD5 and SHA-256 of a file's bytes: they need no decoding, so a file that can't be decoded
    can still be matched by them."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha256(data).hexdigest()


def hashes_of(data: bytes, rgb: RGBArray) -> ImageHashes:
    """Hashes of a file whose pixels the caller has already decoded (and may use again)."""
    pdq, quality = pdq_of_pixels(rgb)
    md5, sha256 = file_digests(data)
    return ImageHashes(pdq=pdq, pdq_quality=quality, md5=md5, sha256=sha256)


def hash_file(
    path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageHashes:
    """Hashes of an image file; raises :class:`gardien.media.MediaError` naming the file."""
    data = read_media(path, max_bytes=max_bytes)
    return hash_bytes(data, name=str(path), max_pixels=max_pixels)


UNLETTERBOX_TOLERANCE: Final = 16
"""Largest spread (max - min, per channel, 0..255) of a row or column still counted as border.

Wide enough for JPEG noise in a flat bar, far below the spread of any real picture row.
"""


def unletterbox(rgb: RGBArray, *, tolerance: int = UNLETTERBOX_TOLERANCE) -> RGBArray:
    """Crop uniform borders (letterbox or pillarbox bars, any colour) from the edges of an image.

    A re-posted copy often gains bars, which moves every PDQ bit; hashing the cropped image as
    well finds it. The bar at each edge is the largest band of rows (top, bottom) or columns
    (left, right, within the remaining rows) whose pixels all lie within ``tolerance`` of each
    other in every channel, so a bar must be one colour, not merely flat along each line: of a
    smooth sky gradient only the edge rows within ``tolerance`` of the edge colour go. An image
    uniform throughout is returned unchanged. Returns a view into ``rgb``.
    """
    _check_rgb(rgb)
    if not 0 <= tolerance <= 255:
        raise ValueError(f"tolerance must be 0..255, got {tolerance}")
    top = _band(rgb, axis=1, tolerance=tolerance)
    if top == rgb.shape[0]:
        return rgb
    bottom = _band(rgb[::-1], axis=1, tolerance=tolerance)
    body = rgb[top : rgb.shape[0] - bottom]
    left = _band(body, axis=0, tolerance=tolerance)
    right = _band(body[:, ::-1], axis=0, tolerance=tolerance)
    return body[:, left : body.shape[1] - right]


def _band(rgb: RGBArray, *, axis: int, tolerance: int) -> int:
    """How many leading rows (axis=1) or columns (axis=0) form one uniform-coloured band."""
    lows = np.minimum.accumulate(rgb.min(axis=axis), axis=0).astype(np.int16)
    highs = np.maximum.accumulate(rgb.max(axis=axis), axis=0).astype(np.int16)
    uniform = ((highs - lows) <= tolerance).all(axis=1)
    # uniform is True for a prefix then False: the band is that prefix.
    return int(uniform.sum())
