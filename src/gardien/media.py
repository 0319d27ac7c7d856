"""Safe image reading and decoding, shared by the hash and image guards.

Untrusted files are hostile: they can be huge, truncated, disguised or built to explode when
decoded. This module reads them under explicit limits and turns every failure into a
:class:`MediaError` that names the file and says what is wrong, so one bad upload never takes a
worker down and never yields garbage pixels.

Choices, and why:

* **Formats.** Only JPEG (including MPO, multi-picture JPEG), PNG, WebP, GIF, BMP and TIFF are
  decoded. The format is checked from the header *before* any pixel is decoded; anything else
  (ICO, PPM, PSD, EPS, ...) is refused, so Pillow's rarer and less-hardened decoders are never
  run on untrusted bytes.
* **Size.** ``width * height`` from the header is checked against ``max_pixels`` before
  decoding, so a tiny file claiming 60000x60000 pixels is refused without allocating it.
  Pillow's own decompression-bomb warning and error (``Image.MAX_IMAGE_PIXELS``) are turned
  into :class:`MediaError` too, locally, without touching Pillow's global settings; Pillow's
  limit therefore still caps ``max_pixels``. (``warnings.catch_warnings`` is not thread-safe
  before Python 3.14, so under threads the warning may merely print; the header check above,
  50 Mpx by default against Pillow's 89 Mpx warning, is the guard that always holds.)
* **Truncation.** Truncated or corrupt data is an error. ``ImageFile.LOAD_TRUNCATED_IMAGES`` is
  never set: half an image would hash to something that matches nothing, silently.
* **Animation.** :func:`decode_image` gives the first frame of animated GIF/APNG/WebP and
  multi-page TIFF: that is the frame a thumbnail shows and the one hash lists are computed on.
  :func:`decode_frames` gives the frames a classifier must see (a viewer plays them all): every
  frame up to ``max_frames``, evenly spaced frames beyond, and never more than
  ``max_total_pixels`` decoded in all (GIF, APNG and WebP frames are decoded in order, so
  reaching frame ``k`` costs ``k`` frames). :class:`Frames` says whether every frame was
  decoded, so that a guard can fail closed on the rest.
* **Colour.** Pixels come back as what a person sees: palette images go through their palette
  (python-threatexchange's hasher feeds raw palette indices to PDQ, which hashes noise);
  greyscale, bilevel, CMYK, YCbCr, LAB and HSV are converted to RGB by Pillow.
* **Alpha** is dropped by :func:`decode_image` and the colour channels are kept as stored, not
  composited over a background. Meta's reference PDQ hasher ignores alpha the same way, and
  hash lists are made with it; compositing would change the hash of every transparent image in
  the lists. :func:`decode_frames` keeps the alpha of a frame that is not fully opaque, and
  :meth:`Frame.views` gives what a viewer may show: the stored colours, and the frame over
  white and over black (a page's background can be either).
* **16-bit** samples ('I;16', 'I;16B', 'I;16L', 'I;16N', and 'I', which Pillow uses for 16-bit
  data) keep their high byte, ``value >> 8``, so 0..65535 maps onto 0..255 over the whole range.
  Pillow's own conversion clips at 255, which turns most 16-bit images white. Values of an 'I'
  image outside 0..65535 are clipped first.
* **Float** ('F') samples are taken as 0..255 values: rounded, clipped to 0..255, NaN as 0, as
  Pillow's own 'F' to 'L' conversion does. Scaling each image's min..max instead would make
  the result depend on one outlier pixel.
* **EXIF orientation** is *not* applied by default: hash lists are computed by Meta's reference
  hasher on the pixels as stored, and a rotated copy is caught at query time by PDQ's dihedral
  variants. ``decode_image(..., apply_exif_orientation=True)`` gives what a viewer shows.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from gardien.core.errors import GardienError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_TOTAL_PIXELS",
    "SUPPORTED_FORMATS",
    "Frame",
    "Frames",
    "MediaError",
    "decode_frames",
    "decode_image",
    "iter_media_paths",
    "read_media",
]

DEFAULT_MAX_PIXELS: Final = 50_000_000
"""Largest ``width * height`` decoded: 50 megapixels is 150 MB as RGB, above any camera photo."""

DEFAULT_MAX_BYTES: Final = 256 * 1024 * 1024
"""Largest file read into memory: 256 MiB."""

DEFAULT_MAX_FRAMES: Final = 16
"""Most frames :func:`decode_frames` returns; beyond, it samples frames evenly."""

DEFAULT_MAX_TOTAL_PIXELS: Final = 200_000_000
"""Most pixels :func:`decode_frames` decodes over all frames (the ones passed over included)."""

SUPPORTED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""Pillow format names decoded. MPO (multi-picture JPEG, from many cameras) counts as JPEG."""

_SUPPORTED: Final = ", ".join(SUPPORTED_FORMATS)


# What Pillow and its plugins raise on corrupt, truncated or hostile input. OSError covers
# UnidentifiedImageError and "image file is truncated"; SyntaxError is how several plugins
# report a malformed header; DecompressionBombError is a subclass of Exception only.
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)

RGBArray = npt.NDArray[np.uint8]
#: An ``H x W`` uint8 alpha channel (0 transparent, 255 opaque).
AlphaArray = npt.NDArray[np.uint8]


class MediaError(GardienError):
    """A file could not be read or decoded as an image. The message names the file."""


def read_media(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a whole file, refusing folders, special files, empty files and files over max_bytes.

    The size is checked with ``stat`` before reading, so a 10 GB file is refused without being
    read; at most ``max_bytes + 1`` bytes are read in case the file grows meanwhile. Special
    files (FIFOs, sockets, devices) are refused from ``stat`` before anything is opened, and the
    file is opened non-blocking and checked again, so a FIFO swapped in meanwhile cannot block.
    """
    name = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MediaError(f"{name}: no such file") from None
    except OSError as exc:
        raise MediaError(f"{name}: cannot read: {exc.strerror or exc}") from None
    _check_file(name, st, max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise MediaError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "rb") as fh:
            _check_file(name, os.fstat(fh.fileno()), max_bytes)
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise MediaError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise MediaError(f"{name}: over the limit of {max_bytes} bytes (it grew while read)")
    if not data:
        raise MediaError(f"{name}: empty file")
    return data


def _check_file(name: str, st: os.stat_result, max_bytes: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise MediaError(f"{name}: is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or a device such as /dev/zero would block or never end.
        raise MediaError(f"{name}: not a regular file ({_file_kind(st.st_mode)})")
    if st.st_size == 0:
        raise MediaError(f"{name}: empty file")
    if st.st_size > max_bytes:
        raise MediaError(f"{name}: {st.st_size} bytes, over the limit of {max_bytes}")


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def decode_image(
    data: bytes,
    *,
    name: str = "<bytes>",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    apply_exif_orientation: bool = False,
) -> RGBArray:
    """Decode image bytes into an HxWx3 uint8 RGB array, under the limits in the module doc.

    ``name`` is only used in error messages. Animated and multi-page images give their first
    frame. EXIF orientation is ignored unless ``apply_exif_orientation`` is true.
    """
    with _opened(data, name, max_pixels) as img:
        try:
            img.load()
            if apply_exif_orientation:
                img = ImageOps.exif_transpose(img)
        except _DECODE_ERRORS as exc:
            raise MediaError(f"{name}: corrupt or truncated {img.format} data: {exc}") from None
        return _to_rgb(img, name)


@contextmanager
def _opened(data: bytes, name: str, max_pixels: int) -> Iterator[Image.Image]:
    """The image opened (header parsed, size checked) with Pillow's bomb warning as an error,
    closed afterwards. The warning filter is local: Pillow's global settings stay as they are."""
    if not data:
        raise MediaError(f"{name}: empty data")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open(data, name)
        try:
            _check_pixels(img, name, max_pixels)
            yield img
        finally:
            img.close()


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: its index in the file, its colours as stored, and its alpha.

    ``rgb`` is what :func:`decode_image` gives for that frame. ``alpha`` is None when the frame
    is fully opaque (or has no alpha).
    """

    index: int
    rgb: RGBArray
    alpha: AlphaArray | None = None

    def views(self) -> list[tuple[str, RGBArray]]:
        """What a viewer may show: ``("stored", rgb)``, and for a frame that is not fully opaque
        ``("over white", ...)`` and ``("over black", ...)`` too."""
        if self.alpha is None:
            return [("stored", self.rgb)]
        a = self.alpha.astype(np.uint16)[:, :, np.newaxis]
        colour = self.rgb.astype(np.uint16) * a
        white = (colour + 255 * (255 - a) + 127) // 255
        black = (colour + 127) // 255
        return [
            ("stored", self.rgb),
            ("over white", np.ascontiguousarray(white.astype(np.uint8))),
            ("over black", np.ascontiguousarray(black.astype(np.uint8))),
        ]


@dataclass(frozen=True, slots=True)
class Frames:
    """The frames :func:`decode_frames` decoded, out of ``total`` in the file.

    ``complete`` is true when every frame was decoded; otherwise ``note`` says why not (frames
    sampled beyond ``max_frames``, or the ``max_total_pixels`` budget spent).
    """

    frames: tuple[Frame, ...]
    total: int
    note: str = ""

    @property
    def complete(self) -> bool:
        return len(self.frames) == self.total


#: Formats whose frames are decoded in order: reaching frame k decodes frames 0..k.
_SEQUENTIAL: Final = frozenset({"GIF", "PNG", "WEBP"})
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def decode_frames(
    data: bytes,
    *,
    name: str = "<bytes>",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_total_pixels: int = DEFAULT_MAX_TOTAL_PIXELS,
) -> Frames:
    """Decode the frames of an image for classifiers, under the limits in the module doc.

    Every frame when there are at most ``max_frames``; otherwise ``max_frames`` evenly spaced
    ones (the first and the last included). Frames are decoded until ``max_total_pixels``
    (counting the frames passed over on the way, for formats decoded in order) would be
    exceeded; the first frame is always decoded. Each frame is checked against ``max_pixels``.
    Frame 0's ``rgb`` is exactly what :func:`decode_image` returns. Raises :class:`MediaError`
    as :func:`decode_image` does.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    with _opened(data, name, max_pixels) as img:
        try:
            total = max(1, int(getattr(img, "n_frames", 1)))
        except _DECODE_ERRORS as exc:
            raise MediaError(f"{name}: corrupt {img.format} frames: {exc}") from None
        wanted = _spread(total, max_frames)
        notes = []
        if len(wanted) < total:
            notes.append(f"{len(wanted)} of {total} frames, evenly spaced (max_frames)")
        sequential = img.format in _SEQUENTIAL
        frames: list[Frame] = []
        spent, last = 0, -1
        for index in wanted:
            try:
                if sequential:  # one canvas size; seeking decodes every frame passed over
                    cost = img.size[0] * img.size[1] * (index - last)
                else:  # TIFF: pages have their own sizes, and seeking to one is cheap
                    if index:
                        img.seek(index)
                    cost = img.size[0] * img.size[1]
                if frames and spent + cost > max_total_pixels:
                    notes.append(
                        f"stopped before frame {index}: over {max_total_pixels} decoded pixels"
                    )
                    break
                spent += cost
                if sequential and index:
                    img.seek(index)
                _check_pixels(img, f"{name} frame {index}", max_pixels)
                img.load()
            except _DECODE_ERRORS as exc:
                raise MediaError(
                    f"{name}: corrupt or truncated {img.format} data in frame {index}: {exc}"
                ) from None
            frames.append(Frame(index, _to_rgb(img, name), _alpha(img, name)))
            last = index
        return Frames(tuple(frames), total, "; ".join(notes))


def _spread(total: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over ``0 .. total - 1`` (all when fewer)."""
    if total <= count:
        return list(range(total))
    if count == 1:
        return [0]
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


def _alpha(img: Image.Image, name: str) -> AlphaArray | None:
    """The frame's alpha channel, or None when it has none or is fully opaque."""
    if img.mode not in _ALPHA_MODES and "transparency" not in img.info:
        return None
    try:
        alpha = np.asarray(img.convert("RGBA"), dtype=np.uint8)[:, :, 3]
    except ValueError as exc:
        raise MediaError(f"{name}: unsupported pixel mode {img.mode}: {exc}") from None
    if int(alpha.min()) == 255:
        return None
    return np.ascontiguousarray(alpha)


def _open(data: bytes, name: str) -> Image.Image:
    """Open (parse the header of) a supported image; name the format of an unsupported one."""
    try:
        # Only these plugins parse the header (Pillow's JPEG plugin also opens MPO files).
        img = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError:
        pass  # Not a supported format; find out what it is, below, for the message.
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"{name}: too many pixels (decompression bomb?): {exc}") from None
    except _DECODE_ERRORS as exc:
        raise MediaError(f"{name}: corrupt image header: {exc}") from None
    else:
        if img.format in SUPPORTED_FORMATS or img.format == "MPO":
            return img
        fmt = img.format
        img.close()
        raise MediaError(f"{name}: unsupported format {fmt}; supported: {_SUPPORTED}")
    try:
        with Image.open(io.BytesIO(data)) as other:
            fmt = other.format
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, *_DECODE_ERRORS):
        fmt = None
    if fmt is None:
        raise MediaError(f"{name}: not a recognised image; supported: {_SUPPORTED}")
    raise MediaError(f"{name}: unsupported format {fmt}; supported: {_SUPPORTED}")


def _check_pixels(img: Image.Image, name: str, max_pixels: int) -> None:
    width, height = img.size
    pixels = width * height
    if pixels > max_pixels:
        raise MediaError(
            f"{name}: {width}x{height} is {pixels} pixels, over the limit of {max_pixels}"
            " (decompression bomb?)"
        )
    if pixels == 0:
        raise MediaError(f"{name}: {width}x{height} image has no pixels")


_SIXTEEN_BIT_MODES: Final = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


def _to_rgb(img: Image.Image, name: str) -> RGBArray:
    """Pixels as a person sees them, as a C-contiguous HxWx3 uint8 array (module doc)."""
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(img)
        if mode == "I":
            wide = np.clip(wide, 0, 65535)
        grey = (wide.astype(np.uint32) >> 8).astype(np.uint8)
        return _grey_to_rgb(grey)
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0)
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return _grey_to_rgb(grey)
    if mode != "RGB":
        # Palette ('P', 'PA') through the palette; alpha dropped; other modes by Pillow.
        try:
            img = img.convert("RGB")
        except ValueError as exc:
            raise MediaError(f"{name}: unsupported pixel mode {mode}: {exc}") from None
    rgb = np.asarray(img, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:  # pragma: no cover - Pillow guarantees RGB
        raise MediaError(f"{name}: decoded to unexpected shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def _grey_to_rgb(grey: npt.NDArray[np.uint8]) -> RGBArray:
    return np.ascontiguousarray(np.repeat(grey[:, :, np.newaxis], 3, axis=2))


def iter_media_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Expand command-line paths into files to check, in a stable order.

    Nothing is skipped by name: a scanner must not miss ``.x.jpg`` or a file behind a symlink.

    * Files are yielded as given, whatever their name or extension (content, not names, decides
      what an image is). A path that does not exist is yielded too, so that the caller reports
      it (``read_media`` raises naming it) instead of it vanishing.
    * Folders (a symlink to one included) are walked recursively, depth first, in sorted name
      order. Hidden entries (names starting with ".") are walked like any other.
    * Everything in a folder that is not a folder is yielded: files, symlinks to files, and also
      special files (FIFOs, sockets, devices) and broken symlinks, which ``read_media`` then
      refuses with an error naming each, without blocking on a FIFO. A subfolder that cannot be
      listed is yielded as well, so that the caller reports it.
    * Symlinked folders are followed, even out of the tree, once the tree they are met in has
      been walked: a folder reachable both directly and through a link is reported under its
      real path. Loops are cut: every folder entered is remembered by its
      ``(st_dev, st_ino)``, and a folder already entered, in this call, through any path, is not
      entered again. That is not an error, since its files were already yielded once; so a
      folder given twice, or a link to a folder already walked, adds nothing.

    The walk is iterative (no recursion limit on deep trees) and lazy.
    """
    seen: set[tuple[int, int]] = set()
    for path in paths:
        if path.is_dir():
            yield from _walk(path, seen)
        else:
            yield path


_FILE: Final = 0  # anything that is not a folder: yielded for read_media to read or refuse
_FOLDER: Final = 1  # a real folder: walked in place
_LINKED_FOLDER: Final = 2  # a symlink to a folder: walked once the tree it is met in is done


def _walk(root: Path, seen: set[tuple[int, int]]) -> Iterator[Path]:
    """Files under ``root``, as described in :func:`iter_media_paths`."""
    linked = deque([root])  # folders to walk: root, then the symlinked folders met, in order
    while linked:
        top = linked.popleft()
        stack = [iter([(top, _FOLDER)])]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            path, kind = item
            if kind == _FILE:
                yield path
            elif kind == _LINKED_FOLDER:
                linked.append(path)
            else:
                entries = _list_folder(path, seen)
                if entries is None:
                    yield path  # Unreadable: let the caller's read_media report it.
                else:
                    stack.append(iter(entries))


def _list_folder(folder: Path, seen: set[tuple[int, int]]) -> list[tuple[Path, int]] | None:
    """Sorted ``(path, kind)`` entries; ``[]`` if entered before; None if it cannot be listed."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return []
    seen.add(key)
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda entry: entry.name)
    except OSError:
        return None
    listed: list[tuple[Path, int]] = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                kind = _FOLDER
            elif entry.is_symlink() and entry.is_dir(follow_symlinks=True):
                kind = _LINKED_FOLDER
            else:
                kind = _FILE  # a file, special file or broken link: read_media decides
        except OSError:
            kind = _FILE  # cannot tell: read_media reports what is wrong with it
        listed.append((folder / entry.name, kind))
    return listed
