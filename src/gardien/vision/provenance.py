"""Provenance: what an image says about where it came from (C2PA manifests, invisible watermarks).

Provenance adds findings of kind ``provenance``; it never changes a decision. A manifest or a
watermark is stripped by a screenshot and forged by anyone with a key, so its absence proves
nothing and its presence is context for a reviewer ("a model made this"), not a verdict. For the
same reason a reader never raises: a file it can't make sense of gives a finding saying so.

Two readers:

* :class:`C2PAReader` reads the C2PA manifest store in the file's bytes (pixels carry none) with
  ``c2pa-python``, offline: remote manifests and OCSP are never fetched. It reports the active
  manifest's claim generator, and whether any manifest in the store declares an action whose
  ``digitalSourceType`` is IPTC's ``trainedAlgorithmicMedia`` or
  ``compositeWithTrainedAlgorithmicMedia`` (made by, or with, a generative model).
* :class:`StableDiffusionWatermarkReader` looks for the invisible watermarks that Stable
  Diffusion's reference code embeds with ``invisible-watermark``'s ``dwtDct`` method: the text
  ``StableDiffusionV1`` (the SD 1.x scripts), ``SDV2`` (the SD 2.x scripts) and a fixed 48-bit
  message (SDXL: Stability's scripts and diffusers' ``StableDiffusionXLWatermarker``). The mark
  does not survive JPEG re-compression or resizing; it is found on images saved as the scripts
  save them (PNG), which is where it matters: a folder of a local generator's raw output.

The watermark decoder is a numpy copy of ``invisible-watermark``'s ``dwtDct`` decoder
(``imwatermark.maxDct.EmbedMaxDct.decode``), tested bit for bit against it, and needs neither the
library nor its dependencies: the library imports torch (1.2 s), converts colours with OpenCV,
transforms with PyWavelets and decodes in a Python loop, once per message length (0.2 s for the
three messages on a 1024x1024 image, against a few ms here; ``bench/bench_watermark.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from gardien.core.verdict import Finding
from gardien.media import RGBArray

__all__ = [
    "AI_SOURCE_TYPES",
    "C2PAReader",
    "ProvenanceReader",
    "StableDiffusionWatermarkReader",
    "Watermark",
    "default_provenance_readers",
    "read_provenance",
]

KIND: Final = "provenance"


@runtime_checkable
class ProvenanceReader(Protocol):
    """Reads provenance from an image's file bytes (None for a decoded array) or its pixels."""

    name: str

    def read(self, data: bytes | None, pixels: RGBArray) -> list[Finding]: ...


def read_provenance(
    readers: Sequence[ProvenanceReader], data: bytes | None, pixels: RGBArray
) -> list[Finding]:
    """Every reader's findings. A reader that raises or answers nonsense becomes a finding.

    Only findings of kind ``provenance`` with no category are accepted, so that no reader can
    look, to whoever reads the verdict, as if it had weighed in on a category.
    """
    findings: list[Finding] = []
    for reader in readers:
        name = getattr(reader, "name", type(reader).__name__)
        try:
            found = reader.read(data, pixels)
            if not isinstance(found, list) or not all(isinstance(f, Finding) for f in found):
                raise TypeError("did not return a list of findings")
            if any(f.kind != KIND or f.category is not None for f in found):
                raise ValueError(f"returned a finding not of kind {KIND!r} with no category")
            findings.extend(found)
        except Exception as exc:
            detail = f"provenance reader {name!r} failed: {type(exc).__name__}: {exc}"
            findings.append(_finding(_clean(detail, 300), "provenance_error", name))
    return findings


def default_provenance_readers() -> tuple[list[ProvenanceReader], list[str]]:
    """The readers whose libraries are installed, and a note for each one that is not."""
    readers: list[ProvenanceReader] = []
    missing: list[str] = []
    if importlib.util.find_spec("c2pa") is not None:
        readers.append(C2PAReader())
    else:
        missing.append("C2PA manifests not read: c2pa-python is not installed")
    readers.append(StableDiffusionWatermarkReader())  # numpy only
    return readers, missing


def _finding(detail: str, concept: str, via: str, score: float = 0.0) -> Finding:
    return Finding(
        kind=KIND, category=None, score=round(score, 4), detail=detail, concept=concept, via=via
    )


def _clean(text: str, limit: int = 120) -> str:
    """Text from a file, made safe to show: no control characters, one line, bounded length."""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    line = " ".join(kept.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- C2PA

_IPTC: Final = "cv.iptc.org/newscodes/digitalsourcetype/"
#: IPTC digital source types that mean "made by (or with) a generative model".
AI_SOURCE_TYPES: Final = frozenset(
    {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"}
)

#: Reading never touches the network: a remote manifest or an OCSP responder named in a hostile
#: file would otherwise be fetched (c2pa-rs fetches remote manifests by default).
_OFFLINE: Final = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}

_MAX_MANIFESTS: Final = 64
_MAX_ACTIONS: Final = 256


def _c2pa_format(data: bytes) -> str | None:
    """The MIME type of the formats gardien decodes that can carry a C2PA manifest."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None  # BMP and anything else: no C2PA embedding defined


class C2PAReader:
    """The C2PA manifest store in the file's bytes: who made it, and whether a model did."""

    name = "c2pa"

    def __init__(self) -> None:
        self._c2pa: Any = None
        self._context: Any = None

    def _load(self) -> Any:
        if self._c2pa is None:
            c2pa = importlib.import_module("c2pa")
            self._context = c2pa.Context.from_dict(_OFFLINE)
            self._c2pa = c2pa
        return self._c2pa

    def read(self, data: bytes | None, pixels: RGBArray) -> list[Finding]:
        if not data:
            return []
        fmt = _c2pa_format(data)
        if fmt is None:
            return []
        c2pa = self._load()
        try:
            reader = c2pa.Reader.try_create(fmt, io.BytesIO(data), None, self._context)
            if reader is None:
                return []
            with reader:
                store = json.loads(reader.json())
        except c2pa.C2paError as exc:
            message = _clean(str(exc), 200)
            if message.startswith("Remote"):
                detail = f"C2PA: the manifest is stored remotely and was not fetched ({message})"
                return [_finding(detail, "c2pa_remote", self.name)]
            detail = f"C2PA: a manifest store is present but can't be read ({message})"
            return [_finding(detail, "c2pa_unreadable", self.name)]
        if not isinstance(store, dict):
            return [
                _finding(
                    "C2PA: the manifest store is not a JSON object", "c2pa_unreadable", self.name
                )
            ]
        return _c2pa_findings(store, self.name)


def _c2pa_findings(store: dict[str, Any], via: str) -> list[Finding]:
    manifests = store.get("manifests")
    if not isinstance(manifests, dict):
        manifests = {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) if isinstance(active_label, str) else None
    validity = _validity(store)
    if not isinstance(active, dict):
        detail = f"C2PA: a manifest store with no readable active manifest ({validity})"
        return [_finding(detail, "c2pa_unreadable", via)]
    generator = _generator(active)
    own = _ai_sources(active)
    if own:
        detail = (
            f"C2PA: made by a generative model (claim generator {generator}; "
            f"{', '.join(own)}; {validity})"
        )
        return [_finding(detail, "c2pa_generated", via, 1.0)]
    for label, manifest in list(manifests.items())[:_MAX_MANIFESTS]:
        if label == active_label or not isinstance(manifest, dict):
            continue
        sources = _ai_sources(manifest)
        if sources:
            detail = (
                f"C2PA: an ingredient was made by a generative model (its claim generator "
                f"{_generator(manifest)}; {', '.join(sources)}); this manifest's claim generator "
                f"{generator}; {validity}"
            )
            return [_finding(detail, "c2pa_generated_ingredient", via, 1.0)]
    detail = (
        f"C2PA: manifest by claim generator {generator}; no generative model declared ({validity})"
    )
    return [_finding(detail, "c2pa_manifest", via)]


def _generator(manifest: dict[str, Any]) -> str:
    """The claim generator: ``claim_generator_info`` names (claims v2), else ``claim_generator``."""
    infos = manifest.get("claim_generator_info")
    names = []
    if isinstance(infos, list):
        for info in infos[:3]:
            if isinstance(info, dict) and isinstance(info.get("name"), str):
                version = info.get("version")
                names.append(info["name"] + (f" {version}" if isinstance(version, str) else ""))
    if not names and isinstance(manifest.get("claim_generator"), str):
        names.append(manifest["claim_generator"])
    return repr(_clean(", ".join(names))) if names else "unknown"


def _ai_sources(manifest: dict[str, Any]) -> list[str]:
    """``digitalSourceType X (software agent Y)`` for each action that declares a model."""
    found: list[str] = []
    assertions = manifest.get("assertions")
    if not isinstance(assertions, list):
        return found
    for assertion in assertions:
        if not isinstance(assertion, dict):
            continue
        label = assertion.get("label")
        data = assertion.get("data")
        if not (isinstance(label, str) and label.startswith("c2pa.actions")):
            continue
        actions = data.get("actions") if isinstance(data, dict) else None
        if not isinstance(actions, list):
            continue
        for action in actions[:_MAX_ACTIONS]:
            if not isinstance(action, dict):
                continue
            source = _source_type(action.get("digitalSourceType"))
            if source is None:
                continue
            text = f"digitalSourceType {source}"
            agent = action.get("softwareAgent")
            if isinstance(agent, dict):
                agent = agent.get("name")
            if isinstance(agent, str) and agent.strip():
                text += f" (software agent {_clean(agent)!r})"
            if text not in found:
                found.append(text)
    return found[:4]


def _source_type(uri: object) -> str | None:
    if not isinstance(uri, str):
        return None
    head, _, name = uri.rstrip("/").rpartition("/")
    if name in AI_SOURCE_TYPES and (head + "/").endswith(_IPTC):
        return name
    return None


def _validity(store: dict[str, Any]) -> str:
    state = store.get("validation_state")
    if state == "Trusted":
        return "signature valid, signer trusted"
    if state == "Valid":
        return "signature valid, signer not on a trust list"
    statuses = store.get("validation_status")
    codes = []
    if isinstance(statuses, list):
        for status in statuses:
            code = status.get("code") if isinstance(status, dict) else None
            if isinstance(code, str) and code != "signingCredential.untrusted":
                codes.append(_clean(code, 60))
    if state == "Invalid" or codes:
        return "manifest fails validation" + (f": {', '.join(codes[:4])}" if codes else "")
    return "validation state unknown"


# -- Stable Diffusion's invisible watermark


@dataclass(frozen=True)
class Watermark:
    """A message embedded with ``invisible-watermark``'s ``dwtDct`` method, and who embeds it."""

    label: str
    bits: tuple[bool, ...]

    @classmethod
    def of_bytes(cls, label: str, message: bytes) -> Watermark:
        bits = np.unpackbits(np.frombuffer(message, dtype=np.uint8))
        return cls(label, tuple(bool(b) for b in bits))

    @classmethod
    def of_int(cls, label: str, message: int) -> Watermark:
        return cls(label, tuple(b == "1" for b in bin(message)[2:]))


#: diffusers' ``pipelines/stable_diffusion_xl/watermark.py``, copied there from Stability's
#: ``generative-models`` (``scripts/demo/streamlit_helpers.py``).
SDXL_MESSAGE: Final = 0b101100111110110010010000011110111011000110011110

STABLE_DIFFUSION_WATERMARKS: Final = (
    Watermark.of_bytes("SD 1.x reference scripts", b"StableDiffusionV1"),
    Watermark.of_bytes("SD 2.x reference scripts", b"SDV2"),
    Watermark.of_int("SDXL", SDXL_MESSAGE),
)

#: ``invisible-watermark`` refuses images of fewer pixels than this (it raises; we skip).
MIN_PIXELS: Final = 256 * 256
#: A message counts as found when at most this many of its bits decode wrong, chosen per length
#: so that random bits pass with a probability under this (1 of 32 bits, 5 of 48, 35 of 136).
FALSE_MATCH_RATE: Final = 1e-8

# invisible-watermark's dwtDct defaults: the quantisation step of the U channel (the only one
# its decoder reads: scales (0, 36, 36) over a loop that stops before channel 2) and block size.
_SCALE: Final = 36
_BLOCK: Final = 4
# OpenCV's 8-bit RGB -> YUV (BT.601) in fixed point, 14-bit shift: Y from R, G, B, then U.
_R2Y, _G2Y, _B2Y, _B2U = 4899, 9617, 1868, 8061
_HAAR: Final = 0.7071067811865476  # PyWavelets' Haar filter tap, 1/sqrt(2) as a float64
_STRIPE: Final = 512  # image rows per step (a multiple of 8), to bound memory on large images


def max_bit_errors(n_bits: int, rate: float = FALSE_MATCH_RATE) -> int:
    """The most wrong bits tolerated: P(at most k of n random bits wrong) stays under ``rate``."""
    total, k = 0, -1
    while k + 1 <= n_bits:
        total += math.comb(n_bits, k + 1)
        if total / 2**n_bits > rate:
            break
        k += 1
    return max(k, 0)


def dwtdct_block_bits(pixels: RGBArray) -> npt.NDArray[np.bool_]:
    """The bit each block holds, in embedding order, as ``EmbedMaxDct.decode`` reads them.

    The library's steps, vectorised and in plain numpy, bit for bit: the U channel as OpenCV's
    ``COLOR_BGR2YUV`` gives it; its one-level Haar approximation as PyWavelets' ``dwt2`` gives
    it; then in each 4x4 block of that, the largest coefficient after the first, modulo the
    scale, above half the scale. The library crops to a multiple of 4 pixels and drops partial
    blocks, so exactly the top-left ``rows // 8 * 8`` by ``cols // 8 * 8`` pixels count.
    """
    rows, cols = pixels.shape[0] // 8 * 8, pixels.shape[1] // 8 * 8
    out = [
        _stripe_bits(pixels[top : min(top + _STRIPE, rows), :cols])
        for top in range(0, rows, _STRIPE)
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.bool_)


def u_channel(rgb: RGBArray) -> npt.NDArray[np.int32]:
    """The U of OpenCV's 8-bit ``RGB2YUV``, exactly: its fixed-point BT.601 with rounding."""
    r, g, b = (rgb[:, :, i].astype(np.int32) for i in range(3))
    y = (r * _R2Y + g * _G2Y + b * _B2Y + (1 << 13)) >> 14
    u: npt.NDArray[np.int32] = np.clip(((b - y) * _B2U + (128 << 14) + (1 << 13)) >> 14, 0, 255)
    return u


def _stripe_bits(rgb: RGBArray) -> npt.NDArray[np.bool_]:
    u = u_channel(rgb).astype(np.float64)
    half = _HAAR * u[0::2] + _HAAR * u[1::2]
    approx = _HAAR * half[:, 0::2] + _HAAR * half[:, 1::2]
    n_r, n_c = approx.shape[0] // _BLOCK, approx.shape[1] // _BLOCK
    blocks = approx.reshape(n_r, _BLOCK, n_c, _BLOCK).swapaxes(1, 2).reshape(n_r * n_c, _BLOCK**2)
    pos = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    value = np.abs(blocks[np.arange(n_r * n_c), pos])
    bits: npt.NDArray[np.bool_] = (value % _SCALE) > 0.5 * _SCALE
    return bits


def decode_bits(block_bits: npt.NDArray[np.bool_], n_bits: int) -> npt.NDArray[np.bool_]:
    """A message of ``n_bits`` from the block bits: block ``i`` votes for bit ``i % n_bits``."""
    index = np.arange(block_bits.size) % n_bits
    votes = np.bincount(index, weights=block_bits, minlength=n_bits)
    counts = np.bincount(index, minlength=n_bits)
    result: npt.NDArray[np.bool_] = votes / np.maximum(counts, 1) * 255 > 127
    return result


class StableDiffusionWatermarkReader:
    """Stable Diffusion's invisible watermarks (SD 1.x, SD 2.x, SDXL) in the pixels."""

    name = "sd-watermark"

    def __init__(self, watermarks: Sequence[Watermark] = STABLE_DIFFUSION_WATERMARKS) -> None:
        self.watermarks = tuple(watermarks)
        self._limits = [max_bit_errors(len(mark.bits)) for mark in self.watermarks]

    def read(self, data: bytes | None, pixels: RGBArray) -> list[Finding]:
        if pixels.shape[0] * pixels.shape[1] < MIN_PIXELS:
            return []
        blocks = dwtdct_block_bits(pixels)
        findings = []
        for mark, limit in zip(self.watermarks, self._limits, strict=True):
            n = len(mark.bits)
            if blocks.size < n:
                continue
            errors = int(np.count_nonzero(decode_bits(blocks, n) != np.asarray(mark.bits)))
            if errors <= limit:
                detail = (
                    f"invisible watermark of Stable Diffusion ({mark.label}) found: "
                    f"{n - errors} of {n} bits match"
                )
                findings.append(
                    _finding(detail, "sd_watermark", "invisible-watermark", 1 - errors / n)
                )
        return findings
