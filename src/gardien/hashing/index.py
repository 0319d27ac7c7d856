"""Exact indexes over hash banks: PDQ range search by Hamming distance, digest lookup by equality.

``PdqIndex`` is a multi-index hash (Norouzi et al.) shaped for PDQ's threshold of 31. A hash is
cut into 8 chunks of 32 bits; by pigeonhole, two hashes within distance t are within r_j on some
chunk j whenever the radii sum (r_j + 1) to at least t + 1 (r = 3 everywhere for t = 31). Each
chunk has a table of positions sorted by the chunk, found through a directory of its high bits;
the low bits sit next to the positions so probes read short contiguous runs, and only the few
survivors touch the 32-byte hashes. Results are exact: every pair within the threshold, none
beyond, checked against brute force in the tests. Small indexes, and thresholds so wide that the
probes would read most of the tables, use a blocked exhaustive scan instead.

Arrays are saved as ``.npy`` files and opened memory-mapped, so a 10M-hash index opens at once.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from gardien.core.errors import GardienError
from gardien.hashing import kernels
from gardien.hashing.hits import Hits

__all__ = ["DigestIndex", "HashIndexError", "Hits", "PdqIndex"]

PDQ_BYTES: Final = 32
TABLES: Final = 8
SCAN_BELOW: Final = 1 << 16
"""Indexes smaller than this are scanned: 2 MB of hashes, cheaper than 8 tables of probes."""
SCAN_BLOCK: Final = 4096
FORMAT: Final = 1
_START_CAPACITY: Final = 1024


class HashIndexError(GardienError):
    """An index file is missing, malformed or of another version; or a query has the wrong shape."""


def _directory_bits(n: int) -> int:
    """High bits of a chunk that index its table: about 8 positions per cell, within 16..20."""
    return min(20, max(16, int(math.log2(max(n, 1))) - 3))


def _radii(threshold: int) -> NDArray[np.int64]:
    """Per-chunk radii whose (r + 1) sum to threshold + 1: the pigeonhole of the search."""
    base, extra = divmod(threshold + 1, TABLES)
    return np.array([base - 1 + (1 if j < extra else 0) for j in range(TABLES)], np.int64)


@lru_cache(maxsize=16)
def _probe_masks(bits: int, radius: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All ``bits``-bit masks with at most ``radius`` bits set, ordered by how many are set."""
    masks: list[int] = []
    weights: list[int] = []
    for weight in range(radius + 1):
        for picked in combinations(range(bits), weight):
            masks.append(sum(1 << b for b in picked))
            weights.append(weight)
    return np.array(masks, np.int64), np.array(weights, np.int64)


def _probe_count(bits: int, radii: NDArray[np.int64]) -> int:
    return sum(sum(math.comb(bits, w) for w in range(int(r) + 1)) for r in radii if r >= 0)


def _as_hashes(array: NDArray[Any], width: int, what: str) -> NDArray[np.uint8]:
    data = np.asarray(array)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != width:
        raise HashIndexError(
            f"{what} must be a uint8 array of shape (n, {width}), got {data.dtype} {data.shape}"
        )
    return np.ascontiguousarray(data)


def _run_kernel(
    call: Callable[[NDArray[np.int64], NDArray[np.int64], NDArray[np.int16]], int],
) -> Hits:
    """Run a kernel with output arrays, growing them once if it found more than they hold."""
    capacity = _START_CAPACITY
    while True:
        query = np.empty(capacity, np.int64)
        position = np.empty(capacity, np.int64)
        distance = np.empty(capacity, np.int16)
        found = call(query, position, distance)
        if found <= capacity:
            return Hits(query[:found], position[:found], distance[:found])
        capacity = found


def _save_arrays(
    directory: Path, stem: str, arrays: dict[str, NDArray[Any]], meta: dict[str, Any]
) -> None:
    """Write every array, then the manifest last: an index without its manifest does not exist."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        final = directory / f"{stem}.{name}.npy"
        partial = final.with_suffix(".npy.partial")
        with partial.open("wb") as out:
            np.save(out, array, allow_pickle=False)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(final)
    manifest = directory / f"{stem}.json"
    partial = manifest.with_suffix(".json.partial")
    partial.write_text(json.dumps({"format": FORMAT, **meta}), encoding="utf-8")
    partial.replace(manifest)


def _read_manifest(directory: Path, stem: str, kind: str) -> dict[str, Any]:
    manifest = directory / f"{stem}.json"
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HashIndexError(f"{manifest}: no index here (missing manifest)") from None
    except (OSError, ValueError) as exc:
        raise HashIndexError(f"{manifest}: unreadable index manifest: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("kind") != kind:
        raise HashIndexError(f"{manifest}: not a {kind} index of format {FORMAT}")
    return meta


def _open_arrays(directory: Path, stem: str, names: tuple[str, ...]) -> dict[str, NDArray[Any]]:
    arrays: dict[str, NDArray[Any]] = {}
    for name in names:
        path = directory / f"{stem}.{name}.npy"
        try:
            arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise HashIndexError(f"{path}: unreadable index array: {exc}") from None
    return arrays


def remove_index_files(directory: Path, stem: str) -> None:
    """Delete an index's files (partial ones too), manifest first so a half-deleted index is
    never opened."""
    for path in [directory / f"{stem}.json", *sorted(directory.glob(f"{stem}.*"))]:
        path.unlink(missing_ok=True)


class PdqIndex:
    """Exact range search over PDQ hashes (256 bits) by Hamming distance."""

    _ARRAYS: Final = ("hashes", "ids", "keys", "dirs")

    def __init__(
        self,
        hashes: NDArray[np.uint8],
        tables: tuple[NDArray[np.uint32], NDArray[np.uint16], NDArray[np.uint32]] | None,
        directory_bits: int,
    ) -> None:
        self.hashes = hashes
        self._words: NDArray[np.uint64] = hashes.view(np.uint64)
        self._tables = tables
        self.directory_bits = directory_bits

    def __len__(self) -> int:
        return int(self.hashes.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of every array the index keeps: 32 per hash, plus the tables when it has them."""
        extra = sum(a.nbytes for a in self._tables) if self._tables else 0
        return int(self.hashes.nbytes + extra)

    @classmethod
    def build(
        cls, hashes: NDArray[np.uint8], progress: Callable[[int], None] | None = None
    ) -> PdqIndex:
        """Index ``hashes`` (uint8, shape (n, 32)); positions in results are rows of it.

        ``progress`` is called with 1 after each of the 8 tables (about 1.5 s each at 10M).
        """
        data = _as_hashes(hashes, PDQ_BYTES, "PDQ hashes")
        n = data.shape[0]
        if n >= 2**32 - 1:
            raise HashIndexError(f"{n} hashes in one index; split them into segments under 2^32")
        if n < SCAN_BELOW:
            return cls(data, None, 0)
        bits = _directory_bits(n)
        low_bits = 32 - bits
        chunks = data.view(np.uint32)
        ids = np.empty((TABLES, n), np.uint32)
        keys = np.empty((TABLES, n), np.uint16)
        dirs = np.zeros((TABLES, (1 << bits) + 1), np.uint32)
        for j in range(TABLES):
            column = np.ascontiguousarray(chunks[:, j])
            order = np.argsort(column, kind="stable")
            ordered = column[order]
            ids[j] = order
            keys[j] = ordered & np.uint32((1 << low_bits) - 1)
            np.cumsum(
                np.bincount(ordered >> np.uint32(low_bits), minlength=1 << bits), out=dirs[j, 1:]
            )
            if progress:
                progress(1)
        return cls(data, (ids, keys, dirs), bits)

    def save(self, directory: Path, stem: str) -> None:
        arrays: dict[str, NDArray[Any]] = {"hashes": self.hashes}
        if self._tables:
            arrays.update(zip(("ids", "keys", "dirs"), self._tables, strict=True))
        _save_arrays(
            directory,
            stem,
            arrays,
            {"kind": "pdq", "count": len(self), "directory_bits": self.directory_bits},
        )

    @classmethod
    def open(cls, directory: Path, stem: str) -> PdqIndex:
        """Memory-map a saved index: pages are read when searches touch them."""
        meta = _read_manifest(directory, stem, "pdq")
        names = cls._ARRAYS if meta.get("directory_bits") else ("hashes",)
        arrays = _open_arrays(directory, stem, names)
        hashes = arrays["hashes"]
        if hashes.dtype != np.uint8 or hashes.ndim != 2 or hashes.shape[1] != PDQ_BYTES:
            raise HashIndexError(f"{directory / stem}: hash array has shape {hashes.shape}")
        if hashes.shape[0] != meta.get("count"):
            raise HashIndexError(
                f"{directory / stem}: {hashes.shape[0]} hashes, manifest says {meta.get('count')}"
            )
        bits = int(meta.get("directory_bits") or 0)
        if not bits:
            return cls(hashes, None, 0)
        ids, keys, dirs = arrays["ids"], arrays["keys"], arrays["dirs"]
        n = hashes.shape[0]
        if (
            ids.shape != (TABLES, n)
            or keys.shape != (TABLES, n)
            or dirs.shape != (TABLES, (1 << bits) + 1)
        ):
            raise HashIndexError(f"{directory / stem}: index tables do not match {n} hashes")
        return cls(hashes, (ids, keys, dirs), bits)

    def search(self, queries: NDArray[np.uint8], threshold: int = 31) -> Hits:
        """Every (query, position) pair at Hamming distance <= threshold; order unspecified."""
        if not 0 <= threshold <= 256:
            raise HashIndexError(f"threshold must be within 0..256, got {threshold}")
        data = _as_hashes(queries, PDQ_BYTES, "PDQ queries")
        if not len(self) or not data.shape[0]:
            return Hits.empty()
        words = data.view(np.uint64)
        if self._uses_tables(threshold):
            assert self._tables is not None
            ids, keys, dirs = self._tables
            radii = _radii(threshold)
            masks, weights = _probe_masks(self.directory_bits, int(radii.max()))
            return _run_kernel(
                lambda q, p, d: int(
                    kernels.mih_search(
                        words,
                        self._words,
                        ids,
                        keys,
                        dirs,
                        masks,
                        weights,
                        radii,
                        threshold,
                        32 - self.directory_bits,
                        q,
                        p,
                        d,
                    )
                )
            )
        return _run_kernel(
            lambda q, p, d: int(
                kernels.scan_search(words, self._words, threshold, SCAN_BLOCK, q, p, d)
            )
        )

    def _uses_tables(self, threshold: int) -> bool:
        """Tables pay off while their probes read well under a quarter of the entries."""
        if self._tables is None:
            return False
        probes = _probe_count(self.directory_bits, _radii(threshold))
        per_cell = len(self) / (1 << self.directory_bits)
        return probes * max(per_cell, 1.0) < len(self) * TABLES / 4


class DigestIndex:
    """Exact lookup of file digests (MD5, SHA-256): sorted bytes and binary search."""

    _ARRAYS: Final = ("sorted", "order")

    def __init__(self, width: int, ordered: NDArray[np.uint8], order: NDArray[np.int64]) -> None:
        self.width = width
        self._sorted = ordered
        self._keys = ordered.view(np.dtype((np.void, width))).reshape(-1)
        self._order = order

    def __len__(self) -> int:
        return int(self._sorted.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self._sorted.nbytes + self._order.nbytes)

    @property
    def hashes(self) -> NDArray[np.uint8]:
        """The digests by position, as they were added."""
        stored = np.empty_like(self._sorted)
        stored[self._order] = self._sorted
        return stored

    @classmethod
    def build(cls, digests: NDArray[np.uint8]) -> DigestIndex:
        data = np.asarray(digests)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] not in (16, 32):
            raise HashIndexError(
                f"digests must be uint8 (n, 16 or 32), got {data.dtype} {data.shape}"
            )
        data = np.ascontiguousarray(data)
        width = int(data.shape[1])
        order = np.argsort(data.view(np.dtype((np.void, width))).reshape(-1), kind="stable")
        return cls(width, np.ascontiguousarray(data[order]), order.astype(np.int64))

    def save(self, directory: Path, stem: str) -> None:
        _save_arrays(
            directory,
            stem,
            {"sorted": self._sorted, "order": self._order},
            {"kind": "digest", "count": len(self), "width": self.width},
        )

    @classmethod
    def open(cls, directory: Path, stem: str) -> DigestIndex:
        meta = _read_manifest(directory, stem, "digest")
        arrays = _open_arrays(directory, stem, cls._ARRAYS)
        width = int(meta.get("width", 0))
        ordered, order = arrays["sorted"], arrays["order"]
        if ordered.ndim != 2 or ordered.shape[1] != width or order.shape != (ordered.shape[0],):
            raise HashIndexError(f"{directory / stem}: digest arrays do not match the manifest")
        return cls(width, ordered, order)

    def search(self, queries: NDArray[np.uint8], threshold: int = 0) -> Hits:
        """Stored positions equal to each query (distance 0); ``threshold`` is ignored."""
        data = _as_hashes(queries, self.width, "digest queries")
        if not len(self) or not data.shape[0]:
            return Hits.empty()
        keys = data.view(np.dtype((np.void, self.width))).reshape(-1)
        left = np.searchsorted(self._keys, keys, side="left")
        right = np.searchsorted(self._keys, keys, side="right")
        counts = right - left
        total = int(counts.sum())
        if not total:
            return Hits.empty()
        query = np.repeat(np.arange(data.shape[0], dtype=np.int64), counts)
        offsets = np.cumsum(counts) - counts
        rows = np.repeat(left - offsets, counts) + np.arange(total)
        return Hits(query, np.asarray(self._order[rows], np.int64), np.zeros(total, np.int16))
