"""Safe decoding: formats, pixel modes, limits, hostile files. Synthetic images only."""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from gardien.core.errors import GardienError
from gardien.media import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    Frame,
    MediaError,
    decode_frames,
    decode_image,
    iter_media_paths,
    read_media,
)

RGB = npt.NDArray[np.uint8]


def textured(height: int = 96, width: int = 128, seed: int = 0) -> RGB:
    """Smooth random blobs plus a gradient: survives lossy formats, has real structure."""
    rng = np.random.default_rng(seed)
    coarse = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
    blobs = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    ramp = np.linspace(0, 60, width, dtype=np.float32)[np.newaxis, :, np.newaxis]
    return np.clip(blobs * 0.8 + ramp, 0, 255).astype(np.uint8)


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims width x height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + png_chunk(b"IEND", b"")
    )


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "options", "lossless"),
    [
        ("JPEG", {"quality": 95}, False),
        ("PNG", {}, True),
        ("WEBP", {"lossless": True}, True),
        ("WEBP", {"quality": 90}, False),
        ("GIF", {}, False),
        ("BMP", {}, True),
        ("TIFF", {}, True),
        ("TIFF", {"compression": "tiff_lzw"}, True),
    ],
)
def test_supported_formats_decode_to_rgb(
    fmt: str, options: dict[str, object], lossless: bool
) -> None:
    src = textured()
    out = decode_image(encode(Image.fromarray(src), fmt, **options))
    assert out.shape == (96, 128, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous
    if lossless:
        assert np.array_equal(out, src)
    else:
        # GIF quantises to 256 colours, JPEG/WebP are lossy: close, not equal.
        assert np.abs(out.astype(int) - src.astype(int)).mean() < 12


def test_unsupported_formats_refused_by_name() -> None:
    img = Image.fromarray(textured(32, 32))
    for fmt in ("ICO", "PPM", "TGA"):
        with pytest.raises(
            MediaError, match=rf"^up\.bin: unsupported format {fmt}; supported: JPEG"
        ):
            decode_image(encode(img, fmt), name="up.bin")


def test_media_error_is_a_gardien_error() -> None:
    assert issubclass(MediaError, GardienError)


def test_text_is_not_an_image() -> None:
    with pytest.raises(MediaError, match=r"^notes\.txt: not a recognised image"):
        decode_image(b"just some words\n" * 20, name="notes.txt")


def test_empty_data_refused() -> None:
    with pytest.raises(MediaError, match=r"^<bytes>: empty"):
        decode_image(b"")


# --- pixel modes -----------------------------------------------------------------------------


def test_grey_repeated_into_three_channels() -> None:
    grey = textured()[:, :, 0]
    out = decode_image(encode(Image.fromarray(grey, "L"), "PNG"))
    assert out.shape == (96, 128, 3)
    for c in range(3):
        assert np.array_equal(out[:, :, c], grey)


def test_bilevel_is_black_and_white() -> None:
    bits = np.zeros((20, 30), dtype=bool)
    bits[5:15, 10:20] = True
    img = Image.fromarray(bits).convert("1")
    assert img.mode == "1"
    for fmt in ("PNG", "TIFF"):
        out = decode_image(encode(img, fmt))
        assert np.array_equal(out[:, :, 1], np.where(bits, 255, 0))


def palette_image(transparent: int | None = None) -> tuple[Image.Image, RGB]:
    """A palette image whose indices are unrelated to brightness, and its true colours."""
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 256, size=(256, 3), dtype=np.uint8)
    indices = (rng.random((40, 50)) * 256).astype(np.uint8)
    img = Image.fromarray(indices, "L")
    img = img.convert("P")
    img.putdata(indices.ravel().tolist())
    img.putpalette(palette.ravel().tolist())
    if transparent is not None:
        img.info["transparency"] = transparent
    return img, palette[indices]


def test_palette_goes_through_the_palette() -> None:
    img, colours = palette_image()
    out = decode_image(encode(img, "PNG"))
    assert np.array_equal(out, colours)


def test_palette_with_transparency_keeps_the_colour() -> None:
    img, colours = palette_image(transparent=3)
    data = encode(img, "PNG", transparency=3)
    assert Image.open(io.BytesIO(data)).info.get("transparency") == 3
    assert np.array_equal(decode_image(data), colours)


def test_palette_alpha_tiff_drops_alpha() -> None:
    img, colours = palette_image()
    pa = img.convert("PA")
    pa.putalpha(0)
    data = encode(pa, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "PA"
    assert np.array_equal(decode_image(data), colours)


def test_rgba_drops_alpha_keeps_colour() -> None:
    src = textured()
    alpha = np.zeros(src.shape[:2], dtype=np.uint8)  # fully transparent: colours still kept
    alpha[:, :64] = 255
    rgba = np.dstack([src, alpha])
    for fmt, options in (("PNG", {}), ("WEBP", {"lossless": True, "exact": True}), ("TIFF", {})):
        out = decode_image(encode(Image.fromarray(rgba, "RGBA"), fmt, **options))
        assert np.array_equal(out, src), fmt


def test_grey_alpha_drops_alpha() -> None:
    grey = textured()[:, :, 1]
    la = Image.merge("LA", [Image.fromarray(grey), Image.new("L", (128, 96), 0)])
    out = decode_image(encode(la, "PNG"))
    assert np.array_equal(out, np.dstack([grey] * 3))


def test_cmyk_jpeg_converted_to_rgb() -> None:
    # Pure cyan, then pure black ink, side by side.
    cmyk = Image.new("CMYK", (64, 32), (255, 0, 0, 0))
    cmyk.paste((0, 0, 0, 255), (32, 0, 64, 32))
    data = encode(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = decode_image(data).astype(int)
    assert np.abs(out[16, 8] - [0, 255, 255]).max() <= 6
    assert np.abs(out[16, 56] - [0, 0, 0]).max() <= 6


@pytest.mark.parametrize("mode", ["LAB", "YCbCr"])
def test_other_colour_spaces_converted_by_pillow(mode: str) -> None:
    src = Image.fromarray(textured()).convert(mode)
    data = encode(src, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == mode
    assert np.array_equal(decode_image(data), np.asarray(src.convert("RGB")))


@pytest.mark.parametrize(("mode", "fmt"), [("I;16", "PNG"), ("I;16", "TIFF"), ("I;16B", "TIFF")])
def test_sixteen_bit_scaled_by_high_byte(mode: str, fmt: str) -> None:
    # A full 0..65535 ramp: v*257 for v in 0..255 must come back as v (not clipped at 255).
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    ramp[0, 1] = 0x12FF  # high byte 0x12, low byte ignored (no rounding up)
    dtype = ">u2" if mode == "I;16B" else "<u2"
    img = Image.frombytes(mode, (16, 16), ramp.astype(dtype).tobytes())
    data = encode(img, fmt)
    assert Image.open(io.BytesIO(data)).mode == mode
    out = decode_image(data)
    expected = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected[0, 1] = 0x12
    for c in range(3):
        assert np.array_equal(out[:, :, c], expected)


def test_thirty_two_bit_int_clipped_then_scaled() -> None:
    values = np.array([[-5, 0, 255, 256], [0x8000, 65535, 70000, 2**31 - 1]], dtype=np.int32)
    data = encode(Image.fromarray(values, "I"), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "I"
    out = decode_image(data)
    assert out[:, :, 0].tolist() == [[0, 0, 0, 1], [128, 255, 255, 255]]


def test_float_rounded_and_clipped() -> None:
    values = np.array([[-3.0, 0.4, 127.6, 300.0, np.nan]], dtype=np.float32)
    data = encode(Image.fromarray(values, "F"), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "F"
    assert decode_image(data)[:, :, 2].tolist() == [[0, 0, 128, 255, 0]]


# --- animation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "options"), [("GIF", {}), ("WEBP", {"lossless": True})])
def test_animation_gives_first_frame(fmt: str, options: dict[str, object]) -> None:
    red = Image.new("RGB", (32, 24), (255, 0, 0))
    blue = Image.new("RGB", (32, 24), (0, 0, 255))
    data = encode(red, fmt, save_all=True, append_images=[blue], duration=100, **options)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    out = decode_image(data)
    assert out.shape == (24, 32, 3)
    assert (out[:, :, 0] > 200).all() and (out[:, :, 2] < 50).all()


def test_multipage_tiff_gives_first_page() -> None:
    first = Image.fromarray(textured(seed=1))
    second = Image.fromarray(textured(seed=2))
    data = encode(first, "TIFF", save_all=True, append_images=[second])
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    assert np.array_equal(decode_image(data), np.asarray(first))


def grey_frames(count: int, size: tuple[int, int] = (32, 24)) -> list[Image.Image]:
    return [Image.new("RGB", size, (4 * i,) * 3) for i in range(count)]


ANIMATED = [
    ("GIF", {"duration": 100, "loop": 0}),
    ("PNG", {"duration": 100}),  # APNG
    ("WEBP", {"duration": 100, "lossless": True}),
    ("TIFF", {}),  # multi-page
]


@pytest.mark.parametrize(("fmt", "options"), ANIMATED)
def test_decode_frames_gives_every_frame(fmt: str, options: dict[str, object]) -> None:
    first, *rest = grey_frames(5)
    data = encode(first, fmt, save_all=True, append_images=rest, **options)
    frames = decode_frames(data)
    assert frames.complete and frames.total == 5 and not frames.note
    assert [f.index for f in frames.frames] == [0, 1, 2, 3, 4]
    assert [int(f.rgb[0, 0, 0]) for f in frames.frames] == [0, 4, 8, 12, 16]
    assert np.array_equal(frames.frames[0].rgb, decode_image(data))  # hashing is unchanged


@pytest.mark.parametrize(("fmt", "options"), ANIMATED)
def test_decode_frames_samples_evenly_beyond_max_frames(
    fmt: str, options: dict[str, object]
) -> None:
    first, *rest = grey_frames(40)
    data = encode(first, fmt, save_all=True, append_images=rest, **options)
    frames = decode_frames(data, max_frames=5)
    assert not frames.complete and frames.total == 40
    assert [f.index for f in frames.frames] == [0, 10, 20, 29, 39]  # first and last included
    assert [int(f.rgb[0, 0, 0]) for f in frames.frames] == [0, 40, 80, 116, 156]
    assert "5 of 40 frames" in frames.note


@pytest.mark.parametrize(("fmt", "options"), ANIMATED)
def test_decode_frames_bounds_total_pixels(fmt: str, options: dict[str, object]) -> None:
    first, *rest = grey_frames(10)
    data = encode(first, fmt, save_all=True, append_images=rest, **options)
    frames = decode_frames(data, max_total_pixels=32 * 24 * 4)
    # GIF, APNG and WebP decode the frames passed over; TIFF pages are reached directly.
    assert [f.index for f in frames.frames] == [0, 1, 2, 3]
    assert not frames.complete and "over 3072 decoded pixels" in frames.note
    assert [f.index for f in decode_frames(data, max_frames=2).frames] == [0, 9]
    assert len(decode_frames(data, max_frames=2, max_total_pixels=32 * 24 * 5).frames) == (
        2 if fmt == "TIFF" else 1  # reaching the last frame costs all ten
    )


def test_decode_frames_checks_every_page_against_max_pixels() -> None:
    small, big = Image.new("RGB", (8, 8)), Image.new("RGB", (100, 100))
    data = encode(small, "TIFF", save_all=True, append_images=[big])
    with pytest.raises(MediaError, match=r"frame 1.*over the limit of 1000"):
        decode_frames(data, max_pixels=1000)


def test_decode_frames_keeps_alpha_and_composites() -> None:
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 3] = 128  # black, half transparent: grey on a white page
    frames = decode_frames(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    (frame,) = frames.frames
    assert frame.alpha is not None and (frame.alpha == 128).all()
    views = dict(frame.views())
    assert list(views) == ["stored", "over white", "over black"]
    assert (views["stored"] == 0).all() and (views["over black"] == 0).all()
    assert (views["over white"] == 127).all()
    opaque = decode_frames(encode(Image.new("RGBA", (4, 4), (9, 9, 9, 255)), "PNG"))
    assert opaque.frames[0].alpha is None and len(opaque.frames[0].views()) == 1


def test_decode_frames_palette_transparency_is_alpha() -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([250, 250, 250] + [0, 0, 0] * 255)
    frame = decode_frames(encode(img, "GIF", transparency=0)).frames[0]
    assert frame.alpha is not None and (frame.alpha == 0).all()
    assert (dict(frame.views())["over black"] == 0).all()


def test_frame_views_of_an_opaque_frame() -> None:
    rgb = np.full((2, 2, 3), 7, np.uint8)
    assert Frame(0, rgb).views()[0][1] is rgb


# --- hostile and broken data -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_refused_naming_the_file(tmp_path: Path, fmt: str) -> None:
    data = encode(Image.fromarray(textured(300, 400)), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=rf"^{re.escape(str(path))}: corrupt or truncated {fmt}"):
        decode_image(read_media(path), name=str(path))


def test_corrupt_header_refused() -> None:
    data = bytearray(encode(Image.fromarray(textured()), "PNG"))
    data[16:24] = b"\xff" * 8  # IHDR width/height garbage; CRC no longer matches
    with pytest.raises(MediaError, match=r"^bad\.png: "):
        decode_image(bytes(data), name="bad.png")


def test_decompression_bomb_refused_without_allocating() -> None:
    data = png_claiming(60000, 60000)
    assert len(data) < 200
    with pytest.raises(MediaError, match=r"^photo\.png: .*3600000000 pixels.*decompression bomb"):
        decode_image(data, name="photo.png")


def test_pixel_limit_checked_from_the_header() -> None:
    # 64 Mpx: under Pillow's own limit (~89 Mpx), over gardien's 50 Mpx default.
    with pytest.raises(
        MediaError,
        match=r"^big\.png: 8000x8000 is 64000000 pixels, over the limit of 50000000 "
        r"\(decompression bomb\?\)$",
    ):
        decode_image(png_claiming(8000, 8000), name="big.png")


def test_pixel_limit_configurable() -> None:
    data = encode(Image.fromarray(textured(50, 100)), "PNG")
    with pytest.raises(MediaError, match="5000 pixels, over the limit of 4999"):
        decode_image(data, max_pixels=4999)
    assert decode_image(data, max_pixels=5000).shape == (50, 100, 3)


def test_pillow_bomb_warning_becomes_error_without_global_changes() -> None:
    before_limit = Image.MAX_IMAGE_PIXELS
    before_filters = list(warnings.filters)
    # 100 Mpx: over Pillow's warning threshold, under its error threshold and our raised limit.
    with pytest.raises(MediaError, match=r"100000000 pixels"):
        decode_image(png_claiming(10000, 10000), name="w.png", max_pixels=200_000_000)
    assert before_limit == Image.MAX_IMAGE_PIXELS
    assert warnings.filters == before_filters


def test_defaults() -> None:
    assert DEFAULT_MAX_PIXELS == 50_000_000
    assert DEFAULT_MAX_BYTES == 256 * 1024 * 1024


# --- read_media ------------------------------------------------------------------------------


def test_read_media_reads_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG some bytes")
    assert read_media(path) == b"\x89PNG some bytes"


def test_read_media_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(b"x" * 1000)
    where = re.escape(str(path))
    with pytest.raises(MediaError, match=rf"^{where}: 1000 bytes, over the limit of 999$"):
        read_media(path, max_bytes=999)
    assert len(read_media(path, max_bytes=1000)) == 1000


def test_read_media_refusals(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match=rf"^{re.escape(str(empty))}: empty file$"):
        read_media(empty)
    missing = tmp_path / "missing.png"
    with pytest.raises(MediaError, match=rf"^{re.escape(str(missing))}: no such file$"):
        read_media(missing)
    with pytest.raises(MediaError, match=rf"^{re.escape(str(tmp_path))}: is a folder"):
        read_media(tmp_path)


# --- EXIF orientation ------------------------------------------------------------------------


def test_exif_orientation_only_when_asked() -> None:
    src = Image.fromarray(textured(20, 40))  # 40 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # stored pixels must be rotated 90 degrees clockwise for display
    data = encode(src, "JPEG", quality=95, exif=exif.tobytes())
    stored = decode_image(data)
    assert stored.shape == (20, 40, 3)
    shown = decode_image(data, apply_exif_orientation=True)
    assert shown.shape == (40, 20, 3)
    assert np.abs(shown.astype(int) - np.rot90(stored, -1).astype(int)).max() <= 2


# --- iter_media_paths ------------------------------------------------------------------------


def test_iter_media_paths(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / ".git").mkdir()
    for rel in ("b.png", "a.jpg", "sub/c.png", "sub/deeper/d.gif", "sub/.hidden.png", ".git/x"):
        (tree / rel).write_bytes(b"x")
    (tree / "sub" / "B.txt").write_bytes(b"x")
    (tree / "link_to_sub").symlink_to(tree / "sub", target_is_directory=True)
    (tree / "link_to_a.jpg").symlink_to(tree / "a.jpg")
    outside_hidden = tmp_path / ".explicit.png"
    outside_hidden.write_bytes(b"x")
    missing = tmp_path / "missing.jpg"

    got = list(iter_media_paths([outside_hidden, tree, missing]))
    assert got == [
        outside_hidden,
        tree / ".git" / "x",  # hidden folder: walked
        tree / "a.jpg",
        tree / "b.png",
        tree / "link_to_a.jpg",  # symlink to a file: yielded
        # link_to_sub: the same folder as sub, walked once, under its real path
        tree / "sub" / ".hidden.png",  # hidden file: yielded
        tree / "sub" / "B.txt",
        tree / "sub" / "c.png",
        tree / "sub" / "deeper" / "d.gif",
        missing,  # not dropped: the caller reports it
    ]
    with pytest.raises(MediaError, match=r"missing\.jpg: no such file$"):
        read_media(got[-1])


def test_iter_media_paths_follows_symlinked_folders(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "o.png").write_bytes(b"x")
    (outside / "inner" / "i.png").write_bytes(b"x")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a_link").symlink_to(outside, target_is_directory=True)
    (tree / "z.png").write_bytes(b"x")
    assert list(iter_media_paths([tree])) == [
        tree / "z.png",  # the tree first, then the folders linked from it
        tree / "a_link" / "inner" / "i.png",
        tree / "a_link" / "o.png",
    ]
    # Given explicitly, a symlinked folder is walked like any folder.
    assert list(iter_media_paths([tree / "a_link"])) == [
        tree / "a_link" / "inner" / "i.png",
        tree / "a_link" / "o.png",
    ]


def test_iter_media_paths_symlink_loop_yields_each_file_once(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "top.png").write_bytes(b"x")
    (tree / "sub" / "low.png").write_bytes(b"x")
    (tree / "sub" / "a").symlink_to("..", target_is_directory=True)  # sub/a -> tree
    (tree / "sub" / "self").symlink_to(".", target_is_directory=True)
    (tree / "b").symlink_to("b2")  # b -> b2 -> b: a link loop is a broken link, yielded
    (tree / "b2").symlink_to("b")
    got = list(iter_media_paths([tree, tree / "sub"]))  # a folder given twice: walked once
    assert got == [tree / "b", tree / "b2", tree / "sub" / "low.png", tree / "top.png"]
    for link in got[:2]:
        with pytest.raises(MediaError, match=rf"^{re.escape(str(link))}: cannot read"):
            read_media(link)


def test_iter_media_paths_yields_broken_links(tmp_path: Path) -> None:
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert list(iter_media_paths([tmp_path])) == [tmp_path / "gone.png"]
    with pytest.raises(MediaError, match=r"gone\.png: no such file$"):
        read_media(tmp_path / "gone.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_iter_media_paths_yields_fifos_and_read_media_refuses_them(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    (tmp_path / "z.png").write_bytes(b"x")
    assert list(iter_media_paths([tmp_path])) == [fifo, tmp_path / "z.png"]

    raised: list[BaseException] = []

    def read() -> None:
        try:
            read_media(fifo)
        except BaseException as exc:  # reported below
            raised.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    started = time.monotonic()
    reader.start()
    reader.join(10)
    if reader.is_alive():  # blocked opening the FIFO: unblock it, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("read_media blocked on a FIFO")
    assert time.monotonic() - started < 10
    assert len(raised) == 1 and isinstance(raised[0], MediaError)
    assert str(raised[0]) == f"{fifo}: not a regular file (a FIFO)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_read_media_refuses_a_fifo_swapped_in_after_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    real = os.stat(fifo)
    fake = os.stat_result((0o100644, *real[1:6], 10, *real[7:]))  # what stat saw: a 10-byte file
    monkeypatch.setattr(Path, "stat", lambda self, **kwargs: fake)
    with pytest.raises(MediaError, match=r"pipe\.jpg: not a regular file \(a FIFO\)$"):
        read_media(fifo)


def test_iter_media_paths_is_lazy_and_accepts_generators(tmp_path: Path) -> None:
    (tmp_path / "one.png").write_bytes(b"x")
    paths = iter_media_paths(p for p in [tmp_path])
    assert next(paths) == tmp_path / "one.png"
    assert list(paths) == []
